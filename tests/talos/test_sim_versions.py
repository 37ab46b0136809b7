"""The simulated nodes behave as the Talos minor each one runs (sim/talos/versions.py), over
real TLS and gRPC: which services exist, `nodes` routing, roles decided per node, apply modes,
maintenance rules, the legacy Upgrade's etcd check, the installer services, LOCKED, Talos's
own cordon, apid's EKU rule, BootID and the k8s specs' extra_args."""

from __future__ import annotations

import grpc
import pytest
import yaml

from simtalos import client_with, make_world, node_config
from taltasks.errors import ConnectionFailed
from taltasks.talos.api import common_pb2
from taltasks.talos.api import image_pb2 as img
from taltasks.talos.api import lifecycle_pb2 as lc
from taltasks.talos.client import TalosClient
from taltasks.talos.config import Context
from taltasks.talos.results import TalosCallError
from waiting import wait_until

SYSTEM = common_pb2.ContainerdInstance(driver=common_pb2.CRI, namespace=common_pb2.NS_SYSTEM)
MIXED = {
    "cp-1": {"version": "v1.14.0"},
    "cp-2": {"version": "v1.13.9"},
    "cp-3": {"version": "v1.12.11"},
    "worker-1": {"version": "v1.14.0"},
    "worker-2": {"version": "v1.13.9"},
    "worker-3": {"version": "v1.12.8"},
}


@pytest.fixture
def world(loopback_subnet):
    """Nodes on several Talos minors (overrides the folder's all-1.11 world; `admin` follows)."""
    w = make_world(loopback_subnet, nodes={k: dict(v) for k, v in MIXED.items()}).start()
    yield w
    w.stop()


def pull(client: TalosClient, ip: str, ref: str) -> list[img.ImageServicePullResponse]:
    req = img.ImageServicePullRequest(containerd=SYSTEM, image_ref=ref)
    return list(client._stream("Pull", req, [("node", ip)], 10, ip, kind="image"))


def lifecycle_upgrade(client: TalosClient, ip: str, ref: str) -> list[lc.LifecycleServiceUpgradeResponse]:
    req = lc.LifecycleServiceUpgradeRequest(
        containerd=SYSTEM, source=lc.InstallArtifactsSource(image_name=ref)
    )
    return list(client._stream("Upgrade", req, [("node", ip)], 10, ip, kind="lifecycle"))


def raw_unary(client: TalosClient, method: str, request, metadata, kind: str = "machine"):
    return client._unary(method, request, metadata=metadata, timeout=10, idempotent=False, kind=kind)


def test_lifecycle_and_image_services_exist_from_1_13(world, admin):
    old = world.talos.node("cp-3")  # 1.12
    with pytest.raises(TalosCallError) as info:
        pull(admin, old.ip, "ghcr.io/siderolabs/installer:v1.14.0")
    assert info.value.code == "UNIMPLEMENTED" and "unknown service machine.ImageService" in info.value.message
    new = world.talos.node("cp-2")  # 1.13
    ref = "ghcr.io/siderolabs/installer:v1.14.0"
    replies = pull(admin, new.ip, ref)
    assert replies[-1].name.startswith(ref + "@sha256:")
    assert any(r.HasField("pull_progress") for r in replies[:-1])
    assert ref in new.system_images
    steps = lifecycle_upgrade(admin, new.ip, ref)
    assert [s.progress.exit_code for s in steps if s.progress.WhichOneof("response") == "exit_code"] == [0]
    # the installer ran, but nothing rebooted: the node runs 1.13 until it reboots
    assert new.version == "v1.13.9" and new.installed_version == "v1.14.0"
    assert world.recorder.entries("talos.lifecycle_upgrade", node="cp-2")
    calls = world.recorder.entries("talos.api", service="machine.LifecycleService")
    assert [(c["method"], c["routing"], c["targets"]) for c in calls] == [("Upgrade", "node", [new.ip])]


def test_image_pull_of_a_missing_image_is_not_found_and_an_unpulled_installer_is_refused(world, admin):
    node = world.talos.node("worker-1")  # 1.14
    missing = "ghcr.io/siderolabs/installer:v1.14.99"
    world.talos.registry_missing.add(missing)
    with pytest.raises(TalosCallError) as info:
        pull(admin, node.ip, missing)
    assert info.value.code == "NOT_FOUND" and "not found" in info.value.message
    assert missing not in node.system_images
    with pytest.raises(TalosCallError) as info:
        lifecycle_upgrade(admin, node.ip, "ghcr.io/siderolabs/installer:v1.14.1")  # never pulled
    assert info.value.code == "INTERNAL" and "not found in containerd store" in info.value.message
    assert node.installed_version is None


