"""The waiting engine on a fake clock: windows, regressions, staleness, deadlines, watches."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from gateworld import NODES, ceph_obj, cnpg_obj, ctx, gate, healthy_world, node_obj

from taltasks.events import Collector, Emitter
from taltasks.gates.checks import GateContext
from taltasks.gates.clock import FakeClock, SystemClock
from taltasks.gates.engine import GateEngine, GateFailed
from taltasks.gates.memory import MemoryKube

W = 60.0


def engine_for(clock, kube, talos=None, **kw):
    events = Collector()
    engine = GateEngine(kube, talos, emitter=Emitter(events), clock=clock, **kw)
    return engine, events


@pytest.fixture
def world():
    clock = FakeClock()
    kube, talos = healthy_world(clock)
    return clock, kube, talos


def rook_heartbeat(clock, kube, every=10.0, until=1000.0, **obj_kw):
    """Rook refreshing status.ceph.lastChecked every ``every`` seconds, as its checker does."""
    t = every
    while t <= until:
        clock.at(t, lambda: kube.put(ceph_obj(clock, checked=0.0, **obj_kw)))
        t += every


def test_long_healthy_cluster_passes_at_once(world):
    clock, kube, talos = world
    engine, events = engine_for(clock, kube, talos)
    specs = [gate(k, window=W) for k in ("talos-node", "etcd", "kube-node", "cnpg")]
    results = engine.wait(specs, ctx("pre", "w1"))
    assert [r.spec.id for r in results] == ["talos-node", "etcd", "kube-node", "cnpg"]
    assert clock.elapsed == 0 and engine.ticks == 1
    assert events.kinds() == ["gate.passed"] * 4


def test_post_gate_window_counts_from_uncordon_and_needs_fresh_ceph_samples(world):
    clock, kube, talos = world
    rook_heartbeat(clock, kube, every=25.0)
    engine, events = engine_for(clock, kube, talos)
    uncordon = clock.time()
    engine.wait([gate("kube-node", window=W), gate("ceph", window=W)], ctx("post", "w1", not_before=uncordon))
    # Ready and HEALTH_OK since long ago, so the window runs from the uncordon; two fresh
    # lastChecked values (25 s, 50 s) arrive inside it: the gate passes as the window ends
    assert clock.elapsed == pytest.approx(W)
    waiting = events.of("gate.waiting")
    assert waiting and waiting[0].data["state"] == "stabilizing" and waiting[0].data["gate"] == "kube-node"


def test_fresh_samples_must_arrive_even_after_the_window(world):
    clock, kube, talos = world
    rook_heartbeat(clock, kube, every=50.0)  # lastChecked 50, 100, ...
    engine, events = engine_for(clock, kube, talos)
    engine.wait([gate("ceph", window=30.0)], ctx("post", "w1", not_before=clock.time()))
    assert clock.elapsed == pytest.approx(
        100.0
    )  # the window is over at 30 s; the second sample comes at 100 s
    assert any("1 of 2 fresh status samples" in e.message for e in events.of("gate.waiting"))


def test_regression_resets_the_window(world):
    clock, kube, talos = world
    engine, _ = engine_for(clock, kube, talos)
    kube.put(cnpg_obj(clock, "app-db", ready_since=-10.0))  # Ready for 10 s only
    clock.at(20.0, lambda: kube.put(cnpg_obj(clock, "app-db", phase="Failing over", ready_since=0.0)))
    clock.at(30.0, lambda: kube.put(cnpg_obj(clock, "app-db", ready_since=0.0)))
    engine.wait([gate("cnpg", window=W)], ctx())
    assert clock.elapsed == pytest.approx(30.0 + W)


def test_own_observation_resets_even_when_the_operator_timestamp_does_not_move(world):
    """Stale Ceph status regresses the gate although lastChanged stays old: once fresh
    again, the window counts from the engine's own first good look."""
    clock, kube, talos = world
    engine, _ = engine_for(clock, kube, talos, poll_interval=1.0)
    kube.put(ceph_obj(clock, checked=-500.0))  # stale: Rook stopped reporting
    clock.at(10.0, lambda: kube.put(ceph_obj(clock, checked=0.0)))
    clock.at(20.0, lambda: kube.put(ceph_obj(clock, checked=0.0)))
    engine.wait([gate("ceph", window=30.0)], ctx())
    assert clock.elapsed == pytest.approx(40.0)


