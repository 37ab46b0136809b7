"""The simulated Rook operator's pools: replicas per failure domain, min_size, and Rook's
budgets following the lowest failure domain of all pools.

Read through the simulator's store and its own record; waits are on conditions with
deadlines.
"""

# ruff: noqa: F811 - pytest fixtures imported from kubesim are redefined as parameters

from __future__ import annotations

import pytest
from kubesim import kube_ca, make_world, scenario_doc  # noqa: F401 - fixtures

from taltasks.errors import InputError
from taltasks.kube import ceph
from taltasks.sim.kube.nodes import set_node_ready
from taltasks.sim.operators.scenario import parse_world

ZONED = """\
cluster: {name: demo, controlPlanes: 3, workers: 6}
nodes:
  worker-1: {zone: zone-a}
  worker-2: {zone: zone-a}
  worker-3: {zone: zone-b}
  worker-4: {zone: zone-b}
  worker-5: {zone: zone-c}
  worker-6: {zone: zone-c}
ceph:
  osds: {worker-1: [0], worker-2: [1], worker-3: [2], worker-4: [3], worker-5: [4], worker-6: [5]}
  mons: [cp-1, cp-2, cp-3]
  recoverySeconds: 0.2
  checkIntervalSeconds: 0.05
  pools:
{pools}
"""
ZONE_POOL = "    - {name: ceph-blockpool, size: 3, failureDomain: zone}\n"
HOST_POOL = "    - {name: ceph-objectstore, size: 3, minSize: 2, failureDomain: host}\n"


def health(world):
    return ceph.parse_ceph_cluster(world.store.get("cephclusters.ceph.rook.io", "rook-ceph", "rook-ceph"))


def budget_names(world) -> list[str]:
    return sorted(p["metadata"]["name"] for p in world.store.list("poddisruptionbudgets.policy", "rook-ceph"))


def pool_ups(world, pool: str) -> list[int]:
    return [e["up"] for e in world.recorder.entries("ceph.pool", pool=pool)]


def test_pools_exist_as_cephblockpools_with_rook_fields(make_world):
    world = make_world(ZONED.replace("{pools}\n", ZONE_POOL + HOST_POOL), workers=6)
    zone, host = (
        world.store.get("cephblockpools.ceph.rook.io", n, "rook-ceph")
        for n in ("ceph-blockpool", "ceph-objectstore")
    )
    assert zone["spec"] == {"failureDomain": "zone", "replicated": {"size": 3}}
    assert host["spec"]["parameters"] == {"min_size": "2"} and host["status"]["phase"] == "Ready"
    osd = world.store.list("pods", "rook-ceph", label_selector="ceph-osd-id=3")[0]["metadata"]["labels"]
    assert (osd["topology-location-host"], osd["topology-location-zone"]) == ("worker-4", "zone-b")
    # settled: every pool fully replicated, recorded once
    assert pool_ups(world, "ceph-blockpool") == [3] and pool_ups(world, "ceph-objectstore") == [3]


def test_one_zone_down_keeps_zone_pools_available_and_opens_that_zone(make_world):
    world = make_world(ZONED.replace("{pools}\n", ZONE_POOL), workers=6)
    for node in ("worker-1", "worker-2"):  # a whole zone
        set_node_ready(world.store, node, False)
    warn = world.wait_for(
        lambda s: (c := health(world)).health == "HEALTH_WARN" and "OSD_DOWN" in c.codes and c, 5, "OSDs down"
    )
    assert "PG_AVAILABILITY" not in warn.codes
    world.wait_for(lambda s: pool_ups(world, "ceph-blockpool")[-1] == 2, 5, "pool at 2 replicas")
    # every pool replicates across zones, so Rook's budgets work per zone: zone-a drains
    world.wait_for(
        lambda s: (
            budget_names(world)
            == [
                "rook-ceph-mgr-pdb",
                "rook-ceph-mon-pdb",
                "rook-ceph-osd-zone-zone-b",
                "rook-ceph-osd-zone-zone-c",
            ]
        ),
        5,
        "blocking PDBs for the other zones",
    )
    cm = world.store.get("configmaps", "rook-ceph-pdbstatemap", "rook-ceph")["data"]
    assert cm["draining-failure-domain"] == "zone-a"
    # a second zone down: the worst placement group has one replica left, below min_size 2
    set_node_ready(world.store, "worker-3", False)
    unavailable = world.wait_for(
        lambda s: "PG_AVAILABILITY" in (c := health(world)).codes and c, 5, "PG_AVAILABILITY"
    )
    message = dict((c.code, c.message) for c in unavailable.checks)["PG_AVAILABILITY"]
    assert "pools below min_size: ceph-blockpool" in message
    assert pool_ups(world, "ceph-blockpool")[-1] == 1
    for node in ("worker-1", "worker-2", "worker-3"):
        set_node_ready(world.store, node, True)
    world.wait_for(lambda s: health(world).health == "HEALTH_OK", 5, "HEALTH_OK again")
    assert pool_ups(world, "ceph-blockpool")[-1] == 3


def test_a_host_pool_loses_data_when_two_hosts_of_one_zone_go_down(make_world):
    world = make_world(ZONED.replace("{pools}\n", ZONE_POOL + HOST_POOL), workers=6)
    set_node_ready(world.store, "worker-1", False)
    # with any pool on host, Rook drains host by host
    world.wait_for(
        lambda s: "rook-ceph-osd-host-worker-2" in budget_names(world), 5, "host budgets (lowest domain)"
    )
    set_node_ready(world.store, "worker-2", False)
    unavailable = world.wait_for(
        lambda s: "PG_AVAILABILITY" in (c := health(world)).codes and c, 5, "PG_AVAILABILITY"
    )
    message = dict((c.code, c.message) for c in unavailable.checks)["PG_AVAILABILITY"]
    assert "ceph-objectstore" in message and "ceph-blockpool" not in message
    assert pool_ups(world, "ceph-objectstore")[-1] == 1 and pool_ups(world, "ceph-blockpool")[-1] == 2


