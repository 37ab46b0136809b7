"""`invoke demo` end to end, as the README's first command runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from taltasks.workflows.demo import KUBERNETES_START, TALOS_START, targets
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
        "contract-1.14",
        "upgrade-k8s",
    ]
    # from the latest 1.13 to the shipped pins, as Renovate would
    talos, kubernetes = targets(REPO_ROOT)
    assert (talos, kubernetes) == ("v1.14.7", "v1.37.2")
    assert all(n["talos"] == TALOS_START and n["kubelet"] == KUBERNETES_START for n in summary["nodes"])
    assert all(n["talos_after"] == talos and n["kubelet_after"] == kubernetes for n in summary["nodes"])
    # every node moved to its 1.14-contract config without a reboot; diff-config named what moved
    # and what waits for the next reboot (workload isolation, the EPHEMERAL mount)
    contract = summary["contract"]
    assert [c["node"] for c in contract] == [n["node"] for n in summary["nodes"]]
    assert all(c["applied"] == "NO_REBOOT" and not c["rebooted"] and c["moved"] >= 10 for c in contract)
    assert all(
        {"document SecurityProfileConfig", "document VolumeConfig/EPHEMERAL"} <= set(c["next_reboot"])
        for c in contract
    )
    assert summary["verdict"]["upgrades"] == 6
    assert summary["verdict"]["most_nodes_down_at_once"] == 1
    assert summary["verdict"]["unsafe_starts"] == []
    kinds = {e["kind"] for e in events}
    assert {"plan", "gate.waiting", "gate.passed", "step.done"} <= kinds
    # the user's checkout was not written to
    assert not (REPO_ROOT / "kubeconfig").exists() or (REPO_ROOT / "kubeconfig").stat().st_mtime < started
    assert elapsed < 180, f"the demo took {elapsed:.1f}s (budget: 3 minutes)"
    print(f"demo took {elapsed:.1f}s")
