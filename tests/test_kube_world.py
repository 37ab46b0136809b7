"""The simulated world: nodes, workload controllers and operators react like the real ones.

Assertions read the cluster through the official API (taltasks.kube readers over HTTPS)
and the simulator's own record; waits are on conditions with deadlines.
"""

# ruff: noqa: F811 - pytest fixtures imported from kubesim are redefined as parameters

from __future__ import annotations

import pytest
from kubesim import DEMO_SCENARIO, kube_ca, make_world, scenario_doc  # noqa: F401 - fixtures

from taltasks.errors import InputError
from taltasks.kube import ceph, cnpg, nodes
from taltasks.kube.client import connect
from taltasks.sim.kube.nodes import set_node_ready
from taltasks.sim.operators.scenario import parse_world

NODES = ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"]


def ceph_status(world):
    return ceph.parse_ceph_cluster(world.store.get("cephclusters.ceph.rook.io", "rook-ceph", "rook-ceph"))


def cnpg_status(world, name="postgres"):
    return cnpg.parse_cnpg_cluster(
        world.store.get("clusters.postgresql.cnpg.io", name, "database"), world.store.list("pods", "database")
    )


def test_settled_world_has_every_node_ready_and_operators_healthy(make_world):
    world = make_world()
    with connect(world.kubeconfig_path) as client:
        states = nodes.list_nodes(client)
        assert sorted(n.name for n in states) == NODES
        assert all(
            n.ready and n.kubelet_version == "v1.34.3" and n.os_image == "Talos (v1.11.5)" for n in states
        )
        assert {n.name: n.labels.get("topology.kubernetes.io/zone") for n in states}["worker-2"] == "zone-b"
        assert [n.name for n in states if n.control_plane] == ["cp-1", "cp-2", "cp-3"]
        [cc] = ceph.read_ceph_clusters(client)
        assert cc.health == "HEALTH_OK" and cc.phase == "Ready" and cc.last_checked is not None
        assert ceph.read_rook_budget_state(client).idle
        clusters = {c.name: c for c in cnpg.read_cnpg_clusters(client)}
        assert clusters["postgres"].healthy and clusters["postgres"].primary_node() == "worker-1"
        assert [i.node for i in clusters["immich"].pods] == ["worker-2", "worker-3"]
    # mirror pods of the control plane exist and the DaemonSet runs everywhere
    mirrors = [
        p
        for p in world.store.list("pods", "kube-system")
        if "kubernetes.io/config.mirror" in p["metadata"].get("annotations", {})
    ]
    assert len(mirrors) == 9
    ds = world.store.get("daemonsets.apps", "kube-proxy", "kube-system")["status"]
    assert ds["desiredNumberScheduled"] == ds["numberReady"] == 6


def test_osd_node_reboot_turns_ceph_warn_with_osd_down_then_ok(make_world):
    world = make_world()
    before = ceph_status(world).last_checked
    set_node_ready(world.store, "worker-2", False)
    warn = world.wait_for(lambda s: (c := ceph_status(world)).health == "HEALTH_WARN" and c, 5, "HEALTH_WARN")
    assert {"OSD_DOWN", "OSD_HOST_DOWN", "PG_DEGRADED"} <= warn.codes
    assert dict((c.code, c.message) for c in warn.checks)["OSD_DOWN"] == "1 osds down"
    assert warn.previous_health == "HEALTH_OK" and warn.last_changed is not None
    # Rook swapped its budgets: the draining host has none, the others are blocked
    budgets = ceph.parse_rook_budget_state(
        "rook-ceph",
        [p["metadata"]["name"] for p in world.store.list("poddisruptionbudgets.policy", "rook-ceph")],
        world.store.get("configmaps", "rook-ceph-pdbstatemap", "rook-ceph"),
    )
    assert budgets.draining_failure_domain == "worker-2"
    assert budgets.blocking_pdbs == ("rook-ceph-osd-host-worker-1", "rook-ceph-osd-host-worker-3")
    set_node_ready(world.store, "worker-2", True, kubelet_version="v1.35.0", os_image="Talos (v1.12.0)")
    back = world.wait_for(
        lambda s: (c := ceph_status(world)).health == "HEALTH_OK" and c, 5, "HEALTH_OK again"
    )
    assert back.codes == frozenset() and back.last_checked > before
    node = world.store.get("nodes", "worker-2")["status"]["nodeInfo"]
    assert (node["kubeletVersion"], node["osImage"]) == ("v1.35.0", "Talos (v1.12.0)")
    # the simulator's own account: WARN with OSD_DOWN came after worker-2 went down, OK after it returned
    rec = world.recorder
    down = rec.wait_for("node.ready", 1, node="worker-2", ready=False)
    warn_entry = rec.wait_for("ceph.health", 1, predicate=lambda e: "OSD_DOWN" in e["details"])
    up = rec.wait_for("node.ready", 1, predicate=lambda e: e.seq > down.seq, node="worker-2", ready=True)
    ok = rec.wait_for("ceph.health", 1, predicate=lambda e: e.seq > up.seq and e["health"] == "HEALTH_OK")
    assert down.seq < warn_entry.seq < up.seq < ok.seq
    world.wait_for(
        lambda s: (
            ceph.parse_rook_budget_state(
                "rook-ceph",
                [p["metadata"]["name"] for p in s.list("poddisruptionbudgets.policy", "rook-ceph")],
                s.get("configmaps", "rook-ceph-pdbstatemap", "rook-ceph"),
            ).idle
        ),
        5,
        "Rook PDBs idle",
    )


