"""Talos API figures against a simulator running in its own process (as a node would).

Fan-out: Version latency p50 to one node and to 10 nodes fanned out by the client — one call
per node with ``node`` metadata, all at once, as talosctl 1.14 does — next to apid's
deprecated one-to-many ``nodes`` proxying. Target: client-side fan-out ≤ 2× one node, i.e.
the nodes answer in parallel. Real nodes are separate machines that each take a few
milliseconds to answer (a LAN round trip, apid's proxy hop, machined); the simulator's nodes
share one Python process whose gRPC serving is serialized (about half a millisecond of
CPU per call), so the target is measured with each simulated node taking ``NODE_LATENCY``
to answer (spent waiting, so nodes answer in parallel as real ones do). The same figures
without that latency are printed too: there the simulator's own serving dominates, and a
single proxied call looks cheaper only because the simulated apid fans out in-process.

Throughput: an etcd snapshot through the whole TLS path — grpcio → local TLS bridge →
OpenSSL → simulator TLS front → grpcio (target ≥ 100 MB/s).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import compile_project, p50, start_sim, stop_sim, table, timed

NODE_LATENCY = 0.005  # seconds a simulated node takes to answer a call
CLUSTER = "cluster: {name: bench, controlPlanes: 3, workers: 7, etcdDbSize: 256Mi}\n"


def _fanout(d: Path, repeat: int) -> tuple[float, float, float]:
    """(one node, client-side fan-out to 10, `nodes` proxying to 10) Version p50 seconds."""
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import TalosConfig

    ctx = TalosConfig.load(d / "talosconfig").context()
    nodes = list(ctx.nodes)
    assert len(nodes) == 10
    with TalosClient.from_context(ctx) as client:
        client.version(nodes)  # connections up
        one = p50(timed(lambda: client.version([nodes[0]]), repeat=repeat))
        ten = p50(timed(lambda: client.version(nodes), repeat=repeat))
    with TalosClient.from_context(ctx, fanout="proxy") as proxy:
        proxy.version(nodes)  # the nodes' versions, which allow `nodes` proxying (< 1.13)
        proxied = p50(timed(lambda: proxy.version(nodes), repeat=repeat))
    return one, ten, proxied


def main(quick: bool = False) -> dict[str, float]:
    """Print the table; return its figures (``quick``: fewer Version calls, for a smoke run)."""
    compile_project()
    repeat = 50 if quick else 200
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import TalosConfig

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-talos-") as tmp:
        d = Path(tmp) / "raw"
        start_sim(d, CLUSTER)
        try:
            raw_one, raw_ten, raw_proxied = _fanout(d, repeat)
            ctx = TalosConfig.load(d / "talosconfig").context()
            with TalosClient.from_context(ctx) as client:
                cp = ctx.endpoints[0]
                out = d / "snap.db"
                client.etcd_snapshot(out, node=cp)  # warm-up
                best = 0.0
                for _ in range(3):
                    t = time.perf_counter()
                    res = client.etcd_snapshot(out, node=cp)
                    best = max(best, res.size / (time.perf_counter() - t) / 1e6)
        finally:
            stop_sim(d)
        d = Path(tmp) / "latency"
        start_sim(d, CLUSTER + f"timings: {{apiLatency: {NODE_LATENCY}}}\n")
        try:
            one, ten, proxied = _fanout(d, repeat)
        finally:
            stop_sim(d)
    results.update(
        version_p50_1_ms=one * 1000,
        version_p50_10_ms=ten * 1000,
        fanout_ratio=ten / one,
        proxied_fanout_ratio=proxied / one,
        raw_fanout_ratio=raw_ten / raw_one,
        raw_proxied_fanout_ratio=raw_proxied / raw_one,
        snapshot_mb_s=best,
    )
    ms = NODE_LATENCY * 1000
    table(
        "Talos API (simulator in its own process, Ed25519 mutual TLS through the bridge)",
        [
            (f"Version p50, 1 node ({ms:g} ms to answer)", f"{one * 1000:.2f} ms", "", ""),
            (
                "Version p50, client-side fan-out to 10 nodes (`node`)",
                f"{ten * 1000:.2f} ms",
                "≤ 2× one node",
                f"{ten / one:.2f}×",
            ),
            (
                "Version p50, `nodes` proxying to 10 nodes (deprecated)",
                f"{proxied * 1000:.2f} ms",
                "",
                f"{proxied / one:.2f}×",
            ),
            ("same, nodes answering at once: 1 node", f"{raw_one * 1000:.2f} ms", "", ""),
            (
                "  client-side fan-out to 10 (serving serialized)",
                f"{raw_ten * 1000:.2f} ms",
                "",
                f"{raw_ten / raw_one:.2f}×",
            ),
            (
                "  `nodes` proxying to 10 (fanned out in-process)",
                f"{raw_proxied * 1000:.2f} ms",
                "",
                f"{raw_proxied / raw_one:.2f}×",
            ),
            (
                "etcd snapshot throughput (256 MiB)",
                f"{best:.0f} MB/s",
                "≥ 100 MB/s",
                f"{best / 100:.2f}× target",
            ),
        ],
    )
    return results


if __name__ == "__main__":
    main()
