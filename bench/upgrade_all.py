"""upgrade-all figures against the demo repository's cluster running in its own process.

The simulator (``invoke sim.up --repo``, rook-cnpg scenario: 3 control planes, 3 workers
with Ceph OSDs, two CNPG clusters, Flux) reboots a node in a fixed simulated time; the
policy's stability window is W. An ideal rolling upgrade costs, per node, its reboot R
(from the Upgrade call reaching the node to the node running and ready again, measured
from the simulator's own record) plus W (the post gates' window after the uncordon). The
bench times the whole ``run_upgrade`` — preflight, Flux suspend, etcd snapshot, cordon,
CNPG switchovers, drains, gates, cleanup — and reports:

* ``overhead_ratio`` — total / Σ(R + W) (target: total ≤ 1.1 × Σ(R + W) + 2 s, shown as
  ``overhead_s`` against ``overhead_allowance_s``);
* ``gate_reaction_ms`` — p50 over the nodes of the time from the moment a node's "back"
  condition holds in the simulator (Talos running + ready on the new boot, and its Node
  Ready, whichever is later) to the next step reaching the cluster (the uncordon request),
  target ≤ 500 ms.

Failure-domain batches (``--batched``, also part of a full run): Talos v1.13.4 → v1.13.9 (the
1.13+ path: installers pulled before any change, LifecycleService install, Reboot), 3
control planes and 30 workers in three zones (10 each; ``--quick``: 2 each), one OSD per worker, Ceph pools
replicated across zones, CNPG clusters with an instance in every zone. Only the workers are
upgraded, with ``batching: {by: failure-domain}``:

* ``batched_ratio`` — total / (4 × (R + W)): three zone batches plus one (R + W) of slack;
  target ≤ 1.1. ``serial_ratio`` is what one at a time would cost against the same unit
  (workers × (R + W)).
* the simulator's record: ``pool_margin`` — fewest copies of any pool up / its min_size
  (≥ 1: no pool below min_size), ``db_ready_min`` — fewest ready instances of any CNPG
  cluster (≥ 1), ``zones_down_max`` — most zones with a node down at once (1).
* the same workers with the block pool on ``host``: the run refuses batching, says why and
  goes one node at a time (``host_refused`` 1, ``host_nodes_down_max`` 1), with shorter
  simulated reboots so it stays quick.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import REPO, compile_project, start_sim, stop_sim, table

SCENARIO = REPO / "tests" / "scenarios" / "rook-cnpg.yaml"


# The cluster's own reactions (Ceph noticing an OSD back and recovering, a CNPG switchover,
# pods starting) are kept short, so what the total adds over Σ(R + W) is mostly the tool.
CLUSTER_TIMES = {
    "recoverySeconds: 1.0": "recoverySeconds: 0.05",
    "checkIntervalSeconds: 0.5": "checkIntervalSeconds: 0.1",
    "switchoverSeconds: 0.3": "switchoverSeconds: 0.1",
    "podStartSeconds: 0.05": "podStartSeconds: 0.01",
    "podTerminationSeconds: 0.05": "podTerminationSeconds: 0.01",
}


def _scenario(reboot: float) -> str:
    text = SCENARIO.read_text()
    for old, new in CLUSTER_TIMES.items():
        text = text.replace(old, new)
    return text + f"timings: {{reboot: {reboot}, boot: 0.1, shutdown: 0.05, upgradePull: 0.05}}\n"


POLICY = """\
stability: {{window: {window}s, freshSamples: 2}}
timeouts: {{gate: 60s, drain: 30s, reboot: 60s, switchover: 30s}}
drain: {{retryInterval: 200ms}}
"""


def _prepare(directory: Path, reboot: float, window: float) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from configure_support import copy_demo, edit, move_to_subnet
    from taltasks.sim.addresses import free_subnet

    repo = move_to_subnet(copy_demo(directory / "repo"), free_subnet())
    (repo / "talos" / "upgrade-policy.yaml").write_text(POLICY.format(window=window))
    start_sim(directory / "sim", _scenario(reboot), repo=repo)
    talenv = repo / "talos" / "talenv.yaml"
    edit(talenv, "talosVersion: v1.11.5", "talosVersion: v1.12.0")
    return repo


def _settle(repo: Path, talos, kube, policy) -> None:
    """Wait (untimed) until the freshly started cluster passes the preflight gates."""
    from taltasks.gates.checks import GateContext
    from taltasks.gates.engine import GateEngine
    from taltasks.gates.kubesource import ApiKubeSource
    from taltasks.gates.talossource import ApiTalosSource
    from taltasks.model import load_cluster

    source, kube_source = ApiTalosSource(talos), ApiKubeSource(kube, watch_seconds=5)
    try:
        engine = GateEngine(kube_source, source, poll_interval=0.2, resync_interval=1.0)
        engine.wait(policy.preflight, GateContext(load_cluster(repo).nodes, stage="preflight"))
    finally:
        source.close()
        kube_source.close()


def _reboots_and_reactions(record: list, nodes: list[str]) -> tuple[list[float], list[float]]:
    """Per node: R (Upgrade received — the legacy Upgrade, or from Talos 1.13 the
    LifecycleService install — → running and ready on the new boot) and the reaction (back
    condition true in the simulator → uncordon request arrives)."""
    reboots, reactions = [], []
    for node in nodes:
        start = next(
            e
            for e in record
            if e.kind in ("talos.upgrade", "talos.lifecycle_upgrade") and e.get("node") == node
        )
        back = next(
            e
            for e in record
            if e.seq > start.seq
            and e.kind == "talos.stage"
            and e.get("node") == node
            and e.get("stage") == "running"
            and e.get("ready")
        )
        ready = next(
            e
            for e in record
            if e.seq > start.seq and e.kind == "node.ready" and e.get("node") == node and e.get("ready")
        )
        uncordon = next(
            e
            for e in record
            if e.seq > back.seq
            and e.kind == "kube.api"
            and e.get("resource") == "nodes"
            and e.get("name") == node
            and e.get("verb") == "patch"
        )
        reboots.append(back.ts - start.ts)
        reactions.append(uncordon.ts - max(back.ts, ready.ts))
    return reboots, reactions


def _zoned(directory: Path, workers: int, reboot: float, window: float, pool_domain: str):
    """A zoned cluster in its own process; returns (repo, sim directory)."""
    sys.path.insert(0, str(REPO / "tests"))
    from configure_support import edit
    from taltasks.sim.addresses import free_subnet
    from upgrade_support import MODERN, zoned_repo, zoned_scenario

    old, new, kubernetes = MODERN  # Talos 1.13: ImageService pull, LifecycleService install, Reboot
    repo = zoned_repo(directory / "repo", free_subnet(), workers, pins=(old, kubernetes))
    (repo / "talos" / "upgrade-policy.yaml").write_text(
        POLICY.format(window=window) + "batching: {by: failure-domain}\n"
    )
    text = zoned_scenario(workers, pool_domain=pool_domain, databases=3, fast=False)
    text += f"timings: {{reboot: {reboot}, boot: 0.1, shutdown: 0.05, upgradePull: 0.05}}\n"
    start_sim(directory / "sim", text, repo=repo)
    edit(repo / "talos" / "talenv.yaml", f"talosVersion: {old}", f"talosVersion: {new}")
    return repo, directory / "sim"


def _run_workers(repo: Path, sim: Path, workers: int):
    """Settle (untimed), then time run_upgrade of the workers; (seconds, events, record)."""
    from taltasks.events import Collector, Emitter
    from taltasks.kube.client import connect as kube_connect
    from taltasks.model import load_cluster
    from taltasks.model.policy import load_policy
    from taltasks.sim.record import Recorder, read_file
    from taltasks.talos.connect import connect
    from taltasks.workflows.upgrade import UpgradeOptions, run_upgrade

    cluster, policy = load_cluster(repo), load_policy(repo)
    events = Collector()
    names = tuple(n.hostname for n in cluster.workers)
    assert len(names) == workers
    with connect(talosconfig=str(sim / "talosconfig")) as talos, kube_connect(sim / "kubeconfig") as kube:
        _settle(repo, talos, kube, policy)
        started = time.monotonic()
        run_upgrade(repo, cluster, policy, talos, kube, UpgradeOptions(only=names), emitter=Emitter(events))
        total = time.monotonic() - started
    return total, events, Recorder.from_entries(read_file(sim / "record.jsonl")), names


def batched(quick: bool = False) -> dict[str, float]:
    """The 3-zone case, batched and (host pools) refused; print its table, return figures."""
    from taltasks.sim.verdict import fewest_ready_instances, lowest_pool_replicas, safety

    workers = 6 if quick else 30
    reboot, window = (1.5, 3.0) if quick else (3.0, 5.0)
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as tmp:
        repo, sim = _zoned(Path(tmp) / "zone", workers, reboot, window, "zone")
        try:
            total, events, record, names = _run_workers(repo, sim, workers)
        finally:
            stop_sim(sim)
    start = next(e.seq for e in record.entries("kube.api") if e.get("resource") == "nodes")
    zones = {n: f"zone-{'abc'[(int(n.split('-')[1]) - 1) % 3]}" for n in names}
    verdict = safety(record, start, domain_of=zones)
    reboots, _ = _reboots_and_reactions(record.entries(), list(names))
    r = statistics.mean(reboots)
    unit = r + window
    pools = lowest_pool_replicas(record, start)
    margin = min(up / min_size for up, min_size in pools.values())
    db_min = min(fewest_ready_instances(record, start).values())
    with tempfile.TemporaryDirectory(prefix="bench-batches-host-") as tmp:
        host_workers = 6 if quick else workers  # two per zone: the least that forms a batch
        repo, sim = _zoned(Path(tmp) / "host", host_workers, 0.5, 1.0, "host")
        try:
            host_total, host_events, host_record, host_names = _run_workers(repo, sim, host_workers)
        finally:
            stop_sim(sim)
    refusals = [e.message for e in host_events.of("warning") if e.data.get("step") == "batching"]
    host_start = next(e.seq for e in host_record.entries("kube.api") if e.get("resource") == "nodes")
    host_verdict = safety(host_record, host_start)
    figures = {
        "workers": float(workers),
        "reboot_s": round(r, 3),
        "window_s": window,
        "batched_total_s": round(total, 3),
        "batched_unit_s": round(4 * unit, 3),
        "batched_ratio": round(total / (4 * unit), 3),
        "serial_ratio": round(workers * unit / (4 * unit), 3),
        "batches": float(len(events.of("batch.started"))),
        "pool_margin": round(margin, 3),
        "db_ready_min": float(db_min),
        "zones_down_max": float(verdict.most_domains_down or 0),
        "verdict_safe": float(verdict.safe),
        "host_refused": float(len(refusals) == 1 and not host_events.of("batch.started")),
        "host_nodes_down_max": float(host_verdict.most_not_ready),
        "host_total_s": round(host_total, 3),
        "host_reason": refusals[0] if refusals else "(no refusal)",
    }
    table(
        f"upgrade-all, failure-domain batches: {workers} workers in 3 zones, R ≈ {r:.2f} s, W = {window:g} s",
        [
            (
                "batched total vs 4 × (R + W)",
                f"{total:.1f} s vs {4 * unit:.1f} s",
                "≤ 1.1×",
                f"{total / (4 * unit):.2f}×",
            ),
            ("one at a time would be", f"{workers * unit:.1f} s", "", f"{workers / 4:.2f}×"),
            ("fewest pool copies / min_size", f"{margin:.2f}", "≥ 1", "ok" if margin >= 1 else "MISSED"),
            ("fewest ready instances of a database", f"{db_min}", "≥ 1", "ok" if db_min >= 1 else "MISSED"),
            (
                "most zones down at once",
                f"{verdict.most_domains_down}",
                "1",
                "ok" if verdict.most_domains_down == 1 else "MISSED",
            ),
            (
                f"pools on host ({len(host_names)} workers): refused, one at a time",
                f"{host_verdict.most_not_ready} node(s) down at most, {host_total:.0f} s",
                "refused, 1",
                "ok" if figures["host_refused"] and host_verdict.most_not_ready == 1 else "MISSED",
            ),
        ],
    )
    print(f"  host-pool refusal: {figures['host_reason']}")
    return figures


def main(quick: bool = False) -> dict[str, float]:
    """Print the tables; return their figures (``quick``: fewer nodes, shorter reboots and window)."""
    figures = rolling(quick)
    figures.update(batched(quick))
    return figures


def rolling(quick: bool = False) -> dict[str, float]:
    """The demo cluster one node at a time (``quick``: two nodes, shorter reboots and window)."""
    compile_project()
    from taltasks.events import Emitter
    from taltasks.kube.client import connect as kube_connect
    from taltasks.model import load_cluster
    from taltasks.model.policy import load_policy
    from taltasks.sim.record import read_file
    from taltasks.talos.connect import connect
    from taltasks.workflows.upgrade import UpgradeOptions, run_upgrade

    reboot, window = (1.5, 3.0) if quick else (3.0, 5.0)
    # quick (a smoke run): one control plane and one worker instead of all six nodes
    options = UpgradeOptions(only=("cp-2", "worker-2") if quick else ())
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as tmp:
        directory = Path(tmp)
        repo = _prepare(directory, reboot, window)
        try:
            cluster, policy = load_cluster(repo), load_policy(repo)
            with (
                connect(talosconfig=str(directory / "sim" / "talosconfig")) as talos,
                kube_connect(directory / "sim" / "kubeconfig") as kube,
            ):
                _settle(repo, talos, kube, policy)
                started = time.monotonic()
                result = run_upgrade(repo, cluster, policy, talos, kube, options, emitter=Emitter())
                total = time.monotonic() - started
            record = read_file(directory / "sim" / "record.jsonl")
        finally:
            stop_sim(directory / "sim")
    nodes = result.upgraded
    reboots, reactions = _reboots_and_reactions(record, nodes)
    baseline = sum(reboots) + len(nodes) * window
    allowance = 0.1 * baseline + 2.0
    figures = {
        "nodes": float(len(nodes)),
        "reboot_s": round(statistics.mean(reboots), 3),
        "window_s": window,
        "total_s": round(total, 3),
        "baseline_s": round(baseline, 3),
        "overhead_s": round(total - baseline, 3),
        "overhead_allowance_s": round(allowance, 3),
        "overhead_ratio": round(total / baseline, 3),
        "gate_reaction_ms": round(statistics.median(reactions) * 1000, 1),
        "gate_reaction_max_ms": round(max(reactions) * 1000, 1),
    }
    table(
        f"upgrade-all: {len(nodes)} nodes, simulated reboot R ≈ {figures['reboot_s']:.2f} s, window W = {window:g} s",
        [
            ("total vs Σ(R + W)", f"{total:.1f} s vs {baseline:.1f} s", "", f"{total / baseline:.2f}×"),
            (
                "overhead vs 10% + 2 s",
                f"{total - baseline:.1f} s",
                f"≤ {allowance:.1f} s",
                "ok" if total - baseline <= allowance else "MISSED",
            ),
            (
                "gate reaction p50 (max)",
                f"{figures['gate_reaction_ms']:.0f} ms ({figures['gate_reaction_max_ms']:.0f} ms)",
                "≤ 500 ms",
                "ok" if figures["gate_reaction_ms"] <= 500 else "MISSED",
            ),
        ],
    )
    return figures


if __name__ == "__main__":
    if "--batched" in sys.argv:
        compile_project()
        batched(quick="--quick" in sys.argv)
    else:
        main(quick="--quick" in sys.argv)
