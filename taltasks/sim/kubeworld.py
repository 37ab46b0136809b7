"""The Kubernetes half of a simulated cluster, in one object: :class:`KubeWorld`.

It runs the API emulator, the workload controllers (kubelet, scheduler, DaemonSet,
Deployment, disruption) and the simulated operators a scenario asks for, all on loopback.
Tests without Talos build it straight from a scenario with the machines' names and
addresses (``register_nodes=True`` makes every node Ready at once); the full simulator
passes ``register_nodes=False`` and lets its Talos nodes call
:func:`taltasks.sim.kube.nodes.register_node` / ``set_node_ready`` as they boot and reboot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from taltasks.machineconfig.pki import KeyPair
from taltasks.sim.kube.controllers import Kubelet, start_workload_controllers
from taltasks.sim.kube.nodes import node_ready, os_image_for, register_node
from taltasks.sim.kube.runtime import Controller, Reactor
from taltasks.sim.kube.server import KubeEmulator
from taltasks.sim.kube.store import Store
from taltasks.sim.operators.scenario import WorldScenario, parse_world
from taltasks.sim.record import Recorder
from taltasks.yamlpos import YamlDoc

NodeSpec = tuple[str, str, bool]
"""(hostname, internal IP, is control plane)"""

DEFAULT_KUBERNETES_VERSION = "v1.34.3"
DEFAULT_TALOS_VERSION = "v1.11.5"
ZONE_LABEL = "topology.kubernetes.io/zone"


class KubeWorld:
    """Emulator + controllers + operators of one simulated cluster."""

    def __init__(
        self,
        emulator: KubeEmulator,
        scenario: WorldScenario,
        *,
        nodes: Sequence[NodeSpec] = (),
        kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
        talos_version: str = DEFAULT_TALOS_VERSION,
        zones: dict[str, str] | None = None,
        register_nodes: bool = True,
    ) -> None:
        self.emulator = emulator
        self.scenario = scenario
        self.nodes = list(nodes)
        self.kubernetes_version = kubernetes_version
        self.talos_version = talos_version
        self.zones = dict(zones or {})
        self.register_nodes = register_nodes
        self.reactor = Reactor(emulator.store, name="sim-kube-controllers")
        self.controllers: list[Controller] = []
        self.ceph: Any = None
        self.cnpg: Any = None
        self.flux: Any = None
        self.tuppr: Any = None

    # ---- construction -----------------------------------------------------------------------

    @classmethod
    def from_scenario(
        cls,
        doc: YamlDoc | None,
        *,
        host: str,
        port: int = 6443,
        ca: KeyPair,
        recorder: Recorder | None = None,
        nodes: Sequence[NodeSpec],
        register_nodes: bool = True,
        start: bool = True,
        kubernetes_version: str | None = None,
        talos_version: str | None = None,
        zones: dict[str, str] | None = None,
    ) -> KubeWorld:
        """Validate the scenario's Kubernetes sections against ``nodes``, then (unless
        ``start=False``) start everything. Versions and zones given here win; otherwise
        they come from ``cluster.kubernetesVersion``, ``cluster.talosVersion`` and
        ``nodes.<name>.zone`` of the scenario."""
        names = [n for n, _, _ in nodes]
        scenario = parse_world(doc, names) if doc is not None else WorldScenario()
        get = doc.get if doc is not None else (lambda keys, default=None: default)
        kubernetes_version = kubernetes_version or str(
            get(("cluster", "kubernetesVersion")) or DEFAULT_KUBERNETES_VERSION
        )
        talos_version = talos_version or str(get(("cluster", "talosVersion")) or DEFAULT_TALOS_VERSION)
        if zones is None:
            zones = {n: str(get(("nodes", n, "zone"))) for n in names if get(("nodes", n, "zone"))}
        emulator = KubeEmulator(host, port, ca=ca, recorder=recorder, kubernetes_version=kubernetes_version)
        world = cls(
            emulator,
            scenario,
            nodes=nodes,
            kubernetes_version=kubernetes_version,
            talos_version=talos_version,
            zones=zones,
            register_nodes=register_nodes,
        )
        return world.start() if start else world

    # ---- lifecycle --------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.emulator.store

    @property
    def recorder(self) -> Recorder | None:
        return self.emulator.recorder

    def start(self) -> KubeWorld:
        from taltasks.sim.operators import workloads
        from taltasks.sim.operators.ceph import CephOperator
        from taltasks.sim.operators.cnpg import CnpgOperator
        from taltasks.sim.operators.flux import FluxOperator

        sc = self.scenario
        self.store.recorder = self.emulator.recorder
        self.emulator.start()
        self.reactor.start()
        self.controllers = start_workload_controllers(
            self.reactor,
            termination_seconds=sc.kube.pod_termination_seconds,
            start_seconds=sc.kube.pod_start_seconds,
        )
        if self.register_nodes:
            for name, ip, control_plane in self.nodes:
                self.add_node(name, ip, control_plane)
        blockers = [workloads.blocking_workload(f) for f in sc.faults_of("pdb-blocks-forever")]
        workloads.seed(self.store, [*sc.workloads, *blockers])
        if sc.ceph is not None:
            self.ceph = CephOperator(
                self.reactor,
                sc.ceph,
                sc.faults_of("ceph-stuck") + sc.faults_of("pg-availability"),
                zones=self.zones,
            )
            self.ceph.start()
        if sc.cnpg is not None:
            self.cnpg = CnpgOperator(self.reactor, sc.cnpg, sc.faults_of("cnpg-never-healthy"))
            self.cnpg.start()
        if sc.flux is not None:
            self.flux = FluxOperator(self.reactor, sc.flux)
            self.flux.start()
        if sc.tuppr is not None:
            self.install_tuppr_crds()
        return self

    def install_tuppr_crds(self) -> None:
        """tuppr's own CRDs (as its chart ships them) replace the simulator's loose one."""
        from taltasks.handoff.tuppr import crd

        for kind in ("TalosUpgrade", "KubernetesUpgrade"):
            definition = crd(kind)
            existing = self.store.try_get(
                "customresourcedefinitions.apiextensions.k8s.io", definition["metadata"]["name"]
            )
            if existing is not None:
                self.store.delete(
                    "customresourcedefinitions.apiextensions.k8s.io", definition["metadata"]["name"]
                )
            self.store.create({k: v for k, v in definition.items() if k != "status"})

    def start_tuppr(self, machines: Any) -> None:
        """Run the scenario's simulated tuppr against ``machines`` (the Talos side)."""
        from taltasks.sim.operators.tuppr import TupprController

        if self.scenario.tuppr is None or self.tuppr is not None:
            return
        self.tuppr = TupprController(self.reactor, self.scenario.tuppr, machines)
        self.tuppr.start()

    @property
    def kubelet(self) -> Kubelet:
        """The simulated kubelet (of every node); exists once the world has started."""
        return next(c for c in self.controllers if isinstance(c, Kubelet))

    def add_node(self, name: str, ip: str, control_plane: bool, *, ready: bool = True) -> dict[str, Any]:
        """Register one machine's Node with this world's versions and zone label."""
        labels = {ZONE_LABEL: self.zones[name]} if name in self.zones else {}
        return register_node(
            self.store,
            name,
            internal_ip=ip,
            control_plane=control_plane,
            labels=labels,
            kubelet_version=self.kubernetes_version,
            os_image=os_image_for(self.talos_version),
            ready=ready,
        )

    def stop(self) -> None:
        if self.tuppr is not None:
            self.tuppr.stop()
        self.reactor.stop()
        self.emulator.stop()

    def __enter__(self) -> KubeWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig(self, cluster_name: str = "simulated") -> str:
        return self.emulator.kubeconfig(cluster_name)

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected failures inside the simulator (tests assert this stays empty)."""
        return [*self.emulator.errors, *self.store.errors, *self.reactor.errors]

    # ---- waiting ----------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[Store], Any], timeout: float, what: str = "condition") -> Any:
        """Block until ``predicate(store)`` is truthy (re-checked on every change); return
        its value, or raise TimeoutError naming ``what``."""
        changed = threading.Condition()

        def poke(_event: Any) -> None:
            with changed:
                changed.notify_all()

        sub = self.store.subscribe(poke, name="wait_for")
        try:
            deadline = time.monotonic() + timeout
            with changed:
                while True:
                    value = predicate(self.store)
                    if value:
                        return value
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"{what} not reached within {timeout}s")
                    changed.wait(remaining)
        finally:
            sub.close()

    def settled(self, store: Store | None = None) -> bool:
        """Every node Ready, every Deployment/DaemonSet rolled out, Ceph HEALTH_OK, every
        CNPG cluster healthy, every Flux object Ready."""
        store = store or self.store
        if not all(node_ready(n) for n in store.list("nodes")):
            return False
        for dep in store.list("deployments.apps"):
            st = dep.get("status") or {}
            if st.get("observedGeneration") != dep["metadata"].get("generation") or st.get(
                "readyReplicas", 0
            ) < dep["spec"].get("replicas", 1):
                return False
        for ds in store.list("daemonsets.apps"):
            st = ds.get("status") or {}
            if st.get("numberReady", 0) < st.get("desiredNumberScheduled", 0) or st.get(
                "observedGeneration"
            ) != ds["metadata"].get("generation"):
                return False
        for cc in store.list("cephclusters.ceph.rook.io"):
            if ((cc.get("status") or {}).get("ceph") or {}).get("health") != "HEALTH_OK":
                return False
        for pg in store.list("clusters.postgresql.cnpg.io"):
            if (pg.get("status") or {}).get("phase") != "Cluster in healthy state":
                return False
        for resource in ("kustomizations.kustomize.toolkit.fluxcd.io", "helmreleases.helm.toolkit.fluxcd.io"):
            for obj in store.list(resource):
                if (obj.get("spec") or {}).get("suspend"):
                    continue
                ready = next(
                    (
                        c
                        for c in (obj.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Ready"
                    ),
                    None,
                )
                if not ready or ready.get("status") != "True":
                    return False
        return True

    def wait_settled(self, timeout: float = 10.0) -> None:
        self.wait_for(
            self.settled,
            timeout,
            "a settled cluster (nodes Ready, workloads rolled out, Ceph HEALTH_OK, CNPG healthy, Flux Ready)",
        )
