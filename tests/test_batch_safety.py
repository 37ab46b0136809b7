"""Proving a failure-domain batch safe: pure tables over the objects the cluster reports."""

from __future__ import annotations

import pytest

from taltasks.kube.ceph import CephPool, parse_pools
from taltasks.kube.cnpg import parse_cnpg_cluster
from taltasks.model.policy import BatchingPolicy
from taltasks.workflows.batchsafety import (
    ClusterFacts,
    check_batch,
    crush_type,
    desired_healthy,
    selector_matches,
)

ZONE = "topology.kubernetes.io/zone"
BY_ZONE = BatchingPolicy(by="failure-domain", label=ZONE)
CEPH = {
    "apiVersion": "ceph.rook.io/v1",
    "kind": "CephCluster",
    "metadata": {"name": "rook-ceph", "namespace": "rook-ceph"},
    "spec": {"disruptionManagement": {"managePodBudgets": True}},
}
BATCH = ["w1", "w2"]  # zone a; w3, w4 are elsewhere


def pool(name: str, domain: str = "zone", size: int = 3, min_size: int | None = None) -> CephPool:
    return CephPool(f"CephBlockPool rook-ceph/{name}", name, size, min_size or size - size // 2, domain)


ZONE_POOLS = (pool("ceph-blockpool"), pool(".mgr"))


def pod(name, node, *, ns="default", labels=None, owner="ReplicaSet", ready=True, **spec):
    meta = {"name": name, "namespace": ns, "labels": dict(labels or {})}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    return {
        "metadata": meta,
        "spec": {"nodeName": node, **spec},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pdb(name, selector, *, ns="default", **spec):
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector, **spec}}


def cnpg(name, placement: dict[str, str], primary: str, *, ns="database"):
    """``placement``: instance pod → node."""
    pods = [
        pod(
            inst,
            node,
            ns=ns,
            owner="Cluster",
            labels={
                "cnpg.io/cluster": name,
                "cnpg.io/instanceRole": "primary" if inst == primary else "replica",
            },
        )
        for inst, node in placement.items()
    ]
    obj = {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"instances": len(placement)},
        "status": {"currentPrimary": primary, "targetPrimary": primary, "readyInstances": len(placement)},
    }
    return parse_cnpg_cluster(obj, pods), pods


def facts(*, pools=ZONE_POOLS, ceph=True, clusters=(), pdbs=(), pods=()) -> ClusterFacts:
    statuses, cnpg_pods = [], []
    for status, instances in clusters:
        statuses.append(status)
        cnpg_pods.extend(instances)
    return ClusterFacts(
        ceph_clusters=(CEPH,) if ceph else (),
        pools=tuple(pools),
        cnpg=tuple(statuses),
        pdbs=tuple(pdbs),
        pods=(*pods, *cnpg_pods),
        ceph_namespaces=frozenset({"rook-ceph"}) if ceph else frozenset(),
    )


@pytest.mark.parametrize(
    ("label", "crush"),
    [
        (ZONE, "zone"),
        ("topology.kubernetes.io/region", "region"),
        ("topology.rook.io/rack", "rack"),
        ("kubernetes.io/hostname", "host"),
        ("example.com/room", None),
        ("topology.rook.io/shelf", None),
    ],
)
def test_rook_maps_labels_to_crush_types(label, crush):
    assert crush_type(label) == crush


CEPH_CASES = [
    # (name, facts, batching, safe, fragment of the reason)
    ("zone pools, one zone", facts(), BY_ZONE, True, "2 of 3 copies stay up"),
    ("no Ceph at all", facts(ceph=False, pools=()), BY_ZONE, True, "no CephCluster"),
    (
        "a host pool",
        facts(pools=(*ZONE_POOLS, pool("ceph-filesystem-data0", "host"))),
        BY_ZONE,
        False,
        "keeps its copies on different hosts, not different zones",
    ),
    ("no pools readable", facts(pools=()), BY_ZONE, False, "pools' failure domains cannot be read"),
    (
        ".mgr not declared",
        facts(pools=(pool("ceph-blockpool"),)),
        BY_ZONE,
        False,
        "Ceph's .mgr pool is not declared",
    ),
    (
        "size 2 pool",
        facts(pools=(*ZONE_POOLS, pool("small", size=2, min_size=2))),
        BY_ZONE,
        False,
        "(size 2, min_size 2) would keep 1 copy up with 1 zone down",
    ),
    (
        "two domains with managed PDBs",
        facts(pools=(pool("big", size=5, min_size=3), pool(".mgr", size=5, min_size=3))),
        BatchingPolicy(by="failure-domain", max_domains=2),
        False,
        "lets one zone drain at a time, not 2",
    ),
    (
        "label Rook does not map",
        facts(),
        BatchingPolicy(by="failure-domain", label="example.com/room"),
        False,
        "Rook builds no CRUSH bucket from the label example.com/room",
    ),
    (
        "rack pools, rack batches",
        facts(pools=(pool("p", "rack"), pool(".mgr", "rack"))),
        BatchingPolicy(by="failure-domain", label="topology.rook.io/rack"),
        True,
        "2 of 3 copies stay up",
    ),
]


