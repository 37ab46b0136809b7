"""Local listeners and the user's credentials (issue 12, point 1), seen from outside.

A task runs in its own process against ``sim.up``; another process, holding no certificate
and, where the test runs as root, running as another user (uid 65534), tries every
listener the task's process has open. The listeners are read from the kernel
(``/proc/<pid>/fd`` against ``/proc/net/{tcp,tcp6,udp,udp6,unix}``), not from our code.

What this proves and what it cannot: the kernel's view of the task process (no TCP/UDP
listener at all; each Unix listener 0600 in a 0700 directory owned by the user) and two
real attempts per socket — another uid is refused by the filesystem (EACCES), another
process of the same uid reaches the socket but is cut off by the relay's peer check
before a byte reaches the node (the simulator's record shows no call). Root is not kept
out by the directory (root bypasses file permissions) but is by the peer check; root can
read the process's memory anyway, which is outside the threat model (docs/talos-api.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from taltasks.sim.control import SimControl
from testpaths import REPO_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/net/unix").exists(), reason="needs Linux /proc"),
]

BIN = Path(sys.executable).parent
TALTASKS = BIN / "taltasks"
NOBODY = 65534
AS_ROOT = os.geteuid() == 0


# ---- the kernel's view of a process's sockets ---------------------------------------------


@dataclass
class Listeners:
    tcp: list[str] = field(default_factory=list)  # "host:port" in LISTEN
    udp: list[str] = field(default_factory=list)  # bound UDP sockets
    unix: list[str] = field(default_factory=list)  # paths of listening Unix sockets (@ = abstract)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _hex_address(text: str) -> str:
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # four little-endian 32-bit words
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        addr = socket.inet_ntop(socket.AF_INET6, words)
        addr = addr.removeprefix("::ffff:") if addr.startswith("::ffff:") and "." in addr else f"[{addr}]"
    return f"{addr}:{int(port, 16)}"


def listeners(pid: int) -> Listeners:
    """Every listening (or, for UDP, bound) socket the process ``pid`` holds."""
    mine = _socket_inodes(pid)
    found = Listeners()
    for table, kind in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if int(cols[9]) not in mine:
                continue
            if kind == "tcp" and cols[3] == "0A":  # TCP_LISTEN
                found.tcp.append(_hex_address(cols[1]))
            elif kind == "udp":
                found.udp.append(_hex_address(cols[1]))
    for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
        cols = line.split()
        # Num RefCount Protocol Flags Type St Inode [Path]; flag 0x10000 = __SO_ACCEPTCON
        if int(cols[6]) in mine and int(cols[3], 16) & 0x10000:
            found.unix.append(cols[7] if len(cols) > 7 else "(unnamed)")
    return found


# ---- probes from a process with no certificate ----------------------------------------------

# Runs in a separate process (optionally as another uid): given a Unix socket path, try it
# as a raw connection, as a gRPC channel (Talos Version) and as HTTP (the simulator's
# control API); prints one JSON object with what happened.
UNIX_PROBE = textwrap.dedent(
    """
    import json, os, socket, sys
    if len(sys.argv) > 2:
        os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[2]))
    path, out = sys.argv[1], {"uid": os.geteuid()}
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError as exc:
        out["connect"] = type(exc).__name__
        print(json.dumps(out)); sys.exit()
    out["connect"] = "ok"
    try:
        s.sendall(b"GET /status HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        out["http"] = s.recv(64).decode(errors="replace").split("\\r\\n")[0] or "closed"
    except (BrokenPipeError, ConnectionResetError):
        out["http"] = "closed"  # cut off before or while we wrote
    except OSError as exc:
        out["http"] = type(exc).__name__
    try:
        import grpc
    except ImportError:
        out["grpc"] = "no grpcio"
    else:
        call = grpc.insecure_channel("unix:" + path).unary_unary(
            "/machine.MachineService/Version",
            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            call(b"", timeout=5)
            out["grpc"] = "ANSWERED"
        except grpc.RpcError as exc:
            out["grpc"] = exc.code().name
    print(json.dumps(out))
    """
)


def probe_unix(path: str, *, uid: int | None = None) -> dict:
    args = [sys.executable, "-c", UNIX_PROBE, path] + ([str(uid)] if uid is not None else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_private(path: str) -> None:
    sock, parent = os.stat(path), os.stat(os.path.dirname(path))
    assert stat.S_ISSOCK(sock.st_mode), path
    assert sock.st_uid == os.geteuid() and stat.S_IMODE(sock.st_mode) & 0o077 == 0, (
        path,
        oct(sock.st_mode),
    )
    assert parent.st_uid == os.geteuid() and stat.S_IMODE(parent.st_mode) == 0o700, (
        path,
        oct(parent.st_mode),
    )


# ---- the simulator ------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TALTASKS), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO_ROOT,
    )


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    up = run("sim.up", "--dir", str(d), "--control-planes", "1", "--workers", "1")
    assert up.returncode == 0, up.stderr
    try:
        yield d
    finally:
        run("sim.down", "--dir", str(d))


def _version_calls(ctl: SimControl) -> int:
    return sum(1 for e in ctl.record() if e.get("kind") == "talos.api" and e.get("method") == "Version")


def _read_line(stream, timeout: float) -> str:
    """The next line of a child's output, or '' when none comes within ``timeout``."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0] if got else ""


def test_a_running_task_lends_its_credentials_to_no_other_process(sim):
    ctl = SimControl(sim)
    [cp] = [n for n in ctl.status()["nodes"] if n["role"] == "controlplane"]
    env = {"TALOSCONFIG": str(sim / "talosconfig")}
    task = subprocess.Popen(
        [str(TALTASKS), "talos.dmesg", "--follow", "--node", cp["ip"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        cwd=REPO_ROOT,
    )
    try:
        first = _read_line(task.stdout, 60)
        assert first.strip(), (
            f"the task printed nothing: {task.stderr.read() if task.poll() is not None else ''}"
        )

        seen = listeners(task.pid)
        assert seen.tcp == [] and seen.udp == [], seen  # nothing on the network, not even loopback
        assert seen.unix, "the relay's socket should be listed"
        assert not [p for p in seen.unix if p.startswith("@") or p == "(unnamed)"], seen.unix
        calls = _version_calls(ctl)
        for path in seen.unix:
            assert_private(path)
            # the same user, another process, no certificate: reaches the socket, is cut off
            same = probe_unix(path)
            assert same["connect"] == "ok", same
            assert same["http"] == "closed", same  # cut off, no reply
            assert same["grpc"] == "UNAVAILABLE", same
            if AS_ROOT:  # another user: the directory refuses the lookup
                other = probe_unix(path, uid=NOBODY)
                assert other == {"uid": NOBODY, "connect": "PermissionError"}, other
        assert _version_calls(ctl) == calls  # nothing reached the node

        more = _read_line(task.stdout, 0.01)  # the task's own stream still flows (or is idle)
        assert task.poll() is None, more
        task.send_signal(signal.SIGINT)  # Ctrl-C
        task.wait(timeout=60)
    finally:
        if task.poll() is None:
            task.kill()
            task.wait()
    for path in seen.unix:
        assert not os.path.exists(os.path.dirname(path)), path  # gone with the task


def test_the_simulators_listeners_refuse_a_process_without_a_certificate(sim):
    """The simulator is the other side (the nodes, the API server), but it runs on the user's
    machine too: its node endpoints want a client certificate, the API server answers an
    anonymous request 401, the node's internal gRPC server serves only connections its
    TLS front forwarded, and the control API is a private Unix socket."""
    ctl = SimControl(sim)
    pid = int(ctl.state["pid"])
    seen = listeners(pid)
    assert seen.udp == []
    status = ctl.status()
    api = status["kubernetes_api"].removeprefix("https://")
    nodes = {f"{n['ip']}:50000" for n in status["nodes"]}
    assert api in seen.tcp and nodes <= set(seen.tcp), seen
    internal = [a for a in seen.tcp if a not in nodes and a != api]
    assert all(a.startswith("127.0.0.1:") for a in internal), internal
    probe = textwrap.dedent(
        """
        import json, ssl, sys, urllib.request, urllib.error
        import grpc
        from taltasks.errors import TaltasksError
        from taltasks.talos.connect import connect
        out = {}
        for address in sys.argv[1:]:
            host, port = address.rsplit(":", 1)
            seen = {}
            call = grpc.insecure_channel(address).unary_unary("/machine.MachineService/Version",
                request_serializer=lambda b: b, response_deserializer=lambda b: b)
            try:
                call(b"", timeout=5); seen["plain"] = "ANSWERED"
            except grpc.RpcError as exc:
                seen["plain"] = exc.code().name
            client = connect(insecure=True, endpoints=[address])  # TLS, no certificate
            try:
                replies = client.version()
                seen["tls"] = "ANSWERED" if any(r.ok for r in replies) else replies[0].error.code
            except TaltasksError as exc:
                seen["tls"] = type(exc).__name__
            client.close()
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            try:
                urllib.request.urlopen(f"https://{address}/api/v1/namespaces/kube-system/secrets",
                                       context=ctx, timeout=5)
                seen["https"] = "ANSWERED"
            except urllib.error.HTTPError as exc:
                seen["https"] = exc.code
            except Exception as exc:
                seen["https"] = type(exc).__name__
            out[address] = seen
        print(json.dumps(out))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *seen.tcp], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert not [(a, r) for a, r in results.items() if "ANSWERED" in r.values()], results
    assert results[api]["https"] == 401
    for address in internal:
        assert results[address]["plain"] == "UNAUTHENTICATED", results  # "unknown connection"

    [control] = seen.unix
    assert control == ctl.path
    assert_private(control)
    assert probe_unix(control)["http"] == "HTTP/1.0 200 OK"  # the same user: sim.status works
    if AS_ROOT:
        assert probe_unix(control, uid=NOBODY)["connect"] == "PermissionError"


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_install_cni_listens_nowhere_but_its_private_relay(sim, tmp_path):
    """Over the whole run of `talos.install-cni` — the kubeconfig fetched through the Talos
    API, the Kubernetes client, the `helm template` child — every listen() any process
    of the tree makes is on a relay socket in a private directory (strace -f)."""
    from taltasks.workflows.cni import find_helm

    find_helm()  # the package's own dependency: missing it is a failure here, not a skip
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "kubernetes", root / "kubernetes")
    shutil.copy2(REPO_ROOT / ".sops.yaml", root / ".sops.yaml")
    (root / "talos").mkdir()
    shutil.copy2(REPO_ROOT / "talos" / "demo.agekey", root / "talos" / "demo.agekey")
    log = tmp_path / "strace.log"
    probe = subprocess.run(["strace", "-o", os.devnull, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.strip()}")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    out = subprocess.run(
        [
            "strace",
            "-f",
            "-yy",
            "--seccomp-bpf",
            "-e",
            "trace=listen",
            "-o",
            str(log),
            str(TALTASKS),
            "talos.install-cni",
            "--root",
            str(root),
            "--talosconfig",
            str(sim / "talosconfig"),
            "--timeout",
            "60",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "created" in json.loads(out.stdout.splitlines()[-1])["message"]
    listens = [line for line in log.read_text().splitlines() if " listen(" in line]
    assert listens, "the relay listens at least once"
    for line in listens:
        assert "<UNIX-STREAM:" in line and "/taltasks-relay-" in line and "/talos.sock" in line, line
