"""talosconfig contexts as talosctl, omnictl and people write them: edits keep what we do not
model byte for byte; contexts without a CA or without a client certificate connect the way
talosctl connects (system roots; no certificate offered)."""

from __future__ import annotations

import json
import threading
from concurrent import futures

import pytest
from test_tasks import assert_one_line_error, invoke

from taltasks.errors import ConnectionFailed, InputError
from taltasks.machineconfig import pki
from taltasks.talos.client import TalosClient
from taltasks.talos.config import Context, TalosConfig

# talosctl (go-yaml) writes 4-space indentation with indented sequences; Omni adds `auth`
OMNI_FILE = """\
context: omni-home
contexts:
    omni-home:
        endpoints:
            - https://home.omni.example.com
        auth:
            siderov1:
                identity: ops@example.com
        cluster: home   # set by omnictl
    lab:
        endpoints:
            - 192.0.2.10
        nodes:
            - 192.0.2.11
        x-team-note: "keep this" # a key nobody models
        x-future:
            deep: {a: 1, b: [2, 3]}
editor: vim
"""


def _unchanged_lines(before: str, after: str) -> list[str]:
    return [line for line in before.splitlines() if line in after.splitlines()]


def test_config_tasks_leave_auth_and_unknown_keys_byte_identical(tmp_path):
    path = tmp_path / "talosconfig"
    path.write_text(OMNI_FILE)
    env = {"TALOSCONFIG": str(path)}
    for args in (
        ("talos.config.endpoints", "192.0.2.20,192.0.2.21", "--context", "lab"),
        ("talos.config.nodes", "192.0.2.22", "--context", "lab"),
        ("talos.config.use-context", "lab"),
    ):
        proc = invoke(*args, env=env)
        assert proc.returncode == 0, proc.stderr
    after = path.read_text()
    expected = (
        OMNI_FILE.replace("context: omni-home\n", "context: lab\n", 1)
        .replace("            - 192.0.2.10\n", "            - 192.0.2.20\n            - 192.0.2.21\n")
        .replace("            - 192.0.2.11\n", "            - 192.0.2.22\n")
    )
    assert after == expected
    rows = json.loads(invoke("talos.config.contexts", "--json", env=env).stdout)
    assert [(r["current"], r["name"], r["endpoints"]) for r in rows] == [
        ("", "omni-home", ["https://home.omni.example.com"]),
        ("*", "lab", ["192.0.2.20", "192.0.2.21"]),
    ]


def test_merge_adds_contexts_and_keeps_the_existing_text(tmp_path):
    path = tmp_path / "talosconfig"
    path.write_text(OMNI_FILE)
    other = tmp_path / "other"
    other.write_text(
        "context: lab\ncontexts:\n  lab:\n    endpoints: [192.0.2.30]\n    auth:\n      basic: {username: u, password: p}\n"
    )
    proc = invoke("talos.config.merge", str(other), env={"TALOSCONFIG": str(path)})
    assert proc.returncode == 0, proc.stderr
    assert "lab-1" in proc.stdout
    after = path.read_text()
    assert after.startswith("context: lab-1\n")
    body = OMNI_FILE.split("\n", 1)[1]
    added = "    lab-1:\n        endpoints:\n            - 192.0.2.30\n        auth:\n            basic:\n"
    assert after.replace(added, "").count(body.split("editor:")[0]) == 1  # old contexts byte-identical
    assert after.endswith("editor: vim\n")
    merged = TalosConfig.load(path)
    assert merged.contexts["lab-1"].auth == {"basic": {"username": "u", "password": "p"}}
    assert merged.contexts["omni-home"].auth == {"siderov1": {"identity": "ops@example.com"}}


def test_flow_style_files_are_rewritten_without_losing_data(tmp_path):
    path = tmp_path / "talosconfig"
    path.write_text("{context: a, contexts: {a: {endpoints: [192.0.2.1], auth: {basic: {username: u}}}}}\n")
    cfg = TalosConfig.load(path)
    cfg.contexts["a"].endpoints = ["192.0.2.2"]
    cfg.save()
    again = TalosConfig.load(path)
    assert again.contexts["a"].endpoints == ["192.0.2.2"]
    assert again.contexts["a"].auth == {"basic": {"username": "u"}}


