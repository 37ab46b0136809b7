"""Gate kind ``expression``: a CEL expression over any resource — tuppr's ``healthChecks``.

Semantics follow tuppr's evaluator so one definition means the same in both tools: with
``name`` the object is read and must exist; otherwise every object of the kind (in the
namespace, matching the selector) must pass; no objects passes when there is no selector
and fails when there is one; an evaluation error, a missing field or a non-boolean result
is "not passed" (fail closed); a kind the API does not serve fails. By default there is
no stability window (tuppr has none); ``window`` adds one.
"""

from __future__ import annotations

from taltasks.gates.checks import ALWAYS, Check, GateContext, no_source, object_name
from taltasks.gates.sources import ResourceQuery, Sources, fetch, selector_string
from taltasks.model.cel import evaluate
from taltasks.model.policy import GateSpec


def query(spec: GateSpec) -> ResourceQuery:
    return ResourceQuery(
        spec.get("apiVersion"),
        spec.get("kind"),
        spec.get("namespace"),
        spec.get("name"),
        selector_string(spec.get("labelSelector")),
    )


def kube_queries(spec: GateSpec, ctx: GateContext) -> list[ResourceQuery]:
    return [query(spec)]


def observe(spec: GateSpec, sources: Sources, ctx: GateContext, now: float) -> list[Check]:
    q = query(spec)
    condition = spec.description or spec.get("expr")
    if sources.kube is None:
        return no_source(q.describe(), "Kubernetes")
    objects = fetch(sources.kube, q)
    if objects is None:
        return [
            Check(
                q.describe(),
                "served",
                f"the API serves {q.api_version} {q.kind}",
                False,
                "not served (CRD missing?)",
            )
        ]
    if not objects:
        if q.name:
            return [Check(q.describe(), "exists", "the object exists", False, "not found")]
        if q.label_selector:
            return [Check(q.describe(), "exists", "objects match the selector", False, "no object matches")]
        return [
            Check(q.describe(), "expr", condition, True, "no objects (passes, as in tuppr)", since=ALWAYS)
        ]
    out = []
    for obj in objects:
        passed, seen = evaluate(spec.get("expr"), obj)
        out.append(Check(f"{q.kind} {object_name(obj)}", "expr", condition, passed, seen))
    return out