def test_deadline_reports_gate_condition_and_last_value(world):
    clock, kube, talos = world
    kube.put(ceph_obj(clock, health="HEALTH_WARN", details={"OSD_DOWN": "1 osds down"}, checked=0.0))
    rook_heartbeat(clock, kube, every=30.0, health="HEALTH_WARN", details={"OSD_DOWN": "1 osds down"})
    engine, events = engine_for(clock, kube, talos)
    with pytest.raises(GateFailed) as info:
        engine.wait([gate("ceph", timeout=300.0, window=W)], ctx("pre", "w2"))
    err = info.value
    assert clock.elapsed == pytest.approx(300.0)
    assert err.gate == "ceph" and not err.fatal and err.exit_code == 4
    assert "did not pass within 5m" in err.message and "OSD_DOWN (1 osds down)" in err.message
    assert err.where == "pre gates of w2"
    assert err.last_values["CephCluster rook-ceph/rook-ceph health"] == "HEALTH_WARN: OSD_DOWN (1 osds down)"
    waiting = events.of("gate.waiting")
    assert waiting[0].node == "w2" and waiting[0].data["observed"] == "HEALTH_WARN: OSD_DOWN (1 osds down)"
    assert waiting[0].data["condition"] == "CephCluster rook-ceph/rook-ceph: HEALTH_OK"
    failed = events.of("gate.failed")
    assert len(failed) == 1 and failed[0].data["last"] == err.last_values
    assert len(waiting) <= 300 / 15 + 2  # repeated only every report_every when nothing changes


def test_unchanging_wait_reports_periodically_not_every_tick(world):
    clock, kube, talos = world
    kube.put(node_obj(clock, "w3", ready="False"))
    engine, events = engine_for(clock, kube, talos, poll_interval=1.0, resync_interval=1.0, report_every=20.0)
    with pytest.raises(GateFailed):
        engine.wait([gate("kube-node", timeout=100.0)], ctx())
    assert engine.ticks >= 100
    assert 5 <= len(events.of("gate.waiting")) <= 6


def test_fatal_observation_stops_at_once(world):
    clock, kube, talos = world
    kube.put(
        ceph_obj(
            clock, health="HEALTH_ERR", details={"PG_DAMAGED": "Possible data damage: 1 pg inconsistent"}
        )
    )
    engine, events = engine_for(clock, kube, talos)
    with pytest.raises(GateFailed) as info:
        engine.wait([gate("ceph")], ctx())
    assert clock.elapsed == 0 and info.value.fatal
    assert "stopped the run" in info.value.message and "PG_DAMAGED" in info.value.message
    assert events.kinds() == ["gate.failed"]


def test_all_gates_must_hold_in_the_same_tick(world):
    clock, kube, talos = world
    engine, _ = engine_for(clock, kube, talos)
    kube.put(node_obj(clock, "w2", ready="False"))
    clock.at(5.0, lambda: kube.put(node_obj(clock, "w2", since=0.0)))
    clock.at(
        5.0, lambda: kube.put(cnpg_obj(clock, "app-db", phase="Switchover in progress", target="app-db-2"))
    )
    clock.at(9.0, lambda: kube.put(cnpg_obj(clock, "app-db", primary="app-db-2", ready_since=0.0)))
    engine.wait([gate("kube-node", window=0.0), gate("cnpg", window=0.0)], ctx())
    assert clock.elapsed == pytest.approx(9.0)


