"""Each gate kind's predicates over observed objects: tables of cases, no servers."""

from __future__ import annotations

import pytest
from gateworld import (
    MEMBERS,
    NODES,
    ceph_obj,
    cnpg_obj,
    ctx,
    etcd_view,
    gate,
    healthy_world,
    node_obj,
    pdb_obj,
    pdb_state,
    pod_obj,
)

from taltasks.gates.checks import ALWAYS, parse_time
from taltasks.gates.clock import FakeClock
from taltasks.gates.etcd import leader_hostname, member_health
from taltasks.gates.memory import MemoryKube
from taltasks.gates.registry import OBSERVERS
from taltasks.gates.sources import EtcdMember, Sources
from taltasks.model.gatekinds import KINDS


def failing(kind_gate, kube, talos, context, clock) -> dict[str, str]:
    checks = OBSERVERS[kind_gate.kind].observe(kind_gate, Sources(kube, talos), context, clock.time())
    return {c.key: c.observed for c in checks if not c.ok}


@pytest.fixture
def world():
    clock = FakeClock()
    kube, talos = healthy_world(clock)
    return clock, kube, talos


def test_every_policy_kind_has_an_observer_and_back():
    assert set(KINDS) == set(OBSERVERS)


@pytest.mark.parametrize("kind", ["talos-node", "etcd", "kube-node", "ceph", "cnpg"])
def test_healthy_cluster_passes_every_default_gate(world, kind):
    clock, kube, talos = world
    assert failing(gate(kind), kube, talos, ctx(), clock) == {}


# ---- talos-node --------------------------------------------------------------------------

TALOS_CASES = [
    # (machine changes on w1, context kwargs, expected failing keys)
    ({}, {}, set()),
    ({"stage": "rebooting", "ready": False}, {}, {"talos w1 stage", "talos w1 ready"}),
    ({"stage": "running", "ready": False}, {}, {"talos w1 ready"}),
    ({"version": "v1.12.1"}, {"expected_version": "v1.12.2"}, {"talos w1 version"}),
    ({"version": "1.12.2"}, {"expected_version": "v1.12.2"}, set()),
    ({}, {"previous_boot_id": "w1-boot-a"}, {"talos w1 rebooted"}),
    ({"boot_id": "w1-boot-b"}, {"previous_boot_id": "w1-boot-a"}, set()),
]


@pytest.mark.parametrize(("changes", "kw", "expected"), TALOS_CASES)
def test_talos_node(world, changes, kw, expected):
    clock, kube, talos = world
    if changes:
        talos.update_machine("127.0.0.21", **changes)
    assert set(failing(gate("talos-node"), kube, talos, ctx("post", "w1", **kw), clock)) == expected


def test_talos_node_unreachable_is_a_failed_check_with_the_error(world):
    clock, kube, talos = world
    talos.set_reachable("127.0.0.21", False)
    seen = failing(gate("talos-node"), kube, talos, ctx("post", "w1"), clock)
    assert seen == {"talos w1 reachable": "127.0.0.21:50000: connection refused"}


def test_talos_node_scope_all_without_a_target(world):
    clock, kube, talos = world
    talos.update_machine("127.0.0.13", stage="booting", ready=False)
    assert "talos cp3 stage" in failing(gate("talos-node"), kube, talos, ctx("preflight"), clock)
    assert failing(gate("talos-node"), kube, talos, ctx("post", "w1"), clock) == {}


# ---- etcd -------------------------------------------------------------------------------


def _missing_cp3():
    return MEMBERS[:2]


ETCD_CASES = [
    ("healthy", {}, set()),
    ("member unhealthy", {"cp2": {"healthy": False}}, {"etcd cp2 healthy"}),
    ("service stopped", {"cp2": {"state": "Finished", "healthy": False}}, {"etcd cp2 healthy"}),
    ("alarm errors", {"cp1": {"errors": ("NOSPACE",)}}, {"etcd cp1 healthy"}),
    (
        "member missing everywhere",
        {n: {"members": MEMBERS[:2]} for n in ("cp1", "cp2", "cp3")},
        {"etcd members"},
    ),
    ("lists differ", {"cp3": {"members": MEMBERS[:2]}}, {"etcd consistent"}),
    (
        "learner",
        {
            n: {"members": (*MEMBERS[:2], EtcdMember(MEMBERS[2].id, "cp3", True))}
            for n in ("cp1", "cp2", "cp3")
        },
        {"etcd learners"},
    ),
    ("leaders disagree", {"cp1": {"leader": MEMBERS[0].id}}, {"etcd leader"}),
]


