"""The TLS relay in front of each endpoint: a private Unix socket only its own process may
use, gone with the client, and TCP keepalive on the relayed connection to the node.

The end-to-end view (a real task in its own process, probed from outside with no
certificate) is tests/test_local_listeners.py; these tests pin each guard on its own."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from taltasks import private_socket
from taltasks.talos import tlsbridge
from taltasks.talos.client import TalosClient

# a child process that dials a relay socket with grpcio and asks the node for its version
DIAL = textwrap.dedent(
    """
    import sys, grpc
    channel = grpc.insecure_channel("unix:" + sys.argv[1])
    call = channel.unary_unary("/machine.MachineService/Version",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(b"", timeout=5)
    except grpc.RpcError as exc:
        print("refused", exc.code().name)
    else:
        print("ANSWERED")
    """
)


def _bridges(client: TalosClient) -> list[tlsbridge.ClientBridge]:
    return [s.bridge for s in client.transport.slots if s.bridge is not None]


def _versions_recorded(world) -> int:
    return len(world.recorder.entries("talos.api", method="Version"))


def test_relay_is_a_private_unix_socket_and_the_calls_work(world, admin):
    [result] = admin.version([world.talos.node("cp-1").ip])
    assert result.ok and result.value.tag == "v1.11.5"
    [bridge] = _bridges(admin)
    assert bridge.target == f"unix:{bridge.path}"
    sock_st, dir_st = os.stat(bridge.path), os.stat(bridge.path.parent)
    assert stat.S_ISSOCK(sock_st.st_mode)
    assert stat.S_IMODE(sock_st.st_mode) == 0o600 and sock_st.st_uid == os.geteuid()
    assert stat.S_IMODE(dir_st.st_mode) == 0o700 and dir_st.st_uid == os.geteuid()
    assert os.listdir(bridge.path.parent) == ["talos.sock"]  # alone in its directory
    assert bridge.path.parent.name.startswith(f"taltasks-relay-{os.getpid()}-")


def test_another_process_of_the_same_user_is_turned_away(world, admin):
    """Same uid, so the directory lets it through: the peer check (this process only)
    must refuse it before anything reaches the node."""
    admin.version([world.talos.node("cp-1").ip])
    [bridge] = _bridges(admin)
    before, calls_before = bridge.refused_peers, _versions_recorded(world)
    out = subprocess.run(
        [sys.executable, "-c", DIAL, str(bridge.path)], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["refused", "UNAVAILABLE"], out.stderr
    assert bridge.refused_peers > before
    assert _versions_recorded(world) == calls_before  # nothing reached the node
    admin.version([world.talos.node("cp-1").ip])  # and the owner still gets through
    assert _versions_recorded(world) == calls_before + 1


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_another_user_cannot_even_connect(world, admin):
    """As root, a child drops to uid/gid 65534 (nobody) and tries the socket: the 0700
    directory refuses the lookup (EACCES) before any peer check runs."""
    admin.version([world.talos.node("cp-1").ip])
    [bridge] = _bridges(admin)
    before = bridge.refused_peers
    probe = textwrap.dedent(
        """
        import os, socket, sys
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sys.argv[1])
        except PermissionError:
            print("EACCES")
        else:
            print("CONNECTED")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(bridge.path)], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "EACCES", out.stderr
    assert bridge.refused_peers == before  # it never got as far as the listener


def test_socket_and_directory_go_away_with_the_client(world):
    ctx = world.talos.talosconfig().context()
    with TalosClient.from_context(ctx) as client:
        client.version([world.talos.node("cp-1").ip])
        [bridge] = _bridges(client)
        directory = bridge.path.parent
        assert directory.exists()
    assert not directory.exists()

    with pytest.raises(RuntimeError), TalosClient.from_context(ctx) as client:
        client.version([world.talos.node("cp-1").ip])
        directory = _bridges(client)[0].path.parent
        raise RuntimeError("a task failed half-way")
    assert not directory.exists()


EXITS = {
    # never closes its client: atexit takes the socket with it
    "unclosed": "client.version([ip]); print(path(), flush=True)",
    # Ctrl-C in the middle of a follow stream
    "interrupted": "it = client.dmesg(node=ip, follow=True); next(it); print(path(), flush=True)\n"
    "import time\nwhile True: time.sleep(0.05)",
}


@pytest.mark.parametrize("how", sorted(EXITS))
def test_socket_goes_away_when_the_process_ends(world, tmp_path, how):
    talosconfig = tmp_path / "talosconfig"
    talosconfig.write_text(world.talos.talosconfig().to_yaml())
    script = (
        textwrap.dedent(
            """
        import sys
        from taltasks.talos.connect import connect
        client = connect(talosconfig=sys.argv[1])
        ip = sys.argv[2]
        def path():
            return client.transport.slots[client.transport.current].bridge.path
        """
        )
        + EXITS[how]
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(talosconfig), world.talos.node("cp-1").ip],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        path = Path(proc.stdout.readline().strip())
        assert path.name == "talos.sock" and path.exists()
        if how == "interrupted":
            proc.send_signal(2)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not path.parent.exists()


@pytest.fixture
def short_tmp():
    """A temp dir short enough to hold a socket path (pytest's tmp_path may not be)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="tt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_killed_process_leftovers_are_swept_by_the_next_one(short_tmp, monkeypatch):
    """SIGKILL runs no cleanup; the next relay of the same user removes the directory of a
    process that no longer exists, and leaves a live process's own alone."""
    tmp_path = short_tmp
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(private_socket.tempfile, "tempdir", None)
    monkeypatch.setattr(private_socket, "_swept", set())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"taltasks-relay-{dead_pid}-abcdefgh"
    stale.mkdir(mode=0o700)
    (stale / "talos.sock").touch()
    alive = tmp_path / f"taltasks-relay-{os.getppid()}-abcdefgh"
    alive.mkdir(mode=0o700)
    directory, _ = private_socket.private_dir("relay", "talos.sock")
    try:
        assert directory.parent == tmp_path
        assert not stale.exists()
        assert alive.exists()
    finally:
        private_socket.remove_private_dir(directory)


def test_long_temp_dir_falls_back_to_a_short_socket_path(tmp_path, monkeypatch):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(private_socket.tempfile, "tempdir", None)
    directory, path = private_socket.private_dir("relay", "talos.sock")
    try:
        assert len(str(path)) <= private_socket.MAX_SOCKET_PATH
        assert directory.parent == Path("/tmp")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))  # the kernel accepts it
    finally:
        private_socket.remove_private_dir(directory)


def test_relayed_connections_to_the_node_use_tcp_keepalive(world, admin):
    """A node that vanishes silently closes nothing; keepalive probes notice within
    idle + interval × count seconds. Loopback cannot drop packets, so this checks the
    options the kernel holds for the live connection."""
    it = admin.dmesg(node=world.talos.node("cp-1").ip, follow=True)
    next(it)  # a stream is open: its relayed connection exists
    [bridge] = _bridges(admin)
    [tcp] = bridge.upstream_sockets()
    ka = tlsbridge.TCP_KEEPALIVE
    assert tcp.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == ka.idle
    assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == ka.interval
    assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == ka.count
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == ka.user_timeout_ms
    assert ka.idle + ka.interval * ka.count <= 30  # a dead node is noticed within half a minute
    it.close()