def test_one_to_many_routing_as_the_endpoint_minor_directs_it(world, admin):
    from taltasks.talos.api import cosi_resource_pb2 as c

    cp1, cp3 = world.talos.node("cp-1"), world.talos.node("cp-3")  # 1.14 and 1.12 endpoints
    ms = c.GetRequest(namespace="runtime", type="MachineStatuses.runtime.talos.dev", id="machine")
    messages = {}
    for endpoint in (cp1, cp3):
        client = client_with(world, endpoints=[endpoint.ip])
        with pytest.raises(grpc.RpcError) as info:
            raw_unary(client, "Get", ms, [("nodes", cp1.ip)], kind="cosi")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        messages[endpoint.minor.minor] = info.value.details()
        client.close()
    assert messages[(1, 12)] == "one-2-many proxying is not supported for COSI methods"
    assert messages[(1, 14)] == ("one-2-many proxying is not supported for method /cosi.resource.State/Get")
    req = lc.LifecycleServiceUpgradeRequest(
        containerd=SYSTEM, source=lc.InstallArtifactsSource(image_name="x:v1")
    )
    with pytest.raises(TalosCallError) as refused:
        list(admin._stream("Upgrade", req, [("nodes", cp1.ip)], 10, None, kind="lifecycle"))
    assert refused.value.code == "INVALID_ARGUMENT"
    assert "not supported for method /machine.LifecycleService/Upgrade" in refused.value.message
    # MachineService may still fan out with `nodes`; a 1.14 apid logs it as deprecated
    from google.protobuf import empty_pb2

    raw_unary(admin, "Version", empty_pb2.Empty(), [("nodes", cp1.ip), ("nodes", cp3.ip)])
    [call] = world.recorder.entries("talos.api", method="Version", routing="nodes")
    assert call["endpoint"] == "cp-1" and call["deprecated"] == "nodes"


def test_roles_are_decided_on_each_node_inside_a_fan_out(world):
    from google.protobuf import empty_pb2

    from taltasks.talos.api import machine_pb2 as m

    reader = client_with(world, roles=["os:reader"])
    targets = [world.talos.node(n).ip for n in ("cp-1", "cp-2", "worker-3")]
    assert raw_unary(reader, "Version", empty_pb2.Empty(), []).messages  # a reader may read
    # a Reboot for three nodes: the call succeeds, each node refuses on its own
    reply = raw_unary(reader, "Reboot", m.RebootRequest(), [("nodes", t) for t in targets])
    errors = {e.metadata.hostname: e.metadata.status.code for e in reply.messages}
    assert errors == {t: grpc.StatusCode.PERMISSION_DENIED.value[0] for t in targets}
    assert all("not authorized" in e.metadata.error for e in reply.messages)
    [call] = world.recorder.entries("talos.api", method="Reboot")
    assert call["code"] == {t: "PERMISSION_DENIED" for t in targets}
    assert not world.recorder.entries("talos.reboot")
    reader.close()


def test_a_certificate_for_server_and_client_auth_is_refused_as_apid_does(world):
    from taltasks.machineconfig import pki

    cp = world.talos.node("cp-1")
    for usage, refused in (("server+client", True), ("client", False)):
        cert = pki.issue(world.talos.secrets.os_ca, usage=usage, organizations=["os:admin"])
        ctx = Context("eku", endpoints=[cp.ip], ca=world.talos.secrets.os_ca.crt, crt=cert.crt, key=cert.key)
        with TalosClient.from_context(ctx, connect_timeout=3) as client:
            if refused:
                with pytest.raises(ConnectionFailed) as info:
                    client.version()
                assert "closed the connection right after the handshake" in info.value.message
            else:
                assert client.version()[0].ok
    [why] = world.recorder.entries("talos.tls_refused")
    assert "missing the client auth extended key usage" in why["reason"]


