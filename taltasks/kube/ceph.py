"""Rook-Ceph as data: the CephCluster status and Rook's disruption-budget state.

Gates read these values; they never look at raw objects. See health-gates.md §1 for the
meaning of each field and why ``phase`` says nothing about data health.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from taltasks.kube.client import KubeApiError, KubeClient
from taltasks.kube.nodes import parse_time

GROUP, VERSION, PLURAL = "ceph.rook.io", "v1", "cephclusters"


@dataclass(frozen=True)
class CephCheck:
    code: str
    severity: str
    message: str


@dataclass(frozen=True)
class CephClusterStatus:
    namespace: str
    name: str
    phase: str
    health: str  # HEALTH_OK / HEALTH_WARN / HEALTH_ERR, "" before Rook's first poll
    checks: tuple[CephCheck, ...] = ()
    last_checked: dt.datetime | None = None
    last_changed: dt.datetime | None = None
    previous_health: str = ""
    message: str = ""
    generation: int = 0
    observed_generation: int = 0

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.checks)

    def describe(self) -> str:
        if not self.health:
            return f"{self.namespace}/{self.name}: no health reported yet (phase {self.phase or '?'})"
        extra = f" [{', '.join(sorted(self.codes))}]" if self.checks else ""
        return f"{self.namespace}/{self.name}: {self.health}{extra}"


def parse_ceph_cluster(obj: dict[str, Any]) -> CephClusterStatus:
    m, status = obj.get("metadata") or {}, obj.get("status") or {}
    ceph = status.get("ceph") or {}
    checks = tuple(
        CephCheck(code, str((d or {}).get("severity", "")), str((d or {}).get("message", "")))
        for code, d in sorted((ceph.get("details") or {}).items())
    )
    return CephClusterStatus(
        namespace=m.get("namespace", ""),
        name=m.get("name", ""),
        phase=status.get("phase", ""),
        health=ceph.get("health", ""),
        checks=checks,
        last_checked=parse_time(ceph.get("lastChecked")),
        last_changed=parse_time(ceph.get("lastChanged")),
        previous_health=ceph.get("previousHealth", ""),
        message=status.get("message", ""),
        generation=int(m.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
    )


def read_ceph_clusters(client: KubeClient, namespace: str | None = None) -> list[CephClusterStatus]:
    """Every CephCluster (of ``namespace``); empty when Rook is not installed."""
    items = client.list_custom(GROUP, VERSION, PLURAL, namespace, what="list CephClusters") or []
    return [parse_ceph_cluster(o) for o in items]


def read_ceph_cluster(client: KubeClient, namespace: str, name: str) -> CephClusterStatus:
    obj = client.get_custom(
        GROUP, VERSION, PLURAL, namespace, name, what=f"read CephCluster {namespace}/{name}"
    )
    return parse_ceph_cluster(obj)


@dataclass(frozen=True)
class RookBudgetState:
    """Rook's managed PDBs: idle means Rook itself judged the cluster healed."""

    namespace: str
    default_pdb: bool
    blocking_pdbs: tuple[str, ...] = field(default_factory=tuple)
    draining_failure_domain: str = ""

    @property
    def idle(self) -> bool:
        return self.default_pdb and not self.blocking_pdbs and not self.draining_failure_domain

    def describe(self) -> str:
        if self.idle:
            return "Rook PDBs idle"
        parts = []
        if not self.default_pdb:
            parts.append("default rook-ceph-osd PDB missing")
        if self.blocking_pdbs:
            parts.append(f"blocking PDBs {', '.join(self.blocking_pdbs)}")
        if self.draining_failure_domain:
            parts.append(f"failure domain {self.draining_failure_domain} draining")
        return "; ".join(parts)


def parse_rook_budget_state(
    namespace: str, pdb_names: list[str], statemap: dict[str, Any] | None
) -> RookBudgetState:
    return RookBudgetState(
        namespace=namespace,
        default_pdb="rook-ceph-osd" in pdb_names,
        blocking_pdbs=tuple(sorted(n for n in pdb_names if n.startswith("rook-ceph-osd-"))),
        draining_failure_domain=str(((statemap or {}).get("data") or {}).get("draining-failure-domain", "")),
    )


