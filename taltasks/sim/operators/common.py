"""Small helpers the simulated operators share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taltasks.sim.kube import disruption
from taltasks.sim.kube.nodes import CONTROL_PLANE_LABEL
from taltasks.sim.kube.objects import is_deleting
from taltasks.sim.kube.store import Store

TOLERATE_CONTROL_PLANE = {"key": CONTROL_PLANE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
DRAIN_TAINTS = frozenset(
    {
        "node.kubernetes.io/unschedulable",
        "ToBeDeletedByClusterAutoscaler",
        "karpenter.sh/disrupted",
        "karpenter.sh/disruption",
    }
)


def ensure_namespace(store: Store, name: str) -> None:
    if store.try_get("namespaces", name) is None:
        store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def pod_up(pod: Mapping[str, Any] | None) -> bool:
    """Running, Ready and not being deleted."""
    return pod is not None and disruption.pod_healthy(pod)


def draining(node: Mapping[str, Any] | None) -> bool:
    """Cordoned, or carrying a drain taint (CNPG's DRAIN_TAINTS)."""
    if node is None:
        return False
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return True
    return any(t.get("key") in DRAIN_TAINTS for t in spec.get("taints") or [])


def live_pods(store: Store, namespace: str, label_selector: str) -> dict[str, dict[str, Any]]:
    return {
        p["metadata"]["name"]: p
        for p in store.list("pods", namespace, label_selector=label_selector)
        if not is_deleting(p)
    }


def pinned_deployment(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    *,
    node: str | None,
    image: str,
    tolerate_control_plane: bool = False,
    annotations: Mapping[str, str] | None = None,
    replicas: int = 1,
    owner: Mapping[str, Any] | None = None,
    container: str = "daemon",
) -> dict[str, Any]:
    """A Deployment whose pod runs on ``node`` only (a daemon bound to local disks)."""
    spec: dict[str, Any] = {"containers": [{"name": container, "image": image}]}
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    if tolerate_control_plane:
        spec["tolerations"] = [dict(TOLERATE_CONTROL_PLANE)]
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(annotations or {})},
                "spec": spec,
            },
        },
    }


def pdb(
    namespace: str,
    name: str,
    match_labels: Mapping[str, str],
    *,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": dict(match_labels)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }


def sync_pdbs(
    store: Store, namespace: str, wanted: list[dict[str, Any]], owned_label: tuple[str, str]
) -> None:
    """Make the PDBs carrying ``owned_label`` in ``namespace`` exactly ``wanted``."""
    key, value = owned_label
    names = {p["metadata"]["name"] for p in wanted}
    for existing in store.list("poddisruptionbudgets.policy", namespace, label_selector=f"{key}={value}"):
        if existing["metadata"]["name"] not in names:
            store.delete("poddisruptionbudgets.policy", existing["metadata"]["name"], namespace=namespace)
    for want in wanted:
        want["metadata"].setdefault("labels", {})[key] = value
        current = store.try_get("poddisruptionbudgets.policy", want["metadata"]["name"], namespace)
        if (
            current is None
            or current.get("spec") != want["spec"]
            or (current["metadata"].get("labels") or {}) != want["metadata"]["labels"]
        ):
            store.upsert(want)
