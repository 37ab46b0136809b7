"""``invoke demo``: the whole life of a cluster on the simulated one, in a few minutes.

1. **prepare** — copy this checkout's ``talos/``, ``kubernetes/`` and ``.sops.yaml`` into a
   work directory (the user's checkout is never written to) and wind the copy back to the
   day before the Talos 1.14 Renovate PR: the latest 1.13 release and Kubernetes 1.36 in
   ``talenv.yaml``, patches in the v1alpha1 form 1.13 reads (kept in
   ``tests/scenarios/demo-before-1.14``); if the demo's loopback /24 is taken on this
   machine, the copy moves to a free one.
2. **configure** — validate the definition, decrypt the secrets, generate the configs.
3. **machines** — start the simulated world: six machines in maintenance mode (the
   installer ISO), with Rook-Ceph, two CloudNativePG clusters and Flux waiting in Kubernetes.
4. **bootstrap** — configs, etcd, kubeconfig, API, Cilium, secrets.
5. **Renovate bumps Talos** to the shipped ``talosVersion`` (1.13 → 1.14), as a merged PR
   would — with the commit a maintainer adds to such a PR: the patches rewritten as the
   1.14 documents ``configure`` named for each of them (the shipped ``talos/patches``).
   ``configure`` generates contract-1.14 configs; ``talos.upgrade-all`` rolls Talos out
   node by node, gated on etcd, Nodes, Ceph and Postgres — each node keeps running its
   1.13-contract config, which Talos 1.14 reads.
6. **the 1.14 contract** — ``talos.diff-config``'s account per node (sections moved to
   documents, real changes, what waits for the next reboot), then ``talos.apply-node`` on
   every node: Talos 1.14 applies configs without a reboot.
7. **Renovate bumps Kubernetes** — ``kubernetesVersion`` moves one minor, to the shipped
   pin; ``talos.upgrade-k8s`` upgrades the control plane and every kubelet (now set in the
   1.14 documents).
8. **verdict** — a summary table, and the simulator's own account of safety: how many
   nodes were ever down at once, and whether Ceph and every Postgres cluster were healthy
   whenever a node started its upgrade.

The demo ends where the shipped ``talos/`` is: Talos 1.14 on the 1.14 contract.
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

# Where the demo starts: the latest 1.13 and a Kubernetes both 1.13 and 1.14 support. The
# Renovate PRs then bring the shipped pins of talos/talenv.yaml (one minor each, as both
# projects advise).
TALOS_START = "v1.13.9"
KUBERNETES_START = "v1.36.4"
DEMO_SUBNET = "127.0.10.0/24"
COPIED = (".sops.yaml", "talos", "kubernetes")
SCENARIO = Path("tests") / "scenarios" / "rook-cnpg.yaml"
BEFORE_1_14 = Path("tests") / "scenarios" / "demo-before-1.14"  # its patches, v1alpha1 form
NEW_PATCHES = Path(".demo") / "patches-1.14"  # the shipped patches, kept for the bump
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
    contract: list[dict[str, Any]] = field(default_factory=list)  # the move to 1.14, per node

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


def targets(source: Path) -> tuple[str, str]:
    """The shipped (talosVersion, kubernetesVersion): where the demo's Renovate PRs go."""
    from taltasks.model.envsubst import parse_env_file

    path = source / "talos" / "talenv.yaml"
    pins = parse_env_file(path.read_text(), str(path))
    return str(pins["talosVersion"]), str(pins["kubernetesVersion"])


def prepare(source: Path, workdir: Path) -> str:
    """Copy the demo definition and wind it back to before the 1.14 PR; return the
    loopback /24 it will run on."""
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
    before = source / BEFORE_1_14 / "patches"
    if not before.is_dir():
        raise InputError("the demo needs its pre-1.14 patches", where=str(before))
    shutil.copytree(workdir / "talos" / "patches", workdir / NEW_PATCHES)
    shutil.rmtree(workdir / "talos" / "patches")
    shutil.copytree(before, workdir / "talos" / "patches")
    _bump(workdir / "talos" / "talenv.yaml", "talosVersion", TALOS_START)
    _bump(workdir / "talos" / "talenv.yaml", "kubernetesVersion", KUBERNETES_START)
    subnet = DEMO_SUBNET
    base = addresses.subnet_base(subnet)
    probes = [(f"{base}.10", addresses.KUBE_PORT), (f"{base}.11", addresses.TALOS_PORT)]
    if not all(addresses.is_free(a, p) for a, p in probes):
        subnet = addresses.free_subnet()
        new = addresses.subnet_base(subnet)
        for folder in (workdir / "talos", workdir / NEW_PATCHES):
            for path in folder.rglob("*.yaml"):
                text = path.read_text()
                if f"{base}." in text:
                    path.write_text(text.replace(f"{base}.", f"{new}."))
    return subnet