@pytest.mark.parametrize(
    ("name", "given", "batching", "safe", "fragment"), CEPH_CASES, ids=[c[0] for c in CEPH_CASES]
)
def test_ceph_proof(name, given, batching, safe, fragment):
    verdict = check_batch(given, BATCH, batching)
    assert verdict.safe is safe, verdict.explain()
    assert fragment in verdict.explain()
    assert verdict.run_wide is (not safe)


def test_pools_are_read_from_every_rook_kind():
    fs = {
        "metadata": {"name": "fs", "namespace": "rook-ceph"},
        "spec": {
            "metadataPool": {"replicated": {"size": 3}, "failureDomain": "zone"},
            "dataPools": [
                {"name": "data0", "replicated": {"size": 3}, "failureDomain": "zone"},
                {"erasureCoded": {"dataChunks": 4, "codingChunks": 2}, "failureDomain": "host"},
            ],
        },
    }
    store = {
        "metadata": {"name": "s3", "namespace": "rook-ceph"},
        "spec": {"dataPool": {"replicated": {"size": 2}, "parameters": {"min_size": "1"}}},
    }
    mgr = {
        "metadata": {"name": "builtin-mgr", "namespace": "rook-ceph"},
        "spec": {"name": ".mgr", "failureDomain": "zone"},
    }
    pools = [
        *parse_pools("CephFilesystem", fs),
        *parse_pools("CephObjectStore", store),
        *parse_pools("CephBlockPool", mgr),
    ]
    assert [(p.name, p.size, p.min_size, p.failure_domain, p.erasure_coded) for p in pools] == [
        ("fs-metadata", 3, 2, "zone", False),
        ("fs-data0", 3, 2, "zone", False),
        ("fs-data1", 6, 5, "host", True),  # EC 4+2: min_size k+1
        ("s3-data", 2, 1, "host", False),  # Rook's default failure domain
        (".mgr", 3, 2, "zone", False),
    ]
    assert pools[2].source == "CephFilesystem rook-ceph/fs data pool data1"