def test_mon_loss_reports_mon_down_then_quorum_loss(make_world):
    world = make_world()
    set_node_ready(world.store, "cp-1", False)
    warn = world.wait_for(lambda s: "MON_DOWN" in (c := ceph_status(world)).codes and c, 5, "MON_DOWN")
    assert dict((c.code, c.message) for c in warn.checks)["MON_DOWN"] == "1/3 mons down, quorum b,c"
    set_node_ready(world.store, "cp-2", False)
    err = world.wait_for(lambda s: (c := ceph_status(world)).health == "HEALTH_ERR" and c, 5, "HEALTH_ERR")
    assert err.codes == {"error"}


def test_cordoning_the_primary_node_switches_over(make_world):
    world = make_world()
    before = cnpg_status(world)
    assert (before.current_primary, before.primary_node(), before.timeline_id) == (
        "postgres-1",
        "worker-1",
        1,
    )
    with connect(world.kubeconfig_path) as client:
        assert nodes.cordon(client, "worker-1")
        switching = world.wait_for(
            lambda s: (c := cnpg_status(world)).phase == "Switchover in progress" and c, 5, "switchover"
        )
        assert switching.target_primary == "postgres-2" and not switching.ready
        after = world.wait_for(
            lambda s: (c := cnpg_status(world)).healthy and c.current_primary != "postgres-1" and c,
            5,
            "healthy after switchover",
        )
        assert (
            after.current_primary == "postgres-2" and after.timeline_id == 2 and after.ready_since is not None
        )
        roles = {p.name: p.role for p in after.pods}
        assert roles == {"postgres-1": "replica", "postgres-2": "primary", "postgres-3": "replica"}
        # the primary PDB now protects the new primary; the old one may be evicted
        [primary_pdb] = [
            p
            for p in world.store.list("poddisruptionbudgets.policy", "database")
            if p["metadata"]["name"] == "postgres-primary"
        ]
        assert primary_pdb["spec"] == {
            "selector": {"matchLabels": {"cnpg.io/cluster": "postgres", "cnpg.io/instanceRole": "primary"}},
            "minAvailable": 1,
        }
        assert cnpg_status(world, "immich").current_primary == "immich-1"  # not on worker-1: untouched
        nodes.uncordon(client, "worker-1")
    timelines = [e["timelineID"] for e in world.recorder.entries("cnpg.status", cluster="database/postgres")]
    assert timelines == sorted(timelines) and timelines[-1] == 2


