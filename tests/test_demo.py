"""`invoke demo` end to end, as the README's first command runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from testpaths import REPO_ROOT


@pytest.mark.slow
def test_invoke_demo_runs_the_whole_life_of_a_cluster(tmp_path):
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "demo", "--dir", str(tmp_path / "work"), "--json"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    summary = lines[-1]
    events = lines[:-1]
    assert [p["name"] for p in summary["phases"]] == [
        "prepare",
        "configure",
        "machines",
        "bootstrap",
        "upgrade-all",
        "upgrade-k8s",
    ]
    assert all(n["talos_after"] == "v1.12.11" and n["kubelet_after"] == "v1.35.4" for n in summary["nodes"])
    assert summary["verdict"]["upgrades"] == 6
    assert summary["verdict"]["most_nodes_down_at_once"] == 1
    assert summary["verdict"]["unsafe_starts"] == []
    kinds = {e["kind"] for e in events}
    assert {"plan", "gate.waiting", "gate.passed", "step.done"} <= kinds
    # the user's checkout was not written to
    assert not (REPO_ROOT / "kubeconfig").exists() or (REPO_ROOT / "kubeconfig").stat().st_mtime < started
    print(f"demo took {elapsed:.1f}s")