@pytest.mark.parametrize(
    ("pools", "fragment", "line"),
    [
        (
            "    - {name: p, size: 3, failureDomain: rack}\n",
            "models failure domains host, zone, not 'rack'",
            15,
        ),
        ("    - {name: p, size: 2, minSize: 3}\n", "minSize 3 is larger than size 2", 15),
        ("    - {name: p}\n    - {name: p}\n", "pool p is defined twice", 16),
        ("    - {name: p, replicas: 3}\n", "unknown key 'replicas'", 15),
    ],
)
def test_pool_scenario_errors_name_the_line(pools, fragment, line):
    doc = scenario_doc(ZONED.replace("{pools}\n", pools))
    with pytest.raises(InputError) as info:
        parse_world(doc, [f"cp-{i}" for i in (1, 2, 3)] + [f"worker-{i}" for i in range(1, 7)])
    assert fragment in str(info.value) and info.value.where == f"scenario.yaml:{line}"


def test_verdict_reads_pools_domains_and_waves_from_the_record():
    from taltasks.sim.record import Recorder
    from taltasks.sim.verdict import fewest_ready_instances, lowest_pool_replicas, safety

    rec = Recorder()
    rec.record("ceph.pool", pool="p", size=3, min_size=2, up=3)
    rec.record("cnpg.status", cluster="db/pg", phase="Cluster in healthy state", readyInstances=3)
    since = rec.record("run.start").seq
    for node in ("w1", "w2"):  # one batch: both cordoned before either goes down
        rec.record("kube.api", resource="nodes", verb="patch", name=node)
    for node in ("w1", "w2"):
        rec.record("node.ready", node=node, ready=False)
    rec.record("ceph.pool", pool="p", size=3, min_size=2, up=2)
    rec.record("cnpg.status", cluster="db/pg", phase="Cluster in healthy state", readyInstances=2)
    for node in ("w1", "w2"):
        rec.record("node.ready", node=node, ready=True)
    rec.record("ceph.pool", pool="p", size=3, min_size=2, up=3)
    rec.record("kube.api", resource="nodes", verb="patch", name="w3")
    rec.record("node.ready", node="w3", ready=False)
    rec.record("node.ready", node="w3", ready=True)

    zones = {"w1": "a", "w2": "a", "w3": "b"}
    verdict = safety(rec, since, domain_of=zones)
    assert verdict.waves == [["w1", "w2"], ["w3"]] and verdict.most_not_ready == 2
    assert verdict.most_domains_down == 1 and verdict.safe
    assert not safety(rec, since).safe  # without domains, two nodes down at once is unsafe
    assert lowest_pool_replicas(rec, since) == {"p": (2, 2)} and fewest_ready_instances(rec, since) == {
        "db/pg": 2
    }
    # w3 in zone a too, but down while w1 is: still one domain; a second domain down is not
    rec.record("kube.api", resource="nodes", verb="patch", name="w4")
    rec.record("node.ready", node="w4", ready=False)
    rec.record("node.ready", node="w1", ready=False)
    rec.record("ceph.pool", pool="p", size=3, min_size=2, up=1)
    rec.record("cnpg.status", cluster="db/pg", phase="Failing over", readyInstances=0)
    late = safety(rec, since, domain_of={**zones, "w4": "c"})
    assert late.most_domains_down == 2 and not late.safe
    assert late.pools_below_min_size == [{"pool": "p", "size": 3, "min_size": 2, "up": 1}]
    assert [c["cluster"] for c in late.cnpg_without_ready] == ["db/pg"]


def test_batch_proofs_read_the_simulated_cluster(make_world):
    """read_facts over HTTPS: zone pools + a declared .mgr prove zone batches; a database
    living only in zone-a does not."""
    from taltasks.kube.client import connect
    from taltasks.model.policy import BatchingPolicy
    from taltasks.workflows.batchsafety import check_batch, read_facts

    pools = ZONE_POOL + "    - {name: builtin-mgr, poolName: .mgr, size: 3, failureDomain: zone}\n"
    text = ZONED.replace("{pools}\n", pools) + (
        "cnpg:\n  switchoverSeconds: 0.05\n  clusters:\n"
        "    - {namespace: database, name: pg, instances: 3, nodes: [worker-1, worker-3, worker-5]}\n"
        "    - {namespace: database, name: zonal, instances: 2, nodes: [worker-1, worker-2]}\n"
    )
    world = make_world(text, workers=6)
    batching = BatchingPolicy(by="failure-domain")
    with connect(world.kubeconfig_path) as client:
        facts = read_facts(client)
    assert {p.name for p in facts.pools} == {"ceph-blockpool", ".mgr"}
    assert {c.ref for c in facts.cnpg} == {"database/pg", "database/zonal"}
    zone_b = check_batch(facts, ["worker-3", "worker-4"], batching)
    assert zone_b.safe, zone_b.explain()
    zone_a = check_batch(facts, ["worker-1", "worker-2"], batching)
    assert not zone_a.safe and not zone_a.run_wide
    assert zone_a.reasons == [
        "CNPG cluster database/zonal would have no ready instance outside the batch "
        "(zonal-1 on worker-1, zonal-2 on worker-2)",
        "PodDisruptionBudget database/zonal-primary needs 1 healthy pod(s) but only 0 would be left: "
        "database/zonal-1 on worker-1 cannot move off the batch",
    ]
