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
from upgrade_support import (
    NEW,
    OLD,
    demo_cluster,
    health_at,
    most_not_ready,
    node_starts,
    our_writes,
)

from taltasks.events import Collector, Emitter
from taltasks.model import load_cluster
from taltasks.model.policy import load_policy
from taltasks.workflows.journal import journal_path, read_journal
from taltasks.workflows.upgrade import OPERATION, UpgradeOptions, UpgradeStopped, run_upgrade
from testpaths import REPO_ROOT
from waiting import wait_until

HEALTHY = "Cluster in healthy state"
FLUX_SUSPENDED_BY_US = {"cluster-apps", "cilium", "rook-ceph-cluster"}


def upgrade(d, **options):
    """run_upgrade as the task calls it; returns (result, events)."""
    events = Collector()
    talos, kube = d.connect()
    try:
        result = run_upgrade(
            d.repo,
            load_cluster(d.repo),
            load_policy(d.repo),
            talos,
            kube,
            UpgradeOptions(poll_interval=0.1, resync_interval=0.5, **options),
            emitter=Emitter(events),
        )
    finally:
        talos.close()
        kube.close()
    return result, events


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
    assert all(e["preserve"] for e in rec.entries("talos.upgrade"))
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
    assert d.world.kube.errors == []

    # at once again: nothing to do, nothing touched
    mark = len(rec.entries())
    again, events = upgrade(d)
    assert again.nothing_to_do and again.upgraded == []
    summary = events.of("summary")[-1].message
    assert summary == "nothing to do: all 6 node(s) already at the desired version"
    assert our_writes(rec, mark) == []
