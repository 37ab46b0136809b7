"""The pure parts composed the way the upgrade executor will compose them, on a fake clock.

Not the executor (that needs the Talos and Kubernetes clients): a sketch of its loop over
the in-memory world — plan, preflight, per node pre gates → quorum guard → cordon
(journaled, on the cleanup stack) → "upgrade" → wait back (talos-node gate with the new
version and a new boot id) → uncordon → post gates from the uncordon. It checks that the
interfaces fit, that at most one node is ever down, and that gates add no time beyond
the reboot R and the window W per node: the pre gate after a post gate costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from gateworld import NODES, ceph_obj, healthy_world, machine, node_obj

from taltasks.gates.checks import GateContext
from taltasks.gates.clock import FakeClock
from taltasks.gates.engine import GateEngine, GateFailed
from taltasks.gates.etcd import leader_hostname, member_health
from taltasks.gates.sources import ResourceQuery
from taltasks.model.policy import default_policy
from taltasks.workflows.cleanup import CleanupStack
from taltasks.workflows.journal import Journal, journal_path, read_journal
from taltasks.workflows.plan import ObservedNode, plan_upgrade
from taltasks.workflows.quorum import require_quorum

R, W, HEARTBEAT = 40.0, 30.0, 5.0
NEW = "v1.12.2"


@dataclass(frozen=True)
class Desired:
    """Shaped like the model's Node."""

    hostname: str
    ip: str
    control_plane: bool
    talos_version: str = NEW
    installer_image: str = f"factory.talos.dev/installer/demo:{NEW}"


class World:
    """The in-memory cluster plus the effects of cordon and upgrade, on the fake clock.
    Rook reports every HEARTBEAT seconds and notices an OSD going or coming at once."""

    def __init__(self, clock: FakeClock, *, never_returns: str | None = None) -> None:
        self.clock = clock
        self.kube, self.talos = healthy_world(clock)
        self.never_returns = never_returns
        self.down: set[str] = set()
        self.max_down = 0
        self.ceph_details: dict[str, str] = {}
        self.changed_at = -86400.0
        self._heartbeat()

    def _ceph(self) -> None:
        health = "HEALTH_WARN" if self.ceph_details else "HEALTH_OK"
        changed = self.changed_at - self.clock.elapsed
        self.kube.put(
            ceph_obj(self.clock, health=health, details=dict(self.ceph_details), checked=0.0, changed=changed)
        )

    def _heartbeat(self) -> None:
        self._ceph()
        self.clock.after(HEARTBEAT, self._heartbeat)

    def set_cordon(self, host: str, cordoned: bool) -> None:
        self.kube.patch("v1", "Node", host, {"spec": {"unschedulable": True if cordoned else None}})

    def upgrade(self, host: str) -> None:
        node = next(n for n in NODES if n.hostname == host)
        self.down.add(host)
        self.max_down = max(self.max_down, len(self.down))
        self.talos.set_reachable(node.ip, False)
        self.kube.put(node_obj(self.clock, host, ready="False", since=0.0, cordoned=True))
        self.ceph_details, self.changed_at = {"OSD_DOWN": "1 osds down"}, self.clock.elapsed
        self._ceph()
        if host != self.never_returns:
            self.clock.after(R, lambda: self._back(node))

    def _back(self, node) -> None:
        self.down.discard(node.hostname)
        self.talos.set_machine(machine(node, version=NEW, boot="boot-b"))
        self.talos.set_reachable(node.ip, True)
        self.kube.put(node_obj(self.clock, node.hostname, since=0.0, cordoned=True))
        self.ceph_details, self.changed_at = {}, self.clock.elapsed
        self._ceph()


def observe(world: World) -> dict[str, ObservedNode]:
    leader = leader_hostname(world.talos.etcd_views.values())
    return {
        n.hostname: ObservedNode(
            n.hostname, world.talos.machine(n.ip).version, etcd_leader=n.hostname == leader
        )
        for n in NODES
    }


