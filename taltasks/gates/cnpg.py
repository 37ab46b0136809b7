"""Gate kind ``cnpg``: every CloudNativePG Cluster can lose one more node.

Per Cluster (health-gates.md §0, §2.1): phase ``Cluster in healthy state``; the Ready
condition True — held since its ``lastTransitionTime``; ``readyInstances`` equal to
``spec.instances`` (not ``status.instances``, which counts PVC groups); ``currentPrimary``
equal to ``targetPrimary``; at most ``maxTimelineBumps`` failovers since the baseline
taken before the node (more means a failover storm: stop at once). Before a drain, at
most one instance of a cluster may sit on the node, or draining it takes down two.
"""

from __future__ import annotations

from typing import Any

from taltasks.gates.checks import (
    ALWAYS,
    Check,
    GateContext,
    condition,
    no_source,
    nothing_found,
    object_name,
    parse_time,
)
from taltasks.gates.sources import ResourceQuery, Sources, fetch, selector_string
from taltasks.model.policy import GateSpec

API = "postgresql.cnpg.io/v1"
HEALTHY = "Cluster in healthy state"
# phases that need a person: waiting cannot fix them
HOPELESS = frozenset({"Cluster is unrecoverable and needs manual intervention", "Invalid cluster definition"})
CLUSTER_LABEL = "cnpg.io/cluster"


def _query(spec: GateSpec) -> ResourceQuery:
    return ResourceQuery(
        API, "Cluster", spec.get("namespace"), spec.get("name"), selector_string(spec.get("labelSelector"))
    )


def kube_queries(spec: GateSpec, ctx: GateContext) -> list[ResourceQuery]:
    out = [_query(spec)]
    if _placement_applies(spec, ctx):
        out.append(ResourceQuery("v1", "Pod", spec.get("namespace"), label_selector=CLUSTER_LABEL))
    return out


def observe(spec: GateSpec, sources: Sources, ctx: GateContext, now: float) -> list[Check]:
    if sources.kube is None:
        return no_source("cnpg", "Kubernetes")
    found = fetch(sources.kube, _query(spec))
    if not found:
        required = bool(spec.get("required") or spec.get("name") or spec.get("labelSelector"))
        wanted = _query(spec).describe()
        return nothing_found("cnpg", "CNPG Cluster", found, required=required, wanted=wanted, operator="CNPG")
    out: list[Check] = []
    for obj in found:
        out.extend(_cluster_checks(spec, ctx, obj))
        if _placement_applies(spec, ctx):
            out.append(_placement(sources, ctx, obj))
    return out


def _cluster_checks(spec: GateSpec, ctx: GateContext, obj: dict[str, Any]) -> list[Check]:
    name = object_name(obj)
    subject = f"Cluster {name}"
    status = obj.get("status") or {}
    phase = status.get("phase") or "no phase yet"
    reason = status.get("phaseReason")
    out = [
        Check(
            subject,
            "phase",
            f"phase is '{HEALTHY}'",
            phase == HEALTHY,
            f"{phase} ({reason})" if reason and phase != HEALTHY else phase,
            since=ALWAYS,
            fatal=phase in HOPELESS,
        )
    ]
    ready = condition(obj, "Ready")
    ok = (ready or {}).get("status") == "True"
    since = parse_time((ready or {}).get("lastTransitionTime")) if ok else None
    seen = (
        "True"
        if ok
        else f"{(ready or {}).get('status', 'missing')}"
        + (f" ({ready.get('reason')})" if ready and ready.get("reason") else "")
    )
    out.append(Check(subject, "Ready", "Ready condition is True", ok, seen, since=since))
    want = int((obj.get("spec") or {}).get("instances") or 1)
    have = int(status.get("readyInstances") or 0)
    out.append(
        Check(
            subject,
            "instances",
            f"{want} of {want} instances ready",
            have == want,
            f"{have}/{want} ready",
            since=ALWAYS,
        )
    )
    current, target = status.get("currentPrimary"), status.get("targetPrimary")
    settled = bool(current) and current == target
    out.append(
        Check(
            subject,
            "primary",
            "current primary is the target primary",
            settled,
            f"current {current}, target {target}",
            since=ALWAYS,
        )
    )
    base = (ctx.baseline.get(spec.id) or {}).get(name)
    timeline = status.get("timelineID")
    if base is not None and isinstance(timeline, int):
        bumps = timeline - int(base)
        limit = int(spec.get("maxTimelineBumps", 1))
        out.append(
            Check(
                subject,
                "failovers",
                f"at most {limit} failover(s) during this node",
                bumps <= limit,
                f"timeline {base} → {timeline} ({bumps} failover{'s' if bumps != 1 else ''})",
                since=ALWAYS,
                fatal=bumps > limit,
            )
        )
    return out


def _placement_applies(spec: GateSpec, ctx: GateContext) -> bool:
    return bool(spec.get("placement", True)) and ctx.stage == "pre" and ctx.node is not None


def _placement(sources: Sources, ctx: GateContext, obj: dict[str, Any]) -> Check:
    assert sources.kube is not None and ctx.node is not None
    meta = obj.get("metadata") or {}
    pods = sources.kube.list(
        ResourceQuery(
            "v1", "Pod", meta.get("namespace"), label_selector=f"{CLUSTER_LABEL}={meta.get('name')}"
        )
    )
    here = sorted(
        (p.get("metadata") or {}).get("name", "?")
        for p in pods
        if (p.get("spec") or {}).get("nodeName") == ctx.node.hostname
    )
    return Check(
        f"Cluster {object_name(obj)}",
        "placement",
        f"at most one instance on {ctx.node.hostname}",
        len(here) <= 1,
        f"{len(here)} on {ctx.node.hostname}" + (f": {', '.join(here)}" if here else ""),
        since=ALWAYS,
        fatal=len(here) > 1,
    )


def baseline(spec: GateSpec, sources: Sources, ctx: GateContext) -> dict[str, int]:
    """timelineID per Cluster before the node, so the gate can count failovers."""
    if sources.kube is None:
        return {}
    out = {}
    for obj in fetch(sources.kube, _query(spec)) or []:
        timeline = (obj.get("status") or {}).get("timelineID")
        if isinstance(timeline, int):
            out[object_name(obj)] = timeline
    return out
