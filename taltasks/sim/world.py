"""A whole simulated world: Talos nodes plus (when present) the Kubernetes side.

``SimWorld`` turns a :class:`~taltasks.sim.scenario.Scenario` into running servers on one
loopback /24, applies the scenario's faults, writes the files a user needs
(``talosconfig``, ``kubeconfig``) into a directory, and reports its status. Tests build
one in-process; ``sim.up`` runs one in a background process (``taltasks.sim.serve``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taltasks.sim import addresses
from taltasks.sim.record import Recorder
from taltasks.sim.scenario import Scenario
from taltasks.sim.talos.cluster import ClusterSecrets, NodeSpec, SimTalosCluster, plan_nodes
from taltasks.sim.talos.node import Timings


@dataclass
class WorldFiles:
    directory: Path

    @property
    def talosconfig(self) -> Path:
        return self.directory / "talosconfig"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def state(self) -> Path:
        return self.directory / "sim.json"

    @property
    def record(self) -> Path:
        return self.directory / "record.jsonl"

    @property
    def log(self) -> Path:
        return self.directory / "sim.log"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class SimWorld:
    def __init__(
        self,
        scenario: Scenario,
        *,
        directory: Path | None = None,
        subnet: str | None = None,
        specs: list[NodeSpec] | None = None,
        secrets: ClusterSecrets | None = None,
        api_address: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.files = WorldFiles(Path(directory)) if directory else None
        if self.files:
            self.files.directory.mkdir(parents=True, exist_ok=True)
        self.recorder = Recorder(self.files.record if self.files else None)
        self.subnet = subnet or scenario.subnet or addresses.free_subnet()
        self.specs = specs or plan_nodes(self.subnet, scenario.control_planes, scenario.workers)
        for spec in self.specs:
            extra = scenario.nodes.get(spec.hostname, {})
            spec.zone = extra.get("zone", spec.zone)
            spec.version = extra.get("version", spec.version)
            spec.omni = extra.get("omni", spec.omni)
        self.api_address = api_address or addresses.api_address(self.subnet)
        self.talos = SimTalosCluster(
            name=scenario.name,
            specs=self.specs,
            talos_version=scenario.talos_version,
            kubernetes_version=scenario.kubernetes_version,
            timings=Timings(**scenario.timings),
            recorder=self.recorder,
            maintenance=scenario.maintenance,
            etcd_db_size=scenario.etcd_db_size,
            api_endpoint=f"https://{self.api_address}:{addresses.KUBE_PORT}",
            **({"secrets": secrets} if secrets else {}),
        )
        self.kube: Any = None

    @classmethod
    def from_repo(cls, root: Path, scenario: Scenario, *, directory: Path | None = None) -> SimWorld:
        """The cluster a repository describes (talos/talconfig.yaml): its node names and
        addresses, its own CAs (from the encrypted secrets), and — unless the scenario asks
        for maintenance mode — the machine configs ``invoke configure`` would generate."""
        import ipaddress
        from urllib.parse import urlparse

        from taltasks.errors import InputError
        from taltasks.machineconfig.render import Renderer
        from taltasks.model import load_cluster
        from taltasks.secrets.store import SecretStore

        cluster = load_cluster(root)
        bundle = SecretStore(Path(root)).load(env=cluster.env)
        host = urlparse(cluster.endpoint).hostname or ""
        for what, ip in [
            ("the cluster endpoint", host),
            *((f"node {n.hostname}", n.ip) for n in cluster.nodes),
        ]:
            try:
                addresses.check_loopback(ip)
            except addresses.AddressError:
                raise InputError(
                    f"{what} is {ip!r}: the simulator only runs clusters on loopback addresses (127.0.0.0/8)",
                    where=str(Path(root) / "talos" / "talconfig.yaml"),
                    hint="the shipped demo talos/ folder is such a cluster; a real cluster's definition cannot be simulated",
                ) from None
        renderer = Renderer(cluster, bundle)
        specs = [
            NodeSpec(
                n.hostname,
                n.ip,
                n.control_plane,
                version=n.talos_version,
                config=None if scenario.maintenance else renderer.render(n),
                zone=n.zone,
            )
            for n in cluster.nodes
        ]
        scenario.name = cluster.name
        scenario.talos_version = cluster.talos_version
        scenario.kubernetes_version = cluster.kubernetes_version
        subnet = str(ipaddress.ip_network(f"{specs[0].ip}/24", strict=False))
        secrets = ClusterSecrets(os_ca=bundle.os, k8s_ca=bundle.k8s)
        return cls(
            scenario, directory=directory, subnet=subnet, specs=specs, secrets=secrets, api_address=host
        )

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> SimWorld:
        from taltasks.sim.coupling import Coupling
        from taltasks.sim.kubeworld import KubeWorld

        # the Kubernetes side is validated and built first (scenario errors name file:line
        # before anything listens); it starts with the nodes, or at bootstrap for a fresh cluster
        self.kube = KubeWorld.from_scenario(
            self.scenario.doc,
            host=self.api_address,
            port=addresses.KUBE_PORT,
            ca=self.talos.secrets.k8s_ca,
            recorder=self.recorder,
            nodes=[(s.hostname, s.ip, s.control_plane) for s in self.specs],
            register_nodes=False,
            start=False,
            kubernetes_version=self.scenario.kubernetes_version,
            talos_version=self.scenario.talos_version,
            zones={s.hostname: s.zone for s in self.specs if s.zone},
        )
        if not self.scenario.maintenance:
            self.kube.start()
        self.talos.start()
        self.coupling = Coupling(self.talos, self.kube, started=not self.scenario.maintenance)
        self.coupling.attach()
        for name, faults in self.scenario.talos_faults.items():
            self.talos.node(name).set_faults(**faults)
        if self.kube.scenario.tuppr is not None and not self.scenario.maintenance:
            from taltasks.sim.tupprlink import SimMachines

            self.kube.start_tuppr(SimMachines(self.talos))
        if self.files:
            self.write_files()
        return self

    def stop(self) -> None:
        coupling = getattr(self, "coupling", None)
        if coupling is not None:
            coupling.detach()
        self.talos.stop()
        if self.api_running:
            self.kube.stop()
        self.recorder.record("sim.stopped")
        self.recorder.close()

    def __enter__(self) -> SimWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- files and status -----------------------------------------------------------------

    def write_files(self) -> None:
        assert self.files is not None
        # like talhelper: endpoints are the control planes, default nodes are every node
        cfg = self.talos.talosconfig(nodes=[n.ip for n in self.talos.nodes])
        _write_private(self.files.talosconfig, cfg.to_yaml())
        if self.kube is not None:
            _write_private(self.files.kubeconfig, self.kube.kubeconfig(self.scenario.name))

    def status(self) -> dict[str, Any]:
        nodes = [
            {
                "name": n.hostname,
                "ip": n.ip,
                "role": n.role,
                "stage": n.stage.text,
                "ready": n.ready,
                "version": n.version,
                "reachable": n.reachable,
                "faults": [k for k, v in n.faults.as_dict().items() if v],
            }
            for n in self.talos.nodes
        ]
        return {
            "cluster": self.scenario.name,
            "subnet": self.subnet,
            "kubernetes_api": f"https://{self.api_address}:{addresses.KUBE_PORT}"
            if self.api_running
            else None,
            "etcd_members": sorted(m.hostname for m in self.talos.etcd.members.values()),
            "nodes": nodes,
        }

    @property
    def api_running(self) -> bool:
        coupling = getattr(self, "coupling", None)
        return coupling is not None and coupling.started

    def replace_machine(self, node: str) -> None:
        """Swap the hardware at ``node``'s address for a fresh machine in maintenance mode."""
        self.talos.node(node).replace_hardware()

    def set_talos_faults(self, node: str, **faults: bool) -> None:
        self.talos.node(node).set_faults(**faults)


def state_json(world: SimWorld, *, pid: int, control: str) -> str:
    return json.dumps(
        {
            "pid": pid,
            "control": control,
            "subnet": world.subnet,
            "cluster": world.scenario.name,
        },
        indent=2,
    )
