"""The benchmark runner: every bench compiles and has ``main()``; the table logic (ratios,
targets, absent and failed benches, notes) on tables of cases; one quick real run."""

from __future__ import annotations

import importlib
import inspect
import os
import py_compile
import subprocess
import sys

import pytest

from taltasks.toolcache import cache_root
from testpaths import REPO_ROOT

USER_CACHE = cache_root()  # resolved before the per-test HOME isolation (go-task is shared)
BENCH_FILES = sorted(p for p in (REPO_ROOT / "bench").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture
def run_all(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    return importlib.import_module("bench.run_all")


@pytest.mark.parametrize("path", BENCH_FILES, ids=[p.stem for p in BENCH_FILES])
def test_bench_compiles_and_has_main(path, monkeypatch, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)
    if path.stem == "run_all":
        return
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    module = importlib.import_module(f"bench.{path.stem}")
    params = inspect.signature(module.main).parameters.values()
    assert all(p.default is not inspect.Parameter.empty for p in params), "main() must run without arguments"


def test_every_bench_file_has_rows_in_the_table(run_all):
    listed = {b.module for b in run_all.BENCHES}
    assert {p.stem for p in BENCH_FILES} - {"run_all"} <= listed


def _bench(run_all, *rows):
    return run_all.Bench("demo", "Demo", tuple(rows))


@pytest.mark.parametrize(
    ("row", "figures", "expected"),
    [
        # (value, target, ratio, verdict)
        (
            ("a vs b", "a", "ms", "b", 1.3),
            {"a": 120.0, "b": 100.0},
            ("120 ms vs 100 ms", "≤ 1.3×", "1.20×", "ok"),
        ),
        (
            ("a vs b", "a", "ms", "b", 1.3),
            {"a": 140.0, "b": 100.0},
            ("140 ms vs 100 ms", "≤ 1.3×", "1.40×", "MISSED"),
        ),
        (("a vs 100", "a", "MB/s", 100.0, 1.0, True), {"a": 90.0}, ("90 MB/s", "≥ 1×", "0.90×", "MISSED")),
        (("a vs 100", "a", "MB/s", 100.0, 1.0, True), {"a": 190.0}, ("190 MB/s", "≥ 1×", "1.90×", "ok")),
        (("plain", "a", "ms"), {"a": 1.534}, ("1.53 ms", "", "", "")),
        (("a vs b", "a", "ms", "b"), {"a": 130.0, "b": 52.0}, ("130 ms vs 52 ms", "", "2.50×", "")),
        (
            ("a vs b", "a", "ms", "b"),
            {"a": 130.0, "b": "go-task not available"},
            ("130 ms", "", "", "go-task not available"),
        ),
        (("missing", "a", "ms"), {"z": 1.0}, ("—", "", "", "no figure 'a'")),
    ],
)
def test_row_rendering(run_all, row, figures, expected):
    (line, *rest) = run_all.render_rows(_bench(run_all, run_all.Row(*row)), figures, None)
    assert line[2:] == expected
    if "no figure" in expected[3]:  # a bench with other names: its figures are shown as they are
        assert [r[1:3] for r in rest] == [("z", "1.00")]
    else:
        assert rest == []


def test_absent_and_failed_benches_keep_their_rows(run_all):
    bench = _bench(run_all, run_all.Row("x", "x"), run_all.Row("y", "y"))
    absent = run_all.render_rows(bench, None, None)
    assert [r[5] for r in absent] == ["bench/demo.py not present yet"] * 2
    failed = run_all.render_rows(bench, None, "failed: RuntimeError: boom")
    assert [r[1] for r in failed] == ["x", "y"] and failed[0][5] == "failed: RuntimeError: boom"


@pytest.mark.slow
def test_quick_run_prints_one_table(tmp_path):
    env = {**os.environ, "TALTASKS_CACHE": str(USER_CACHE)}
    out = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "run_all.py"),
            "--quick",
            "--only",
            "cli_listing,upgrade_all",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("taltasks benchmarks — ") and lines[1].startswith("machine: ")
    assert sum(line.startswith("area ") for line in lines) == 1  # one table, the benches' own captured
    listing = [line for line in lines if line.startswith("Start-up")]
    assert len(listing) == 3 and "≤ 1.3×" in listing[0]
    assert not any(line.startswith(("Talos API", "configure")) for line in lines)  # --only
