"""The simulated tuppr's view of the simulated Talos nodes (:class:`~taltasks.sim.operators.tuppr.Machines`).

tuppr reads versions, readiness and install images through the Talos API and upgrades
with a ``talosctl upgrade`` Job; the simulator answers the same questions from its nodes
in process and upgrades through the same handlers the Talos API serves, on the path
talosctl takes for the node's minor (the Job's talosctl matches the node's version): from
1.13 the installer pulled with ImageService, installed with LifecycleService, then a
Reboot; before, the legacy MachineService Upgrade. A node refuses exactly what it would
refuse over gRPC (busy, etcd unhealthy, a missing image) and records it as usual.

A KubernetesUpgrade's ``talosctl upgrade-k8s`` Job changes one component image at a time in
a node's config (:mod:`taltasks.machineconfig.kubecomponents`, the table
``talos.upgrade-k8s`` uses) and applies it without a reboot through the same
ApplyConfiguration handler, so the node reacts as to a real apply: its static pods restart
with the new image, its kubelet restarts and the Node reports the new version.
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

    # ---- what a talosctl upgrade-k8s Job does to one node ---------------------------------

    def control_plane(self, node: str) -> bool:
        return bool(self._node(node).control_plane)

    def kubernetes_image(self, node: str, component: str) -> str | None:
        """The image the node's config names for ``component`` (None: Talos's default)."""
        from taltasks.machineconfig.kubecomponents import BY_NAME

        n = self._node(node)
        return BY_NAME[component].image_in(n.config.raw) if n.config is not None else None

    def proxy_disabled(self, node: str) -> bool:
        from taltasks.machineconfig.kubecomponents import proxy_disabled_in

        n = self._node(node)
        return n.config is not None and proxy_disabled_in(n.config.raw)

    def set_kubernetes_image(self, node: str, component: str, image: str) -> bool:
        """Set ``component``'s image in the node's config and apply it without a reboot;
        False when the config already names it. ``RuntimeError`` with the node's refusal
        (or when the node does not answer)."""
        from taltasks.machineconfig.kubecomponents import BY_NAME
        from taltasks.sim.talos import machined
        from taltasks.talos.api import machine_pb2 as m

        n = self._node(node)
        if not n.reachable or n.faults.vanished or n.config is None:
            raise RuntimeError(f"{node}: the Talos API does not answer")
        patched = BY_NAME[component].with_image(n.config.raw, image, where=node)
        if patched is None:
            return False
        stopping: threading.Event = self.cluster.stopping
        call = machined.Call("/tuppr/upgrade-k8s-job", frozenset({"os:admin"}), lambda: not stopping.is_set())
        request = m.ApplyConfigurationRequest(data=patched, mode=m.ApplyConfigurationRequest.NO_REBOOT)
        try:
            machined.ApplyConfiguration(n, request, call)
        except machined.RpcError as exc:
            raise RuntimeError(f"{node}: applying {component} {image}: {exc.message}") from None
        return True
