"""Kubernetes Nodes of simulated machines: the one entry for whoever plays the kubelet.

The Talos side of the simulator (or a test without Talos) calls :func:`register_node` once
per machine and :func:`set_node_ready` whenever the machine stops or starts serving —
a reboot, an upgrade, a node that never comes back. Everything else in the simulated
world reacts to the Node object alone, as the real operators do:

* NotReady: the Ready condition goes ``Unknown`` (what the node lifecycle controller
  writes when the kubelet stops posting) with a fresh ``lastTransitionTime``, the
  ``unreachable`` taints appear, and every pod bound to the node goes away. Controllers
  re-create them: DaemonSet pods on this node once it is Ready again, Deployment pods
  elsewhere right away, operator pods pinned to local storage when the node returns.
* Ready: the condition goes ``True`` with a fresh ``lastTransitionTime``, the taints go,
  and ``nodeInfo`` takes the new kubelet / OS versions (and boot id) when given.

Each change is recorded as a ``node.ready`` entry in the store's recorder.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from taltasks.sim.kube.objects import condition_true, rfc3339
from taltasks.sim.kube.store import Store

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
CONTROL_PLANE_TAINT = {"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_KERNEL = "6.12.57-talos"
DEFAULT_RUNTIME = "containerd://2.1.5"


def os_image_for(talos_version: str) -> str:
    """How a Talos node reports its OS in ``nodeInfo.osImage``."""
    return f"Talos ({talos_version if talos_version.startswith('v') else 'v' + talos_version})"


def _ready_condition(ready: bool, now: str, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    status = "True" if ready else "Unknown"
    changed = previous is None or previous.get("status") != status
    return {
        "type": "Ready",
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now if changed else previous.get("lastTransitionTime", now),  # type: ignore[union-attr]
        "reason": "KubeletReady" if ready else "NodeStatusUnknown",
        "message": "kubelet is posting ready status" if ready else "Kubelet stopped posting node status.",
    }


def _pressure_conditions(now: str, ready: bool) -> list[dict[str, Any]]:
    out = []
    for kind, reason, message in (
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ):
        out.append(
            {
                "type": kind,
                "status": "False" if ready else "Unknown",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
                "reason": reason if ready else "NodeStatusUnknown",
                "message": message if ready else "Kubelet stopped posting node status.",
            }
        )
    return out


def register_node(
    store: Store,
    name: str,
    *,
    internal_ip: str,
    control_plane: bool,
    labels: Mapping[str, str] | None = None,
    kubelet_version: str,
    os_image: str,
    ready: bool = True,
    taints: list[dict[str, Any]] | None = None,
    boot_id: str | None = None,
) -> dict[str, Any]:
    """Create (or refresh) the Node for a machine, Ready unless ``ready=False``.

    Labels follow what a Talos kubelet registers (hostname, os, arch, control-plane role)
    plus ``labels`` (e.g. ``topology.kubernetes.io/zone``). Control planes get the
    ``NoSchedule`` control-plane taint unless ``taints`` is given (``[]`` when the cluster
    allows scheduling on control planes).
    """
    now = rfc3339()
    node_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        **({CONTROL_PLANE_LABEL: ""} if control_plane else {}),
        **dict(labels or {}),
    }
    node_taints = (
        list(taints) if taints is not None else ([dict(CONTROL_PLANE_TAINT)] if control_plane else [])
    )
    machine = hashlib.sha256(name.encode()).hexdigest()[:32]
    existing = store.try_get("nodes", name)
    index = (
        len(store.list("nodes"))
        if existing is None
        else int((existing.get("spec") or {}).get("podCIDR", "127.244.0.0/24").split(".")[2])
    )
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels, "annotations": {"talos.dev/simulated": "true"}},
        "spec": {
            "podCIDR": f"127.244.{index}.0/24",
            "podCIDRs": [f"127.244.{index}.0/24"],
            "taints": node_taints,
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": internal_ip},
                {"type": "Hostname", "address": name},
            ],
            "capacity": {
                "cpu": "4",
                "memory": "16363928Ki",
                "pods": "110",
                "ephemeral-storage": "101430960Ki",
            },
            "allocatable": {
                "cpu": "3950m",
                "memory": "15869336Ki",
                "pods": "110",
                "ephemeral-storage": "93478772582",
            },
            "conditions": [*_pressure_conditions(now, ready), _ready_condition(ready, now, None)],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": machine,
                "systemUUID": machine,
                "bootID": boot_id or hashlib.sha256(f"{name}-{now}".encode()).hexdigest()[:32],
                "kernelVersion": DEFAULT_KERNEL,
                "osImage": os_image,
                "containerRuntimeVersion": DEFAULT_RUNTIME,
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kubelet_version,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
    if not ready:
        node["spec"]["taints"] = node_taints + _unreachable_taints(now)
    if existing is None:
        created = store.create(node)
        _renew_lease(store, name, created["metadata"]["uid"])
        _record(store, name, ready, node["status"]["nodeInfo"])
        return created

    def refresh(obj: dict[str, Any]) -> None:
        obj["metadata"].setdefault("labels", {}).update(node_labels)
        keep = [t for t in (obj.get("spec") or {}).get("taints") or [] if t.get("key") == UNREACHABLE]
        obj.setdefault("spec", {})["taints"] = node_taints + keep

    store.mutate("nodes", name, refresh)
    store.mutate(
        "nodes", name, lambda obj: _set_addresses(obj, node["status"]["addresses"]), subresource="status"
    )
    return set_node_ready(
        store, name, ready, kubelet_version=kubelet_version, os_image=os_image, boot_id=boot_id
    )


def _set_addresses(obj: dict[str, Any], addresses: list[dict[str, str]]) -> None:
    obj.setdefault("status", {})["addresses"] = addresses


def _unreachable_taints(now: str) -> list[dict[str, Any]]:
    return [
        {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now},
        {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now},
    ]


def set_node_ready(
    store: Store,
    name: str,
    ready: bool,
    *,
    kubelet_version: str | None = None,
    os_image: str | None = None,
    boot_id: str | None = None,
) -> dict[str, Any]:
    """Mark a Node Ready or NotReady (see module docstring). Versions update ``nodeInfo``
    when the node comes back (an upgrade); going NotReady removes the node's pods."""
    now = rfc3339()

    def spec_change(node: dict[str, Any]) -> None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") != UNREACHABLE]
        if not ready:
            taints += _unreachable_taints(now)
        node.setdefault("spec", {})["taints"] = taints

    def status_change(node: dict[str, Any]) -> None:
        status = node.setdefault("status", {})
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        conditions["Ready"] = _ready_condition(ready, now, conditions.get("Ready"))
        for pressure in _pressure_conditions(now, ready):
            old = conditions.get(pressure["type"])
            if old and old.get("status") == pressure["status"]:
                pressure["lastTransitionTime"] = old.get("lastTransitionTime", now)
            conditions[pressure["type"]] = pressure
        status["conditions"] = [
            conditions[k]
            for k in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
            if k in conditions
        ]
        info = status.setdefault("nodeInfo", {})
        if ready:
            if kubelet_version:
                info["kubeletVersion"] = kubelet_version
                info["kubeProxyVersion"] = kubelet_version
            if os_image:
                info["osImage"] = os_image
            if boot_id:
                info["bootID"] = boot_id

    store.mutate("nodes", name, spec_change)
    node = store.mutate("nodes", name, status_change, subresource="status")
    if ready:
        _renew_lease(store, name, node["metadata"]["uid"])
    _record(store, name, ready, node["status"].get("nodeInfo") or {})
    if not ready:
        _evict_all(store, name)
    return node


