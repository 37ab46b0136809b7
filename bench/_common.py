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


def start_sim(directory: Path, scenario: str, *, repo: Path | None = None) -> None:
    """``invoke sim.up`` in ``directory`` with this scenario text (and ``--repo``)."""
    import subprocess

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "scenario.yaml").write_text(scenario)
    args = ["sim.up", "--dir", str(directory), "--scenario", str(directory / "scenario.yaml")]
    if repo is not None:
        args += ["--repo", str(repo)]
    subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, check=True, capture_output=True)


def stop_sim(directory: Path) -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "invoke", "sim.down", "--dir", str(directory)],
        cwd=REPO,
        check=False,
        capture_output=True,
    )
