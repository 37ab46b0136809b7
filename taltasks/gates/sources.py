"""What gates read, as protocols the real clients satisfy through small adapters.

:class:`KubeSource` reads arbitrary resources as plain dicts, exactly as the Kubernetes
API returns them (so CEL expressions see the same shape tuppr's do), and may stream
changes. :class:`TalosSource` reports small typed observations of one Talos node — its
machine state and its etcd member's view of the cluster — and may stream changes too.
An adapter that cannot stream returns ``None`` from ``subscribe``; the engine then polls.

Errors: an unreachable endpoint raises :class:`~taltasks.errors.ConnectionFailed`; a
resource type the API does not serve (CRD not installed) raises
:class:`ResourceTypeUnknown`. Gates turn both into failed checks (fail closed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Unsubscribe = Callable[[], None]


class ResourceTypeUnknown(LookupError):
    """The API server does not serve this apiVersion/kind (e.g. the CRD is absent)."""


@dataclass(frozen=True)
class ResourceQuery:
    """Which objects to read: a kind, optionally narrowed by namespace, name or labels.
    ``label_selector`` is the API's string form (``app=x,tier in (a,b),!legacy``)."""

    api_version: str
    kind: str
    namespace: str | None = None
    name: str | None = None
    label_selector: str | None = None

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        target = f" {where}{self.name}" if self.name else (f" in {self.namespace}" if self.namespace else "")
        labels = f" matching {self.label_selector}" if self.label_selector else ""
        return f"{self.kind}{target}{labels}"


class KubeSource(Protocol):
    def list(self, query: ResourceQuery) -> list[dict[str, Any]]:
        """Objects of ``query.kind`` (all namespaces when ``namespace`` is None)."""
        ...

    def get(self, query: ResourceQuery) -> dict[str, Any] | None:
        """The object named ``query.name``, or None when it does not exist."""
        ...

    def subscribe(self, queries: Sequence[ResourceQuery], wake: threading.Event) -> Unsubscribe | None:
        """Set ``wake`` whenever an object matching one of ``queries`` changes."""
        ...


@dataclass(frozen=True)
class MachineState:
    """A Talos node as ``MachineStatus`` and ``Version`` report it. ``stage`` is the
    lower-case COSI text (``running``, ``booting``, ``rebooting``, ``upgrading``…)."""

    node: str
    stage: str
    ready: bool
    version: str
    boot_id: str
    unmet: tuple[str, ...] = ()


@dataclass(frozen=True)
class EtcdMember:
    id: int
    hostname: str
    is_learner: bool = False


@dataclass(frozen=True)
class EtcdView:
    """One control plane's view of etcd: its ``etcd`` service (state and health from
    ServiceList), its member's status (EtcdStatus) and the member list it sees."""

    node: str
    service_state: str
    service_healthy: bool
    members: tuple[EtcdMember, ...] = ()
    member_id: int | None = None
    leader_id: int | None = None
    errors: tuple[str, ...] = ()
    is_learner: bool = False

    @property
    def healthy(self) -> bool:
        return self.service_state == "Running" and self.service_healthy and not self.errors


class TalosSource(Protocol):
    def machine(self, node: str) -> MachineState:
        """Machine state of ``node`` (its address); ConnectionFailed when unreachable."""
        ...

    def etcd(self, node: str) -> EtcdView: ...

    def subscribe(self, nodes: Sequence[str], wake: threading.Event) -> Unsubscribe | None: ...


@dataclass(frozen=True)
class Sources:
    kube: KubeSource | None = None
    talos: TalosSource | None = None


def selector_string(selector: Mapping[str, Any] | None) -> str | None:
    """A metav1.LabelSelector mapping (matchLabels/matchExpressions) as the API's string."""
    if not selector:
        return None
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], sorted(e.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or None


def fetch(kube: KubeSource, query: ResourceQuery) -> list[dict[str, Any]] | None:
    """The objects ``query`` names: the one object (or none) when it has a name, else the
    list; None when the API does not serve the kind."""
    try:
        if query.name:
            obj = kube.get(query)
            return [obj] if obj else []
        return kube.list(query)
    except ResourceTypeUnknown:
        return None