def _renew_lease(store: Store, name: str, uid: str) -> None:
    """The kubelet's heartbeat Lease in kube-node-lease (renewed when the node is Ready)."""
    now = time.time()
    micro = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1e6) % 1000000:06d}Z"
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}],
        },
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro},
    }
    store.upsert(lease)


def _evict_all(store: Store, node: str) -> None:
    """A node that stops serving loses its pods (force deletion: nothing runs there)."""
    for pod in store.list("pods", field_selector=f"spec.nodeName={node}"):
        m = pod["metadata"]
        store.delete("pods", m["name"], namespace=m["namespace"], grace_period_seconds=0)


def _record(store: Store, name: str, ready: bool, info: Mapping[str, Any]) -> None:
    recorder = getattr(store, "recorder", None)
    if recorder is not None:
        recorder.record(
            "node.ready",
            node=name,
            ready=ready,
            kubeletVersion=info.get("kubeletVersion"),
            osImage=info.get("osImage"),
        )


TALOS_CORDONED = "talos.dev/cordoned"


def talos_cordon(store: Store, name: str, cordon: bool) -> bool:
    """What Talos's node controller does to its own Node (all of 1.8 … 1.14): while the
    machine is upgrading, shutting down or resetting it cordons a schedulable Node and marks
    it ``talos.dev/cordoned``; once it boots or runs again it uncordons — but only a Node it
    cordoned itself (someone else's cordon stays). True when the Node changed."""
    changed = False

    def change(node: dict[str, Any]) -> None:
        nonlocal changed
        spec = node.setdefault("spec", {})
        annotations = node.setdefault("metadata", {}).setdefault("annotations", {})
        if cordon and not spec.get("unschedulable"):
            spec["unschedulable"] = True
            annotations[TALOS_CORDONED] = "true"
            changed = True
        elif not cordon and spec.get("unschedulable") and TALOS_CORDONED in annotations:
            spec["unschedulable"] = False
            del annotations[TALOS_CORDONED]
            changed = True

    if store.try_get("nodes", name) is None:
        return False
    store.mutate("nodes", name, change)
    recorder = getattr(store, "recorder", None)
    if changed and recorder is not None:
        recorder.record("node.talos_cordon", node=name, cordoned=cordon)
    return changed


def node_ready(node: Mapping[str, Any]) -> bool:
    return condition_true(node)


def node_schedulable(node: Mapping[str, Any]) -> bool:
    return node_ready(node) and not (node.get("spec") or {}).get("unschedulable")
