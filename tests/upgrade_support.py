"""A whole simulated cluster built from the demo repository, for the upgrade tests and bench.

:func:`demo_cluster` copies the shipped ``talos/`` to a temporary checkout on a free
loopback /24, starts the rook-cnpg scenario (3 control planes, 3 workers, Ceph OSDs, two
CNPG clusters, Flux, tuppr) on it with sub-second timings, waits for it to settle, then
bumps ``talosVersion`` in ``talenv.yaml`` and writes a fast upgrade policy — so an
upgrade-all has six nodes to do. Faults go in through the scenario (``faults``,
``talosFaults``) or live (``world.set_talos_faults``).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configure_support import copy_demo, edit, move_to_subnet, set_pins
from taltasks.sim import scenario as sc
from taltasks.sim.verdict import health_at, most_not_ready, node_starts  # noqa: F401 - re-exported for the tests
from taltasks.sim.world import SimWorld
from testpaths import REPO_ROOT

SCENARIO = REPO_ROOT / "tests" / "scenarios" / "rook-cnpg.yaml"
OLD, NEW = "v1.11.5", "v1.12.0"
FAST = {"reboot": 0.3, "boot": 0.05, "shutdown": 0.05, "install": 0.05, "upgrade_pull": 0.05}

FAST_POLICY = """\
stability: {{window: {window}, freshSamples: 2}}
timeouts: {{gate: {gate}, drain: {drain}, reboot: {reboot}, switchover: 10s}}
drain: {{retryInterval: 200ms}}
maintenance:
  flux: {{suspend: true}}
  tuppr: {{pause: true}}
etcdSnapshot: true
gates:
  post:
    - talos-node
    - etcd
    - kube-node
    - gate: ceph
      timeout: {ceph}
    - cnpg
healthChecks:
  - apiVersion: ceph.rook.io/v1
    kind: CephCluster
    namespace: rook-ceph
    expr: status.ceph.health in ['HEALTH_OK']
    description: Ceph reports HEALTH_OK
