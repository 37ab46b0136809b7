"""Talos machines drive their Kubernetes Nodes, as the kubelet does on a real node.

A simulated Talos node tells its listeners when it goes ``down`` (kubelet stopped: before a
reboot, upgrade, shutdown or reset), comes ``up`` (booted, kubelet running) or lands in
``maintenance``. This module turns that into Node objects in the Kubernetes emulator:
registered when the kubelet first runs and the API exists, NotReady while the machine is
down (its pods go away), Ready again with the new kubelet and OS versions in ``nodeInfo``.
As Talos does, a machine that starts upgrading, shutting down or resetting cordons its
Node (``talos.dev/cordoned``) and uncordons its own cordon when it boots again.

The Kubernetes API itself exists only once etcd does: in a fresh (maintenance-mode)
cluster the emulator starts when ``Bootstrap`` succeeds, and every node whose kubelet is
already running registers then — the order a real cluster comes up in.

Control-plane static pods run from the node's own config: the simulated kubelet asks
:func:`taltasks.sim.talos.controlplane.static_pods` which pods a node runs (image and
``talos.dev/config-version``) and is poked whenever a node republishes them; the mirror
pods' status flows back to the node as ``StaticPodStatuses`` resources
(``k8s/StaticPodStatuses.kubernetes.talos.dev/kube-system/<pod>``), as Talos reads it from
its kubelet. A kubelet restarted by a config change (``kubelet``) updates the Node's
kubelet version without taking the Node down.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from taltasks.sim.kube.controllers import MIRROR, StaticPod
from taltasks.sim.kube.nodes import os_image_for, register_node, set_node_ready, talos_cordon
from taltasks.sim.talos import configview, controlplane
from taltasks.sim.talos.node import Stage

if TYPE_CHECKING:
    from taltasks.sim.kube.store import Subscription, WatchEvent
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
        self._pod_status: Subscription | None = None

    def attach(self) -> None:
        for node in self.talos.nodes:
            node.listeners.append(self.on_node)
        self.talos.kubeconfig_provider = lambda _node: self.kube.kubeconfig(self.talos.name)
        self.talos.static_pod_publishers.append(self._static_pods_changed)
        if self.started:
            self._plug_kubelet()
            self.register_running()
        else:
            self.talos.etcd_bootstrap_hooks.append(lambda _node: self.start_api())

    def detach(self) -> None:
        if self._pod_status is not None:
            self._pod_status.close()
            self._pod_status = None

    def start_api(self) -> None:
        """etcd exists now: the API server comes up and running kubelets register."""
        with self._lock:
            if self.started:
                return
            self.kube.start()
            self._plug_kubelet()
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
        if what in ("up", "kubelet"):
            self._up(node)
        elif what in ("down", "maintenance"):
            self._down(node)
        elif what == "stage":
            self._talos_cordon(node, data["stage"])

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

    def _talos_cordon(self, node: SimNode, stage: Stage) -> None:
        """Talos cordons its Node for an upgrade, shutdown or reset and uncordons it (only
        its own cordon) when booting or running; other stages leave it as it is."""
        if stage in (Stage.UPGRADING, Stage.SHUTTING_DOWN, Stage.RESETTING):
            cordon = True
        elif stage in (Stage.BOOTING, Stage.RUNNING):
            cordon = False
        else:
            return
        with self._lock:
            talos_cordon(self.kube.store, node.hostname, cordon)

    # ---- static pods ---------------------------------------------------------------------

    def _plug_kubelet(self) -> None:
        """The simulated kubelet takes control-plane static pods from the Talos nodes, and
        their mirror pods' status is published back to the nodes."""
        self.kube.kubelet.static_pods = self._static_pods
        self._pod_status = self.kube.store.subscribe(
            self._pod_changed, resources=["pods"], name="static-pod-status"
        )

    def _static_pods(self, node_name: str) -> list[StaticPod] | None:
        node = self.talos.node_by_target(node_name)
        if node is None:
            return None
        return [
            StaticPod(p.component, p.image, {"talos.dev/config-version": p.config_version})
            for p in controlplane.static_pods(node)
        ]

    def _static_pods_changed(self, node: SimNode) -> None:
        if self.started:
            self.kube.kubelet.trigger()

    def _pod_changed(self, event: WatchEvent) -> None:
        from google.protobuf import struct_pb2

        from taltasks.talos.api import definitions_k8s_pb2 as k8s

        pod = event.object
        meta = pod.get("metadata") or {}
        if meta.get("namespace") != "kube-system" or MIRROR not in (meta.get("annotations") or {}):
            return
        node = self.talos.node_by_target((pod.get("spec") or {}).get("nodeName") or "")
        if node is None or node.maintenance:
            return
        rid = f"kube-system/{meta['name']}"
        if event.type == "DELETED":
            node.resources.delete("k8s", STATIC_POD_STATUS, rid)
            return
        status = pod.get("status") or {}
        proto = k8s.StaticPodStatusSpec()
        proto.pod_status.CopyFrom(struct_pb2.Struct())
        proto.pod_status.update(status)
        node.resources.put("k8s", STATIC_POD_STATUS, rid, status, proto)


STATIC_POD_STATUS = "StaticPodStatuses.kubernetes.talos.dev"