@pytest.mark.parametrize(("label", "changes", "expected"), ETCD_CASES, ids=[c[0] for c in ETCD_CASES])
def test_etcd(world, label, changes, expected):
    clock, kube, talos = world
    for host, kw in changes.items():
        node = next(n for n in NODES if n.hostname == host)
        talos.set_etcd(etcd_view(node, **kw))
    assert set(failing(gate("etcd"), kube, talos, ctx(), clock)) == expected


def test_etcd_unreachable_control_plane_fails_and_helpers_agree(world):
    clock, kube, talos = world
    talos.set_reachable("127.0.0.12", False)
    assert set(failing(gate("etcd"), kube, talos, ctx(), clock)) == {"etcd cp2 reachable"}
    views = {
        n.hostname: (talos.etcd_views[n.ip] if n.ip not in talos.unreachable else None) for n in NODES[:3]
    }
    health = {m.hostname: m.healthy for m in member_health(views)}
    assert health == {"cp1": True, "cp2": False, "cp3": True}
    assert leader_hostname(v for v in views.values() if v) == "cp3"


# ---- kube-node --------------------------------------------------------------------------


def test_kube_node_ready_since_comes_from_the_kubelet(world):
    clock, kube, talos = world
    kube.put(node_obj(clock, "w2", since=-12.0))
    checks = OBSERVERS["kube-node"].observe(gate("kube-node"), Sources(kube, talos), ctx(), clock.time())
    ready = next(c for c in checks if c.key == "node w2 Ready")
    assert ready.ok and ready.since == pytest.approx(clock.time() - 12, abs=1)


@pytest.mark.parametrize(
    ("obj_kw", "expected"),
    [
        ({"ready": "False"}, {"node w2 Ready": "Ready=False (KubeletReady)"}),
        ({"ready": "Unknown"}, {"node w2 Ready": "Ready=Unknown (KubeletReady)"}),
        ({"cordoned": True}, {"node w2 schedulable": "cordoned"}),
    ],
)
def test_kube_node_failures(world, obj_kw, expected):
    clock, kube, talos = world
    kube.put(node_obj(clock, "w2", **obj_kw))
    assert failing(gate("kube-node"), kube, talos, ctx(), clock) == expected


def test_kube_node_missing_and_scope_node(world):
    clock, kube, talos = world
    kube.delete("v1", "Node", "w3")
    assert failing(gate("kube-node"), kube, talos, ctx(), clock) == {"node w3 registered": "not registered"}
    assert failing(gate("kube-node", scope="node"), kube, talos, ctx("post", "w1"), clock) == {}
    kube.put(node_obj(clock, "w1", cordoned=True))
    assert failing(gate("kube-node", scope="node"), kube, talos, ctx("post", "w1"), clock) == {
        "node w1 schedulable": "cordoned"
    }
    unschedulable_ok = gate("kube-node", scope="node", schedulable=False)
    assert failing(unschedulable_ok, kube, talos, ctx("post", "w1"), clock) == {}


# ---- ceph -------------------------------------------------------------------------------

CEPH_CASES = [
    ("ok", {}, {}, set()),
    ("warn not allowed", {"health": "HEALTH_WARN", "details": {"OSD_FLAGS": "noout set"}}, {}, {"health"}),
    (
        "warn allowed",
        {"health": "HEALTH_WARN", "details": {"OSD_FLAGS": "noout set"}},
        {"allow": ("OSD_FLAGS",)},
        set(),
    ),
    (
        "forbidden code never allowed",
        {"health": "HEALTH_WARN", "details": {"OSD_DOWN": "1 osds down", "OSD_FLAGS": "noout"}},
        {"allow": ("OSD_DOWN", "OSD_FLAGS")},
        {"health"},
    ),
    (
        "PG_AVAILABILITY as WARN",
        {"health": "HEALTH_WARN", "details": {"PG_AVAILABILITY": "64 pgs stale"}},
        {"allow": ("PG_AVAILABILITY",)},
        {"health"},
    ),
    (
        "nearfull",
        {"health": "HEALTH_WARN", "details": {"OSD_NEARFULL": "1 nearfull osd"}},
        {"allow": ("OSD_NEARFULL",)},
        {"health"},
    ),
    ("stale status", {"checked": -400.0}, {}, {"fresh"}),
    ("short interval makes 20s stale", {"checked": -20.0, "interval": "5s"}, {}, {"fresh"}),
    ("explicit staleAfter", {"checked": -20.0, "interval": "5s"}, {"staleAfter": 60.0}, set()),
    ("phase failure", {"phase": "Failure"}, {}, {"phase"}),
    ("progressing is fine", {"phase": "Progressing"}, {}, set()),
    ("no health yet", {"health": None}, {}, {"health"}),
]