def read_rook_budget_state(client: KubeClient, namespace: str = "rook-ceph") -> RookBudgetState:
    body = client.call(
        "list PodDisruptionBudgets", client.policy.list_namespaced_pod_disruption_budget, namespace
    )
    names = [(o.get("metadata") or {}).get("name", "") for o in body.get("items") or []]
    try:
        statemap = client.call(
            "read rook-ceph-pdbstatemap",
            client.core.read_namespaced_config_map,
            "rook-ceph-pdbstatemap",
            namespace,
        )
    except KubeApiError as exc:
        if exc.status != 404:
            raise
        statemap = None
    return parse_rook_budget_state(namespace, names, statemap)


# ---- pools ----------------------------------------------------------------------------------

POOL_KINDS = {
    "CephBlockPool": "cephblockpools",
    "CephFilesystem": "cephfilesystems",
    "CephObjectStore": "cephobjectstores",
}


@dataclass(frozen=True)
class CephPool:
    """One Ceph pool as a Rook resource declares it (a CephBlockPool, or a data/metadata pool
    of a CephFilesystem or CephObjectStore): how many copies (``size``: replicas, or data +
    coding chunks), how many must be up for I/O (``min_size``; Ceph's default when the
    resource does not set ``parameters.min_size``) and the CRUSH bucket type the copies are
    spread across (``failure_domain``, Rook's default ``host``)."""

    source: str  # "CephBlockPool rook-ceph/ceph-blockpool", "CephFilesystem rook-ceph/fs data pool 0"
    name: str  # the Ceph pool's own name where the resource sets it (".mgr"), else the resource's
    size: int
    min_size: int
    failure_domain: str
    erasure_coded: bool = False

    def describe(self) -> str:
        kind = "erasure-coded" if self.erasure_coded else "replicated"
        return f"{self.source} ({kind}, size {self.size}, min_size {self.min_size}, failure domain {self.failure_domain})"


def pool_from_spec(source: str, name: str, spec: dict[str, Any], *, default_domain: str = "host") -> CephPool:
    """A PoolSpec (``failureDomain``, ``replicated.size``, ``erasureCoded``, ``parameters``)."""
    ec = spec.get("erasureCoded") or {}
    data, coding = int(ec.get("dataChunks") or 0), int(ec.get("codingChunks") or 0)
    params = spec.get("parameters") or {}
    if data and coding:
        size, default_min = data + coding, data + 1  # Ceph's default for an EC pool: k + 1
    else:
        size = int((spec.get("replicated") or {}).get("size") or 3)
        default_min = size - size // 2  # Ceph's default for a replicated pool
    try:
        min_size = int(params.get("min_size") or default_min)
    except (TypeError, ValueError):
        min_size = default_min
    return CephPool(
        source=source,
        name=name,
        size=size,
        min_size=min_size,
        failure_domain=str(spec.get("failureDomain") or default_domain),
        erasure_coded=bool(data and coding),
    )


def parse_pools(kind: str, obj: dict[str, Any]) -> list[CephPool]:
    """The Ceph pools one Rook resource of ``kind`` declares."""
    m, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    ref = f"{kind} {m.get('namespace', '')}/{m.get('name', '')}"
    if kind == "CephBlockPool":
        return [pool_from_spec(ref, str(spec.get("name") or m.get("name", "")), spec)]
    out = []
    if spec.get("metadataPool"):
        out.append(
            pool_from_spec(f"{ref} metadata pool", f"{m.get('name', '')}-metadata", spec["metadataPool"])
        )
    if kind == "CephFilesystem":
        for i, pool in enumerate(spec.get("dataPools") or []):
            name = pool.get("name") or f"data{i}"
            out.append(pool_from_spec(f"{ref} data pool {name}", f"{m.get('name', '')}-{name}", pool))
    elif spec.get("dataPool"):
        out.append(pool_from_spec(f"{ref} data pool", f"{m.get('name', '')}-data", spec["dataPool"]))
    return out


def read_ceph_pools(client: KubeClient) -> list[CephPool]:
    """Every pool the cluster's Rook resources declare (none when Rook is not installed)."""
    out: list[CephPool] = []
    for kind, plural in POOL_KINDS.items():
        for obj in client.list_custom(GROUP, VERSION, plural, what=f"list {kind}s") or []:
            out.extend(parse_pools(kind, obj))
    return out


def manages_pod_budgets(obj: dict[str, Any]) -> bool:
    """``spec.disruptionManagement.managePodBudgets`` of a CephCluster object."""
    return bool(((obj.get("spec") or {}).get("disruptionManagement") or {}).get("managePodBudgets"))
