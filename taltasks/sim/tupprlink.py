"""The simulated tuppr's view of the simulated Talos nodes (:class:`~taltasks.sim.operators.tuppr.Machines`).

tuppr reads versions, readiness and install images through the Talos API and upgrades
with a ``talosctl upgrade`` Job; the simulator answers the same questions from its nodes
in process and starts the upgrade through the same handler the Talos API serves, so a
node refuses exactly what it would refuse over gRPC (busy, etcd unhealthy, a bad image)
and records it as usual (``talos.upgrade``).
"""

from __future__ import annotations

import threading

from taltasks.sim.talos.cluster import SimTalosCluster
from taltasks.sim.talos.node import Stage


class SimMachines:
    def __init__(self, cluster: SimTalosCluster) -> None:
        self.cluster = cluster

    def _node(self, name: str):
        return self.cluster.node(name)

    def version(self, node: str) -> str | None:
        n = self._node(node)
        return n.version if n.reachable and not n.maintenance else None

    def ready(self, node: str) -> bool:
        n = self._node(node)
        return n.reachable and n.stage == Stage.RUNNING and bool(n.ready)

    def boot_id(self, node: str) -> str:
        return self._node(node).boot_id

    def install_image(self, node: str) -> str | None:
        n = self._node(node)
        return n.config.install_image if n.config is not None else None

    def schematic(self, node: str) -> str:
        from taltasks.handoff.tuppr import factory_parts

        parts = factory_parts(self.install_image(node) or "")
        return parts[1] if parts else ""

    def upgrade(self, node: str, image: str) -> None:
        from taltasks.sim.talos import machined
        from taltasks.talos.api import machine_pb2 as m

        n = self._node(node)
        stopping: threading.Event = self.cluster.stopping
        call = machined.Call(
            "/machine.MachineService/Upgrade", frozenset({"os:admin"}), lambda: not stopping.is_set()
        )
        try:
            machined.Upgrade(n, m.UpgradeRequest(image=image), call)
        except machined.RpcError as exc:
            raise RuntimeError(f"{node}: {exc.message}") from None
