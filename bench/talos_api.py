"""Talos API figures against a simulator running in its own process (as a node would).

Prints Version latency p50 to one node and fanned out to 10 nodes (target: fan-out ≤ 2× one
node, i.e. nodes answer in parallel), and etcd snapshot throughput through the whole TLS
path — grpcio → local TLS bridge → OpenSSL → simulator TLS front → grpcio (target ≥ 100 MB/s).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import compile_project, p50, start_sim, stop_sim, table, timed


def main(quick: bool = False) -> dict[str, float]:
    """Print the table; return its figures (``quick``: fewer Version calls, for a smoke run)."""
    compile_project()
    repeat = 50 if quick else 200
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import TalosConfig

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-talos-") as tmp:
        d = Path(tmp)
        start_sim(d, "cluster: {name: bench, controlPlanes: 3, workers: 7, etcdDbSize: 256Mi}\n")
        try:
            ctx = TalosConfig.load(d / "talosconfig").context()
            client = TalosClient.from_context(ctx)
            nodes = list(ctx.nodes)
            assert len(nodes) == 10
            one = p50(timed(lambda: client.version([nodes[0]]), repeat=repeat))
            ten = p50(timed(lambda: client.version(nodes), repeat=repeat))
            cp = ctx.endpoints[0]
            out = d / "snap.db"
            client.etcd_snapshot(out, node=cp)  # warm-up
            best = 0.0
            for _ in range(3):
                t = time.perf_counter()
                res = client.etcd_snapshot(out, node=cp)
                best = max(best, res.size / (time.perf_counter() - t) / 1e6)
            client.close()
        finally:
            stop_sim(d)
    results.update(
        version_p50_1_ms=one * 1000, version_p50_10_ms=ten * 1000, fanout_ratio=ten / one, snapshot_mb_s=best
    )
    table(
        "Talos API (simulator in its own process, Ed25519 mutual TLS through the bridge)",
        [
            ("Version p50, 1 node", f"{one * 1000:.2f} ms", "", ""),
            (
                "Version p50, fan-out to 10 nodes",
                f"{ten * 1000:.2f} ms",
                "≤ 2× one node",
                f"{ten / one:.2f}×",
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