def run(world: World, engine: GateEngine, root, policy) -> list[str]:
    desired = [Desired(n.hostname, n.ip, n.control_plane) for n in NODES]
    plan = plan_upgrade(desired, observe(world), policy)
    plan.require_executable()
    order = []
    with Journal.open(root, "upgrade-all") as journal, CleanupStack(journal) as cleanup:
        engine.wait(policy.preflight, GateContext(NODES, stage="preflight"))
        for step in plan.actions:
            node = next(n for n in NODES if n.hostname == step.hostname)
            journal.node(node.hostname, "started")
            engine.wait(policy.pre, GateContext(NODES, node, stage="pre"))
            if node.control_plane:
                views = {n.hostname: world.talos.etcd_views.get(n.ip) for n in NODES if n.control_plane}
                require_quorum(member_health(views), node.hostname)
            baseline = engine.baseline(policy.post, GateContext(NODES, node, stage="pre"))
            boot = world.talos.machine(node.ip).boot_id
            cordon = cleanup.push(
                "cordon",
                node.hostname,
                lambda h=node.hostname: world.set_cordon(h, False),
                data={"node": node.hostname},
                node=node.hostname,
            )
            world.set_cordon(node.hostname, True)
            world.upgrade(node.hostname)
            back = GateContext(NODES, node, stage="reboot", expected_version=NEW, previous_boot_id=boot)
            engine.wait(policy.reboot_gates(), back)
            cleanup.undo(cordon)
            post = GateContext(
                NODES,
                node,
                stage="post",
                expected_version=NEW,
                previous_boot_id=boot,
                not_before=world.clock.time(),
                baseline=baseline,
            )
            engine.wait(policy.post, post)
            journal.node(node.hostname, "done")
            order.append(node.hostname)
    return order


def policy_for_sketch():
    base = default_policy()
    fast = {
        stage: tuple(replace(g, window=W if g.window else 0.0) for g in base.gates(stage))
        for stage in ("preflight", "pre", "post")
    }
    return replace(base, **fast)


def test_rolling_upgrade_sketch_costs_only_reboot_and_window_per_node(tmp_path):
    clock = FakeClock()
    world = World(clock)
    engine = GateEngine(world.kube, world.talos, clock=clock, poll_interval=1.0, resync_interval=5.0)
    order = run(world, engine, tmp_path, policy_for_sketch())
    assert order == ["cp1", "cp2", "cp3", "w1", "w2", "w3"]  # cp3 leads etcd: last of the control planes
    assert world.max_down == 1
    assert all(world.talos.machine(n.ip).version == NEW for n in NODES)
    # preflight waits one Rook heartbeat for a second fresh sample; then per node exactly R
    # until it is back and W from the uncordon — every pre gate passes at once
    assert clock.elapsed == pytest.approx(HEARTBEAT + len(NODES) * (R + W))
    again = run(world, engine, tmp_path, policy_for_sketch())
    assert again == []  # everything at the desired version: nothing to do


def test_a_node_that_never_returns_stops_the_run_and_is_uncordoned(tmp_path):
    clock = FakeClock()
    world = World(clock, never_returns="cp2")
    engine = GateEngine(world.kube, world.talos, clock=clock, poll_interval=1.0, resync_interval=5.0)
    with pytest.raises(GateFailed) as info:
        run(world, engine, tmp_path, policy_for_sketch())
    assert info.value.where == "reboot gates of cp2" and "connection refused" in info.value.message
    assert world.talos.machine("127.0.0.13").version == "v1.12.1"  # cp3 was never touched
    cp2 = world.kube.get(ResourceQuery("v1", "Node", name="cp2"))
    assert "unschedulable" not in cp2["spec"]  # the cleanup stack uncordoned it
    state = read_journal(journal_path(tmp_path, "upgrade-all"))
    assert state.status == "failed" and state.done_nodes == ["cp1"] and state.in_progress == ["cp2"]
    assert state.pending == []