@pytest.mark.parametrize(
    ("label", "obj_kw", "params", "expected"), CEPH_CASES, ids=[c[0] for c in CEPH_CASES]
)
def test_ceph(world, label, obj_kw, params, expected):
    clock, kube, talos = world
    obj = ceph_obj(clock, **{k: v for k, v in obj_kw.items() if k != "health" or v is not None})
    if "health" in obj_kw and obj_kw["health"] is None:
        del obj["status"]["ceph"]["health"]
    kube.put(obj)
    got = failing(gate("ceph", **params), kube, talos, ctx(), clock)
    assert {k.removeprefix("CephCluster rook-ceph/rook-ceph ") for k in got} == expected


def test_ceph_last_value_names_codes_and_messages(world):
    clock, kube, talos = world
    kube.put(
        ceph_obj(
            clock, health="HEALTH_WARN", details={"OSD_DOWN": "1 osds down", "OSD_HOST_DOWN": "1 host down"}
        )
    )
    seen = failing(gate("ceph"), kube, talos, ctx(), clock)
    assert (
        seen["CephCluster rook-ceph/rook-ceph health"]
        == "HEALTH_WARN: OSD_DOWN (1 osds down); OSD_HOST_DOWN (1 host down)"
    )


@pytest.mark.parametrize(
    ("pdbs", "draining", "expected"),
    [
        (["rook-ceph-osd"], "", None),
        (
            ["rook-ceph-osd-host-w2", "rook-ceph-osd-host-w3"],
            "w1",
            "draining failure domain w1; blocking PDBs rook-ceph-osd-host-w2, rook-ceph-osd-host-w3; default PDB rook-ceph-osd absent",
        ),
        (["rook-ceph-osd", "rook-ceph-osd-host-w3"], "", "blocking PDBs rook-ceph-osd-host-w3"),
        (["rook-ceph-osd"], "w2", "draining failure domain w2"),
    ],
)
def test_ceph_rook_pdb_state(pdbs, draining, expected):
    clock = FakeClock()
    kube = MemoryKube([ceph_obj(clock), pdb_state(draining), *(pdb_obj(p) for p in pdbs)])
    got = failing(gate("ceph"), kube, None, ctx(), clock)
    assert got.get("CephCluster rook-ceph/rook-ceph rook pdbs") == expected
    # without managed PDBs the state is not looked at
    kube.put(ceph_obj(clock, manage_pdbs=False))
    assert failing(gate("ceph"), kube, None, ctx(), clock) == {}


def test_ceph_abort_codes_are_fatal_and_since_tracks_last_changed(world):
    clock, kube, talos = world
    kube.put(ceph_obj(clock, health="HEALTH_ERR", details={"PG_DAMAGED": "1 pg inconsistent"}))
    checks = OBSERVERS["ceph"].observe(gate("ceph"), Sources(kube, talos), ctx(), clock.time())
    assert next(c for c in checks if c.name == "health").fatal
    kube.put(ceph_obj(clock, changed=-30.0))
    health = next(
        c
        for c in OBSERVERS["ceph"].observe(gate("ceph"), Sources(kube, talos), ctx(), clock.time())
        if c.name == "health"
    )
    assert health.ok and health.since == pytest.approx(clock.time() - 30, abs=1)
    assert health.sample == parse_time(clock.iso(-5.0))


def test_ceph_absent_passes_unless_required():
    clock = FakeClock()
    kube = MemoryKube([node_obj(clock, "w1")])  # Rook's CRD is not served at all
    assert failing(gate("ceph"), kube, None, ctx(), clock) == {}
    assert failing(gate("ceph", required=True), kube, None, ctx(), clock) == {
        "ceph present": "CephCluster is not served (Rook not installed?)"
    }
    kube.serve("ceph.rook.io/v1", "CephCluster")
    assert failing(gate("ceph", name="rook-ceph"), kube, None, ctx(), clock) == {"ceph present": "not found"}


