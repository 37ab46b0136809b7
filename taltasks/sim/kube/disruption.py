"""PodDisruptionBudget arithmetic, shared by the eviction endpoint and the PDB controller.

Follows the disruption controller: ``minAvailable`` as an integer counts the matching pods
as expected; percentages and ``maxUnavailable`` need the scale of the pods' controllers
(Deployment/ReplicaSet/StatefulSet replicas, DaemonSet desired count, CNPG ``instances``),
and a matching pod without a controller makes such a budget fail safe (no disruption
allowed). A pod is healthy when it is Ready and not being deleted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from taltasks.sim.kube.objects import condition_true
from taltasks.sim.kube.selectors import selects

ScaleLookup = Callable[[str, Mapping[str, Any]], int | None]
"""(namespace, controller ownerReference) → desired replica count, or None if unknown."""


@dataclass(frozen=True)
class Budget:
    expected_pods: int
    current_healthy: int
    desired_healthy: int
    disruptions_allowed: int
    matched: tuple[str, ...]
    failed: str = ""

    def status_fields(self) -> dict[str, Any]:
        return {
            "expectedPods": self.expected_pods,
            "currentHealthy": self.current_healthy,
            "desiredHealthy": self.desired_healthy,
            "disruptionsAllowed": self.disruptions_allowed,
        }


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return condition_true(pod)


def pod_healthy(pod: Mapping[str, Any]) -> bool:
    return pod_ready(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp")


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = int(value[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value)


def matching_pods(pdb: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    ns = pdb["metadata"].get("namespace")
    selector = (pdb.get("spec") or {}).get("selector")
    return [
        p
        for p in pods
        if p["metadata"].get("namespace") == ns and selects(selector, p["metadata"].get("labels"))
    ]


def evaluate(pdb: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], scale: ScaleLookup) -> Budget:
    spec = pdb.get("spec") or {}
    matched = matching_pods(pdb, pods)
    healthy = sum(1 for p in matched if pod_healthy(p))
    names = tuple(sorted(p["metadata"]["name"] for p in matched))
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")

    def from_scale() -> int | None:
        total, seen = 0, set()
        for p in matched:
            ref = controller_ref(p)
            if ref is None:
                return None
            if ref.get("uid") in seen:
                continue
            seen.add(ref.get("uid"))
            replicas = scale(p["metadata"].get("namespace", ""), ref)
            if replicas is None:
                return None
            total += replicas
        return total

    expected, desired = 0, 0
    if max_unavailable is not None:
        expected_or_none = from_scale()
        if expected_or_none is None:
            return Budget(0, healthy, 0, 0, names, failed="found no controllers for pods of the budget")
        expected = expected_or_none
        desired = max(0, expected - _int_or_percent(max_unavailable, expected, round_up=True))
    elif min_available is not None:
        if isinstance(min_available, str) and min_available.endswith("%"):
            expected_or_none = from_scale()
            if expected_or_none is None:
                return Budget(0, healthy, 0, 0, names, failed="found no controllers for pods of the budget")
            expected = expected_or_none
            desired = _int_or_percent(min_available, expected, round_up=True)
        else:
            expected = len(matched)
            desired = int(min_available)
    # as the disruption controller: nothing expected means nothing may be disrupted
    allowed = max(0, healthy - desired) if expected > 0 else 0
    return Budget(expected, healthy, desired, allowed, names)
