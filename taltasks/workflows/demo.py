"""``invoke demo``: the whole life of a cluster on the simulated one, in a few minutes.

1. **prepare** — copy this checkout's ``talos/``, ``kubernetes/`` and ``.sops.yaml`` into a
   work directory (the user's checkout is never written to); if the demo's loopback /24 is
   taken on this machine, the copy moves to a free one.
2. **configure** — validate the definition, decrypt the secrets, generate the configs.
3. **machines** — start the simulated world: six machines in maintenance mode (the
   installer ISO), with Rook-Ceph, two CloudNativePG clusters and Flux waiting in Kubernetes.
4. **bootstrap** — configs, etcd, kubeconfig, API, Cilium, secrets.
5. **Renovate bumps Talos** — talenv.yaml's ``talosVersion`` moves one minor, as a merged
   Renovate PR would; ``talos.upgrade-all`` rolls it out, node by node, gated on etcd,
   Nodes, Ceph and Postgres.
6. **Renovate bumps Kubernetes** — ``kubernetesVersion`` moves one minor;
   ``talos.upgrade-k8s`` upgrades the control plane and every kubelet.
7. **verdict** — a summary table, and the simulator's own account of safety: how many
   nodes were ever down at once, and whether Ceph and every Postgres cluster were healthy
   whenever a node started its upgrade.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.events import NULL, Emitter

# The versions a Renovate PR brings in the demo (one minor each, as both projects advise).
TALOS_TARGET = "v1.12.11"
KUBERNETES_TARGET = "v1.35.4"
DEMO_SUBNET = "127.0.10.0/24"
COPIED = (".sops.yaml", "talos", "kubernetes")
SCENARIO = Path("tests") / "scenarios" / "rook-cnpg.yaml"
# Simulated hardware that is quick but not instant: a reboot takes a second.
TIMINGS = {
    "reboot": 1.0,
    "boot": 0.3,
    "shutdown": 0.2,
    "install": 0.5,
    "upgrade_pull": 0.3,
    "image_pull": 0.05,
}


@dataclass
class Phase:
    name: str
    seconds: float = 0.0


@dataclass
class DemoResult:
    workdir: Path
    phases: list[Phase] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)


def _bump(path: Path, key: str, value: str) -> str:
    """Change ``key: old`` to ``key: value`` in a talenv-style file; the old value."""
    text = path.read_text()
    m = re.search(rf"^{key}:\s*(\S+)", text, re.M)
    if not m:
        raise InputError(f"no `{key}:` pin to bump", where=str(path))
    path.write_text(text[: m.start(1)] + value + text[m.end(1) :])
    return m.group(1)


def prepare(source: Path, workdir: Path) -> str:
    """Copy the demo definition; return the loopback /24 it will run on."""
    from taltasks.sim import addresses

    for name in COPIED:
        src = source / name
        if not src.exists():
            raise InputError(f"the demo needs {name} from the checkout", where=str(source))
        dst = workdir / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("clusterconfig"))
        else:
            shutil.copy2(src, dst)
    subnet = DEMO_SUBNET
    base = addresses.subnet_base(subnet)
    probes = [(f"{base}.10", addresses.KUBE_PORT), (f"{base}.11", addresses.TALOS_PORT)]
    if not all(addresses.is_free(a, p) for a, p in probes):
        subnet = addresses.free_subnet()
        new = addresses.subnet_base(subnet)
        for path in (workdir / "talos").rglob("*.yaml"):
            text = path.read_text()
            if f"{base}." in text:
                path.write_text(text.replace(f"{base}.", f"{new}."))
    return subnet


@contextmanager
def _phase(result: DemoResult, emitter: Emitter, name: str, message: str) -> Iterator[None]:
    emitter.emit("info", f"== {message}", phase=name)
    started = time.monotonic()
    try:
        yield
    finally:
        result.phases.append(Phase(name, time.monotonic() - started))


def run_demo(source: Path, *, workdir: Path | None = None, emitter: Emitter = NULL) -> DemoResult:
    """Run every phase; the simulated world is stopped at the end whatever happens."""
    from taltasks.kube.client import connect as kube_connect
    from taltasks.model import load_cluster
    from taltasks.model.policy import load_policy
    from taltasks.model.versions import Version
    from taltasks.sim import scenario as sc
    from taltasks.sim.world import SimWorld
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import TalosConfig
    from taltasks.workflows.bootstrap import BootstrapOptions, bootstrap
    from taltasks.workflows.configure import configure
    from taltasks.workflows.k8s_upgrade import upgrade_kubernetes
    from taltasks.workflows.upgrade import UpgradeOptions, run_upgrade

    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="taltasks-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    result = DemoResult(work)
    with _phase(result, emitter, "prepare", f"copying the demo cluster's definition to {work}"):
        subnet = prepare(source, work)
        emitter.emit("info", f"the simulated cluster lives on {subnet} (loopback only)")
    with _phase(
        result, emitter, "configure", "invoke configure: validate, decrypt secrets, generate machine configs"
    ):
        configure(work, dry_run=False, emitter=emitter)
    scenario = sc.load(source / SCENARIO)
    scenario.maintenance = True
    scenario.timings.update(TIMINGS)
    world = None
    try:
        with _phase(result, emitter, "machines", "six machines boot the Talos installer (maintenance mode)"):
            world = SimWorld.from_repo(work, scenario, directory=work / ".sim").start()
        with _phase(
            result, emitter, "bootstrap", "invoke bootstrap: configs, etcd, kubeconfig, API, Cilium, secrets"
        ):
            bootstrap(BootstrapOptions(root=work, timeout=120, poll=0.1), emitter)
            world.kube.wait_settled(60)
        before = _node_versions(world)
        upgrade_started = len(world.recorder.entries())
        with _phase(
            result,
            emitter,
            "upgrade-all",
            f"Renovate bumps Talos to {TALOS_TARGET}: invoke talos.upgrade-all",
        ):
            old = _bump(work / "talos" / "talenv.yaml", "talosVersion", TALOS_TARGET)
            emitter.emit(
                "info", f"talos/talenv.yaml: talosVersion {old} → {TALOS_TARGET} (merged Renovate PR)"
            )
            with _clients(work, TalosConfig, TalosClient, kube_connect) as (talos, kube):
                run_upgrade(
                    work,
                    load_cluster(work),
                    load_policy(work),
                    talos,
                    kube,
                    UpgradeOptions(),
                    emitter=emitter,
                )
        with _phase(
            result,
            emitter,
            "upgrade-k8s",
            f"Renovate bumps Kubernetes to {KUBERNETES_TARGET}: invoke talos.upgrade-k8s",
        ):
            old = _bump(work / "talos" / "talenv.yaml", "kubernetesVersion", KUBERNETES_TARGET)
            emitter.emit(
                "info",
                f"talos/talenv.yaml: kubernetesVersion {old} → {KUBERNETES_TARGET} (merged Renovate PR)",
            )
            with _clients(work, TalosConfig, TalosClient, kube_connect) as (talos, kube):
                upgrade_kubernetes(talos, kube, Version.parse(KUBERNETES_TARGET), root=work, emitter=emitter)
            world.kube.wait_settled(60)
        after = _node_versions(world)
        result.nodes = [
            {**b, "talos_after": after[i]["talos"], "kubelet_after": after[i]["kubelet"]}
            for i, b in enumerate(before)
        ]
        result.verdict = verdict(world, upgrade_started)
    finally:
        if world is not None:
            world.stop()
    return result


@contextmanager
def _clients(
    work: Path, talos_config: Any, talos_client: Any, kube_connect: Any
) -> Iterator[tuple[Any, Any]]:
    cfg = talos_config.load(work / "talos" / "clusterconfig" / "talosconfig")
    with talos_client.from_context(cfg.context()) as talos, kube_connect(work / "kubeconfig") as kube:
        yield talos, kube


def _node_versions(world: Any) -> list[dict[str, Any]]:
    out = []
    for n in world.talos.nodes:
        obj = world.kube.store.try_get("nodes", n.hostname) or {}
        info = (obj.get("status") or {}).get("nodeInfo") or {}
        out.append(
            {
                "node": n.hostname,
                "role": n.role,
                "talos": n.version,
                "kubelet": info.get("kubeletVersion", ""),
            }
        )
    return out


def verdict(world: Any, since: int) -> dict[str, Any]:
    """Safety as the simulator saw it from record position ``since`` (the start of the Talos
    upgrade), not as the tool reports it."""
    from taltasks.sim.verdict import safety

    s = safety(world.recorder, since)
    return {
        "upgrades": len(world.recorder.entries("talos.upgrade")),
        "most_nodes_down_at_once": s.most_not_ready,
        "unsafe_starts": s.unsafe_starts,
    }