def test_ceph_tolerates_baseline_codes_only_when_asked(world):
    clock, kube, talos = world
    kube.put(ceph_obj(clock, health="HEALTH_WARN", details={"POOL_NO_REDUNDANCY": "1 pool has no replicas"}))
    g = gate("ceph", tolerateBaseline=True)
    base = {g.id: OBSERVERS["ceph"].baseline(g, Sources(kube, talos), ctx())}
    assert base == {"ceph": {"rook-ceph/rook-ceph": ["POOL_NO_REDUNDANCY"]}}
    assert failing(g, kube, talos, ctx(baseline=base), clock) == {}
    assert "CephCluster rook-ceph/rook-ceph health" in failing(
        gate("ceph"), kube, talos, ctx(baseline=base), clock
    )


# ---- cnpg -------------------------------------------------------------------------------

CNPG_CASES = [
    ("healthy", {}, set()),
    ("switchover", {"phase": "Switchover in progress", "target": "app-db-2"}, {"phase", "Ready", "primary"}),
    (
        "replica down",
        {"ready": 2, "phase": "Waiting for the instances to become active"},
        {"phase", "Ready", "instances"},
    ),
    ("failover pending", {"target": "pending"}, {"primary"}),
]


@pytest.mark.parametrize(("label", "kw", "expected"), CNPG_CASES, ids=[c[0] for c in CNPG_CASES])
def test_cnpg(world, label, kw, expected):
    clock, kube, talos = world
    kube.put(cnpg_obj(clock, "app-db", **kw))
    got = failing(gate("cnpg"), kube, talos, ctx(), clock)
    assert {k.removeprefix("Cluster database/app-db ") for k in got} == expected


def test_cnpg_instances_compare_with_spec_not_status(world):
    clock, kube, talos = world
    obj = cnpg_obj(clock, "app-db", ready=3)
    obj["status"]["instances"] = 4  # PVC groups, not pods
    kube.put(obj)
    assert failing(gate("cnpg"), kube, talos, ctx(), clock) == {}


def test_cnpg_timeline_bumps_beyond_the_limit_are_fatal(world):
    clock, kube, talos = world
    g = gate("cnpg")
    base = {g.id: OBSERVERS["cnpg"].baseline(g, Sources(kube, talos), ctx())}
    assert base[g.id] == {"database/app-db": 1, "database/auth-db": 1}
    kube.put(cnpg_obj(clock, "app-db", timeline=2))
    assert failing(g, kube, talos, ctx("post", "w1", baseline=base), clock) == {}
    kube.put(cnpg_obj(clock, "app-db", timeline=3))
    checks = OBSERVERS["cnpg"].observe(
        g, Sources(kube, talos), ctx("post", "w1", baseline=base), clock.time()
    )
    bump = next(c for c in checks if c.name == "failovers" and not c.ok)
    assert bump.fatal and bump.observed == "timeline 1 → 3 (2 failovers)"


def test_cnpg_placement_before_a_drain(world):
    clock, kube, talos = world
    assert failing(gate("cnpg"), kube, talos, ctx("pre", "w1"), clock) == {}
    kube.put(pod_obj("app-db-2", "w1", "app-db"))  # a second instance lands on w1
    got = failing(gate("cnpg"), kube, talos, ctx("pre", "w1"), clock)
    assert got == {"Cluster database/app-db placement": "2 on w1: app-db-1, app-db-2"}
    assert failing(gate("cnpg"), kube, talos, ctx("post", "w1"), clock) == {}  # only before a drain
    assert failing(gate("cnpg", placement=False), kube, talos, ctx("pre", "w1"), clock) == {}


def test_cnpg_ready_since_and_hopeless_phase(world):
    clock, kube, talos = world
    kube.put(cnpg_obj(clock, "app-db", ready_since=-42.0))
    checks = OBSERVERS["cnpg"].observe(gate("cnpg"), Sources(kube, talos), ctx(), clock.time())
    ready = next(c for c in checks if c.key == "Cluster database/app-db Ready")
    assert ready.since == pytest.approx(clock.time() - 42, abs=1)
    assert next(c for c in checks if c.key == "Cluster database/app-db instances").since == ALWAYS
    kube.put(cnpg_obj(clock, "app-db", phase="Cluster is unrecoverable and needs manual intervention"))
    checks = OBSERVERS["cnpg"].observe(gate("cnpg"), Sources(kube, talos), ctx(), clock.time())
    assert any(c.fatal for c in checks)