# ---- connecting without a CA / without a client certificate --------------------------------


class EchoApid:
    """A TLS gRPC endpoint answering MachineService.Version and remembering each call's
    metadata; client certificates optional (like a proxy in front of apid)."""

    def __init__(self, host: str) -> None:
        import grpc

        from taltasks.talos import tlsbridge
        from taltasks.talos.api import machine_pb2

        self.ca = pki.create_ca(organization="example")
        leaf = pki.issue(self.ca, usage="server", common_name="proxy", ip_sans=[host])
        self.seen: list[dict[str, str]] = []
        self.lock = threading.Lock()

        def version(request, context):
            with self.lock:
                self.seen.append(dict(context.invocation_metadata()))
            reply = machine_pb2.VersionResponse()
            reply.messages.add().version.tag = "v1.14.0"
            return reply

        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        handler = grpc.unary_unary_rpc_method_handler(
            version,
            request_deserializer=lambda b: b,
            response_serializer=lambda m: m.SerializeToString(),
        )
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("machine.MachineService", {"Version": handler}),)
        )
        backend = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        from taltasks.sim.addresses import closed_port

        self.port = closed_port()
        self.front = tlsbridge.TlsFront(
            host,
            self.port,
            tlsbridge.server_context(cert_pem=leaf.crt, key_pem=leaf.key, client_ca_pem=None),
            ("127.0.0.1", backend),
            {},
        )
        self.front.start()
        self.endpoint = f"{host}:{self.port}"

    def stop(self) -> None:
        self.front.stop()
        self.server.stop(0)


@pytest.fixture
def echo():
    server = EchoApid("127.0.0.1")
    yield server
    server.stop()


def test_no_ca_means_system_roots(echo, tmp_path, monkeypatch):
    ctx = Context("proxied", endpoints=[echo.endpoint], nodes=[])  # no ca, no crt/key
    with TalosClient.from_context(ctx) as client, pytest.raises(ConnectionFailed) as info:
        client.version()
    assert "certificate" in info.value.message  # not trusted: it is not in the system roots
    roots = tmp_path / "roots.pem"
    roots.write_bytes(echo.ca.crt)
    monkeypatch.setenv("SSL_CERT_FILE", str(roots))  # OpenSSL's system roots, pointed at our CA
    with TalosClient.from_context(ctx) as client:
        [result] = client.version()
    assert result.ok and result.value.tag == "v1.14.0"


def test_no_client_certificate_connects_and_basic_auth_is_sent(echo):
    ctx = Context(
        "basic",
        endpoints=[echo.endpoint],
        ca=echo.ca.crt,
        auth={"basic": {"username": "ops", "password": "s3cret"}},
    )
    with TalosClient.from_context(ctx) as client:
        [result] = client.version()
    assert result.ok
    import base64

    assert echo.seen[-1]["authorization"] == "Basic " + base64.b64encode(b"ops:s3cret").decode()


def test_apid_refuses_a_context_without_client_certificate_with_a_clear_error(world):
    tc = world.talos.talosconfig()
    ctx = tc.context()
    ctx.crt = ctx.key = None
    with TalosClient.from_context(ctx) as client, pytest.raises(ConnectionFailed) as info:
        client.version()
    text = f"{info.value.message} {info.value.hint}"
    assert "client certificate" in text, text


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"auth": {"siderov1": {"identity": "ops@example.com"}}}, "Omni"),
        ({"proxy_url": "socks5://127.0.0.1:1080"}, "proxy-url"),
        ({"key": None}, "no `key`"),
    ],
)
def test_contexts_taltasks_cannot_use_are_refused_before_dialling(change, needle):
    ca = pki.create_ca(organization="talos")
    cli = pki.issue(ca, usage="client", organizations=["os:reader"])
    ctx = Context("c", endpoints=["127.0.0.1:1"], ca=ca.crt, crt=cli.crt, key=cli.key)
    for key, value in change.items():
        setattr(ctx, key, value)
    with pytest.raises(InputError, match=needle):
        TalosClient.from_context(ctx)


def test_task_error_for_an_omni_context_is_one_line(tmp_path):
    path = tmp_path / "talosconfig"
    path.write_text(OMNI_FILE)
    assert_one_line_error(invoke("talos.version", env={"TALOSCONFIG": str(path)}), "Omni")
