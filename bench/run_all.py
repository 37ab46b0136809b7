"""Run every benchmark present and print ONE table of ratios, headed by machine and date.

Run: .venv/bin/python bench/run_all.py [--quick] [--only a,b] [--verbose] [--json FILE]

Each ``bench/<name>.py`` listed in :data:`BENCHES` has ``main() -> dict`` of figures (a
``str`` value is a note, e.g. why a row was skipped). Benches not written yet are listed as
absent; a bench that fails is reported in its rows and the others still run. Their own
tables are captured (``--verbose`` shows them; ``--json`` keeps every figure). The rows say
which figures they divide and against which target; when a bench returns none of the figures
its rows name (a new bench whose rows are not written yet), its figures are shown as they are.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import inspect
import io
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import REPO, compile_project


@dataclass(frozen=True)
class Row:
    """One line of the table: figure ``key`` divided by ``base`` (another figure's key or a
    fixed target value) gives the ratio; ``limit`` bounds the ratio (``≥`` when ``higher``)."""

    label: str
    key: str
    unit: str = ""
    base: str | float | None = None
    limit: float | None = None
    higher: bool = False


@dataclass(frozen=True)
class Bench:
    module: str
    title: str
    rows: tuple[Row, ...]


BENCHES: tuple[Bench, ...] = (
    Bench(
        "cli_listing",
        "Start-up",
        (
            Row("invoke --list vs empty tasks.py", "invoke_list_ms", "ms", "empty_list_ms", 1.3),
            Row("taltasks --list vs empty tasks.py", "taltasks_list_ms", "ms", "empty_list_ms", 1.3),
            Row("invoke --list vs task --list (go-task)", "invoke_list_ms", "ms", "task_list_ms"),
        ),
    ),
    Bench(
        "talos_api",
        "Talos API",
        (
            Row("Version p50, 1 node (5 ms to answer)", "version_p50_1_ms", "ms"),
            Row("client-side fan-out to 10 nodes vs 1", "version_p50_10_ms", "ms", "version_p50_1_ms", 2.0),
            Row("etcd snapshot throughput vs 100 MB/s", "snapshot_mb_s", "MB/s", 100.0, 1.0, higher=True),
        ),
    ),
    Bench(
        "kube_emulator",
        "Kubernetes emulator",
        (
            Row("list req/s, 1 connection, vs 500/s", "list_one", "req/s", 500.0, 1.0, higher=True),
            Row("list req/s, official client, vs 500/s", "list_client", "req/s", 500.0, 1.0, higher=True),
            Row("watch delivery p50 vs 50 ms", "watch_p50_ms", "ms", 50.0, 1.0),
        ),
    ),
    Bench(
        "configure",
        "configure",
        (
            Row("300 nodes, contract 1.14: time per node vs 50 ms", "ms_per_node_300", "ms", 50.0, 1.0),
            Row("30 nodes, contract 1.14: time per node vs 50 ms", "ms_per_node_30", "ms", 50.0, 1.0),
            Row(
                "contract 1.14: cost per added node, 30→300 vs 3→30 (1× = linear)",
                "marginal_ms_30_300",
                "ms",
                "marginal_ms_3_30",
            ),
            Row("300 nodes, contract 1.13: time per node vs 50 ms", "ms_per_node_300_1_13", "ms", 50.0, 1.0),
            Row(
                "contract 1.13: cost per added node, 30→300 vs 3→30 (1× = linear)",
                "marginal_ms_30_300_1_13",
                "ms",
                "marginal_ms_3_30_1_13",
            ),
        ),
    ),
    Bench(
        "upgrade_all",
        "upgrade-all",
        (
            Row("total vs Σ(reboot R + window W) over the nodes", "total_s", "s", "baseline_s"),
            Row("overhead vs its allowance (10% + 2 s)", "overhead_s", "s", "overhead_allowance_s", 1.0),
            Row("gate reaction p50 vs 500 ms", "gate_reaction_ms", "ms", 500.0, 1.0),
            Row(
                "30 workers in 3 zones, batched, vs 4 × (R + W)",
                "batched_total_s",
                "s",
                "batched_unit_s",
                1.1,
            ),
            Row("batches: fewest pool copies vs min_size", "pool_margin", "", 1.0, 1.0, higher=True),
            Row("batches: fewest ready database instances vs 1", "db_ready_min", "", 1.0, 1.0, higher=True),
            Row("batches: most zones down at once vs 1", "zones_down_max", "", 1.0, 1.0),
            Row("host pools: most nodes down at once vs 1 (refused)", "host_nodes_down_max", "", 1.0, 1.0),
        ),
    ),
)


def machine() -> str:
    """One line: OS, CPU model and count, memory, Python and invoke versions."""
    cpu = platform.processor() or platform.machine()
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kb = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        mem = f", {int(kb.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    import invoke

    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs{mem}; "
        f"Python {platform.python_version()}, invoke {invoke.__version__}"
    )


def _format(value: float, unit: str) -> str:
    text = f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return f"{text} {unit}".strip()


def render_rows(bench: Bench, figures: dict | None, error: str | None) -> list[tuple[str, ...]]:
    """Table lines (area, measure, value, target, ratio, verdict) for one bench's figures."""
    if figures is None:
        reason = error or f"bench/{bench.module}.py not present yet"
        return [(bench.title, row.label, "—", "", "", reason) for row in bench.rows]
    lines = []
    for row in bench.rows:
        value = figures.get(row.key)
        base = figures.get(row.base) if isinstance(row.base, str) else row.base
        if not isinstance(value, int | float):
            note = value if isinstance(value, str) else f"no figure {row.key!r}"
            lines.append((bench.title, row.label, "—", "", "", note))
            continue
        shown = _format(value, row.unit)
        ratio = target = verdict = ""
        if isinstance(base, str):  # the baseline figure is a note: skipped
            verdict = base
        elif base is not None:
            if isinstance(row.base, str):
                shown += f" vs {_format(base, row.unit)}"
            ratio = f"{value / base:.2f}×"
            if row.limit is not None:
                target = f"{'≥' if row.higher else '≤'} {row.limit:g}×"
                ok = value / base >= row.limit if row.higher else value / base <= row.limit
                verdict = "ok" if ok else "MISSED"
        lines.append((bench.title, row.label, shown, target, ratio, verdict))
    if not any(isinstance(figures.get(row.key), int | float) for row in bench.rows):
        # the bench reports under other names than the rows expect: show what it has
        lines += [
            (bench.title, k, _format(v, ""), "", "", "")
            for k, v in figures.items()
            if isinstance(v, int | float)
        ]
    return lines


