"""Shared bits of the benchmarks: byte-compile first, run invoke, print a ratio table."""

from __future__ import annotations

import compileall
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def compile_project() -> None:
    """PYTHONDONTWRITEBYTECODE=1 may be set here: compile explicitly so imports are measured
    as they run on a user's machine, not with per-run compilation."""
    compileall.compile_dir(str(REPO / "taltasks"), quiet=1, workers=0)
    compileall.compile_file(str(REPO / "tasks.py"), quiet=1)


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(fn: Callable[[], object], repeat: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """rows: (what, measured, target, ratio-or-verdict)"""
    print(f"\n{title}")
    widths = [max(len(r[i]) for r in [("measure", "value", "target", "ratio"), *rows]) for i in range(4)]
    for r in [("measure", "value", "target", "ratio"), *rows]:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    sys.stdout.flush()
