"""The simulated tuppr's view of the simulated Talos nodes (:class:`~taltasks.sim.operators.tuppr.Machines`).

tuppr reads versions, readiness and install images through the Talos API and upgrades
with a ``talosctl upgrade`` Job; the simulator answers the same questions from its nodes
in process and upgrades through the same handlers the Talos API serves, on the path
talosctl takes for the node's minor (the Job's talosctl matches the node's version): from
1.13 the installer pulled with ImageService, installed with LifecycleService, then a
Reboot; before, the legacy MachineService Upgrade. A node refuses exactly what it would
refuse over gRPC (busy, etcd unhealthy, a missing image) and records it as usual.
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
        from taltasks.sim.talos import machined, versions

        n = self._node(node)
        stopping: threading.Event = self.cluster.stopping
        call = machined.Call("/tuppr/upgrade-job", frozenset({"os:admin"}), lambda: not stopping.is_set())
        try:
            if versions.LIFECYCLE in versions.minor(n.version).services:
                self._lifecycle(n, image, call)
            else:
                from taltasks.talos.api import machine_pb2 as m

                machined.Upgrade(n, m.UpgradeRequest(image=image), call)
        except machined.RpcError as exc:
            raise RuntimeError(f"{node}: {exc.message}") from None

    @staticmethod
    def _lifecycle(n, image: str, call) -> None:
        """talosctl 1.13+: pull into the system containerd, install, reboot."""
        import grpc

        from taltasks.sim.talos import machined
        from taltasks.sim.talos.installer import Images, Lifecycle
        from taltasks.talos.api import common_pb2
        from taltasks.talos.api import image_pb2 as img
        from taltasks.talos.api import lifecycle_pb2 as lc
        from taltasks.talos.api import machine_pb2 as m

        system = common_pb2.ContainerdInstance(driver=common_pb2.CONTAINERD, namespace=common_pb2.NS_SYSTEM)
        for _ in Images.Pull(n, img.ImageServicePullRequest(containerd=system, image_ref=image), call):
            pass
        request = lc.LifecycleServiceUpgradeRequest(
            containerd=system, source=lc.InstallArtifactsSource(image_name=image)
        )
        for reply in Lifecycle.Upgrade(n, request, call):
            if reply.progress.HasField("exit_code") and reply.progress.exit_code != 0:
                raise machined.RpcError(
                    grpc.StatusCode.INTERNAL, f"installer exited with {reply.progress.exit_code}"
                )
        machined.Reboot(n, m.RebootRequest(), call)
