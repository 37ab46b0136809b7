"""CloudNativePG clusters as data: phase, readiness, primary, timeline and placement.

See health-gates.md §2: gate on ``phase``, the Ready condition (with its
``lastTransitionTime``), ``readyInstances`` against ``spec.instances`` (not
``status.instances``, which counts volumes), ``currentPrimary == targetPrimary`` and the
timeline; before draining a node, know which instances (and which primary) live there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from taltasks.kube.client import KubeClient
from taltasks.kube.nodes import parse_time

GROUP, VERSION, PLURAL = "postgresql.cnpg.io", "v1", "clusters"
HEALTHY_PHASE = "Cluster in healthy state"
CLUSTER_LABEL = "cnpg.io/cluster"


@dataclass(frozen=True)
class CnpgInstance:
    name: str
    node: str
    role: str  # primary / replica
    ready: bool


@dataclass(frozen=True)
class CnpgClusterStatus:
    namespace: str
    name: str
    instances: int  # spec.instances: what readyInstances must reach
    ready_instances: int
    phase: str
    phase_reason: str
    current_primary: str
    target_primary: str
    timeline_id: int
    ready: bool
    ready_since: dt.datetime | None
    pods: tuple[CnpgInstance, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def healthy(self) -> bool:
        return (
            self.phase == HEALTHY_PHASE
            and self.ready
            and self.ready_instances == self.instances
            and self.current_primary == self.target_primary
        )

    def primary_node(self) -> str:
        return next((p.node for p in self.pods if p.name == self.current_primary), "")

    def instances_on(self, node: str) -> list[CnpgInstance]:
        return [p for p in self.pods if p.node == node]

    def describe(self) -> str:
        return (
            f"{self.ref}: {self.phase or 'no phase'}, {self.ready_instances}/{self.instances} ready, "
            f"primary {self.current_primary or '?'}"
            + (f" (target {self.target_primary})" if self.target_primary != self.current_primary else "")
            + f", timeline {self.timeline_id}"
        )


def _pod_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def parse_cnpg_cluster(obj: dict[str, Any], pods: Iterable[dict[str, Any]] = ()) -> CnpgClusterStatus:
    m, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    instances = []
    for pod in pods:
        pm = pod.get("metadata") or {}
        labels = pm.get("labels") or {}
        if labels.get(CLUSTER_LABEL) != m.get("name") or pm.get("namespace") != m.get("namespace"):
            continue
        if labels.get("cnpg.io/podRole", "instance") != "instance":
            continue
        instances.append(
            CnpgInstance(
                name=pm.get("name", ""),
                node=(pod.get("spec") or {}).get("nodeName", ""),
                role=labels.get("cnpg.io/instanceRole") or labels.get("role", ""),
                ready=_pod_ready(pod),
            )
        )
    return CnpgClusterStatus(
        namespace=m.get("namespace", ""),
        name=m.get("name", ""),
        instances=int(spec.get("instances") or 1),
        ready_instances=int(status.get("readyInstances") or 0),
        phase=status.get("phase", ""),
        phase_reason=status.get("phaseReason", ""),
        current_primary=status.get("currentPrimary", ""),
        target_primary=status.get("targetPrimary", ""),
        timeline_id=int(status.get("timelineID") or 0),
        ready=ready.get("status") == "True",
        ready_since=parse_time(ready.get("lastTransitionTime")) if ready.get("status") == "True" else None,
        pods=tuple(sorted(instances, key=lambda i: i.name)),
    )


def read_cnpg_clusters(
    client: KubeClient, namespace: str | None = None, *, with_pods: bool = True
) -> list[CnpgClusterStatus]:
    """Every CNPG Cluster (of ``namespace``) with its instance pods; empty without CNPG."""
    items = client.list_custom(GROUP, VERSION, PLURAL, namespace, what="list CNPG clusters") or []
    pods: list[dict[str, Any]] = []
    if with_pods and items:
        if namespace:
            pods = (
                client.call(
                    "list CNPG pods", client.core.list_namespaced_pod, namespace, label_selector=CLUSTER_LABEL
                ).get("items")
                or []
            )
        else:
            pods = (
                client.call(
                    "list CNPG pods", client.core.list_pod_for_all_namespaces, label_selector=CLUSTER_LABEL
                ).get("items")
                or []
            )
    return [parse_cnpg_cluster(o, pods) for o in items]


def read_cnpg_cluster(client: KubeClient, namespace: str, name: str) -> CnpgClusterStatus:
    obj = client.get_custom(
        GROUP, VERSION, PLURAL, namespace, name, what=f"read CNPG cluster {namespace}/{name}"
    )
    pods = (
        client.call(
            "list CNPG pods",
            client.core.list_namespaced_pod,
            namespace,
            label_selector=f"{CLUSTER_LABEL}={name}",
        ).get("items")
        or []
    )
    return parse_cnpg_cluster(obj, pods)
