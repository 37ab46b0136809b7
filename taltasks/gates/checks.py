"""The values every gate kind produces and consumes.

A :class:`Check` is one named condition about one subject ("CephCluster rook-ceph/rook-ceph:
health is HEALTH_OK or only allowed codes") with the value last seen. ``since`` is the
operator's own account of when the condition began to hold (a Ready condition's
``lastTransitionTime``, Ceph's ``lastChanged``), :data:`ALWAYS` for point-in-time facts
with no history, or None when only our own observation can tell. ``sample`` is a
freshness token (Ceph's ``lastChecked``) the engine counts distinct values of.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

ALWAYS = 0.0
"""``since`` of a point-in-time fact: it needs no history of its own to count as held."""


class NodeLike(Protocol):
    hostname: str
    ip: str
    control_plane: bool


@dataclass(frozen=True)
class NodeTarget:
    hostname: str
    ip: str
    control_plane: bool = False


@dataclass(frozen=True)
class GateContext:
    """Where and when gates are evaluated. ``nodes``: every node of the cluster (the
    model's nodes fit); ``node``: the one being upgraded, if any; ``expected_version`` and
    ``previous_boot_id``: what that node must show after its upgrade; ``not_before``:
    wall time from which the stability window counts (the uncordon, for post gates);
    ``baseline``: what :meth:`GateEngine.baseline` recorded before the node. ``batch``:
    nodes upgraded together (a failure-domain batch) with, in ``expected``, each one's
    ``(expected_version, previous_boot_id)``; node-scoped gates then cover all of them."""

    nodes: Sequence[NodeLike]
    node: NodeLike | None = None
    stage: str = "pre"
    expected_version: str | None = None
    previous_boot_id: str | None = None
    not_before: float | None = None
    baseline: Mapping[str, Any] = field(default_factory=dict)
    batch: tuple[NodeLike, ...] = ()
    expected: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def control_planes(self) -> list[NodeLike]:
        return [n for n in self.nodes if n.control_plane]

    @property
    def subjects(self) -> list[NodeLike]:
        """The node(s) being upgraded: the batch, or the one node."""
        return list(self.batch) or ([self.node] if self.node is not None else [])

    def is_target(self, node: NodeLike) -> bool:
        return any(node.hostname == n.hostname for n in self.subjects)

    def expectation(self, node: NodeLike) -> tuple[str | None, str | None]:
        """What ``node`` must show after its upgrade: (version, previous boot id)."""
        if node.hostname in self.expected:
            return self.expected[node.hostname]
        if self.node is not None and node.hostname == self.node.hostname:
            return self.expected_version, self.previous_boot_id
        return None, None


@dataclass(frozen=True)
class Check:
    subject: str
    name: str
    condition: str
    ok: bool
    observed: str
    since: float | None = None
    sample: float | None = None
    fatal: bool = False

    @property
    def key(self) -> str:
        return f"{self.subject} {self.name}"

    def describe(self) -> str:
        return f"{self.subject}: {self.condition} (last seen: {self.observed})"


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp as Kubernetes and Rook write them."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The status condition of type ``kind`` (e.g. ``Ready``), if present."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return None


def object_name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def no_source(subject: str, api: str) -> list[Check]:
    """The single failed check of a gate whose source (``Kubernetes``/``Talos``) is absent."""
    return [Check(subject, "connection", f"a {api} API connection", False, f"no {api} source configured")]


def nothing_found(
    subject: str, kind: str, found: list[Any] | None, *, required: bool, wanted: str, operator: str
) -> list[Check]:
    """An operator gate with no objects to look at: vacuously passed ("defaults apply
    where the resources exist") unless the entry asks for specific or required objects."""
    if required:
        seen = f"{kind} is not served ({operator} not installed?)" if found is None else "not found"
        return [Check(subject, "present", f"{wanted} exists", False, seen)]
    return [
        Check(
            subject,
            "present",
            f"{kind} objects, if any, are healthy",
            True,
            f"no {kind}: nothing to check",
            since=ALWAYS,
        )
    ]