def test_cnpg_selection_by_name_and_selector(world):
    clock, kube, talos = world
    assert failing(gate("cnpg", namespace="database", name="nope"), kube, talos, ctx(), clock) == {
        "cnpg present": "not found"
    }
    kube.put(cnpg_obj(clock, "auth-db", instances=2, ready=1))
    sel = {"matchLabels": {"app": "app-db"}, "matchExpressions": []}
    assert failing(gate("cnpg", labelSelector=sel), kube, talos, ctx(), clock) == {}
    assert failing(gate("cnpg"), kube, talos, ctx(), clock) != {}


# ---- expression (tuppr semantics) ---------------------------------------------------------

EXPR_CASES = [
    (
        "named object passes",
        {"name": "rook-ceph", "namespace": "rook-ceph"},
        "status.ceph.health == 'HEALTH_OK'",
        {},
    ),
    (
        "named object fails",
        {"name": "rook-ceph", "namespace": "rook-ceph"},
        "status.ceph.health == 'HEALTH_WARN'",
        {"CephCluster rook-ceph/rook-ceph expr": "false"},
    ),
    (
        "named object missing",
        {"name": "other", "namespace": "rook-ceph"},
        "true",
        {"CephCluster rook-ceph/other exists": "not found"},
    ),
    (
        "missing field fails closed",
        {},
        "status.nope == 1",
        {"CephCluster rook-ceph/rook-ceph expr": "evaluation error: no such member in mapping: 'nope'"},
    ),
    (
        "non-boolean fails",
        {},
        "status.phase",
        {"CephCluster rook-ceph/rook-ceph expr": "returned string 'Ready', not a boolean"},
    ),
]


@pytest.mark.parametrize(("label", "target", "expr", "expected"), EXPR_CASES, ids=[c[0] for c in EXPR_CASES])
def test_expression_on_ceph(world, label, target, expr, expected):
    clock, kube, talos = world
    g = gate("expression", apiVersion="ceph.rook.io/v1", kind="CephCluster", expr=expr, **target)
    assert failing(g, kube, talos, ctx(), clock) == expected


def test_expression_every_listed_object_must_pass(world):
    clock, kube, talos = world
    g = gate(
        "expression",
        apiVersion="postgresql.cnpg.io/v1",
        kind="Cluster",
        expr="status.readyInstances == object.spec.instances",
    )
    assert failing(g, kube, talos, ctx(), clock) == {}
    kube.put(cnpg_obj(clock, "auth-db", instances=2, ready=1))
    assert failing(g, kube, talos, ctx(), clock) == {"Cluster database/auth-db expr": "false"}


def test_expression_zero_objects_and_unknown_kinds(world):
    clock, kube, talos = world
    none = gate("expression", apiVersion="v1", kind="ConfigMap", namespace="empty", expr="false")
    assert failing(none, kube, talos, ctx(), clock) == {}  # vacuously true, as in tuppr
    sel = gate(
        "expression", apiVersion="v1", kind="Pod", labelSelector={"matchLabels": {"app": "x"}}, expr="true"
    )
    assert failing(sel, kube, talos, ctx(), clock) == {"Pod matching app=x exists": "no object matches"}
    crd = gate("expression", apiVersion="volsync.backube/v1alpha1", kind="ReplicationSource", expr="true")
    assert failing(crd, kube, talos, ctx(), clock) == {
        "ReplicationSource served": "not served (CRD missing?)"
    }


def test_selector_expressions_select_like_the_api(world):
    clock, kube, talos = world
    sel = {
        "matchLabels": {},
        "matchExpressions": [{"key": "cnpg.io/cluster", "operator": "In", "values": ["app-db"]}],
    }
    g = gate(
        "expression", apiVersion="v1", kind="Pod", labelSelector=sel, expr="object.spec.nodeName != 'w2'"
    )
    assert failing(g, kube, talos, ctx(), clock) == {"Pod database/app-db-2 expr": "false"}