"""

TUPPR = {
    "apiVersion": "tuppr.home-operations.com/v1alpha1",
    "kind": "TalosUpgrade",
    "metadata": {"name": "talos"},
    "spec": {"talos": {"version": NEW}},
}


@dataclass
class DemoCluster:
    repo: Path
    world: SimWorld

    @property
    def talosconfig(self) -> Path:
        return self.world.files.talosconfig

    @property
    def kubeconfig(self) -> Path:
        return self.world.files.kubeconfig

    @property
    def recorder(self):
        return self.world.recorder

    def args(self) -> list[str]:
        """Command-line options pointing a task at this cluster."""
        return [
            "--root",
            str(self.repo),
            "--talosconfig",
            str(self.talosconfig),
            "--kubeconfig",
            str(self.kubeconfig),
        ]

    def node_ip(self, host: str) -> str:
        return self.world.talos.node(host).ip

    def versions(self) -> dict[str, str]:
        return {n.hostname: n.version for n in self.world.talos.nodes}

    def connect(self):
        """(TalosClient, KubeClient) as the tasks would build them."""
        from taltasks.kube.client import connect as kube_connect
        from taltasks.talos.connect import connect

        return connect(talosconfig=str(self.talosconfig)), kube_connect(self.kubeconfig)

    def stop(self) -> None:
        self.world.stop()


def write_policy(
    repo: Path,
    *,
    window: str = "500ms",
    gate: str = "30s",
    drain: str = "10s",
    reboot: str = "10s",
    ceph: str = "30s",
    extra: str = "",
) -> None:
    text = FAST_POLICY.format(window=window, gate=gate, drain=drain, reboot=reboot, ceph=ceph) + extra
    (repo / "talos" / "upgrade-policy.yaml").write_text(text)


def demo_cluster(
    tmp_path: Path,
    subnet: str,
    *,
    faults: list[dict[str, Any]] | None = None,
    talos_faults: dict[str, dict[str, bool]] | None = None,
    timings: dict[str, float] | None = None,
    ceph_recovery: float | None = None,
    scenario_extra: str = "",
    tuppr_plan: bool = True,
    pins: dict[str, str] | None = None,
    node_versions: dict[str, str] | None = None,
    target: str = NEW,
    **policy: str,
) -> DemoCluster:
    """``scenario_extra`` is appended to the scenario (e.g. a ``tuppr:`` section);
    ``tuppr_plan`` creates an unmanaged TalosUpgrade for the pause tests. ``pins`` start
    the repo elsewhere than v1.11.5 / Kubernetes v1.34.3, ``node_versions`` make some nodes
    run another Talos (a mixed cluster), and ``target`` is the Talos the bump asks for — a
    1.14 target comes with the shipped patches in the 1.14 form, as the maintainer's commit
    on the Renovate PR does (``invoke demo``)."""
    repo = move_to_subnet(copy_demo(tmp_path / "repo"), subnet)
    if pins:
        set_pins(repo, pins)
    text = SCENARIO.read_text()
    if faults:
        text = text.replace("faults: []", "faults:\n" + "".join(f"  - {_flow(f)}\n" for f in faults))
    if talos_faults:
        text += "talosFaults:\n" + "".join(f"  {n}: {_flow(f)}\n" for n, f in talos_faults.items())
    if ceph_recovery is not None:
        text = re.sub(r"recoverySeconds: [0-9.]+", f"recoverySeconds: {ceph_recovery}", text)
    text += scenario_extra
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(text)
    scenario = sc.load(scenario_file)
    scenario.timings.update({**FAST, **(timings or {})})
    for host, version in (node_versions or {}).items():
        scenario.nodes.setdefault(host, {})["version"] = version
    directory = tmp_path / "sim"
    world = SimWorld.from_repo(repo, scenario, directory=directory).start()
    try:
        world.kube.wait_settled(20)
        if tuppr_plan:
            world.kube.store.create(dict(TUPPR))
    except BaseException:
        world.stop()
        raise
    set_pins(repo, {"talosVersion": target})
    if target.startswith("v1.14"):
        shutil.rmtree(repo / "talos" / "patches")
        shutil.copytree(REPO_ROOT / "talos" / "patches", repo / "talos" / "patches")
        move_to_subnet(repo, subnet)
    write_policy(repo, **policy)
    return DemoCluster(repo, world)


def _flow(mapping: dict[str, Any]) -> str:
    import json

    return json.dumps(mapping)


def upgrade(d: DemoCluster, *sinks: Any, **options: Any):
    """run_upgrade as the task calls it, with short engine timings; returns (result,
    events). ``sinks`` see every event as it happens (to change the world at an exact point
    of the run)."""
    from taltasks.events import Collector, Emitter
    from taltasks.model import load_cluster
    from taltasks.model.policy import load_policy
    from taltasks.workflows.upgrade import UpgradeOptions, run_upgrade

    events = Collector()
    talos, kube = d.connect()
    try:
        result = run_upgrade(
            d.repo,
            load_cluster(d.repo),
            load_policy(d.repo),
            talos,
            kube,
            UpgradeOptions(poll_interval=0.1, resync_interval=0.5, **options),
            emitter=Emitter(events, *sinks),
        )
    finally:
        talos.close()
        kube.close()
    return result, events


# ---- reading the simulator's record -------------------------------------------------------------


def our_writes(recorder, since: int = 0) -> list:
    """Kubernetes writes through the API (the simulator's own actors write to the store
    directly, so these are the tool's) and Talos Upgrade calls, from entry ``since`` on."""
    return [
        e
        for e in recorder.entries()
        if e.seq >= since
        and (
            (e.kind == "kube.api" and e.get("verb") not in ("get", "list", "watch"))
            or e.kind in ("talos.upgrade", "talos.apply", "talos.reboot")
        )
    ]


# ---- zoned clusters: failure-domain batches ------------------------------------------------------

ZONES = "abc"


def zone_of(worker: int) -> str:
    """Workers take turns over the zones: worker-1 zone-a, worker-2 zone-b, worker-3 zone-c, …"""
    return f"zone-{ZONES[(worker - 1) % len(ZONES)]}"


MODERN = ("v1.13.4", "v1.13.9", "v1.36.4")  # Talos from, to, and Kubernetes: the 1.13+ upgrade path


def zoned_repo(dest: Path, subnet: str, workers: int, *, pins: tuple[str, str] | None = None) -> Path:
    """The demo checkout with 3 control planes and ``workers`` workers spread over three
    zones (``topology.kubernetes.io/zone`` node labels), on ``subnet``; ``pins``: its
    (talosVersion, kubernetesVersion) when not the pre-1.14 demo's."""
    from configure_support import set_pins
    from taltasks.sim.addresses import control_plane_address, worker_address

    repo = move_to_subnet(copy_demo(dest), subnet)
    if pins is not None:
        set_pins(repo, {"talosVersion": pins[0], "kubernetesVersion": pins[1]})
    talconfig = repo / "talos" / "talconfig.yaml"
    text = talconfig.read_text()
    lines = ["nodes:"]
    for i in range(3):
        lines += [
            f"  - hostname: cp-{i + 1}",
            f"    ipAddress: {control_plane_address(subnet, i)}",
            "    controlPlane: true",
            "    installDisk: /dev/sda",
        ]
    for i in range(1, workers + 1):
        lines += [
            f"  - hostname: worker-{i}",
            f"    ipAddress: {worker_address(subnet, i - 1)}",
            "    controlPlane: false",
            "    installDisk: /dev/sda",
            "    nodeLabels:",
            f"      topology.kubernetes.io/zone: {zone_of(i)}",
        ]
    talconfig.write_text(text[: text.index("\nnodes:") + 1] + "\n".join(lines) + "\n")
    return repo


def zoned_scenario(
    workers: int, *, pool_domain: str = "zone", databases: int = 2, fast: bool = True, zonal_db: bool = False
) -> str:
    """Rook with one OSD per worker and its pools replicated across ``pool_domain``, CNPG
    clusters of three instances in three zones, a Deployment behind a PDB."""
    osds = ", ".join(f"worker-{i}: [{i - 1}]" for i in range(1, workers + 1))
    cnpg = "".join(
        f"    - {{namespace: database, name: pg-{j + 1}, instances: 3, "
        f"nodes: [worker-{3 * j + 1}, worker-{3 * j + 2}, worker-{3 * j + 3}]}}\n"
        for j in range(min(databases, workers // 3))
    )
    if zonal_db:  # a database whose instances all live in zone-a
        cnpg += "    - {namespace: database, name: zonal, instances: 2, nodes: [worker-1, worker-4]}\n"
    times = "0.02" if fast else "0.05"
    return (
        f"cluster: {{name: demo, controlPlanes: 3, workers: {workers}, talosVersion: {OLD}, kubernetesVersion: v1.34.3}}\n"
        f"kubernetes: {{podStartSeconds: {times}, podTerminationSeconds: {times}}}\n"
        "ceph:\n"
        f"  osds: {{{osds}}}\n"
        "  mons: [cp-1, cp-2, cp-3]\n"
        "  recoverySeconds: 0.2\n"
        "  checkIntervalSeconds: 0.1\n"
        "  pools:\n"
        f"    - {{name: ceph-blockpool, size: 3, failureDomain: {pool_domain}}}\n"
        "    - {name: builtin-mgr, poolName: .mgr, size: 3, failureDomain: zone}\n"
        "cnpg:\n  switchoverSeconds: 0.1\n  clusters:\n" + cnpg + "flux:\n"
        "  kustomizations: [{namespace: flux-system, name: cluster-apps}]\n"
        "workloads:\n"
        "  - {kind: DaemonSet, namespace: kube-system, name: cilium, tolerateControlPlane: true}\n"
        "  - {kind: Deployment, namespace: default, name: echo, replicas: 3, pdb: {minAvailable: 1}}\n"
    )


BATCHING_POLICY = "batching: {by: failure-domain, label: topology.kubernetes.io/zone}\n"


def zoned_cluster(
    tmp_path: Path,
    subnet: str,
    workers: int,
    *,
    pool_domain: str = "zone",
    zonal_db: bool = False,
    scenario_extra: str = "",
    versions: tuple[str, str, str] | None = None,
    **policy: str,
) -> DemoCluster:
    """A started zoned cluster (:func:`zoned_repo`, :func:`zoned_scenario` plus
    ``scenario_extra``) with talenv bumped and a fast policy that batches by zone;
    ``versions`` = (Talos from, Talos to, Kubernetes), default the pre-1.14 demo's."""
    old, new, kubernetes = versions or (OLD, NEW, None)
    repo = zoned_repo(tmp_path / "repo", subnet, workers, pins=(old, kubernetes) if kubernetes else None)
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(
        zoned_scenario(workers, pool_domain=pool_domain, zonal_db=zonal_db) + scenario_extra
    )
    scenario = sc.load(scenario_file)
    scenario.timings.update(FAST)
    world = SimWorld.from_repo(repo, scenario, directory=tmp_path / "sim").start()
    try:
        world.kube.wait_settled(30)
    except BaseException:
        world.stop()
        raise
    edit(repo / "talos" / "talenv.yaml", f"talosVersion: {old}", f"talosVersion: {new}")
    write_policy(repo, extra=BATCHING_POLICY, **policy)
    return DemoCluster(repo, world)
