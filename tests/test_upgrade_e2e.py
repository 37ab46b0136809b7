"""Rolling upgrades end to end: the executor against a whole simulated cluster.

Every test builds the demo repository's cluster (3 control planes, 3 workers with Ceph
OSDs, two CNPG clusters, Flux, a tuppr TalosUpgrade) on its own loopback /24, bumps
``talosVersion``, and checks claims against the simulator's own record — not against what
the tool says it did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from taltasks.errors import OperationFailed
from taltasks.gates.engine import GateFailed
from taltasks.model import load_cluster
from taltasks.model.policy import load_policy
from taltasks.workflows.journal import journal_path, read_journal
from taltasks.workflows.upgrade import OPERATION, UpgradeOptions, UpgradeStopped
from testpaths import REPO_ROOT
from upgrade_support import (
    NEW,
    demo_cluster,
    health_at,
    most_not_ready,
    node_starts,
    our_writes,
    upgrade,
)

HEALTHY = "Cluster in healthy state"
FLUX_SUSPENDED_BY_US = {"cluster-apps", "cilium", "rook-ceph-cluster"}


def plan_order(d) -> list[str]:
    from taltasks.gates.talossource import ApiTalosSource
    from taltasks.workflows.upgrade import plan_for

    talos, kube = d.connect()
    with talos:
        plan = plan_for(load_cluster(d.repo), load_policy(d.repo), ApiTalosSource(talos), UpgradeOptions())
    kube.close()
    return [s.hostname for s in plan.actions]


def journal(d):
    return read_journal(journal_path(d.repo, OPERATION))


@pytest.fixture
def cluster(tmp_path, loopback_subnet):
    d = demo_cluster(tmp_path, loopback_subnet)
    yield d
    d.stop()


@pytest.mark.slow
def test_upgrade_all_rolls_every_node_safely_then_a_rerun_does_nothing(cluster):
    d, rec = cluster, cluster.recorder
    order = plan_order(d)
    etcd = d.world.talos.etcd
    assert order[2] == etcd.members[etcd.leader].hostname  # the etcd leader goes last of the control planes
    assert order[3:] == ["worker-1", "worker-2", "worker-3"]

    result, events = upgrade(d)

    assert result.upgraded == order
    assert d.versions() == dict.fromkeys(d.versions(), NEW)
    assert [e["node"] for e in rec.entries("talos.upgrade")] == order  # one Upgrade per node, in order
    # the legacy Upgrade (1.11 nodes) goes without `preserve`, so Talos's own etcd check runs
    upgrades = rec.entries("talos.upgrade")
    assert not any(e["preserve"] for e in upgrades)
    assert [e["etcd_checked"] for e in upgrades] == [True, True, True, False, False, False]
    assert most_not_ready(rec) == 1
    # no node started while Ceph or a CNPG cluster was unhealthy (the simulator's own view)
    starts = node_starts(rec)
    assert list(starts) == order
    for node, seq in starts.items():
        ceph, cnpg = health_at(rec, seq)
        assert ceph == "HEALTH_OK", (node, ceph)
        assert len(cnpg) == 2, cnpg
        for ref, s in cnpg.items():
            assert s["phase"] == HEALTHY and s["readyInstances"] == s["instances"], (node, ref, s)
            assert s["currentPrimary"] == s["targetPrimary"], (node, ref, s)
    # Flux suspended from before the first node to after the last, exactly what was active
    flux = rec.entries("flux.suspend")
    first, last = rec.entries("talos.upgrade")[0].seq, rec.entries("talos.upgrade")[-1].seq
    suspended = [e for e in flux if e["suspended"]]
    resumed = [e for e in flux if not e["suspended"]]
    assert {e["name"] for e in suspended} == FLUX_SUSPENDED_BY_US == {e["name"] for e in resumed}
    assert max(e.seq for e in suspended) < first and min(e.seq for e in resumed) > last
    store = d.world.kube.store
    assert store.get("kustomizations.kustomize.toolkit.fluxcd.io", "tuppr-upgrades", "flux-system")["spec"][
        "suspend"
    ]
    assert not store.get("helmreleases.helm.toolkit.fluxcd.io", "cilium", "kube-system")["spec"]["suspend"]
    # tuppr paused for the run and resumed after it; nothing left cordoned
    tuppr = [e for e in rec.entries("kube.api", resource="talosupgrades.tuppr.home-operations.com")]
    assert [e["verb"] for e in tuppr] == ["patch", "patch"] and tuppr[0].seq < first < last < tuppr[1].seq
    tuppr_meta = store.get("talosupgrades.tuppr.home-operations.com", "talos")["metadata"]
    assert "tuppr.home-operations.com/suspend" not in (tuppr_meta.get("annotations") or {})
    assert not any(n["spec"].get("unschedulable") for n in store.list("nodes"))
    # an etcd snapshot was taken before the first control plane went down
    [snapshot] = rec.entries("etcd.snapshot")
    assert snapshot.seq < first and os.path.getsize(result.snapshot) == snapshot["size"]
    state = journal(d)
    assert state.status == "completed" and state.done_nodes == order and state.pending == []
    # the events drive the live view: every node row ends done
    from taltasks.ui.live import LiveModel

    model = LiveModel()
    for event in events.events:
        model.apply(event)
    assert {n: r.state for n, r in model.nodes.items()} == dict.fromkeys(order, "done")
    import io

    from rich.console import Console

    from taltasks.ui.live import render

    screen = io.StringIO()
    Console(file=screen, width=160).print(render(model))
    assert all(name in screen.getvalue() for name in order) and "post gates" not in screen.getvalue()
    assert d.world.kube.errors == []

    # at once again: nothing to do, nothing touched
    mark = len(rec.entries())
    again, events = upgrade(d)
    assert again.nothing_to_do and again.upgraded == []
    summary = events.of("summary")[-1].message
    assert summary == "nothing to do: all 6 node(s) already at the desired version"
    assert our_writes(rec, mark) == []


# ---- faults -------------------------------------------------------------------------------------


def assert_cleaned_up(d):
    """Nothing the run changed temporarily is left: no cordon, Flux and tuppr as before."""
    store = d.world.kube.store
    assert not any(n["spec"].get("unschedulable") for n in store.list("nodes"))
    for kind, ns, name in (
        ("kustomizations.kustomize.toolkit.fluxcd.io", "flux-system", "cluster-apps"),
        ("helmreleases.helm.toolkit.fluxcd.io", "kube-system", "cilium"),
    ):
        assert not store.get(kind, name, ns)["spec"].get("suspend"), name
    assert store.get("kustomizations.kustomize.toolkit.fluxcd.io", "tuppr-upgrades", "flux-system")["spec"][
        "suspend"
    ]
    meta = store.get("talosupgrades.tuppr.home-operations.com", "talos")["metadata"]
    assert "tuppr.home-operations.com/suspend" not in (meta.get("annotations") or {})
    assert journal(d).pending == []


def upgraded_nodes(rec) -> list[str]:
    return [e["node"] for e in rec.entries("talos.upgrade")]


@pytest.mark.slow
def test_a_node_that_never_returns_stops_the_run_and_resume_completes_after_the_fault_clears(
    tmp_path, loopback_subnet
):
    d = demo_cluster(tmp_path, loopback_subnet, reboot="2s")
    try:
        rec = d.recorder
        order = plan_order(d)
        stuck = order[1]
        d.world.set_talos_faults(stuck, never_returns=True)
        with pytest.raises(UpgradeStopped) as info:
            upgrade(d)
        err = info.value
        assert (err.node, err.step, err.exit_code) == (stuck, "upgrade", 4)
        assert "did not come back running and ready within 2s" in err.message
        assert "run `invoke talos.upgrade-all` again to resume (1 node(s) done, 5 left)" in err.hint
        assert upgraded_nodes(rec) == order[:2]  # nothing after the stuck node was touched
        assert_cleaned_up(d)
        state = journal(d)
        assert (state.status, state.done_nodes, state.in_progress) == ("failed", order[:1], [stuck])

        def clear_once_waiting(event):  # the fault clears while the resumed run waits for the node
            if event.kind == "step.started" and event.data.get("step") == "resume":
                d.world.set_talos_faults(stuck, never_returns=False)

        result, events = upgrade(d, clear_once_waiting)
        assert result.resumed == "failed" and result.upgraded == order[2:]
        resumed = [e for e in events.of("step.done") if e.data.get("step") == "resume"]
        assert [e.node for e in resumed] == [stuck]  # waited for it to come back…
        assert stuck in [e.node for e in events.of("node.skipped")]  # …then skipped it: already upgraded
        assert upgraded_nodes(rec) == order  # the stuck node was not sent a second Upgrade
        assert d.versions() == dict.fromkeys(d.versions(), NEW)
        assert journal(d).status == "completed"
        assert_cleaned_up(d)
    finally:
        d.stop()


def test_ceph_stuck_in_health_warn_stops_at_the_gate_deadline_with_the_last_value(tmp_path, loopback_subnet):
    stuck = {"kind": "ceph-stuck", "health": "HEALTH_WARN", "details": ["OSD_DOWN"]}
    d = demo_cluster(tmp_path, loopback_subnet, faults=[stuck], ceph="2s")
    try:
        order = plan_order(d)
        with pytest.raises(UpgradeStopped) as info:
            upgrade(d)
        err = info.value
        assert (err.node, err.step) == (order[0], "post-gates")
        assert "gate ceph did not pass within 2s" in err.message
        assert "last seen: HEALTH_WARN: OSD_DOWN" in err.message
        assert any(v.startswith("HEALTH_WARN: OSD_DOWN") for v in err.last_values.values()), err.last_values
        assert upgraded_nodes(d.recorder) == order[:1]
        assert_cleaned_up(d)
        # that node is at its version now: asking for it again has nothing to do, and says so
        again, events = upgrade(d, only=(order[0],))
        assert again.nothing_to_do and again.resumed == "failed"
        assert (
            events.of("summary")[-1].message == "nothing to do: all 1 node(s) already at the desired version"
        )
        assert journal(d).status == "completed"  # the stopped run's journal went to the history
    finally:
        d.stop()


def test_a_pdb_that_blocks_the_drain_stops_and_uncordons(tmp_path, loopback_subnet):
    blocker = {
        "kind": "pdb-blocks-forever",
        "namespace": "default",
        "name": "critical-app",
        "node": "worker-1",
    }
    d = demo_cluster(tmp_path, loopback_subnet, faults=[blocker], drain="1s")
    try:
        rec = d.recorder
        with pytest.raises(UpgradeStopped) as info:
            upgrade(d, only=("worker-1",))
        err = info.value
        assert (err.node, err.step) == ("worker-1", "drain")
        assert "blocked by PodDisruptionBudget default/critical-app" in err.message
        assert rec.entries("kube.api", resource="nodes", name="worker-1", verb="patch")  # it was cordoned…
        assert_cleaned_up(d)  # …and is not any more
        assert upgraded_nodes(rec) == []
    finally:
        d.stop()


def test_an_unhealthy_etcd_member_refuses_control_plane_upgrades_and_force_skips_only_that(
    tmp_path, loopback_subnet
):
    d = demo_cluster(tmp_path, loopback_subnet, talos_faults={"cp-2": {"etcdUnhealthy": True}}, gate="1s")
    try:
        rec = d.recorder
        with pytest.raises(OperationFailed) as info:
            upgrade(d)
        err = info.value
        assert "refusing to upgrade control plane" in err.message
        assert "unhealthy now: cp-2" in err.message and "nothing was changed" in err.message
        assert "--force skips only this guard" in err.hint
        assert our_writes(rec) == []
        # --force skips the guard, not the etcd gate: preflight still stops it
        with pytest.raises(GateFailed) as info:
            upgrade(d, force=True)
        assert info.value.where == "preflight gates"
        assert "cp-2" in info.value.message and "etcd" in info.value.message
        assert our_writes(rec) == []
    finally:
        d.stop()


@pytest.mark.slow
def test_sigint_mid_run_cleans_up_keeps_the_journal_consistent_and_resume_completes(
    tmp_path, loopback_subnet
):
    d = demo_cluster(tmp_path, loopback_subnet)
    try:
        rec = d.recorder
        order = plan_order(d)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from invoke.main import program; program.run()",
                "-r",
                str(REPO_ROOT),
                "talos.upgrade-all",
                *d.args(),
                "--json",
            ],
            cwd=d.repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            rec.wait_for("talos.upgrade", 60, node=order[1])
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        events = [json.loads(line) for line in out.splitlines()]
        undone = {
            e["data"]["change_kind"]
            for e in events
            if e["kind"] == "cleanup" and "change_kind" in e.get("data", {})
        }
        assert undone == {"cordon", "flux-suspend", "tuppr-pause"}
        state = journal(d)
        assert (state.status, state.done_nodes, state.in_progress) == ("interrupted", order[:1], [order[1]])
        assert_cleaned_up(d)

        result, _ = upgrade(d)
        assert result.resumed == "interrupted" and result.upgraded == order[2:]
        assert upgraded_nodes(rec) == order  # every node upgraded exactly once
        assert d.versions() == dict.fromkeys(d.versions(), NEW)
        assert_cleaned_up(d)
    finally:
        d.stop()