PG = cnpg("pg", {"pg-1": "w1", "pg-2": "w3", "pg-3": "w4"}, "pg-1")
SMALL = cnpg("small", {"small-1": "w1", "small-2": "w2"}, "small-1")
LONELY = cnpg("lonely", {"lonely-1": "w2"}, "lonely-1")
PRIMARY_PDB = pdb(
    "pg-primary",
    {"matchLabels": {"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "primary"}},
    ns="database",
    minAvailable=1,
)
REPLICA_PDB = pdb(
    "pg",
    {"matchLabels": {"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "replica"}},
    ns="database",
    minAvailable=1,
)
WEB = [pod("web-1", "w1", labels={"app": "web"}), pod("web-2", "w2", labels={"app": "web"})]
PINNED = [
    pod("cache-1", "w1", labels={"app": "cache"}, owner="StatefulSet"),
    pod("cache-2", "w3", labels={"app": "cache"}, owner="StatefulSet"),
]

BATCH_CASES = [
    # (name, facts, safe, fragment)
    ("primary switches over, replicas stay", facts(clusters=[PG], pdbs=[PRIMARY_PDB, REPLICA_PDB]), True, ""),
    (
        "every instance in the batch",
        facts(clusters=[PG, SMALL]),
        False,
        "CNPG cluster database/small would have no ready instance outside the batch (small-1 on w1, small-2 on w2)",
    ),
    (
        "single instance in the batch",
        facts(clusters=[LONELY]),
        False,
        "database/lonely would have no ready instance",
    ),
    (
        "movable pods move",
        facts(pods=WEB, pdbs=[pdb("web", {"matchLabels": {"app": "web"}}, minAvailable=1)]),
        True,
        "",
    ),
    (
        "pinned pods cannot",
        facts(pods=PINNED, pdbs=[pdb("cache", {"matchLabels": {"app": "cache"}}, minAvailable=2)]),
        False,
        "PodDisruptionBudget default/cache needs 2 healthy pod(s) but only 1 would be left: default/cache-1 on w1 cannot move",
    ),
    (
        "pinned by hostname",
        facts(
            pods=[
                pod("db-1", "w1", labels={"app": "db"}, nodeSelector={"kubernetes.io/hostname": "w1"}),
                pod("db-2", "w3", labels={"app": "db"}),
            ],
            pdbs=[pdb("db", {"matchLabels": {"app": "db"}}, maxUnavailable=0)],
        ),
        False,
        "db-1 on w1 cannot move",
    ),
    (
        "budget met by pods outside",
        facts(pods=PINNED, pdbs=[pdb("cache", {"matchLabels": {"app": "cache"}}, minAvailable="50%")]),
        True,
        "",
    ),
    (
        "rook OSD budgets are the Ceph proof's",
        facts(
            pods=[
                pod(
                    "osd-0",
                    "w1",
                    ns="rook-ceph",
                    labels={"app": "rook-ceph-osd"},
                    owner="ReplicaSet",
                    nodeSelector={"kubernetes.io/hostname": "w1"},
                )
            ],
            pdbs=[
                pdb(
                    "rook-ceph-osd",
                    {"matchLabels": {"app": "rook-ceph-osd"}},
                    ns="rook-ceph",
                    maxUnavailable=1,
                )
            ],
        ),
        True,
        "",
    ),
    (
        "rook OSD budgets count when Ceph is unproven",
        facts(
            pools=(pool("p", "host"),),
            pods=[
                pod(
                    f"osd-{i}",
                    n,
                    ns="rook-ceph",
                    labels={"app": "rook-ceph-osd"},
                    nodeSelector={"kubernetes.io/hostname": n},
                )
                for i, n in enumerate(["w1", "w2", "w3"])
            ],
            pdbs=[
                pdb(
                    "rook-ceph-osd",
                    {"matchLabels": {"app": "rook-ceph-osd"}},
                    ns="rook-ceph",
                    maxUnavailable=1,
                )
            ],
        ),
        False,
        "PodDisruptionBudget rook-ceph/rook-ceph-osd needs 2 healthy pod(s) but only 1 would be left",
    ),
    (
        "a budget selecting nothing in the batch",
        facts(pods=PINNED[1:], pdbs=[pdb("cache", {"matchLabels": {"app": "cache"}}, minAvailable=1)]),
        True,
        "",
    ),
]


@pytest.mark.parametrize(("name", "given", "safe", "fragment"), BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_cnpg_and_budget_proofs(name, given, safe, fragment):
    verdict = check_batch(given, BATCH, BY_ZONE)
    assert verdict.safe is safe, verdict.explain()
    assert fragment in verdict.explain()
    if not safe and "Ceph" not in name and "unproven" not in name:
        assert not verdict.run_wide  # per batch: the next batch is judged afresh


def test_after_the_switchover_the_primary_budget_selects_the_new_primary():
    # without the switchover the primary PDB would count pg-1 (on w1) as the only primary
    given = facts(clusters=[PG], pdbs=[PRIMARY_PDB])
    assert check_batch(given, BATCH, BY_ZONE).safe
    stuck = cnpg("pg", {"pg-1": "w1", "pg-2": "w2", "pg-3": "w3"}, "pg-1")
    verdict = check_batch(facts(clusters=[stuck], pdbs=[PRIMARY_PDB, REPLICA_PDB]), BATCH, BY_ZONE)
    assert not verdict.safe
    assert (
        "PodDisruptionBudget database/pg needs 1 healthy pod(s) but only 0 would be left" in verdict.explain()
    )


@pytest.mark.parametrize(
    ("spec", "expected", "needed"),
    [
        ({"minAvailable": 2}, 5, 2),
        ({"minAvailable": "50%"}, 5, 3),
        ({"maxUnavailable": 1}, 5, 4),
        ({"maxUnavailable": "30%"}, 5, 3),
        ({}, 5, 0),
    ],
)
def test_desired_healthy_scales_like_kubernetes(spec, expected, needed):
    assert desired_healthy({"spec": spec}, expected) == needed
    assert desired_healthy({"spec": spec, "status": {"desiredHealthy": 7}}, expected) == 7


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
    ],
)
def test_selector_matching(selector, labels, match):
    assert selector_matches(selector, labels) is match
