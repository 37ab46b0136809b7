"""Server-side apply of arbitrary objects (what ``kubectl apply --server-side`` does).

Objects are plain dicts (e.g. a rendered Helm chart). Each one is sent as an
``application/apply-patch+yaml`` PATCH to its own URL with a field manager, so the API
server merges it, tracks which fields we own, and — with ``force`` — takes over fields
another manager set. Order follows Helm's install order: namespaces and CRDs before what
depends on them (discovery is refreshed once CRDs were applied).

:func:`server_side_apply` reports for every object whether it was ``created``,
``configured`` (its resourceVersion moved) or ``unchanged`` — applying the same objects a
second time changes nothing and says so. ``dry_run`` asks the server to evaluate the apply
without persisting it (``dryRun=All``), so the same outcomes can be previewed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from taltasks.errors import InputError
from taltasks.kube.client import KubeApiError, KubeClient
from taltasks.kube.discovery import Discovery

FIELD_MANAGER = "taltasks"

# Helm's install order (pkg/releaseutil/kind_sorter.go), shortened to kinds a CNI ships.
INSTALL_ORDER = (
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    namespace: str | None
    outcome: str  # created | configured | unchanged

    @property
    def ref(self) -> str:
        return (
            f"{self.kind}/{self.name}" if not self.namespace else f"{self.kind} {self.namespace}/{self.name}"
        )


def install_order(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects sorted the way Helm installs them (unknown kinds last, stable otherwise)."""
    rank = {k: i for i, k in enumerate(INSTALL_ORDER)}
    return sorted(objects, key=lambda o: rank.get(o.get("kind", ""), len(rank)))


def server_side_apply(
    client: KubeClient,
    objects: Iterable[dict[str, Any]],
    *,
    default_namespace: str = "default",
    field_manager: str = FIELD_MANAGER,
    force: bool = True,
    dry_run: bool = False,
    discovery: Discovery | None = None,
) -> list[Applied]:
    """Apply every object (in install order); namespaced objects without a namespace go
    to ``default_namespace``. The first refusal stops the run and names the object."""
    discovery = discovery or Discovery(client)
    out: list[Applied] = []
    crds_applied = False
    for obj in install_order(objects):
        kind, meta = obj.get("kind"), obj.get("metadata") or {}
        name = meta.get("name")
        if not kind or not obj.get("apiVersion") or not name:
            raise InputError(
                f"cannot apply an object without apiVersion, kind and name: {json.dumps(obj)[:200]}"
            )
        if crds_applied and kind != "CustomResourceDefinition":
            discovery.forget()  # kinds the CRDs define are served now
            crds_applied = False
        res = discovery.resource(obj["apiVersion"], kind)
        namespace = (meta.get("namespace") or default_namespace) if res.namespaced else None
        if namespace is not None:
            obj = {**obj, "metadata": {**meta, "namespace": namespace}}
        path = res.path(name, namespace)
        what = f"{kind} {namespace + '/' if namespace else ''}{name}"
        before = _get(client, path, what)
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        if dry_run:
            query.append(("dryRun", "All"))
        after = client.request(
            f"apply {what}",
            "PATCH",
            path,
            query=query,
            body=obj,
            content_type="application/apply-patch+yaml",
        )
        if before is None:
            outcome = "created"
        elif (_content(after) == _content(before)) if dry_run else (_rv(after) == _rv(before)):
            outcome = "unchanged"  # a dry run persists nothing, so its version never moves
        else:
            outcome = "configured"
        out.append(Applied(kind, name, namespace, outcome))
        if kind == "CustomResourceDefinition":
            crds_applied = True
    return out


def _get(client: KubeClient, path: str, what: str) -> dict[str, Any] | None:
    try:
        return client.request(f"read {what}", "GET", path)
    except KubeApiError as exc:
        if exc.status == 404:
            return None
        raise


def _content(obj: dict[str, Any] | None) -> dict[str, Any]:
    """An object without what the server maintains (versions, managers, status)."""
    skip = {"resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"}
    meta = {k: v for k, v in ((obj or {}).get("metadata") or {}).items() if k not in skip}
    return {**{k: v for k, v in (obj or {}).items() if k not in ("metadata", "status")}, "metadata": meta}


def _rv(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))