def test_apply_modes_per_minor(world, admin):
    """A change under machine.install needs a reboot: 1.13 resolves AUTO to REBOOT, 1.14
    takes it without one (it acts at the next boot) and refuses the REBOOT mode."""
    n13, n14 = world.talos.node("worker-2"), world.talos.node("worker-1")

    def changed(node):
        cfg = yaml.safe_load(node.config.raw)
        cfg["machine"].setdefault("install", {})["disk"] = "/dev/vdb"
        return yaml.safe_dump(cfg).encode()

    [dry13] = admin.apply_configuration(changed(n13), nodes=[n13.ip], dry_run=True)
    assert dry13.unwrap().mode == "REBOOT"
    with pytest.raises(TalosCallError) as info:
        admin.apply_configuration(changed(n14), nodes=[n14.ip], mode="reboot")[0].unwrap()
    assert info.value.code == "UNIMPLEMENTED" and "REBOOT mode is not supported" in info.value.message
    [res] = admin.apply_configuration(changed(n14), nodes=[n14.ip], mode="auto")
    assert res.unwrap().mode == "NO_REBOOT"
    [applied] = world.recorder.entries("talos.apply", node="worker-1")
    assert applied["mode"] == "NO_REBOOT" and "machine.install" in applied["next_boot"]
    assert n14.waiting_for_reboot and n14.stage.text == "running"


@pytest.mark.parametrize(
    ("version", "reads", "upgrade_code", "staged"),
    [("v1.12.11", False, "UNIMPLEMENTED", False), ("v1.13.9", True, "PERMISSION_DENIED", True)],
)
def test_maintenance_mode_as_each_minor_serves_it(loopback_subnet, version, reads, upgrade_code, staged):
    world = make_world(
        loopback_subnet, maintenance=True, control_planes=1, workers=0, talos_version=version
    ).start()
    try:
        cp = world.talos.node("cp-1")
        with TalosClient.from_context(Context("m", endpoints=[cp.ip]), insecure=True) as bare:
            if reads:
                assert bare.version()[0].unwrap().tag == version
            else:
                with pytest.raises(TalosCallError) as info:
                    bare.version()
                assert info.value.code == "UNIMPLEMENTED"
            with pytest.raises(TalosCallError) as info:
                bare.upgrade("ghcr.io/siderolabs/installer:v1.14.0")
            assert info.value.code == upgrade_code
            data = node_config(world, "cp-1", version=version)
            if staged:
                [res] = bare.apply_configuration(data, mode="staged")
                assert res.unwrap().mode == "STAGED"
                assert cp.maintenance  # kept for the next boot
            else:
                with pytest.raises(TalosCallError) as info:
                    bare.apply_configuration(data, mode="staged")[0].unwrap()
                assert info.value.code == "UNIMPLEMENTED"
    finally:
        world.stop()


@pytest.mark.parametrize(
    ("version", "checked"),
    [("v1.11.5", True), ("v1.12.8", True), ("v1.12.11", False), ("v1.13.3", True), ("v1.13.9", False)],
)
def test_legacy_upgrade_preserve_skips_the_etcd_check_only_where_upstream_does(
    loopback_subnet, version, checked
):
    world = make_world(loopback_subnet, talos_version=version, control_planes=3, workers=0).start()
    try:
        world.talos.node("cp-2").set_faults(etcd_unhealthy=True)
        cp1 = world.talos.node("cp-1")
        with TalosClient.from_context(world.talos.talosconfig().context()) as admin:
            if checked:
                with pytest.raises(TalosCallError) as info:
                    admin.upgrade("ghcr.io/siderolabs/installer:v1.14.0", node=cp1.ip, preserve=True)
                assert "etcd is not healthy" in info.value.message
            else:
                assert admin.upgrade(
                    "ghcr.io/siderolabs/installer:v1.14.0", node=cp1.ip, preserve=True
                ).actor_id
                [up] = world.recorder.entries("talos.upgrade")
                assert up["etcd_checked"] is False
    finally:
        world.stop()


def test_a_busy_node_publishes_locked_and_talos_cordons_its_own_node(world, admin):
    from taltasks.talos.actions import upgrade

    node = world.talos.node("worker-3")  # 1.12: the legacy upgrade sequence
    store = world.kube.store
    stream = admin.events(node=node.ip)
    ack = admin.upgrade("ghcr.io/siderolabs/installer:v1.13.9", node=node.ip)
    wait_until(lambda: node.busy == "upgrade", what="the upgrade sequence")
    admin.reboot(node=node.ip)  # refused by the running sequence, asynchronously
    locked = wait_until(
        lambda: next((e for e in stream if e.type == "SequenceEvent" and e.error), None), what="LOCKED"
    )
    assert locked.data["error"]["code"] == "LOCKED" and locked.actor_id == ""
    assert locked.data["sequence"] == "reboot" and ack.actor_id
    assert world.recorder.entries("node.talos_cordon", node="worker-3", cordoned=True)
    wait_until(lambda: node.stage.text == "running" and node.version == "v1.13.9", what="back on 1.13.9")
    wait_until(
        lambda: not store.get("nodes", "worker-3")["spec"].get("unschedulable"), what="Talos's own uncordon"
    )
    assert "talos.dev/cordoned" not in (store.get("nodes", "worker-3")["metadata"].get("annotations") or {})
    # a cordon that is not Talos's stays through an upgrade
    from taltasks.sim.kube.nodes import TALOS_CORDONED

    store.mutate("nodes", "worker-3", lambda n: n["spec"].update(unschedulable=True))
    upgrade(admin, node.ip, "ghcr.io/siderolabs/installer:v1.13.9", timeout=30)
    after = store.get("nodes", "worker-3")
    assert after["spec"]["unschedulable"] and TALOS_CORDONED not in (
        after["metadata"].get("annotations") or {}
    )


