"""Gate kind ``kube-node``: Kubernetes Nodes registered, Ready and schedulable.

Ready carries its own history: the condition's ``lastTransitionTime`` is when the kubelet
last flipped it, so "Ready for W seconds" is measured from there, not from our first look.
By default every node is checked, which is what keeps at most one node not Ready at a time.
"""

from __future__ import annotations

from taltasks.gates.checks import ALWAYS, Check, GateContext, NodeLike, condition, no_source, parse_time
from taltasks.gates.sources import ResourceQuery, Sources
from taltasks.model.policy import GateSpec

NODES = ResourceQuery("v1", "Node")


def targets(spec: GateSpec, ctx: GateContext) -> list[NodeLike]:
    if spec.get("scope") == "node" and ctx.subjects:
        return ctx.subjects
    return list(ctx.nodes)


def kube_queries(spec: GateSpec, ctx: GateContext) -> list[ResourceQuery]:
    return [NODES]


def observe(spec: GateSpec, sources: Sources, ctx: GateContext, now: float) -> list[Check]:
    if sources.kube is None:
        return no_source("kubernetes", "Kubernetes")
    by_name = {(o.get("metadata") or {}).get("name"): o for o in sources.kube.list(NODES)}
    out: list[Check] = []
    for node in targets(spec, ctx):
        subject = f"node {node.hostname}"
        obj = by_name.get(node.hostname)
        if obj is None:
            out.append(Check(subject, "registered", "the Node object exists", False, "not registered"))
            continue
        ready = condition(obj, "Ready")
        status = (ready or {}).get("status", "missing")
        ok = status == "True"
        if ok:
            seen = "Ready"
        else:
            reason = (ready or {}).get("reason") or ""
            seen = f"Ready={status}" + (f" ({reason})" if reason else "")
        since = parse_time((ready or {}).get("lastTransitionTime")) if ok else None
        out.append(Check(subject, "Ready", "Ready is True", ok, seen, since=since))
        if not spec.get("schedulable", True):
            continue
        cordoned = bool((obj.get("spec") or {}).get("unschedulable"))
        out.append(
            Check(
                subject,
                "schedulable",
                "schedulable (not cordoned)",
                not cordoned,
                "cordoned" if cordoned else "schedulable",
                since=ALWAYS,
            )
        )
    return out