def rewrite_patches(workdir: Path) -> list[str]:
    """The maintainer's commit on the Talos 1.14 PR: every patch in the 1.14 form."""
    shutil.rmtree(workdir / "talos" / "patches")
    shutil.copytree(workdir / NEW_PATCHES, workdir / "talos" / "patches")
    return sorted(str(p.relative_to(workdir)) for p in (workdir / "talos" / "patches").rglob("*.yaml"))


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
    from taltasks.workflows.cni import find_helm
    from taltasks.workflows.configure import configure
    from taltasks.workflows.k8s_upgrade import upgrade_kubernetes
    from taltasks.workflows.upgrade import UpgradeOptions, run_upgrade

    find_helm()  # bootstrap renders Cilium with it: missing, say so before anything starts
    talos_target, kubernetes_target = targets(source)
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="taltasks-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    result = DemoResult(work)
    with _phase(result, emitter, "prepare", f"copying the demo cluster's definition to {work}"):
        subnet = prepare(source, work)
        emitter.emit("info", f"the simulated cluster lives on {subnet} (loopback only)")
        emitter.emit(
            "info",
            f"wound back to before the Talos 1.14 PR: Talos {TALOS_START}, Kubernetes {KUBERNETES_START}, "
            "patches in the v1alpha1 form",
        )
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
            f"Renovate bumps Talos to {talos_target}: invoke configure, invoke talos.upgrade-all",
        ):
            old = _bump(work / "talos" / "talenv.yaml", "talosVersion", talos_target)
            emitter.emit(
                "info", f"talos/talenv.yaml: talosVersion {old} → {talos_target} (Renovate's commit)"
            )
            for path in rewrite_patches(work):
                emitter.emit("info", f"{path}: rewritten as Talos 1.14 documents (the maintainer's commit)")
            configure(work, dry_run=False, emitter=emitter)
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
            "contract-1.14",
            "the 1.14 contract: invoke talos.diff-config, then talos.apply-node on every node",
        ):
            result.contract = move_contract(work, emitter)
        with _phase(
            result,
            emitter,
            "upgrade-k8s",
            f"Renovate bumps Kubernetes to {kubernetes_target}: invoke talos.upgrade-k8s",
        ):
            old = _bump(work / "talos" / "talenv.yaml", "kubernetesVersion", kubernetes_target)
            emitter.emit(
                "info",
                f"talos/talenv.yaml: kubernetesVersion {old} → {kubernetes_target} (merged Renovate PR)",
            )
            with _clients(work, TalosConfig, TalosClient, kube_connect) as (talos, kube):
                upgrade_kubernetes(talos, kube, Version.parse(kubernetes_target), root=work, emitter=emitter)
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


def move_contract(work: Path, emitter: Emitter) -> list[dict[str, Any]]:
    """Show what moving every node to its contract-1.14 config means, then apply it (no
    reboot on Talos 1.14); one row per node."""
    from taltasks.model import load_cluster
    from taltasks.talos.config import TalosConfig
    from taltasks.workflows.apply import apply_node
    from taltasks.workflows.diffconfig import diff_nodes

    rows = []
    cluster = load_cluster(work)
    context = TalosConfig.load(work / "talos" / "clusterconfig" / "talosconfig").context()
    for d in diff_nodes(work):
        emitter.emit("info", f"talos.diff-config {d.node}: {d.changes.summary()}", node=d.node)
        for ch in d.changes.reboot_only:
            emitter.emit("info", f"  {ch.line()}", node=d.node)
        outcome = apply_node(work, cluster, d.node, context, emitter=emitter)
        rows.append(
            {
                "node": d.node,
                "moved": len(d.changes.moved),
                "changes": sum(1 for c in d.changes.changes if c.effective),
                "next_reboot": [c.subject for c in d.changes.reboot_only],
                "applied": outcome.mode,
                "rebooted": outcome.rebooted,
            }
        )
    left = [d.node for d in diff_nodes(work) if d.diff]
    if left:
        raise InputError(f"nodes still differ from their generated config after the apply: {', '.join(left)}")
    return rows


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
    from taltasks.sim.verdict import safety, talos_upgrades

    s = safety(world.recorder, since)
    return {
        "upgrades": len(talos_upgrades(world.recorder)),
        "most_nodes_down_at_once": s.most_not_ready,
        "unsafe_starts": s.unsafe_starts,
    }