def test_primary_lost_without_drain_fails_over(make_world):
    world = make_world()
    set_node_ready(world.store, "worker-1", False)
    failed_over = world.wait_for(
        lambda s: (c := cnpg_status(world)).current_primary != "postgres-1" and c, 5, "failover"
    )
    assert failed_over.timeline_id == 2 and failed_over.ready_instances == 2
    assert failed_over.phase == "Waiting for the instances to become active"
    set_node_ready(world.store, "worker-1", True)
    healed = world.wait_for(lambda s: (c := cnpg_status(world)).healthy and c, 5, "healthy again")
    assert healed.current_primary == failed_over.current_primary and healed.timeline_id == 2
    phases = [e["phase"] for e in world.recorder.entries("cnpg.status", cluster="database/postgres")]
    assert "Failing over" in phases


def test_maintenance_window_drops_the_replica_budget(make_world):
    world = make_world()

    def pdb_names(store):
        return sorted(p["metadata"]["name"] for p in store.list("poddisruptionbudgets.policy", "database"))

    assert pdb_names(world.store) == ["immich-primary", "postgres", "postgres-primary"]
    world.store.patch(
        "clusters.postgresql.cnpg.io",
        "postgres",
        {"spec": {"nodeMaintenanceWindow": {"inProgress": True, "reusePVC": True}}},
        namespace="database",
    )
    world.wait_for(lambda s: pdb_names(s) == ["immich-primary", "postgres-primary"], 5, "replica PDB removed")
    world.store.patch(
        "clusters.postgresql.cnpg.io",
        "postgres",
        {"spec": {"nodeMaintenanceWindow": {"inProgress": False}}},
        namespace="database",
    )
    world.wait_for(
        lambda s: pdb_names(s) == ["immich-primary", "postgres", "postgres-primary"], 5, "replica PDB back"
    )


def test_daemonset_pods_return_with_their_node_and_deployments_move(make_world):
    world = make_world()

    def web_nodes(store):
        return sorted(
            p["spec"].get("nodeName", "")
            for p in store.list("pods", "default", label_selector="app.kubernetes.io/name=web")
            if not p["metadata"].get("deletionTimestamp")
        )

    first = web_nodes(world.store)
    victim = first[0]
    set_node_ready(world.store, victim, False)
    assert not [p for p in world.store.list("pods", field_selector=f"spec.nodeName={victim}")]
    moved = world.wait_for(
        lambda s: (n := web_nodes(s)) and victim not in n and len(n) == 2 and n, 5, "web rescheduled"
    )
    assert victim not in moved
    ds = world.wait_for(
        lambda s: (
            (st := s.get("daemonsets.apps", "kube-proxy", "kube-system")["status"])["numberReady"] == 5 and st
        ),
        5,
        "DS shrunk",
    )
    # like the real DaemonSet controller: the unreachable:NoSchedule taint is not tolerated,
    # so the node drops out of the desired count while it is down
    assert ds["desiredNumberScheduled"] == 5 and "numberUnavailable" not in ds
    set_node_ready(world.store, victim, True)
    world.wait_for(
        lambda s: s.get("daemonsets.apps", "kube-proxy", "kube-system")["status"]["numberReady"] == 6,
        5,
        "DS back",
    )
    assert [
        p["spec"]["nodeName"]
        for p in world.store.list("pods", "kube-system", label_selector="app.kubernetes.io/name=kube-proxy")
    ].count(victim) == 1


def test_deployment_rollout_updates_status(make_world):
    world = make_world()
    world.store.patch(
        "deployments.apps",
        "web",
        {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}},
        namespace="default",
    )
    status = world.wait_for(
        lambda s: (
            (d := s.get("deployments.apps", "web", "default"))["status"].get("observedGeneration") == 2
            and d["status"].get("updatedReplicas") == 2
            and d["status"].get("readyReplicas") == 2
            and d["status"].get("replicas") == 2
            and d["status"]
        ),
        5,
        "rollout complete",
    )
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Available": "True",
        "Progressing": "True",
    }


