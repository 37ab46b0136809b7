"""demo: the whole life of a cluster on the built-in simulated one."""

from __future__ import annotations

from taltasks.tasks._cli import command, repo_root, reporting

COLLECTION = ""


@command(
    help={
        "dir": "work directory to keep (default: a fresh temporary directory)",
        "root": "the checkout whose talos/ and kubernetes/ the demo copies (default: this one)",
        "json": "JSON lines of events instead of the live view",
    }
)
def demo(c, dir=None, root=None, json=False):
    """Configure, bootstrap, upgrade Talos 1.13 → 1.14 (moving to the 1.14 contract) and
    Kubernetes on a simulated 3+3 cluster."""
    from pathlib import Path

    from taltasks.errors import OperationFailed
    from taltasks.ui.tables import print_rows
    from taltasks.workflows.demo import run_demo

    with reporting(json) as emitter:
        result = run_demo(repo_root(root), workdir=Path(dir) if dir else None, emitter=emitter)
    if json:
        import json as jsonlib

        print(
            jsonlib.dumps(
                {
                    "phases": [p.__dict__ for p in result.phases],
                    "nodes": result.nodes,
                    "verdict": result.verdict,
                    "contract": result.contract,
                    "workdir": str(result.workdir),
                },
                default=str,
            )
        )
    else:
        print()
        print_rows(
            [
                {
                    "node": n["node"],
                    "role": n["role"],
                    "talos": f"{n['talos']} → {n['talos_after']}",
                    "kubelet": f"{n['kubelet']} → {n['kubelet_after']}",
                }
                for n in result.nodes
            ],
            ["node", "role", "talos", "kubelet"],
            title="Nodes",
        )
        print()
        print_rows(
            [
                {
                    "node": c["node"],
                    "moved": c["moved"],
                    "changes": c["changes"],
                    "applied": c["applied"].lower().replace("_", "-"),
                    "next reboot": ", ".join(s.removeprefix("document ") for s in c["next_reboot"]) or "-",
                }
                for c in result.contract
            ],
            ["node", "moved", "changes", "applied", "next reboot"],
            title="Moving to the Talos 1.14 contract (talos.diff-config, talos.apply-node)",
        )
        print()
        print_rows(
            [{"phase": p.name, "seconds": f"{p.seconds:.1f}"} for p in result.phases]
            + [{"phase": "total", "seconds": f"{result.seconds:.1f}"}],
            ["phase", "seconds"],
            title="Phases",
        )
        v = result.verdict
        print()
        print(
            f"simulator's verdict: {v['upgrades']} node upgrades, at most {v['most_nodes_down_at_once']} node(s) down at once, "
            f"{len(v['unsafe_starts'])} upgrade(s) started while Ceph or Postgres was unhealthy"
        )
        print(
            f"work directory: {result.workdir} (talosconfig and kubeconfig of the stopped cluster are there)"
        )
    v = result.verdict
    if v["most_nodes_down_at_once"] > 1 or v["unsafe_starts"]:
        raise OperationFailed(f"the simulator saw an unsafe moment: {v}")
