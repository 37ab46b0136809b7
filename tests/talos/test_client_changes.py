"""Changes through the client: apply, upgrade, reboot, reset, bootstrap, etcd membership."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from simtalos import client_with, ips, make_world, node_config
from taltasks.talos import actions
from taltasks.talos.client import TalosClient
from taltasks.talos.config import Context
from taltasks.talos.results import TalosCallError
from waiting import wait_until


def test_upgrade_followed_through_events_until_back_with_new_boot_id(world, admin):
    worker = world.talos.node("worker-1")
    image = "ghcr.io/siderolabs/installer:v1.12.1"
    seen = []
    outcome = actions.upgrade(admin, worker.ip, image, on_event=seen.append, timeout=30)
    assert outcome.boot_id_before != outcome.boot_id_after
    assert outcome.boot_id_after == worker.boot_id
    assert outcome.version_after == "v1.12.1"
    types = [(e.type, e.data.get("sequence") or e.data.get("task") or e.data.get("stage")) for e in seen]
    assert ("SequenceEvent", "upgrade") in types
    assert ("TaskEvent", "stopAllServices") in types
    assert ("MachineStatusEvent", "UPGRADING") in types
    last = seen[-1]
    assert last.type == "MachineStatusEvent" and last.running_and_ready
    # the upgrade events carried the actor id the Upgrade reply returned
    assert {e.actor_id for e in seen if e.type == "PhaseEvent"} == {outcome.actor_id}
    # the simulator saw the node go down and come back, in that order
    stages = [e["stage"] for e in world.recorder.entries("talos.stage", node="worker-1")]
    assert stages[-3:] == ["rebooting", "booting", "running"]


def test_upgrading_the_endpoint_node_fails_over(world, admin):
    cp = world.talos.node("cp-1")
    assert admin.transport.endpoints[0].host == cp.ip
    outcome = actions.upgrade(admin, cp.ip, "ghcr.io/siderolabs/installer:v1.12.1", timeout=30)
    assert outcome.version_after == "v1.12.1"
    assert cp.version == "v1.12.1"


def test_upgrade_that_never_returns_times_out_naming_the_node(world, admin):
    worker = world.talos.node("worker-3")
    worker.set_faults(never_returns=True)
    with pytest.raises(actions.NodeDidNotReturn) as info:
        actions.upgrade(admin, worker.ip, "ghcr.io/siderolabs/installer:v1.12.1", timeout=1.5)
    assert info.value.where == worker.ip
    assert "did not come back" in info.value.message
    worker.set_faults(never_returns=False)
    wait_until(lambda: worker.ready and worker.reachable, what="node back after the fault cleared")


def test_upgrade_keeping_old_version_is_visible(world, admin):
    worker = world.talos.node("worker-2")
    worker.set_faults(keeps_old_version=True)
    outcome = actions.upgrade(admin, worker.ip, "ghcr.io/siderolabs/installer:v1.12.1", timeout=30)
    assert outcome.boot_id_before != outcome.boot_id_after
    assert outcome.version_after == "v1.11.5"


def test_control_plane_upgrade_refused_when_etcd_unhealthy_unless_forced(world, admin):
    world.talos.node("cp-2").set_faults(etcd_unhealthy=True)
    cp1 = world.talos.node("cp-1")
    with pytest.raises(TalosCallError) as info:
        admin.upgrade("ghcr.io/siderolabs/installer:v1.12.1", node=cp1.ip)
    assert info.value.code == "FAILED_PRECONDITION" and "etcd is not healthy" in info.value.message
    ack = admin.upgrade("ghcr.io/siderolabs/installer:v1.12.1", node=cp1.ip, force=True)
    assert ack.actor_id


def test_maintenance_apply_then_authenticated_calls(loopback_subnet):
    world = make_world(loopback_subnet, maintenance=True, control_planes=1, workers=1).start()
    try:
        cp = world.talos.node("cp-1")
        insecure = TalosClient.from_context(Context("m", endpoints=[cp.ip]), insecure=True)
        # maintenance mode: only a handful of RPCs, and not for an anonymous reader
        with pytest.raises(TalosCallError) as info:
            insecure.version()
        assert info.value.code == "UNIMPLEMENTED" and "maintenance mode" in info.value.message
        ms = insecure.get("MachineStatuses.runtime.talos.dev", "machine", namespace="runtime")
        assert ms.spec["stage"] == "maintenance"
        dry = insecure.apply_configuration(node_config(world, "cp-1"), dry_run=True)[0].unwrap()
        assert "maintenance mode" in dry.mode_details
        with pytest.raises(TalosCallError):
            insecure.apply_configuration(node_config(world, "cp-1"), mode="staged")[0].unwrap()
        insecure.apply_configuration(node_config(world, "cp-1", version="v1.12.0"), mode="auto")[0].unwrap()
        insecure.close()
        wait_until(lambda: cp.stage.text == "running" and cp.reachable, what="installed node running")
        admin = TalosClient.from_context(world.talos.talosconfig().context())
        [v] = admin.version()
        assert v.value.tag == "v1.12.0"  # booted into the installer image's version
        assert v.value.rbac
        admin.close()
    finally:
        world.stop()


def test_bootstrap_once_then_members_join_and_remove_member(loopback_subnet):
    world = make_world(loopback_subnet, maintenance=True, control_planes=3, workers=0).start()
    try:
        for name in ("cp-1", "cp-2", "cp-3"):
            node = world.talos.node(name)
            c = TalosClient.from_context(Context("m", endpoints=[node.ip]), insecure=True)
            c.apply_configuration(node_config(world, name), mode="reboot")[0].unwrap()
            c.close()
        wait_until(
            lambda: all(n.stage.text == "running" and n.reachable for n in world.talos.nodes),
            what="all installed",
        )
        admin = TalosClient.from_context(world.talos.talosconfig().context())
        cp1, cp3 = world.talos.node("cp-1"), world.talos.node("cp-3")
        with pytest.raises(TalosCallError) as info:
            admin.etcd_members([cp1.ip])[0].unwrap()
        assert info.value.code == "FAILED_PRECONDITION"  # etcd not running before bootstrap
        admin.bootstrap(node=cp1.ip)
        with pytest.raises(TalosCallError) as again:
            admin.bootstrap(node=cp1.ip)
        assert again.value.code == "ALREADY_EXISTS"
        members = admin.etcd_members([cp1.ip])[0].unwrap()
        assert sorted(m.hostname for m in members) == ["cp-1", "cp-2", "cp-3"]
        victim = next(m for m in members if m.hostname == "cp-3")
        admin.etcd_remove_member(victim.id, node=cp1.ip)
        after = admin.etcd_members([cp1.ip, world.talos.node("cp-2").ip])
        assert all(sorted(m.hostname for m in r.unwrap()) == ["cp-1", "cp-2"] for r in after)
        with pytest.raises(TalosCallError) as missing:
            admin.etcd_remove_member(victim.id, node=cp1.ip)
        assert missing.value.code == "NOT_FOUND"
        assert [e["member"] for e in world.recorder.entries("etcd.member_removed")] == ["cp-3"]
        [svc] = admin.services([cp3.ip])
        etcd = next(s for s in svc.unwrap() if s.id == "etcd")
        assert not etcd.healthy
        admin.close()
    finally:
        world.stop()


def test_snapshot_of_64_mib_streams_to_file_with_matching_checksum(loopback_subnet, tmp_path):
    world = make_world(loopback_subnet, control_planes=1, workers=0, etcd_db_size=64 * 1024 * 1024).start()
    try:
        admin = TalosClient.from_context(world.talos.talosconfig().context())
        progress = []
        target = tmp_path / "etcd.snapshot"
        result = admin.etcd_snapshot(target, node=world.talos.node("cp-1").ip, progress=progress.append)
        assert result.size == 64 * 1024 * 1024 == target.stat().st_size
        expected = world.talos.etcd.snapshot_sha256()
        assert result.sha256 == expected == hashlib.sha256(target.read_bytes()).hexdigest()
        assert progress == sorted(progress) and progress[-1] == result.size and len(progress) > 1
        assert not list(tmp_path.glob(".*.part"))
        admin.close()
    finally:
        world.stop()


def test_apply_modes_behave_as_talos_documents(world, admin):
    cp = world.talos.node("cp-2")
    raw = yaml.safe_load(node_config(world, "cp-2"))
    live = dict(raw, machine={**raw["machine"], "certSANs": [cp.ip, "cp-2.example"]})
    live_bytes = yaml.safe_dump(live).encode()
    dry = admin.apply_configuration(live_bytes, nodes=[cp.ip], dry_run=True)[0].unwrap()
    assert dry.mode == "NO_REBOOT"
    assert dry.mode_details.startswith(
        "Dry run summary:\nApplied configuration without a reboot (skipped in dry-run)."
    )
    assert "+  - cp-2.example" in dry.mode_details and "--- a" in dry.mode_details
    assert b"cp-2.example" not in cp.config.raw  # dry run changed nothing
    applied = admin.apply_configuration(live_bytes, nodes=[cp.ip], mode="auto")[0].unwrap()
    assert applied.mode == "NO_REBOOT"  # AUTO comes back resolved
    assert b"cp-2.example" in cp.config.raw
    boot = cp.boot_id
    # an install change needs a reboot: refused in no-reboot mode, staged in staged mode
    reboot_change = dict(
        live,
        machine={
            **live["machine"],
            "install": {"disk": "/dev/nvme0n1", "image": raw["machine"]["install"]["image"]},
        },
    )
    data = yaml.safe_dump(reboot_change).encode()
    [refused] = admin.apply_configuration(data, nodes=[cp.ip], mode="no-reboot")
    assert refused.error.code == "INVALID_ARGUMENT" and "requires a reboot" in refused.error.message
    staged = admin.apply_configuration(data, nodes=[cp.ip], mode="staged")[0].unwrap()
    assert staged.mode == "STAGED" and cp.staged_config == data and cp.boot_id == boot
    # a config without v1alpha1 is refused with Talos's hint
    [bad] = admin.apply_configuration(
        b"apiVersion: v1alpha1\nkind: WatchdogTimerConfig\ndevice: /dev/watchdog0\n", nodes=[cp.ip]
    )
    assert bad.error.code == "INVALID_ARGUMENT" and "did you mean to patch" in bad.error.message
    # a document kind the node's Talos does not know is refused (HostnameConfig came with 1.12)
    [unknown] = admin.apply_configuration(
        data + b"---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n", nodes=[cp.ip]
    )
    assert unknown.error.code == "INVALID_ARGUMENT"
    assert "unknown document kind 'HostnameConfig' (Talos v1.11.5 does not know it)" in unknown.error.message


def test_try_mode_reverts_after_its_timeout(world, admin):
    cp = world.talos.node("cp-3")
    raw = yaml.safe_load(node_config(world, "cp-3"))
    tried = yaml.safe_dump(dict(raw, machine={**raw["machine"], "certSANs": [cp.ip, "try.example"]})).encode()
    res = admin.apply_configuration(tried, nodes=[cp.ip], mode="try", try_timeout=1)[0].unwrap()
    assert "automatically reverted back in 1s" in res.mode_details
    assert b"try.example" in cp.config.raw
    wait_until(lambda: b"try.example" not in cp.config.raw, timeout=5, what="try-mode revert")


def test_reboot_and_graceful_reset_of_a_control_plane(world, admin):
    w = world.talos.node("worker-1")
    out = actions.reboot(admin, w.ip, timeout=30)
    assert out.boot_id_after != out.boot_id_before and out.version_after == "v1.11.5"
    cp3 = world.talos.node("cp-3")
    admin.reset(node=cp3.ip, graceful=True, reboot=True)
    wait_until(
        lambda: cp3.maintenance and cp3.stage.text == "maintenance" and cp3.reachable,
        what="reset to maintenance",
    )
    members = admin.etcd_members([world.talos.node("cp-1").ip])[0].unwrap()
    assert sorted(m.hostname for m in members) == ["cp-1", "cp-2"]  # graceful reset left etcd


def test_reset_rejects_bad_wipe_options(world, admin):
    with pytest.raises(TalosCallError) as info:
        admin.reset(node=ips(world)[0], system_partitions=["NOPE"])
    assert info.value.code == "INVALID_ARGUMENT"


def test_events_tail_replays_the_boot(world, admin):
    cp = world.talos.node("cp-1")
    stream = admin.events(node=cp.ip, tail_events=-1)
    first = [next(stream) for _ in range(3)]
    assert first[0].type in ("MachineStatusEvent", "SequenceEvent", "ServiceStateEvent")
    assert all(e.id for e in first)


def test_image_pull_and_service_restart_fan_out(world, admin):
    res = admin.image_pull("registry.k8s.io/kube-apiserver:v1.35.0", nodes=ips(world, "controlplane"))
    assert all(r.ok for r in res) and len(res) == 3
    assert all("registry.k8s.io/kube-apiserver:v1.35.0" in n.images for n in world.talos.control_planes)
    [bad] = admin.image_pull("not a ref", nodes=ips(world)[:1])
    assert bad.error.code == "INVALID_ARGUMENT"
    out = admin.service_restart("kubelet", ips(world, "worker"))
    assert [r.value for r in out] == ['Service "kubelet" restarted'] * 3


def test_operator_may_reboot_reader_may_not(world):
    worker = world.talos.node("worker-2")
    operator = client_with(world, roles=["os:operator"])
    ack = operator.reboot(node=worker.ip)
    assert ack.actor_id
    reader = client_with(world, roles=["os:reader"])
    with pytest.raises(TalosCallError) as info:
        reader.reboot(node=world.talos.node("worker-3").ip)
    assert info.value.code == "PERMISSION_DENIED"
    operator.close()
    reader.close()


def test_forfeit_leadership_leave_and_shutdown(world, admin):
    etcd = world.talos.etcd
    leader = next(n for n in world.talos.control_planes if etcd.members[etcd.leader].hostname == n.hostname)
    new_leader = admin.etcd_forfeit_leadership(node=leader.ip)
    # as Talos: the reply names the member that leads now, never the one that stepped down
    assert new_leader == etcd.members[etcd.leader].hostname != leader.hostname
    assert admin.etcd_forfeit_leadership(node=leader.ip) == ""  # not the leader any more
    leaving = next(n for n in world.talos.control_planes if n is not leader)
    admin.etcd_leave(node=leaving.ip)
    remaining = admin.etcd_members([leader.ip])[0].unwrap()
    assert leaving.hostname not in {m.hostname for m in remaining} and len(remaining) == 2
    worker = world.talos.node("worker-3")
    assert admin.shutdown(node=worker.ip).actor_id
    wait_until(
        lambda: not worker.reachable and world.recorder.entries("talos.off", node="worker-3"),
        what="powered off",
    )
    [res] = admin.version([worker.ip])
    assert res.error.code == "UNAVAILABLE"
