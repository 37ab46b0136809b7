"""Every read the client makes, against simulated nodes over Ed25519 mutual TLS."""

from __future__ import annotations

import pytest

from simtalos import client_with, ips
from taltasks.errors import ConnectionFailed
from taltasks.machineconfig import pki
from taltasks.talos.client import TalosClient
from taltasks.talos.results import TalosCallError


def test_simulated_pki_is_ed25519_end_to_end(world):
    ctx = world.talos.talosconfig().context()
    assert pki.key_algorithm(pki.load_private_key(ctx.key)) == "ed25519"
    assert ctx.key.startswith(b"-----BEGIN ED25519 PRIVATE KEY-----")
    ca_key = pki.load_certificate(ctx.ca).public_key()
    assert type(ca_key).__name__.startswith("Ed25519")


def test_fan_out_to_six_nodes_with_one_failing(world, admin):
    down = world.talos.node("worker-2")
    down.set_faults(unreachable=True)
    results = admin.version(ips(world))
    assert len(results) == 6
    failed = [r for r in results if not r.ok]
    assert [r.node for r in failed] == [down.ip]
    assert failed[0].error.code == "UNAVAILABLE"
    assert "connection refused" in failed[0].error.message
    assert sorted(r.node for r in results if r.ok) == sorted(set(ips(world)) - {down.ip})
    assert all(r.value.tag == "v1.11.5" for r in results if r.ok)


def test_fan_out_is_one_call_per_node_with_node_metadata(world, admin):
    """As talosctl 1.14 does it: the client fans out, apid only routes one-to-one."""
    targets = ips(world, "worker")
    results = admin.hostname(targets)
    assert [r.node for r in results] == targets  # in the order asked
    calls = world.recorder.entries("talos.api", method="Hostname")
    assert sorted(c["targets"][0] for c in calls) == sorted(targets)
    assert {c["routing"] for c in calls} == {"node"} and len(calls) == 3


def test_nodes_proxying_only_when_asked_for_and_only_for_nodes_before_1_13(loopback_subnet):
    from simtalos import make_world

    w = make_world(loopback_subnet, nodes={"worker-3": {"version": "v1.13.9"}}).start()
    try:
        ctx = w.talos.talosconfig().context()
        with TalosClient.from_context(ctx, fanout="proxy") as proxy:
            targets = ips(w, "worker")
            proxy.version(targets)  # versions not known yet: every node gets its own call
            assert {c["routing"] for c in w.recorder.entries("talos.api", method="Version")} == {"node"}
            results = proxy.hostname(targets)
            assert [r.node for r in results] == targets and all(r.ok for r in results)
        calls = w.recorder.entries("talos.api", method="Hostname")
        [many] = [c for c in calls if c["routing"] == "nodes"]
        old = [w.talos.node(n).ip for n in ("worker-1", "worker-2")]
        assert many["targets"] == old  # one entry per node, never "a,b"
        assert [c["targets"] for c in calls if c["routing"] == "node"] == [[w.talos.node("worker-3").ip]]
    finally:
        w.stop()


def test_reads_return_typed_values(world, admin):
    cp = world.talos.node("cp-1")
    [host] = admin.hostname([cp.ip])
    assert host.value == "cp-1"
    [mem] = admin.memory([cp.ip])
    assert mem.value.total_kib > 1698 * 1024
    [svcs] = admin.services([cp.ip])
    by_id = {s.id: s for s in svcs.value}
    assert by_id["etcd"].running_and_healthy and by_id["kubelet"].running_and_healthy
    members = admin.etcd_members([cp.ip])[0].value
    assert sorted(m.hostname for m in members) == ["cp-1", "cp-2", "cp-3"]
    assert all(len(m.id_hex) == 16 for m in members)
    statuses = admin.etcd_status(ips(world, "controlplane"))
    assert sum(1 for s in statuses if s.value.is_leader) == 1
    assert admin.boot_id(cp.ip) == cp.boot_id


def test_one_to_one_errors_raise(world, admin):
    worker = world.talos.node("worker-1")
    with pytest.raises(TalosCallError) as info:
        admin.etcd_forfeit_leadership(node=worker.ip)
    assert info.value.code == "UNIMPLEMENTED"
    assert "only available on control plane nodes" in info.value.message
    with pytest.raises(TalosCallError) as info:
        admin.read("/etc/shadow", node=worker.ip)
    assert info.value.code == "NOT_FOUND"


def test_cosi_get_list_watch_and_aliases(world, admin):
    cp = world.talos.node("cp-1")
    assert admin.resolve_type("machinestatus") == ("runtime", "MachineStatuses.runtime.talos.dev")
    assert admin.resolve_type("mc") == ("config", "MachineConfigs.config.talos.dev")
    ms = admin.get("MachineStatuses.runtime.talos.dev", "machine", node=cp.ip)
    assert ms.spec["stage"] == "running" and ms.spec["status"]["ready"] is True
    assert ms.version.isdigit() and ms.phase == "running"
    members = admin.list("Members.cluster.talos.dev", node=cp.ip)
    assert sorted(m.spec["hostname"] for m in members) == sorted(n.hostname for n in world.talos.nodes)
    mc = admin.get("MachineConfigs.config.talos.dev", "v1alpha1", node=cp.ip)
    assert "controlplane" in mc.spec
    # watch one resource: the first event is its current state, then live changes
    watch = admin.watch("Services.v1alpha1.talos.dev", "kubelet", node=cp.ip)
    first = next(watch)
    assert first.type == "CREATED" and first.resource.spec["healthy"] is True
    admin.service_restart("kubelet", [cp.ip])
    changed = next(watch)
    assert changed.type == "UPDATED" and changed.old is not None
    # kind watch with bootstrap contents ends its backlog with BOOTSTRAPPED
    kinds = []
    for ev in admin.watch("Services.v1alpha1.talos.dev", node=cp.ip, bootstrap=True):
        kinds.append(ev.type)
        if ev.type == "BOOTSTRAPPED":
            break
    assert kinds[-1] == "BOOTSTRAPPED" and kinds.count("CREATED") >= 9


