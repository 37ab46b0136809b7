"""Gate kind ``ceph``: a Rook CephCluster is healthy enough to lose one more node.

Per CephCluster (health-gates.md §0):

* health: ``HEALTH_OK``, or every ``status.ceph.details`` code is allowed — never one of
  the forbidden codes (blocked IO, damaged data, no room to recover); codes in
  ``abortOn`` stop the run at once since waiting will not heal them;
* fresh: ``lastChecked`` younger than ``staleAfter`` (3× Rook's status interval unless set)
  — stale status fails closed; its distinct values are the fresh samples the engine
  counts inside the window;
* phase: not ``Failure`` (phase is reconcile state, not data health);
* rook pdbs: with managed PDBs, Rook's own verdict that it has healed — the default
  ``rook-ceph-osd`` PDB exists, no per-failure-domain blocking PDB, and
  ``rook-ceph-pdbstatemap`` names no draining failure domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taltasks.gates.checks import (
    ALWAYS,
    Check,
    GateContext,
    no_source,
    nothing_found,
    object_name,
    parse_time,
)
from taltasks.gates.sources import ResourceQuery, Sources, fetch
from taltasks.model.durations import format_duration, parse_duration
from taltasks.model.gatekinds import ceph_code_forbidden
from taltasks.model.policy import GateSpec

API = "ceph.rook.io/v1"
DEFAULT_STATUS_INTERVAL = 60.0
PDB_DEFAULT = "rook-ceph-osd"
PDB_STATE_MAP = "rook-ceph-pdbstatemap"


def _query(spec: GateSpec) -> ResourceQuery:
    return ResourceQuery(API, "CephCluster", spec.get("namespace"), spec.get("name"))


def kube_queries(spec: GateSpec, ctx: GateContext) -> list[ResourceQuery]:
    ns = spec.get("namespace")
    out = [_query(spec)]
    if spec.get("pdbState") != "off":
        out += [
            ResourceQuery("policy/v1", "PodDisruptionBudget", ns),
            ResourceQuery("v1", "ConfigMap", ns, PDB_STATE_MAP),
        ]
    return out


def observe(spec: GateSpec, sources: Sources, ctx: GateContext, now: float) -> list[Check]:
    if sources.kube is None:
        return no_source("ceph", "Kubernetes")
    found = fetch(sources.kube, _query(spec))
    if not found:
        wanted = spec.get("name") or "a CephCluster"
        required = bool(spec.get("required") or spec.get("name"))
        return nothing_found("ceph", "CephCluster", found, required=required, wanted=wanted, operator="Rook")
    out: list[Check] = []
    for obj in found:
        out.extend(_cluster_checks(spec, sources, ctx, obj, now))
    return out


def _cluster_checks(
    spec: GateSpec, sources: Sources, ctx: GateContext, obj: dict[str, Any], now: float
) -> list[Check]:
    subject = f"CephCluster {object_name(obj)}"
    status = obj.get("status") or {}
    ceph = status.get("ceph") or {}
    health = ceph.get("health")
    details: Mapping[str, Any] = ceph.get("details") or {}
    allowed = set(spec.get("allow", ()))
    if spec.get("tolerateBaseline"):
        allowed |= set((ctx.baseline.get(spec.id) or {}).get(object_name(obj), ()))
    codes = sorted(details)
    refused = [c for c in codes if c not in allowed or ceph_code_forbidden(c)]
    ok = health == "HEALTH_OK" or (health is not None and bool(codes) and not refused)
    fatal = [c for c in codes if c in set(spec.get("abortOn", ()))]
    checked = parse_time(ceph.get("lastChecked"))
    since = None
    if health == "HEALTH_OK":
        since = (
            parse_time(ceph.get("lastChanged"))
            or parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
            or ALWAYS
        )
    out = [
        Check(
            subject,
            "health",
            "HEALTH_OK or only allowed codes" if allowed else "HEALTH_OK",
            ok,
            health_text(health, details),
            since=since,
            sample=checked,
            fatal=bool(fatal),
        )
    ]
    out.append(_freshness(spec, obj, subject, checked, now))
    phase = status.get("phase")
    out.append(
        Check(subject, "phase", "phase is not Failure", phase != "Failure", phase or "none yet", since=ALWAYS)
    )
    if _pdbs_managed(spec, obj):
        out.append(_pdb_state(sources, subject, (obj.get("metadata") or {}).get("namespace")))
    return out


def health_text(health: str | None, details: Mapping[str, Any]) -> str:
    """``HEALTH_WARN: OSD_DOWN (1 osds down); OSD_HOST_DOWN (1 host (1 osds) down)``."""
    if health is None:
        return "no health reported yet"
    if not details:
        return health
    parts = [
        f"{code} ({(info or {}).get('message', '')})" if (info or {}).get("message") else code
        for code, info in sorted(details.items())
    ]
    return f"{health}: {'; '.join(parts)}"


def _freshness(spec: GateSpec, obj: dict[str, Any], subject: str, checked: float | None, now: float) -> Check:
    status_cfg = (((obj.get("spec") or {}).get("healthCheck") or {}).get("daemonHealth") or {}).get(
        "status"
    ) or {}
    if status_cfg.get("disabled"):
        return Check(
            subject,
            "fresh",
            "Rook checks Ceph status",
            False,
            "status checks are disabled in spec.healthCheck",
        )
    stale_after = spec.get("staleAfter")
    if stale_after is None:
        try:
            interval = parse_duration(status_cfg.get("interval", DEFAULT_STATUS_INTERVAL))
        except ValueError:
            interval = DEFAULT_STATUS_INTERVAL
        stale_after = 3 * interval
    condition = f"status checked within {format_duration(stale_after)}"
    if checked is None:
        return Check(subject, "fresh", condition, False, "no lastChecked yet")
    age = max(now - checked, 0.0)
    return Check(
        subject, "fresh", condition, age <= stale_after, f"checked {format_duration(age)} ago", since=ALWAYS
    )


def _pdbs_managed(spec: GateSpec, obj: dict[str, Any]) -> bool:
    mode = spec.get("pdbState", "auto")
    if mode == "off":
        return False
    managed = bool(((obj.get("spec") or {}).get("disruptionManagement") or {}).get("managePodBudgets"))
    return mode == "on" or managed


def _pdb_state(sources: Sources, subject: str, namespace: str | None) -> Check:
    assert sources.kube is not None
    pdbs = sources.kube.list(ResourceQuery("policy/v1", "PodDisruptionBudget", namespace))
    names = {(p.get("metadata") or {}).get("name") for p in pdbs}
    blocking = sorted(n for n in names if isinstance(n, str) and n.startswith(PDB_DEFAULT + "-"))
    state = sources.kube.get(ResourceQuery("v1", "ConfigMap", namespace, PDB_STATE_MAP))
    draining = ((state or {}).get("data") or {}).get("draining-failure-domain", "")
    problems = []
    if draining:
        problems.append(f"draining failure domain {draining}")
    if blocking:
        problems.append(f"blocking PDBs {', '.join(blocking)}")
    if PDB_DEFAULT not in names:
        problems.append(f"default PDB {PDB_DEFAULT} absent")
    return Check(
        subject,
        "rook pdbs",
        "Rook's OSD disruption state is idle",
        not problems,
        "; ".join(problems) or "idle",
        since=ALWAYS,
    )


def baseline(spec: GateSpec, sources: Sources, ctx: GateContext) -> dict[str, list[str]]:
    """The health codes present before the run, per CephCluster (for ``tolerateBaseline``)."""
    if sources.kube is None:
        return {}
    return {
        object_name(obj): sorted(((obj.get("status") or {}).get("ceph") or {}).get("details") or {})
        for obj in fetch(sources.kube, _query(spec)) or []
    }
