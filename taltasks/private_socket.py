"""Unix sockets that only their owner can reach: a private directory and a peer check.

Local listeners that carry a user's credentials (the TLS relay in front of each Talos
endpoint, the simulator's control API) must not be reachable by another local process.
A loopback TCP port is reachable by every user on the host, so these listen on a Unix
socket instead, guarded twice:

1. **The directory.** The socket lives alone in a fresh directory made by
   :func:`tempfile.mkdtemp` (mode 0700, owned by the user) under ``$XDG_RUNTIME_DIR`` when
   that is the user's own private directory, else the temp dir; the socket itself is
   made 0600. Another user cannot even look up the path (``EACCES`` on connect).
2. **The peer.** Each accepted connection's kernel-reported credentials
   (``SO_PEERCRED`` on Linux, ``LOCAL_PEERPID``/``getpeereid`` on macOS) are checked by
   the listener: :func:`peer_allowed` with ``same_process=True`` accepts only the process
   that owns the socket (the relay is dialled by grpcio in that same process), with
   ``same_process=False`` only processes of the same user (the simulator's control API is
   used by ``sim.status``/``sim.down`` from other processes of that user).

The directory carries the owner's pid in its name (``taltasks-<what>-<pid>-<random>``)
so that directories left behind by a process that was killed outright (SIGKILL, power
loss — no ``finally`` runs) are swept by the next process of the same user that makes
one. A leftover holds no listener (its process is gone), only an empty socket file.

What this cannot stop: root, and processes of the same user that can read this process's
memory anyway (ptrace, ``/proc/<pid>/mem``) — see ``docs/talos-api.md``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

# sun_path is 108 bytes on Linux and 104 on macOS, terminating NUL included
MAX_SOCKET_PATH = 100
_swept: set[str] = set()
_sweep_lock = threading.Lock()


@dataclass(frozen=True)
class PeerCredentials:
    """Who is on the other end of a Unix socket, as the kernel reports it (None: unknown)."""

    pid: int | None
    uid: int | None


def _base_dirs() -> list[str]:
    """Where private directories may go, best first."""
    bases = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        with contextlib.suppress(OSError):
            st = os.stat(runtime)
            # only the user's own, private runtime dir (pam_systemd makes it 0700)
            if st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0 and os.path.isdir(runtime):
                bases.append(runtime)
    bases.append(tempfile.gettempdir())
    if "/tmp" not in bases and os.path.isdir("/tmp"):
        bases.append("/tmp")  # a long $TMPDIR may not leave room in sun_path
    return bases


def private_dir(what: str, socket_name: str) -> tuple[Path, Path]:
    """A new directory only this user can enter, and the path for a socket inside it.

    Raises OSError when no candidate directory leaves a short enough socket path."""
    pid = os.getpid()
    last: OSError | None = None
    for base in _base_dirs():
        sweep_stale(base, what)
        if len(os.path.join(base, f"taltasks-{what}-{pid}-xxxxxxxx", socket_name)) > MAX_SOCKET_PATH:
            continue
        try:
            made = Path(tempfile.mkdtemp(prefix=f"taltasks-{what}-{pid}-", dir=base))
        except OSError as exc:
            last = exc
            continue
        os.chmod(made, 0o700)  # mkdtemp already does; say it where it matters
        return made, made / socket_name
    raise last or OSError(f"no temp directory leaves a Unix socket path under {MAX_SOCKET_PATH} bytes")


def remove_private_dir(directory: Path) -> None:
    """Remove a directory made by :func:`private_dir` and whatever socket is left in it."""
    shutil.rmtree(directory, ignore_errors=True)


def sweep_stale(base: str, what: str) -> None:
    """Remove this user's ``taltasks-<what>-<pid>-*`` directories whose process is gone
    (once per base and kind per process: cheap enough for every start)."""
    key = f"{base}\0{what}"
    with _sweep_lock:
        if key in _swept:
            return
        _swept.add(key)
    prefix = f"taltasks-{what}-"
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        try:
            pid = int(entry.name[len(prefix) :].split("-", 1)[0])
            st = entry.stat(follow_symlinks=False)
        except (ValueError, OSError):
            continue
        if not entry.is_dir(follow_symlinks=False) or st.st_uid != os.geteuid() or _alive(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    """The pid and uid of the process that connected ``sock`` (an accepted Unix socket)."""
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is not None:  # Linux: struct ucred {pid, uid, gid}
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, so_peercred, 12))
        return PeerCredentials(pid, uid)
    if sys.platform == "darwin":  # SOL_LOCAL = 0, LOCAL_PEERPID = 2; uid via getpeereid's twin
        pid = uid = None
        with contextlib.suppress(OSError):
            pid = struct.unpack("i", sock.getsockopt(0, 2, 4))[0]
        with contextlib.suppress(OSError):  # LOCAL_PEERCRED = 1: struct xucred {version, uid, ...}
            uid = struct.unpack("2I", sock.getsockopt(0, 1, 8))[1]
        return PeerCredentials(pid, uid)
    return PeerCredentials(None, None)


def peer_allowed(sock: socket.socket, *, same_process: bool) -> bool:
    """Whether the peer of ``sock`` may use a listener of this process: this very process
    (``same_process``) or any process of this user. Where the platform cannot tell, the
    private directory is the only guard and the peer is allowed."""
    creds = peer_credentials(sock)
    if creds.uid is not None and creds.uid != os.geteuid():
        return False
    return not (same_process and creds.pid is not None and creds.pid != os.getpid())