def test_cosi_refuses_one_to_many_and_unknown_types(world, admin):
    import grpc

    from taltasks.talos.api import cosi_resource_pb2 as c

    with pytest.raises(grpc.RpcError) as info:
        admin._unary(
            "Get",
            c.GetRequest(namespace="runtime", type="MachineStatuses.runtime.talos.dev", id="machine"),
            metadata=[("nodes", ips(world)[0])],
            timeout=5,
            idempotent=False,
            kind="cosi",
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "one-2-many proxying is not supported for COSI methods" in info.value.details()
    with pytest.raises(TalosCallError) as info2:
        admin.get("Nonsense.example.dev", "x", namespace="runtime")
    assert info2.value.code == "PERMISSION_DENIED"


def test_reader_cannot_read_machine_config_or_upgrade(world):
    reader = client_with(world, roles=["os:reader"])
    cp = world.talos.node("cp-1")
    assert reader.version([cp.ip])[0].ok
    with pytest.raises(TalosCallError) as info:
        reader.get("MachineConfigs.config.talos.dev", "v1alpha1", node=cp.ip)
    assert info.value.code == "PERMISSION_DENIED"
    with pytest.raises(TalosCallError) as info:
        reader.upgrade("ghcr.io/siderolabs/installer:v1.12.1", node=cp.ip)
    assert info.value.code == "PERMISSION_DENIED" and "not authorized" in info.value.message
    assert cp.version == "v1.11.5"
    assert not world.recorder.entries("talos.upgrade")
    reader.close()


def test_etcd_backup_role_may_snapshot_but_not_reboot(world, tmp_path):
    backup = client_with(world, roles=["os:etcd:backup"])
    cp = world.talos.node("cp-2")
    result = backup.etcd_snapshot(tmp_path / "db", node=cp.ip)
    assert result.size == world.talos.etcd.db_size
    with pytest.raises(TalosCallError) as info:
        backup.reboot(node=cp.ip)
    assert info.value.code == "PERMISSION_DENIED"
    backup.close()


def test_worker_endpoint_refuses_to_forward(world):
    worker = world.talos.node("worker-1")
    cp = world.talos.node("cp-1")
    client = client_with(world, endpoints=[worker.ip])
    # a worker's apid has no client certificate to forward with: the call for the other
    # node is refused (client-side fan-out: that node's result carries the refusal)
    [refused] = client.version([cp.ip])
    with pytest.raises(TalosCallError) as info:
        refused.unwrap("Version")
    assert info.value.code == "PERMISSION_DENIED" and "no request forwarding" in info.value.message
    assert "control-plane nodes as endpoints" in info.value.hint
    # a request for the worker itself is served locally
    [own] = client.version([worker.ip])
    assert own.ok and own.value.tag == "v1.11.5"
    client.close()


def test_unreachable_endpoint_fails_over_then_reports(world):
    from taltasks.sim.addresses import closed_port

    dead = f"127.0.0.1:{closed_port()}"
    cp = world.talos.node("cp-1")
    client = client_with(world, endpoints=[dead, cp.ip])
    assert client.version()[0].value.tag == "v1.11.5"
    assert client.transport.current == 1
    client.close()
    only_dead = client_with(world, endpoints=[dead])
    with pytest.raises(ConnectionFailed) as info:
        only_dead.version()
    assert dead in str(info.value) and "connection refused" in str(info.value)
    only_dead.close()


def test_server_certificate_must_match_the_dialled_address(world):
    from taltasks.talos import tlsbridge
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import Endpoint
    from taltasks.talos.transport import Transport

    ctx = world.talos.talosconfig().context()
    cp = world.talos.node("cp-1")
    ssl_ctx = tlsbridge.client_context(ca_pem=ctx.ca, cert_pem=ctx.crt, key_pem=ctx.key)
    # same listener, but we claim to expect another name: the SAN check must refuse it
    client = TalosClient(Transport([Endpoint(cp.ip)], ssl_ctx, server_name="127.0.0.254"))
    with pytest.raises(ConnectionFailed, match="certificate"):
        client.version()
    client.close()


def test_talosconfig_from_another_cluster_is_rejected(world):
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import Context

    other_ca = pki.create_ca(organization="talos")
    cli = pki.issue(other_ca, usage="client", organizations=["os:admin"])
    ctx = Context("other", endpoints=[world.talos.node("cp-1").ip], ca=other_ca.crt, crt=cli.crt, key=cli.key)
    client = TalosClient.from_context(ctx)
    with pytest.raises(ConnectionFailed) as info:
        client.version()
    assert "TLS" in str(info.value)
    client.close()


def test_logs_dmesg_and_kubeconfig_streams(world, admin):
    import yaml

    cp = world.talos.node("cp-1")
    logs = b"".join(admin.logs("kubelet", node=cp.ip)).decode()
    assert "kubelet" in logs
    assert b"".join(admin.logs("kubelet", node=cp.ip, tail_lines=0)) == b""
    assert b"Linux version" in b"".join(admin.dmesg(node=cp.ip))
    kube = yaml.safe_load(admin.kubeconfig(node=cp.ip))
    assert kube["kind"] == "Config" and kube["clusters"][0]["cluster"]["server"].startswith("https://127.")
    with pytest.raises(TalosCallError) as info:
        admin.logs_missing = list(admin.logs("nope", node=cp.ip))
    assert info.value.code == "NOT_FOUND"
