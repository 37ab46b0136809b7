"""How `invoke configure` scales: 3, 30 and 300 nodes, secrets already present, on the
shipped contract 1.14 (~20 documents per node) and on 1.13 for comparison.

Run: .venv/bin/python bench/configure.py

Each size gets its own repository (the demo's patches, secrets and .sops.yaml; 3 control
planes and N-3 workers with zone labels and a schematic, addresses on loopback only; for
1.13 the demo's pre-1.14 patches and pins, as ``invoke demo`` starts from); the
time of a full configure run (validate, decrypt secrets with sops, render + validate every
node as Talos loads it, write) is measured, and again for a second run that finds nothing
to change. Figures are printed as ratios from this one run: per-node cost against the
50 ms/node target, and growth between sizes (linear growth means the 300/30 ratio of
per-node cost stays near 1).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import REPO as ROOT
from bench._common import compile_project

SIZES = (3, 30, 300)
TARGET_MS_PER_NODE = 50.0
REPEAT = 3
CONTRACTS = ("1.14", "1.13")  # the shipped one first; its figures carry the plain names
BEFORE_1_14 = ROOT / "tests" / "scenarios" / "demo-before-1.14"
PINS_1_13 = {"talosVersion": "v1.13.9", "kubernetesVersion": "v1.36.4"}


def make_repo(dest: Path, nodes: int, contract: str = "1.14") -> Path:
    import re

    shutil.copytree(ROOT / "talos", dest / "talos", ignore=shutil.ignore_patterns("clusterconfig"))
    shutil.copy2(ROOT / ".sops.yaml", dest / ".sops.yaml")
    if contract == "1.13":
        shutil.rmtree(dest / "talos" / "patches")
        shutil.copytree(BEFORE_1_14 / "patches", dest / "talos" / "patches")
        env = dest / "talos" / "talenv.yaml"
        text = env.read_text()
        for key, value in PINS_1_13.items():
            text = re.sub(rf"^({key}:\s*)\S+", rf"\g<1>{value}", text, flags=re.M)
        env.write_text(text)
    talconfig = (dest / "talos" / "talconfig.yaml").read_text()
    head = talconfig[: talconfig.index("\nnodes:") + 1]
    lines = ["nodes:"]
    for i in range(nodes):
        cp = i < 3
        ip = f"127.0.{50 + i // 200}.{11 + i % 200}"
        lines += [
            f"  - hostname: {'cp' if cp else 'worker'}-{i + 1}",
            f"    ipAddress: {ip}",
            f"    controlPlane: {str(cp).lower()}",
            "    installDisk: /dev/sda",
        ]
        if not cp:
            lines += ["    nodeLabels:", f"      topology.kubernetes.io/zone: zone-{'abc'[i % 3]}"]
    (dest / "talos" / "talconfig.yaml").write_text(head + "\n".join(lines) + "\n")
    return dest


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(tmp: str, sizes: tuple[int, ...], repeat: int, contract: str) -> dict[int, tuple[float, float]]:
    from taltasks.workflows.configure import configure

    results: dict[int, tuple[float, float]] = {}
    for n in sizes:
        first, again = [], []
        for r in range(repeat):
            repo = make_repo(Path(tmp) / f"c{contract}-n{n}-{r}", n, contract)
            first.append(timed(lambda repo=repo: configure(repo)))
            again.append(timed(lambda repo=repo: configure(repo)))
        results[n] = (statistics.median(first), statistics.median(again))
    return results


def report(
    results: dict[int, tuple[float, float]], contract: str, repeat: int, suffix: str
) -> dict[str, float]:
    print(
        f"configure on contract {contract}, secrets present (median of {repeat}); "
        f"target {TARGET_MS_PER_NODE:.0f} ms/node"
    )
    print(f"{'nodes':>6} {'first run':>10} {'ms/node':>8} {'of target':>9} {'2nd run':>9} {'ms/node':>8}")
    for n, (first, again) in results.items():
        per = first * 1000 / n
        print(
            f"{n:>6} {first:>9.2f}s {per:>8.1f} {per / TARGET_MS_PER_NODE:>8.2f}x {again:>8.2f}s {again * 1000 / n:>8.1f}"
        )
    figures = {f"ms_per_node_{n}{suffix}": first * 1000 / n for n, (first, _) in results.items()}
    figures.update({f"rerun_ms_per_node_{n}{suffix}": again * 1000 / n for n, (_, again) in results.items()})
    t3, t30 = results[3][0], results[30][0]
    m1 = (t30 - t3) / 27 * 1000
    figures[f"marginal_ms_3_30{suffix}"] = m1
    print(f"growth of total time: 30/3 nodes = {t30 / t3:.1f}x", end="")
    if 300 in results:
        t300 = results[300][0]
        m2 = (t300 - t30) / 270 * 1000
        figures[f"marginal_ms_30_300{suffix}"] = m2
        print(f", 300/30 nodes = {t300 / t30:.1f}x (nodes grow 10x)")
        print(
            f"marginal cost per added node: 3->30 = {m1:.1f} ms, 30->300 = {m2:.1f} ms; ratio {m2 / m1:.2f} (1.00 = linear)"
        )
    else:
        print()
    fixed = max(t3 - 3 * m1 / 1000, 0) * 1000
    figures[f"fixed_ms{suffix}"] = fixed
    print(f"fixed cost (sops decrypt, parsing, type model load) ~ {fixed:.0f} ms per run")
    return figures


def main(quick: bool = False) -> dict[str, float]:
    """Print the scaling table per contract; return its figures (``quick``: 3 and 30 nodes,
    one run). Contract 1.14's figures are ``ms_per_node_300`` …, 1.13's end in ``_1_13``."""
    compile_project()
    sizes, repeat = ((3, 30), 1) if quick else (SIZES, REPEAT)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, contract in enumerate(CONTRACTS):
            if i:
                print()
            suffix = "" if i == 0 else "_" + contract.replace(".", "_")
            figures.update(report(measure(tmp, sizes, repeat, contract), contract, repeat, suffix))
    if "ms_per_node_300_1_13" in figures:
        print(
            f"\ncontract 1.14 vs 1.13 at 300 nodes: "
            f"{figures['ms_per_node_300'] / figures['ms_per_node_300_1_13']:.2f}x per node"
        )
    return figures


if __name__ == "__main__":
    main()