@pytest.mark.parametrize(("streaming", "expected"), [(True, 7.3), (False, 8.0)])
def test_watch_wakes_at_the_change_polling_at_the_next_tick(streaming, expected):
    clock = FakeClock()
    kube, talos = healthy_world(clock, streaming=streaming)
    kube.put(node_obj(clock, "w1", ready="False"))
    clock.at(7.3, lambda: kube.put(node_obj(clock, "w1", since=0.0)))
    engine, _ = engine_for(clock, kube, talos, poll_interval=2.0, resync_interval=30.0)
    engine.wait([gate("kube-node", window=0.0)], ctx())
    assert clock.elapsed == pytest.approx(expected)
    assert kube.subscribers == 0  # unsubscribed after the wait


def test_unreachable_source_backs_off_then_recovers(world):
    clock, kube, talos = world
    engine, events = engine_for(clock, kube, talos, poll_interval=1.0, max_backoff=8.0)
    talos.set_reachable("127.0.0.21", False)
    times = []
    original = talos.machine

    def recording(node):
        if node == "127.0.0.21":
            times.append(clock.elapsed)
        return original(node)

    talos.machine = recording  # observe when the engine looks, nothing else changes
    talos.streaming = False
    clock.at(40.0, lambda: talos.set_reachable("127.0.0.21", True))
    engine.wait([gate("talos-node")], ctx("post", "w1"))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert clock.elapsed == pytest.approx(40.0, abs=8.0)
    assert "connection refused" in events.of("gate.waiting")[0].data["observed"]


def test_pre_gate_after_a_post_gate_reuses_the_observed_stability(world):
    clock, kube, talos = world
    engine, _ = engine_for(clock, kube, talos)
    check = gate(
        "expression",
        apiVersion="v1",
        kind="Node",
        name="w1",
        expr="!has(object.spec.unschedulable)",
        window=W,
    )
    engine.wait([check], ctx("post", "w1"))
    assert clock.elapsed == pytest.approx(W)  # no operator timestamp: the engine watches for W itself
    engine.wait([check], ctx("pre", "w2"))
    assert clock.elapsed == pytest.approx(W)  # continuous observation carries over: no second wait
    clock.advance(120.0)  # a long unobserved gap: the engine must look for itself again
    engine.wait([check], ctx("pre", "w3"))
    assert clock.elapsed == pytest.approx(W + 120 + W)


def test_baseline_and_check_without_waiting(world):
    clock, kube, talos = world
    engine, _ = engine_for(clock, kube, talos)
    specs = [gate("ceph"), gate("cnpg"), gate("etcd")]
    assert engine.baseline(specs, ctx()) == {
        "ceph": {"rook-ceph/rook-ceph": []},
        "cnpg": {"database/app-db": 1, "database/auth-db": 1},
    }
    kube.put(node_obj(clock, "w1", cordoned=True))
    statuses = engine.check([gate("kube-node")], ctx())
    assert statuses[0].state == "unmet" and statuses[0].explain().startswith("node w1: schedulable")
    assert clock.elapsed == 0


def test_real_clock_reacts_to_a_watched_change_quickly():
    """With the system clock and a streaming source, the engine wakes on the change
    itself, not at the (long) resync interval."""
    clock = SystemClock()
    kube = MemoryKube([node_obj(FakeClock(start=time.time()), "w1", ready="False")])
    engine = GateEngine(kube, None, clock=clock, resync_interval=30.0)
    changed_at = []

    def flip():
        time.sleep(0.2)
        changed_at.append(time.monotonic())
        kube.put(node_obj(FakeClock(start=time.time()), "w1"))

    threading.Thread(target=flip, daemon=True).start()
    engine.wait([gate("kube-node", window=0.0)], GateContext(nodes=[NODES[3]]))
    latency = time.monotonic() - changed_at[0]
    assert latency < 0.2
