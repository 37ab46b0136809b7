"""Failure-domain batches end to end: 6 workers in 3 zones (the 30-worker case is in
bench/upgrade_all.py), judged by the simulator's own record — one zone down at a time, no
pool below its min_size, every database with a ready instance throughout."""

from __future__ import annotations

import pytest

from configure_support import run_invoke
from taltasks.errors import OperationFailed
from taltasks.sim.verdict import fewest_ready_instances, lowest_pool_replicas, safety
from taltasks.workflows.journal import journal_path, read_journal
from taltasks.workflows.upgrade import OPERATION
from upgrade_support import MODERN, NEW, OLD, upgrade, zone_of, zoned_cluster

WORKERS = 6
NAMES = tuple(f"worker-{i}" for i in range(1, WORKERS + 1))
ZONES = {f"worker-{i}": zone_of(i) for i in range(1, WORKERS + 1)}


def upgrade_workers(d):
    return upgrade(d, only=NAMES)


@pytest.fixture
def zoned(tmp_path, loopback_subnet, request):
    pools, *flags = request.param.split("+")
    versions = MODERN if "modern" in flags else None
    d = zoned_cluster(
        tmp_path, loopback_subnet, WORKERS, pool_domain=pools, zonal_db="zonal-db" in flags, versions=versions
    )
    yield d
    d.stop()


@pytest.mark.slow
@pytest.mark.parametrize("zoned", ["zone+modern"], indirect=True)
def test_zone_batches_go_one_zone_at_a_time_and_keep_storage_and_databases_available(zoned):
    d = zoned
    planned = run_invoke("talos.plan", *d.args(), cwd=d.repo)  # the batches as talos.plan shows them
    assert planned.returncode == 0, planned.stderr
    header, *rows = planned.stdout.splitlines()
    assert "BATCH" in header.split()
    batch = {line.split()[1]: line.split()[header.split().index("BATCH")] for line in rows if line.strip()}
    assert batch["worker-1"] == batch["worker-4"] != batch["worker-2"] == batch["worker-5"]
    mark = len(d.recorder.entries())
    result, events = upgrade_workers(d)
    assert sorted(result.upgraded) == sorted(NAMES)
    assert {h: v for h, v in d.versions().items() if h in NAMES} == dict.fromkeys(NAMES, MODERN[1])
    # Talos 1.13: every node of a batch on the LifecycleService path, pulled before any change
    installs = d.recorder.entries("talos.lifecycle_upgrade")
    assert sorted(e["node"] for e in installs) == sorted(NAMES) and not d.recorder.entries("talos.upgrade")
    first_cordon = next(
        e.seq for e in d.recorder.entries("kube.api") if e.seq > mark and e.get("resource") == "nodes"
    )
    pulls = d.recorder.entries("talos.image_pull", source="ImageService")
    assert {e["node"] for e in pulls if e.seq < first_cordon} >= set(NAMES)
    proven = [e.message for e in events.of("info") if e.data.get("step") == "batching"]
    assert proven[0].startswith("batching proven for the run: workers by topology.kubernetes.io/zone")
    assert [e.data["nodes"] for e in events.of("batch.started")] == [
        ["worker-1", "worker-4"],
        ["worker-2", "worker-5"],
        ["worker-3", "worker-6"],
    ]
    # the simulator's account
    verdict = safety(d.recorder, mark, domain_of=ZONES)
    assert verdict.safe, verdict
    assert [sorted(w) for w in verdict.waves] == [
        ["worker-1", "worker-4"],
        ["worker-2", "worker-5"],
        ["worker-3", "worker-6"],
    ]
    assert verdict.most_not_ready == 2 and verdict.most_domains_down == 1
    assert lowest_pool_replicas(d.recorder, mark) == {"ceph-blockpool": (2, 2), "builtin-mgr": (2, 2)}
    assert min(fewest_ready_instances(d.recorder, mark).values()) >= 1
    # both nodes of a batch were down together (that is the point), never two zones
    assert not verdict.unsafe_starts
    state = read_journal(journal_path(d.repo, OPERATION))
    assert state.status == "completed" and sorted(state.done_nodes) == sorted(NAMES)
    batch = [
        e for e in state.entries if e["type"] == "node" and e["node"] == "worker-4" and e["status"] == "done"
    ]
    assert batch[0]["batch"] == ["worker-1", "worker-4"]


@pytest.mark.slow
@pytest.mark.parametrize("zoned", ["host"], indirect=True)
def test_a_pool_replicated_across_hosts_refuses_batching_and_goes_one_at_a_time(zoned):
    d = zoned
    mark = len(d.recorder.entries())
    result, events = upgrade_workers(d)
    assert sorted(result.upgraded) == sorted(NAMES)
    [refusal] = [e for e in events.of("warning") if e.data.get("step") == "batching"]
    assert refusal.message.startswith("batching refused, going one node at a time: ")
    assert (
        "CephBlockPool rook-ceph/ceph-blockpool keeps its copies on different hosts, not different zones"
        in refusal.message
    )
    assert events.of("batch.started") == []
    verdict = safety(d.recorder, mark)
    assert verdict.safe and verdict.most_not_ready == 1, verdict
    assert all(len(w) == 1 for w in verdict.waves) and len(verdict.waves) == WORKERS
    assert {h: v for h, v in d.versions().items() if h in NAMES} == dict.fromkeys(NAMES, NEW)


@pytest.mark.slow
@pytest.mark.parametrize("zoned", ["zone+zonal-db"], indirect=True)
def test_a_batch_whose_database_would_go_down_goes_one_at_a_time_and_the_next_is_judged_afresh(zoned):
    d = zoned
    mark = len(d.recorder.entries())
    result, events = upgrade_workers(d)
    assert sorted(result.upgraded) == sorted(NAMES)
    [fallback] = [e for e in events.of("warning") if e.data.get("step") == "batching"]
    assert fallback.message.startswith("batch worker-1, worker-4 goes one node at a time: ")
    assert "CNPG cluster database/zonal would have no ready instance outside the batch" in fallback.message
    verdict = safety(d.recorder, mark, domain_of=ZONES)
    assert verdict.safe, verdict
    assert [sorted(w) for w in verdict.waves] == [
        ["worker-1"],
        ["worker-4"],
        ["worker-2", "worker-5"],
        ["worker-3", "worker-6"],
    ]
    assert fewest_ready_instances(d.recorder, mark)["database/zonal"] >= 1


@pytest.mark.parametrize("zoned", ["host"], indirect=True)
def test_on_unsafe_stop_refuses_before_any_change(zoned):
    d = zoned
    policy = d.repo / "talos" / "upgrade-policy.yaml"
    policy.write_text(
        policy.read_text().replace(
            "batching: {by: failure-domain,", "batching: {onUnsafe: stop, by: failure-domain,"
        )
    )
    mark = len(d.recorder.entries())
    with pytest.raises(OperationFailed) as info:
        upgrade_workers(d)
    assert "batching by topology.kubernetes.io/zone cannot be proven safe" in info.value.message
    assert "nothing was changed" in info.value.message
    assert d.recorder.entries("talos.upgrade") == []
    assert [e for e in d.recorder.entries("kube.api") if e.seq > mark] == []
    assert set(d.versions().values()) == {OLD}