def print_table(lines: list[tuple[str, ...]]) -> None:
    header = ("area", "measure", "value", "target", "ratio", "verdict")
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *lines]:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def run_bench(bench: Bench, *, quick: bool, verbose: bool) -> tuple[dict | None, str | None, float]:
    """(figures, error, seconds); figures is None when absent or failed."""
    if not (REPO / "bench" / f"{bench.module}.py").exists():
        return None, None, 0.0
    start = time.perf_counter()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(sys.stdout if verbose else captured):
            module = importlib.import_module(f"bench.{bench.module}")
            kwargs = {"quick": True} if quick and "quick" in inspect.signature(module.main).parameters else {}
            figures = module.main(**kwargs)
        if not isinstance(figures, dict):
            return None, f"main() returned {type(figures).__name__}, not a dict", time.perf_counter() - start
        return figures, None, time.perf_counter() - start
    except Exception as exc:
        print(captured.getvalue(), file=sys.stderr)
        traceback.print_exc()
        return None, f"failed: {type(exc).__name__}: {exc}"[:120], time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and sizes (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--verbose", action="store_true", help="also show each bench's own output")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = only - {b.module for b in BENCHES}
    if unknown:
        parser.error(
            f"unknown bench {', '.join(sorted(unknown))}; known: {', '.join(b.module for b in BENCHES)}"
        )

    compile_project()
    started = dt.datetime.now(dt.UTC)
    lines, notes, results = [], [], {}
    for bench in BENCHES:
        if only and bench.module not in only:
            continue
        print(f"running bench/{bench.module}.py …", file=sys.stderr, flush=True)
        figures, error, seconds = run_bench(bench, quick=args.quick, verbose=args.verbose)
        lines += render_rows(bench, figures, error)
        if figures is not None:
            results[bench.module] = figures
            notes += [f"{bench.module}: {v}" for v in figures.values() if isinstance(v, str)]
            notes.append(f"{bench.module}: ran in {seconds:.1f} s")
    print(f"taltasks benchmarks — {started:%Y-%m-%d %H:%M} UTC{' (quick)' if args.quick else ''}")
    print(f"machine: {machine()}")
    print()
    print_table(lines)
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps({"date": started.isoformat(), "machine": machine(), **results}))
    return results


if __name__ == "__main__":
    main()
