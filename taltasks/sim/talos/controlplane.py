"""What a simulated Talos node runs for Kubernetes, and how a live config change reaches it.

* **Component configs.** A control plane publishes ``APIServerConfigs``,
  ``ControllerManagerConfigs`` and ``SchedulerConfigs`` (namespace ``controlplane``) from
  ``cluster.<component>.image``. The resource store bumps a resource's version whenever its
  image changes, and that version is what the component's static pod carries as
  ``talos.dev/config-version`` — the handshake ``talosctl upgrade-k8s`` waits on
  (talos-api.md §10.3).
* **Static pods.** :func:`static_pods` lists the pods the node's kubelet runs from those
  resources. The Kubernetes side of the simulator turns them into mirror pods (and replaces
  a mirror pod whose image or config version no longer matches); its pod status comes back
  to the node as a ``StaticPodStatuses`` resource (see :mod:`taltasks.sim.coupling`).
* **Live applies** (:func:`on_live_apply`, one of the cluster's ``live_apply_hooks``): a
  component or kubelet image the new config names and the node does not have is pulled (recorded as
  ``talos.image_pull`` with ``source: config``, so a test can tell pre-pulled images from
  late ones); a changed ``machine.kubelet.image`` restarts the kubelet — its ``Services``
  resource is destroyed, then created again running and healthy, and the node's listeners
  hear ``kubelet`` so the Node reports the new version; a changed ``cluster.proxy.image``
  is recorded (``talos.kube_proxy_image``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taltasks.sim.talos import configview

if TYPE_CHECKING:
    from taltasks.sim.talos.node import SimNode

NAMESPACE = "controlplane"
SERVICES_TYPE = "Services.v1alpha1.talos.dev"


@dataclass(frozen=True)
class Component:
    id: str  # the static pod's name prefix and its k8s-app label: kube-apiserver
    config_key: str  # where its image sits under ``cluster``: apiServer
    resource_type: str  # the COSI config resource that follows it


COMPONENTS = (
    Component("kube-apiserver", "apiServer", "APIServerConfigs.kubernetes.talos.dev"),
    Component(
        "kube-controller-manager", "controllerManager", "ControllerManagerConfigs.kubernetes.talos.dev"
    ),
    Component("kube-scheduler", "scheduler", "SchedulerConfigs.kubernetes.talos.dev"),
)


@dataclass(frozen=True)
class StaticPodState:
    """One static pod as the node's kubelet should run it."""

    component: str
    image: str
    config_version: str


def component_image(node: SimNode, component: Component) -> str:
    configured = node.config.image(component.config_key) if node.config is not None else None
    return configured or f"registry.k8s.io/{component.id}:{node.cluster.kubernetes_version}"


def component_extra_args(node: SimNode, component: Component) -> dict[str, list[str]]:
    """``cluster.<component>.extraArgs`` of the node's config, each flag with its values
    (a string is one value; Talos 1.13+ also takes a list)."""
    section = ((node.config.v1alpha1 if node.config is not None else {}).get("cluster") or {}).get(
        component.config_key
    ) or {}
    out: dict[str, list[str]] = {}
    for flag, value in (section.get("extraArgs") or {}).items():
        out[str(flag)] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return out


def _config_spec(node: SimNode, component: Component, image: str) -> tuple[dict, object]:
    """The component config resource's YAML and proto spec as the node's minor writes them:
    ``extraArgs`` as a flat map up to 1.12 (proto field 7/6/3), as lists of values from 1.13
    (``{flag: {values: [...]}}``, proto field 13/10/8)."""
    from taltasks.talos.api import definitions_k8s_pb2 as k8s

    cls = {
        "apiServer": k8s.APIServerConfigSpec,
        "controllerManager": k8s.ControllerManagerConfigSpec,
        "scheduler": k8s.SchedulerConfigSpec,
    }[component.config_key]
    args = component_extra_args(node, component)
    proto = cls(image=image)
    spec: dict = {"image": image}
    if node.minor.extra_args == "values":
        for flag, values in args.items():
            proto.extra_args[flag].values.extend(values)
        spec["extraArgs"] = {flag: {"values": values} for flag, values in args.items()}
    else:
        for flag, values in args.items():
            proto.legacy_extra_args[flag] = ",".join(values)
        spec["extraArgs"] = {flag: ",".join(values) for flag, values in args.items()}
    return spec, proto


def publish_configs(node: SimNode) -> None:
    """(Re)publish the component config resources of a configured control plane; an
    unchanged image and args leave a resource (and its version) alone."""
    if node.config is None or not node.control_plane:
        return
    for c in COMPONENTS:
        spec, proto = _config_spec(node, c, component_image(node, c))
        node.resources.put(NAMESPACE, c.resource_type, c.id, spec, proto)


def static_pods(node: SimNode) -> list[StaticPodState]:
    """The control-plane static pods of ``node`` now (empty for workers and unconfigured nodes)."""
    if node.config is None or not node.control_plane:
        return []
    out = []
    for c in COMPONENTS:
        res = node.resources.get(NAMESPACE, c.resource_type, c.id)
        if res is not None:
            out.append(StaticPodState(c.id, str(res.spec["image"]), str(res.version)))
    return out


def on_live_apply(node: SimNode, old: configview.ConfigView, new: configview.ConfigView) -> None:
    """React to a config applied without a reboot (see the module docstring)."""
    # kube-proxy is a DaemonSet: its image is the kubelet's to pull, not Talos's
    pairs = [(old.kubelet_image, new.kubelet_image, "system")]
    if new.control_plane:
        pairs += [(old.image(c.config_key), new.image(c.config_key), "cri") for c in COMPONENTS]
    for before, after, namespace in pairs:
        if after and after != before:
            pull_for_config(node, after, namespace)
    if new.image("proxy") != old.image("proxy"):
        node.record("talos.kube_proxy_image", image=new.image("proxy"), before=old.image("proxy"))
    if new.kubelet_image and new.kubelet_image != old.kubelet_image:
        restart_kubelet(node, new.kubelet_image)


def pull_for_config(node: SimNode, image: str, namespace: str = "cri") -> None:
    """An image the config needs that nobody pre-pulled is pulled now (the kubelet's into
    containerd's ``system`` namespace, the rest into ``cri``)."""
    store = node.image_store(namespace)
    if image in store:
        return
    store.add(image)
    node.record("talos.image_pull", image=image, source="config")


def restart_kubelet(node: SimNode, image: str) -> None:
    """Stop the kubelet (Services resource DESTROYED), start it with ``image`` after
    ``timings.kubelet_restart`` (CREATED, running and healthy), then tell the listeners."""
    boot = node.boot_id
    node.record("talos.kubelet_restart", image=image)

    def run() -> None:
        try:
            node.withdraw_service("kubelet", "Stopping", "Service stopping: configuration changed")
            node.refresh_ready()
            node._sleep(node.timings.kubelet_restart)
            if node.cluster.stopping.is_set() or node.boot_id != boot or not node.reachable:
                return  # the node went down meanwhile; its next boot starts a fresh kubelet
            node.set_service("kubelet", "Running", True, "Health check successful")
            node.refresh_ready()
            node.notify("kubelet", image=image, version=configview.image_tag(image))
        except Exception as exc:  # a bug in the simulator: make it visible in the record
            node.record("sim.error", where="kubelet restart", error=repr(exc))
            raise

    threading.Thread(target=run, name=f"sim-{node.hostname}-kubelet-restart", daemon=True).start()
