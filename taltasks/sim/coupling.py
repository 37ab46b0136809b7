"""Talos machines drive their Kubernetes Nodes, as the kubelet does on a real node.

A simulated Talos node tells its listeners when it goes ``down`` (kubelet stopped: before a
reboot, upgrade, shutdown or reset), comes ``up`` (booted, kubelet running) or lands in
``maintenance``. This module turns that into Node objects in the Kubernetes emulator:
registered when the kubelet first runs and the API exists, NotReady while the machine is
down (its pods go away), Ready again with the new kubelet and OS versions in ``nodeInfo``.

The Kubernetes API itself exists only once etcd does: in a fresh (maintenance-mode)
cluster the emulator starts when ``Bootstrap`` succeeds, and every node whose kubelet is
already running registers then — the order a real cluster comes up in.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from taltasks.sim.kube.nodes import os_image_for, register_node, set_node_ready
from taltasks.sim.talos import configview

if TYPE_CHECKING:
    from taltasks.sim.kubeworld import KubeWorld
    from taltasks.sim.talos.cluster import SimTalosCluster
    from taltasks.sim.talos.node import SimNode


def kubelet_version(node: SimNode, default: str) -> str:
    """The version the node's kubelet reports: the tag of ``machine.kubelet.image``."""
    if node.config is not None:
        tag = configview.image_tag(node.config.kubelet_image)
        if tag:
            return tag
    return default


class Coupling:
    def __init__(self, talos: SimTalosCluster, kube: KubeWorld, *, started: bool) -> None:
        self.talos = talos
        self.kube = kube
        self.started = started
        self._lock = threading.RLock()

    def attach(self) -> None:
        for node in self.talos.nodes:
            node.listeners.append(self.on_node)
        self.talos.kubeconfig_provider = lambda _node: self.kube.kubeconfig(self.talos.name)
        if self.started:
            self.register_running()
        else:
            self.talos.etcd_bootstrap_hooks.append(lambda _node: self.start_api())

    def start_api(self) -> None:
        """etcd exists now: the API server comes up and running kubelets register."""
        with self._lock:
            if self.started:
                return
            self.kube.start()
            self.started = True
            self.talos.recorder.record("kube.api_started", address=self.kube.emulator.url)
        self.register_running()

    def register_running(self) -> None:
        for node in self.talos.nodes:
            if not node.maintenance and node.reachable and node.services.get("kubelet") is not None:
                state = node.services["kubelet"]
                if state.state == "Running":
                    self._up(node)

    # ---- node lifecycle ------------------------------------------------------------------

    def on_node(self, node: SimNode, what: str, data: dict[str, Any]) -> None:
        if not self.started:
            return
        if what == "up":
            self._up(node)
        elif what in ("down", "maintenance"):
            self._down(node)

    def _up(self, node: SimNode) -> None:
        version = kubelet_version(node, self.talos.kubernetes_version)
        with self._lock:
            # like a kubelet: register when our Node object does not exist (first boot, or
            # someone deleted it while the machine was being replaced)
            if self.kube.store.try_get("nodes", node.hostname) is None:
                zone = self.kube.zones.get(node.hostname)
                register_node(
                    self.kube.store,
                    node.hostname,
                    internal_ip=node.ip,
                    control_plane=node.control_plane,
                    labels={"topology.kubernetes.io/zone": zone} if zone else {},
                    kubelet_version=version,
                    os_image=os_image_for(node.version),
                    boot_id=node.boot_id,
                )
                return
            set_node_ready(
                self.kube.store,
                node.hostname,
                True,
                kubelet_version=version,
                os_image=os_image_for(node.version),
                boot_id=node.boot_id,
            )

    def _down(self, node: SimNode) -> None:
        with self._lock:
            if self.kube.store.try_get("nodes", node.hostname) is None:
                return
            set_node_ready(self.kube.store, node.hostname, False)