def test_boot_id_resource_and_extra_args_encoding_follow_the_minor(world, admin):
    from taltasks.talos.api import definitions_k8s_pb2 as k8s

    new, old = world.talos.node("cp-1"), world.talos.node("cp-3")  # 1.14, 1.12
    boot = admin.get("BootIDs.runtime.talos.dev", "boot-id", namespace="runtime", node=new.ip)
    assert boot.spec == {"bootID": new.boot_id}
    with pytest.raises(TalosCallError) as info:
        admin.get("BootIDs.runtime.talos.dev", "boot-id", namespace="runtime", node=old.ip)
    assert info.value.code == "PERMISSION_DENIED" and "not supported" in info.value.message
    for node in (new, old):
        cfg = yaml.safe_load(node.config.raw)
        cfg["cluster"].setdefault("apiServer", {})["extraArgs"] = {"audit-log-maxage": "30"}
        admin.apply_configuration(yaml.safe_dump(cfg).encode(), nodes=[node.ip], mode="no-reboot")[0].unwrap()
    specs = {
        n.hostname: admin.get("APIServerConfigs.kubernetes.talos.dev", "kube-apiserver", node=n.ip)
        for n in (new, old)
    }
    decoded14 = k8s.APIServerConfigSpec.FromString(specs["cp-1"].proto_spec)
    assert list(decoded14.extra_args["audit-log-maxage"].values) == ["30"] and not decoded14.legacy_extra_args
    assert specs["cp-1"].spec["extraArgs"] == {"audit-log-maxage": {"values": ["30"]}}
    decoded12 = k8s.APIServerConfigSpec.FromString(specs["cp-3"].proto_spec)
    assert dict(decoded12.legacy_extra_args) == {"audit-log-maxage": "30"} and not decoded12.extra_args


def test_boot_id_asks_for_the_resource_only_where_the_node_may_have_it(world, admin):
    """The generations table decides: a node known to run Talos < 1.14 gets the Read alone
    (no Get refused first: the gates read boot ids every tick); a 1.14 node, or one whose
    version is not known yet, is asked for the BootID resource."""
    new, old, unknown = world.talos.node("cp-1"), world.talos.node("cp-3"), world.talos.node("worker-3")
    admin.version([new.ip, old.ip])  # what the client knows of each node
    mark = len(world.recorder.entries())
    assert admin.boot_id(old.ip) == old.boot_id and admin.boot_id(new.ip) == new.boot_id
    assert admin.boot_id(unknown.ip) == unknown.boot_id  # 1.12, not known: Get refused, then Read
    calls = [(e["method"], e["targets"]) for e in world.recorder.entries("talos.api") if e.seq >= mark]
    assert calls == [
        ("Read", [old.ip]),
        ("Get", [new.ip]),
        ("Get", [unknown.ip]),
        ("Read", [unknown.ip]),
    ]


def test_a_single_resource_watch_refuses_bootstrap_contents_like_cosi_runtime(world, admin):
    from taltasks.talos.api import cosi_resource_pb2 as c

    cp = world.talos.node("cp-1")
    req = c.WatchRequest(
        namespace="runtime",
        type="MachineStatuses.runtime.talos.dev",
        id="machine",
        api_version=1,
        options=c.WatchOptions(bootstrap_contents=True),
    )
    with pytest.raises(TalosCallError) as info:
        next(admin._stream("Watch", req, [("node", cp.ip)], 10, cp.ip, kind="cosi"))
    assert info.value.code == "UNIMPLEMENTED"
    assert "bootstrap contents is not implemented for resource watch" in info.value.message