def test_ceph_stuck_fault_keeps_warn_after_recovery(make_world):
    world = make_world(
        DEMO_SCENARIO
        + "faults:\n  - {kind: ceph-stuck, health: HEALTH_WARN, details: [OSD_DOWN]}\n  - {kind: pg-availability, trigger: first-disruption}\n"
    )
    set_node_ready(world.store, "worker-3", False)
    world.wait_for(
        lambda s: "PG_AVAILABILITY" in ceph_status(world).codes or ceph_status(world).codes == {"OSD_DOWN"},
        5,
        "fault active",
    )
    set_node_ready(world.store, "worker-3", True)
    world.wait_for(
        lambda s: s.get("daemonsets.apps", "kube-proxy", "kube-system")["status"]["numberReady"] == 6,
        5,
        "node back",
    )
    stuck = ceph_status(world)
    assert stuck.health == "HEALTH_WARN" and stuck.codes == {"OSD_DOWN"}
    first_checked = stuck.last_checked
    later = world.wait_for(
        lambda s: (c := ceph_status(world)).last_checked > first_checked and c, 5, "another poll"
    )
    assert later.health == "HEALTH_WARN"


def test_cnpg_never_healthy_from_start(make_world):
    world = make_world(
        DEMO_SCENARIO + "faults:\n  - {kind: cnpg-never-healthy, cluster: database/immich, trigger: start}\n",
        settle=False,
    )
    world.wait_for(lambda s: cnpg_status(world).healthy, 10, "postgres healthy")
    immich = world.wait_for(
        lambda s: (c := cnpg_status(world, "immich")).ready_instances == 2 and c, 10, "immich instances ready"
    )
    assert immich.phase == "Waiting for the instances to become active" and not immich.ready


def test_scenario_errors_name_file_and_line():
    text = """\
ceph:
  osds: {worker-1: [0], worker-9: [1]}
  mons: [cp-1]
cnpg:
  clusters:
    - {namespace: database, name: pg, instances: 3, nodes: [worker-1, worker-2]}
faults:
  - {kind: ceph-sticky}
"""
    with pytest.raises(InputError) as info:
        parse_world(scenario_doc(text, "tests/scenarios/bad.yaml"), NODES)
    err = info.value
    assert err.where == "tests/scenarios/bad.yaml:2"
    assert "worker-9" in err.message and "is not a node of this cluster" in err.message
    assert "bad.yaml:6" in err.message and "3 instances but only 2 nodes" in err.message
    assert "bad.yaml:8" in err.message and "unknown fault kind 'ceph-sticky'" in err.message
    assert "worker-1" in err.hint


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        (
            "ceph: {osds: {worker-1: [0]}, mons: [cp-1], recoverySeconds: -1}\n",
            "s.yaml:1",
            "recoverySeconds must be a number >= 0",
        ),
        (
            "workloads:\n  - {kind: StatefulSet, name: x}\n",
            "s.yaml:2",
            "workload kind 'StatefulSet' is not supported",
        ),
        (
            "workloads:\n  - {name: x, pdb: {minAvailable: 1, maxUnavailable: 1}}\n",
            "s.yaml:2",
            "exactly one of minAvailable and maxUnavailable",
        ),
        (
            "faults:\n  - {kind: cnpg-never-healthy, cluster: db/none}\n",
            "s.yaml:2",
            "no CNPG cluster 'db/none'",
        ),
        ("faults:\n  - {kind: pdb-blocks-forever, node: nowhere}\n", "s.yaml:2", "'nowhere' is not a node"),
        ("flux:\n  kustomizations: [{name: a}, {name: a}]\n", "s.yaml:2", "defined twice"),
        (
            "ceph:\n  osds: {worker-1: [0], worker-2: [0]}\n  mons: [cp-1]\n",
            "s.yaml:2",
            "OSD 0 is listed on both",
        ),
        ("kubernetes: {podStartSecs: 1}\n", "s.yaml:1", "unknown key 'podStartSecs'"),
    ],
)
def test_scenario_validation_table(text, where, fragment):
    with pytest.raises(InputError) as info:
        parse_world(scenario_doc(text, "s.yaml"), NODES)
    assert info.value.where == where
    assert fragment in info.value.message


def test_talos_faults_are_left_to_the_talos_side():
    parsed = parse_world(
        scenario_doc(
            "faults:\n  - {kind: node-never-returns, node: worker-1}\n  - {kind: pg-availability}\nceph: {osds: {worker-1: [0]}, mons: [cp-1]}\n"
        ),
        NODES,
    )
    assert [f.kind for f in parsed.faults] == ["pg-availability"]
