"""The gate engine's TalosSource over the real Talos API of simulated nodes."""

from __future__ import annotations

import threading

import pytest

from taltasks.errors import ConnectionFailed
from taltasks.gates.checks import GateContext, NodeTarget
from taltasks.gates.engine import GateEngine
from taltasks.gates.talossource import ApiTalosSource, TalosNodeUnreachable
from taltasks.model.policy import default_policy
from waiting import wait_until


def test_machine_state_and_etcd_view_come_from_the_node(world, admin):
    source = ApiTalosSource(admin, watch=False)
    cp, worker = world.talos.node("cp-1"), world.talos.node("worker-1")
    m = source.machine(worker.ip)
    assert (m.node, m.stage, m.ready, m.version, m.boot_id) == (
        worker.ip,
        "running",
        True,
        "v1.11.5",
        worker.boot_id,
    )
    view = source.etcd(cp.ip)
    assert view.healthy and sorted(m.hostname for m in view.members) == ["cp-1", "cp-2", "cp-3"]
    leader = world.talos.etcd.leader
    assert view.leader_id == leader and view.member_id == world.talos.etcd.by_hostname("cp-1").id
    absent = source.etcd(worker.ip)
    assert absent.service_state == "absent" and not absent.healthy


def test_each_node_fails_on_its_own(world, admin):
    source = ApiTalosSource(admin, watch=False)
    down = world.talos.node("cp-2")
    world.set_talos_faults("cp-2", etcd_unhealthy=True)
    sick = source.etcd(down.ip)
    assert not sick.healthy and any("unhealthy" in e for e in sick.errors)
    world.set_talos_faults("worker-2", unreachable=True)
    gone = world.talos.node("worker-2")
    with pytest.raises(TalosNodeUnreachable) as info:
        source.machine(gone.ip)
    assert isinstance(info.value, ConnectionFailed) and info.value.where == gone.ip
    assert source.machine(world.talos.node("worker-1").ip).ready  # the others still answer


def test_subscribe_wakes_on_a_reboot_and_the_gate_sees_the_new_boot(world, admin):
    source = ApiTalosSource(admin)
    node = world.talos.node("worker-3")
    before = source.machine(node.ip).boot_id
    wake = threading.Event()
    unsubscribe = source.subscribe([node.ip], wake)
    try:
        assert wake.wait(5)  # the watch's first snapshot
        wake.clear()
        admin.reboot(node=node.ip)
        assert wake.wait(5)  # the machine went down
        target = NodeTarget(node.hostname, node.ip)
        ctx = GateContext(
            [target], target, stage="reboot", expected_version="v1.11.5", previous_boot_id=before
        )
        engine = GateEngine(None, source, poll_interval=0.05, resync_interval=0.5)
        [back, _ready] = default_policy().reboot_gates()
        engine.wait([back], ctx)  # woken by the watch when the node is back with a new boot id
        assert source.machine(node.ip).boot_id == node.boot_id != before
    finally:
        unsubscribe()
        source.close()
    wake.clear()
    mark = len(world.recorder.entries())
    admin.reboot(node=node.ip)
    world.recorder.wait_for("talos.boot", 5, lambda e: e.seq >= mark, node=node.hostname)
    assert not wake.wait(0.3)  # unsubscribed: a whole reboot went by without a wake-up


def test_polling_source_returns_no_subscription(admin):
    assert ApiTalosSource(admin, watch=False).subscribe(["127.0.0.1"], threading.Event()) is None


def test_the_machine_status_watch_delivers_changes_without_reconnecting(world, admin):
    """One single-resource watch per node (no bootstrap contents, which COSI servers refuse):
    it delivers the current state, then every change, over one stream — never a loop of
    refused reconnects."""
    source = ApiTalosSource(admin)
    node = world.talos.node("cp-2")
    wake = threading.Event()
    unsubscribe = source.subscribe([node.ip], wake)
    try:
        wait_until(lambda: source.watch_events.get(node.ip, 0) >= 1, 5, "the current state")
        seen = source.watch_events[node.ip]
        wake.clear()
        world.set_talos_faults("cp-2", etcd_unhealthy=True)  # etcd unhealthy: MachineStatus not ready
        assert wake.wait(5)
        wait_until(lambda: source.watch_events[node.ip] > seen, 5, "the change through the watch")
        world.set_talos_faults("cp-2", etcd_unhealthy=False)
        wait_until(lambda: source.watch_events[node.ip] > seen + 1, 5, "the change back")
    finally:
        unsubscribe()
        source.close()
    watches = [e for e in world.recorder.entries("talos.api", method="Watch") if e["targets"] == [node.ip]]
    assert [(w["code"], w["routing"]) for w in watches] == [("stream", "node")]
    assert source.watch_errors == {}


def test_a_watch_the_node_refuses_stops_instead_of_looping(world):
    """A refusal that reconnecting cannot change (here: a certificate without a role that may
    watch) ends that node's watcher once, with the reason; the engine polls instead."""
    from simtalos import client_with

    nobody = client_with(world, roles=["os:etcd:backup"])
    source = ApiTalosSource(nobody)
    node = world.talos.node("worker-2")
    wake = threading.Event()
    unsubscribe = source.subscribe([node.ip], wake)
    try:
        wait_until(lambda: node.ip in source.watch_errors, 5, "the watcher to give up")
        assert "PERMISSION_DENIED" in source.watch_errors[node.ip]
        assert wake.is_set()
    finally:
        unsubscribe()
        source.close()
        nobody.close()
    watches = [e for e in world.recorder.entries("talos.api", method="Watch") if e["targets"] == [node.ip]]
    assert len(watches) == 1


def test_a_single_resource_watch_is_never_asked_for_bootstrap_contents(admin):
    with pytest.raises(ValueError, match="not of one resource"):
        admin.watch("MachineStatuses.runtime.talos.dev", "machine", namespace="runtime", bootstrap=True)
