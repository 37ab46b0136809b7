"""A node that vanishes silently (power loss, partition): it answers nothing and closes
nothing. The simulator's ``vanished`` fault does exactly that; every wait that depends on
such a node ends by its own deadline (+10 %), even though no event ever arrives; long
streams carry keepalive pings, kept within apid's ping policy by a heartbeat."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import replace

import grpc
import pytest

from simtalos import client_with
from taltasks import deadline
from taltasks.errors import OperationFailed
from taltasks.gates.checks import GateContext, NodeTarget
from taltasks.gates.engine import GateEngine, GateFailed
from taltasks.gates.talossource import ApiTalosSource
from taltasks.model.policy import default_policy
from taltasks.talos import actions
from taltasks.talos.client import StreamInterrupted
from taltasks.talos.keepalive import Keepalive
from taltasks.talos.results import TalosCallError
from waiting import wait_until

SLACK = 1.1  # a wait may end at most 10 % after its deadline


def _next_in_thread(stream):
    """Start taking the next item of ``stream`` in a thread: (done event, result box)."""
    box: dict[str, object] = {}
    done = threading.Event()

    def take():
        try:
            box["item"] = next(stream)
        except BaseException as exc:
            box["error"] = exc
        done.set()

    threading.Thread(target=take, daemon=True).start()
    return done, box


# ---- the fault itself ----------------------------------------------------------------------


def test_vanished_node_answers_nothing_and_closes_nothing(world, admin):
    worker = world.talos.node("worker-1")
    with deadline.within(30):
        stream = admin.events(node=worker.ip, tail_events=0)  # proxied through a control plane
    world.set_talos_faults("worker-1", vanished=True)
    assert world.recorder.entries("talos.vanished", node="worker-1")
    # new connections: TCP is accepted, TLS is never answered
    with socket.create_connection((worker.ip, 50000), timeout=2) as raw:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        raw.settimeout(0.5)
        with pytest.raises((TimeoutError, socket.timeout)):
            tls.wrap_socket(raw, server_hostname=worker.ip)
    # calls proxied to it hang until the caller's deadline
    started = time.monotonic()
    with deadline.within(0.8), pytest.raises(TalosCallError) as info:
        admin.get("MachineStatuses.runtime.talos.dev", "machine", namespace="runtime", node=worker.ip)
    assert info.value.code == "DEADLINE_EXCEEDED" and time.monotonic() - started < 0.8 * SLACK + 0.3
    # an open stream neither ends nor delivers
    done, box = _next_in_thread(stream)
    admin.service_restart("kubelet", [world.talos.node("cp-1").ip])  # traffic elsewhere goes on
    assert not done.wait(0.8)
    # the partition heals: the same stream carries the node's events again
    world.set_talos_faults("worker-1", vanished=False)
    admin.service_restart("kubelet", [worker.ip])
    assert done.wait(10) and "item" in box, box
    assert world.recorder.entries("talos.reappeared", node="worker-1")


def test_vanished_control_plane_leaves_etcd_and_its_node_goes_not_ready(world, admin):
    cp3 = world.talos.node("cp-3")
    world.set_talos_faults("cp-3", vanished=True)
    member = world.talos.etcd.by_hostname("cp-3")
    assert member is not None and not member.up
    [status] = admin.etcd_status([world.talos.node("cp-1").ip])
    assert status.ok and status.value.leader != member.id
    world.set_talos_faults("cp-3", vanished=False)
    assert world.talos.etcd.by_hostname("cp-3").up and cp3.reachable


# ---- waits end by their deadlines ----------------------------------------------------------


def test_gate_wait_on_a_vanished_node_fails_by_its_deadline(world, admin):
    node = world.talos.node("worker-2")
    source = ApiTalosSource(admin)
    target = NodeTarget(node.hostname, node.ip)
    ctx = GateContext([target], target, stage="reboot", expected_version="v1.11.5", previous_boot_id="x")
    [back, _ready] = default_policy().reboot_gates()
    back = replace(back, timeout=2.0)
    world.set_talos_faults("worker-2", vanished=True)
    engine = GateEngine(None, source, poll_interval=0.2, resync_interval=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(GateFailed) as info:
            engine.wait([back], ctx)
    finally:
        source.close()
    took = time.monotonic() - started
    assert took <= 2.0 * SLACK, took
    assert "did not pass within 2s" in info.value.message


def test_machine_status_watch_of_a_node_vanished_behind_its_endpoint_is_renewed(world, admin, monkeypatch):
    """The endpoint answers the keepalive pings, so only the watch's own bound ends a watch
    proxied to a node that went silent: the gate source's watcher opens it again then, and
    the renewed watch delivers once the node is back."""
    from taltasks.gates import talossource

    monkeypatch.setattr(talossource, "WATCH_RENEW", 1.0)
    node = world.talos.node("worker-2")

    def watches():
        return [e for e in world.recorder.entries("talos.api", method="Watch") if e["targets"] == [node.ip]]

    source = ApiTalosSource(admin)  # endpoints: the control planes, so the watch is proxied
    unsubscribe = source.subscribe([node.ip], threading.Event())
    try:
        wait_until(lambda: source.watch_events.get(node.ip, 0) >= 1, 5, "the current state")
        world.set_talos_faults("worker-2", vanished=True)
        wait_until(
            lambda: any(w["code"] == "DEADLINE_EXCEEDED" for w in watches()),
            5,
            "a silent watch ended by its bound",
        )
        seen = source.watch_events[node.ip]
        world.set_talos_faults("worker-2", vanished=False)
        wait_until(lambda: source.watch_events[node.ip] > seen, 5, "the renewed watch delivering again")
    finally:
        unsubscribe()
        source.close()
    assert source.watch_errors == {}


def test_reboot_wait_fails_by_its_deadline_when_the_node_vanishes_on_the_way(world, admin):
    node = world.talos.node("worker-3")

    def vanish_when_it_goes_down(event):
        if event.type == "SequenceEvent" and not node.faults.vanished:
            world.set_talos_faults("worker-3", vanished=True)

    started = time.monotonic()
    with pytest.raises(actions.NodeDidNotReturn) as info:
        actions.reboot(admin, node.ip, timeout=3.0, on_event=vanish_when_it_goes_down)
    took = time.monotonic() - started
    assert took <= 3.0 * SLACK, took
    assert "within 3s" in info.value.message
    assert world.recorder.entries("talos.vanished", node="worker-3")


def test_reboot_request_to_a_vanished_node_ends_by_the_deadline(world, admin):
    node = world.talos.node("worker-1")
    world.set_talos_faults("worker-1", vanished=True)
    started = time.monotonic()
    with pytest.raises(actions.NodeDidNotReturn):
        actions.reboot(admin, node.ip, timeout=1.5)
    assert time.monotonic() - started <= 1.5 * SLACK


def test_etcd_snapshot_from_a_vanished_member_fails_by_its_deadline(world, admin, tmp_path):
    cp2 = world.talos.node("cp-2")
    world.set_talos_faults("cp-2", vanished=True)
    started = time.monotonic()
    with pytest.raises(OperationFailed, match=r"did not finish within 1\.5s") as info:
        admin.etcd_snapshot(tmp_path / "db.snap", node=cp2.ip, timeout=1.5)
    assert time.monotonic() - started <= 1.5 * SLACK
    assert "0 bytes received" in info.value.message
    assert not list(tmp_path.iterdir())  # no partial file left behind


# ---- keepalive within apid's ping policy ---------------------------------------------------

QUICK = Keepalive(time=1.0, timeout=1.0, heartbeat=2.0)


def test_simulated_apid_cuts_a_quiet_stream_pinged_too_often(world):
    """apid's policy (grpc-go defaults) in the simulator: pings every second on a stream the
    server sends nothing on → GOAWAY too_many_pings within a few seconds."""
    from taltasks.talos.api import machine_pb2 as m

    with client_with(world, endpoints=[world.talos.node("cp-1").ip]) as c:
        c.transport._ensure(c.transport.slots[0])  # the bridge; our own channel below has no heartbeat
        pinged = grpc.insecure_channel(c.transport.slots[0].bridge.target, options=QUICK.channel_options())
        try:
            events = pinged.unary_stream(
                "/machine.MachineService/Events",
                request_serializer=lambda r: r.SerializeToString(),
                response_deserializer=m.Event.FromString,
            )(m.EventsRequest(tail_events=0), timeout=20)
            next(events)  # the hello
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                next(events)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "ping" in (info.value.details() or "").lower()
            assert time.monotonic() - started < 10
        finally:
            pinged.close()


def test_quiet_live_stream_survives_with_the_heartbeat(world):
    cp1 = world.talos.node("cp-1")
    with client_with(world, endpoints=[cp1.ip]) as c:
        c.transport.keepalive = QUICK
        stream = c.events(tail_events=0, timeout=30)
        done, box = _next_in_thread(stream)
        assert not done.wait(6)  # three times what apid tolerates without the heartbeat
        heartbeat = c.transport.slots[0].heartbeat
        assert heartbeat is not None and heartbeat.beats >= 2
        c.service_restart("kubelet", [cp1.ip])
        assert done.wait(10) and "item" in box, box


def test_keepalive_notices_a_vanished_endpoint_long_before_the_deadline(world):
    worker = world.talos.node("worker-1")
    with client_with(world, endpoints=[worker.ip]) as c:
        c.transport.keepalive = QUICK
        stream = c.events(tail_events=0, timeout=60)
        world.set_talos_faults("worker-1", vanished=True)
        started = time.monotonic()
        done, box = _next_in_thread(stream)
        assert done.wait(10), "the stream should have failed by keepalive"
        assert isinstance(box.get("error"), StreamInterrupted), box
        assert time.monotonic() - started < 6  # ping every 1 s + 1 s to answer, not the 60 s deadline
        wait_until(lambda: not c.transport.slots[0].heartbeat._open, 5, "the heartbeat to stop")


# ---- the upgrade workflow ------------------------------------------------------------------


@pytest.mark.slow
def test_upgrade_wait_for_back_fails_by_the_reboot_deadline_when_the_node_vanishes(tmp_path, loopback_subnet):
    from test_upgrade_e2e import plan_order, upgrade

    from taltasks.workflows.upgrade import UpgradeStopped
    from upgrade_support import demo_cluster

    d = demo_cluster(tmp_path, loopback_subnet, reboot="3s")
    try:
        target = plan_order(d)[0]
        marks: dict[str, float] = {}

        def vanish_once_upgrading(event):
            if event.node != target:
                return
            if event.kind == "step.started" and event.data.get("step") == "upgrade":
                marks["started"] = time.monotonic()
            if event.kind == "info" and event.message == "stage upgrading":
                d.world.set_talos_faults(target, vanished=True)
            if event.kind == "node.failed":
                marks["failed"] = time.monotonic()

        with pytest.raises(UpgradeStopped) as info:
            upgrade(d, vanish_once_upgrading)
        took = marks["failed"] - marks["started"]
        err = info.value
        assert (err.node, err.step) == (target, "upgrade")
        assert "within 3s" in err.message
        assert took <= 3.0 * SLACK, took
        assert d.world.recorder.entries("talos.vanished", node=target)
    finally:
        d.stop()


def test_health_checks_of_a_cluster_with_a_vanished_node_end_by_the_deadline(world, admin):
    from taltasks.talos import health

    topo = health.Topology(
        [n.ip for n in world.talos.control_planes], [n.ip for n in world.talos.nodes if not n.control_plane]
    )
    world.set_talos_faults("worker-2", vanished=True)
    started = time.monotonic()
    with deadline.within(2.0):
        checks = health.run_checks(admin, topo)
    assert time.monotonic() - started <= 2.0 * SLACK
    assert not all(c.ok for c in checks)
