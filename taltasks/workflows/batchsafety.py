"""Proving a failure-domain batch safe before it starts, from what the cluster reports.

The policy's ``batching`` only *allows* a batch of workers to go down together; the run
takes it only when these hold (each finding says what was read and why it matters):

* **Ceph** (once per run; it does not depend on the batch): every pool a Rook resource
  declares replicates across exactly the CRUSH bucket type the batching label maps to
  (Rook's mapping: ``topology.kubernetes.io/zone`` → ``zone``, ``…/region`` → ``region``,
  ``topology.rook.io/<type>`` → ``<type>``, ``kubernetes.io/hostname`` → ``host``), so a
  batch inside one domain takes at most one copy of each placement group down; each pool
  keeps ``size - max_domains >= min_size`` copies up; Ceph's own ``.mgr`` pool is declared
  (otherwise it sits on the default CRUSH rule, failure domain host); and with Rook's
  managed PDBs only one domain drains at a time, so ``max_domains`` must be 1.
* **CloudNativePG** (per batch): every Cluster keeps a ready instance on a node outside the
  batch — the primary switches over to it, the database stays up.
* **PodDisruptionBudgets** (per batch): every budget is still met by its healthy pods once
  the batch's pods that cannot move elsewhere (pinned to their node, DaemonSet pods, bare
  pods, database instances) are gone; pods a ReplicaSet recreates move off the cordoned
  batch one eviction at a time. CNPG's budgets are judged after the switchover the run
  performs first; Rook's OSD budgets are left to the Ceph proof (Rook opens the draining
  domain itself).

:func:`check_batch` is pure (tested with tables); :func:`read_facts` reads the cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taltasks.kube.ceph import CephPool
from taltasks.kube.cnpg import CnpgClusterStatus
from taltasks.model.policy import BatchingPolicy

if TYPE_CHECKING:
    from taltasks.kube.client import KubeClient

# Rook's node labels for CRUSH bucket types (pkg/operator/ceph/cluster/osd/topology)
KUBERNETES_TOPOLOGY = {"topology.kubernetes.io/zone": "zone", "topology.kubernetes.io/region": "region"}
ROOK_TOPOLOGY = ("chassis", "rack", "row", "pdu", "pod", "room", "datacenter")
HOSTNAME_LABEL = "kubernetes.io/hostname"
MGR_POOL = ".mgr"
CNPG_ROLE_LABELS = ("cnpg.io/instanceRole", "role")
CNPG_CLUSTER_LABEL = "cnpg.io/cluster"


def crush_type(label: str) -> str | None:
    """The CRUSH bucket type Rook builds from a node label; None when Rook ignores it."""
    if label in KUBERNETES_TOPOLOGY:
        return KUBERNETES_TOPOLOGY[label]
    if label == HOSTNAME_LABEL:
        return "host"
    prefix, _, kind = label.rpartition("/")
    if prefix == "topology.rook.io" and kind in ROOK_TOPOLOGY:
        return kind
    return None


@dataclass(frozen=True)
class Finding:
    check: str  # ceph | cnpg | pdb
    ok: bool
    message: str


@dataclass(frozen=True)
class BatchVerdict:
    """The findings for one batch; safe when none failed."""

    nodes: tuple[str, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def safe(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def reasons(self) -> list[str]:
        return [f.message for f in self.findings if not f.ok]

    @property
    def run_wide(self) -> bool:
        """A failed Ceph proof holds for every batch of the run, not just this one."""
        return any(not f.ok and f.check == "ceph" for f in self.findings)

    def explain(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "; ".join(f.message for f in self.findings)


@dataclass(frozen=True)
class ClusterFacts:
    """What the proofs read, as plain values (raw objects where the shape is Kubernetes')."""

    ceph_clusters: tuple[dict[str, Any], ...] = ()
    pools: tuple[CephPool, ...] = ()
    cnpg: tuple[CnpgClusterStatus, ...] = ()
    pdbs: tuple[dict[str, Any], ...] = ()
    pods: tuple[dict[str, Any], ...] = ()
    ceph_namespaces: frozenset[str] = field(default_factory=frozenset)


# ---- the proofs -------------------------------------------------------------------------------


def ceph_findings(facts: ClusterFacts, batching: BatchingPolicy) -> list[Finding]:
    """Run-wide: the pools' failure domains follow the batching label, with room to spare."""
    from taltasks.kube.ceph import manages_pod_budgets

    if not facts.ceph_clusters:
        return [Finding("ceph", True, "no CephCluster: no pools to protect")]
    wanted = crush_type(batching.label)
    if wanted is None:
        return [
            Finding(
                "ceph",
                False,
                f"Rook builds no CRUSH bucket from the label {batching.label}, so no pool can be "
                "shown to keep its copies apart across its values",
            )
        ]
    if not facts.pools:
        return [
            Finding(
                "ceph",
                False,
                "no CephBlockPool, CephFilesystem or CephObjectStore found: the pools' failure domains cannot be read",
            )
        ]
    out: list[Finding] = []
    for pool in facts.pools:
        if pool.failure_domain != wanted:
            out.append(
                Finding(
                    "ceph",
                    False,
                    f"{pool.source} keeps its copies on different {pool.failure_domain}s, not different "
                    f"{wanted}s: a batch of one {wanted} can take several copies of a placement group "
                    f"down at once (below min_size {pool.min_size})",
                )
            )
            continue
        up = pool.size - batching.max_domains
        if up < pool.min_size:
            out.append(
                Finding(
                    "ceph",
                    False,
                    f"{pool.source} (size {pool.size}, min_size {pool.min_size}) would keep {up} "
                    f"cop{'y' if up == 1 else 'ies'} up with {batching.max_domains} {wanted}"
                    f"{'s' if batching.max_domains != 1 else ''} down",
                )
            )
            continue
        out.append(
            Finding(
                "ceph", True, f"{pool.source}: {up} of {pool.size} copies stay up (min_size {pool.min_size})"
            )
        )
    if not any(p.name == MGR_POOL for p in facts.pools):
        out.append(
            Finding(
                "ceph",
                False,
                "Ceph's .mgr pool is not declared, so it uses the default CRUSH rule (failure domain host); "
                f"declare it as a CephBlockPool named builtin-mgr with spec.name {MGR_POOL} and failureDomain {wanted}",
            )
        )
    if batching.max_domains > 1 and any(manages_pod_budgets(c) for c in facts.ceph_clusters):
        out.append(
            Finding(
                "ceph",
                False,
                f"Rook manages the OSD disruption budgets and lets one {wanted} drain at a time, "
                f"not {batching.max_domains}",
            )
        )
    return out


def cnpg_findings(facts: ClusterFacts, batch: Sequence[str]) -> list[Finding]:
    """Per batch: each database keeps a ready instance on a node outside the batch."""
    inside = set(batch)
    out = []
    for cluster in facts.cnpg:
        outside = [p for p in cluster.pods if p.ready and p.node and p.node not in inside]
        if outside:
            out.append(
                Finding(
                    "cnpg",
                    True,
                    f"{cluster.ref}: ready outside the batch on {', '.join(sorted({p.node for p in outside}))}",
                )
            )
            continue
        where = ", ".join(
            f"{p.name} on {p.node or '?'}{'' if p.ready else ' (not ready)'}" for p in cluster.pods
        )
        out.append(
            Finding(
                "cnpg",
                False,
                f"CNPG cluster {cluster.ref} would have no ready instance outside the batch ({where or 'no instances'})",
            )
        )
    return out


def pdb_findings(facts: ClusterFacts, batch: Sequence[str], *, rook_osd_proven: bool) -> list[Finding]:
    """Per batch: every budget still met once the pods that cannot move are gone."""
    inside = set(batch)
    pods = after_switchover(facts.pods, facts.cnpg, inside)
    out = []
    for pdb in facts.pdbs:
        m = pdb.get("metadata") or {}
        ref = f"PodDisruptionBudget {m.get('namespace', '')}/{m.get('name', '')}"
        if rook_osd_proven and _rook_osd_budget(pdb, facts.ceph_namespaces):
            continue
        selected = [p for p in pods if _selects(pdb, p)]
        healthy = [p for p in selected if _healthy(p)]
        stuck = [p for p in healthy if _node(p) in inside and not _movable(p)]
        needed = desired_healthy(pdb, len(selected))
        if not stuck:
            continue
        left = len(healthy) - len(stuck)
        if left >= needed:
            out.append(
                Finding("pdb", True, f"{ref}: {left} healthy pod(s) outside the batch, {needed} needed")
            )
            continue
        names = ", ".join(f"{_name(p)} on {_node(p)}" for p in stuck)
        out.append(
            Finding(
                "pdb",
                False,
                f"{ref} needs {needed} healthy pod(s) but only {left} would be left: {names} cannot move off the batch",
            )
        )
    return out


def check_batch(
    facts: ClusterFacts,
    batch: Sequence[str],
    batching: BatchingPolicy,
    *,
    ceph: Iterable[Finding] | None = None,
) -> BatchVerdict:
    """All findings for ``batch`` (hostnames); ``ceph`` reuses the run-wide Ceph findings."""
    ceph = list(ceph) if ceph is not None else ceph_findings(facts, batching)
    rook_ok = bool(facts.ceph_clusters) and all(f.ok for f in ceph)
    findings = [*ceph, *cnpg_findings(facts, batch), *pdb_findings(facts, batch, rook_osd_proven=rook_ok)]
    return BatchVerdict(tuple(batch), tuple(findings))


# ---- pods and budgets -------------------------------------------------------------------------


def after_switchover(
    pods: Iterable[dict[str, Any]], clusters: Iterable[CnpgClusterStatus], inside: set[str]
) -> list[dict[str, Any]]:
    """The pods as they will be labelled once every CNPG primary on a batch node has
    switched over to a ready instance outside the batch (what the run waits for before
    draining), so CNPG's primary/replica budgets are judged on the roles they will have."""
    moves: dict[str, tuple[str, str]] = {}  # namespace/cluster → (old primary pod, new primary pod)
    for c in clusters:
        primary = next((p for p in c.pods if p.name == c.current_primary), None)
        if primary is None or primary.node not in inside:
            continue
        target = next((p for p in c.pods if p.ready and p.node and p.node not in inside), None)
        if target is not None:
            moves[c.ref] = (primary.name, target.name)
    if not moves:
        return list(pods)
    out = []
    for pod in pods:
        m = pod.get("metadata") or {}
        ref = f"{m.get('namespace', '')}/{(m.get('labels') or {}).get(CNPG_CLUSTER_LABEL, '')}"
        if ref not in moves or m.get("name") not in moves[ref]:
            out.append(pod)
            continue
        role = "primary" if m.get("name") == moves[ref][1] else "replica"
        labels = {**(m.get("labels") or {}), **dict.fromkeys(CNPG_ROLE_LABELS, role)}
        out.append({**pod, "metadata": {**m, "labels": labels}})
    return out


def desired_healthy(pdb: Mapping[str, Any], expected: int) -> int:
    """How many selected pods must stay healthy: the budget's own status when the
    disruption controller has computed it, else from minAvailable / maxUnavailable the way
    Kubernetes scales them (percentages rounded up)."""
    status = pdb.get("status") or {}
    if isinstance(status.get("desiredHealthy"), int):
        return int(status["desiredHealthy"])
    spec = pdb.get("spec") or {}
    if spec.get("minAvailable") is not None:
        return _scaled(spec["minAvailable"], expected)
    if spec.get("maxUnavailable") is not None:
        return max(0, expected - _scaled(spec["maxUnavailable"], expected))
    return 0


def _scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def _rook_osd_budget(pdb: Mapping[str, Any], namespaces: frozenset[str]) -> bool:
    m = pdb.get("metadata") or {}
    name = str(m.get("name", ""))
    return m.get("namespace") in namespaces and (name == "rook-ceph-osd" or name.startswith("rook-ceph-osd-"))


def _selects(pdb: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    pm = pdb.get("metadata") or {}
    m = pod.get("metadata") or {}
    if m.get("namespace") != pm.get("namespace"):
        return False
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return False  # policy/v1: a null selector selects nothing
    return selector_matches(selector, m.get("labels") or {})


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector against a label set (an empty selector matches everything)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), set(e.get("values") or [])
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _healthy(pod: Mapping[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return status.get("phase") == "Running" and ready


def _node(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _name(pod: Mapping[str, Any]) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


def _movable(pod: Mapping[str, Any]) -> bool:
    """Whether an evicted pod comes back on another node while the batch is down: owned by
    a Deployment's ReplicaSet (the simulator's Deployments own their pods directly) and not
    pinned to its node by a hostname selector."""
    m, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    owner = next((o for o in m.get("ownerReferences") or [] if o.get("controller")), None)
    if owner is None or owner.get("kind") not in ("ReplicaSet", "ReplicationController", "Deployment"):
        return False
    if HOSTNAME_LABEL in (spec.get("nodeSelector") or {}):
        return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    return not any(
        e.get("key") == HOSTNAME_LABEL for term in required for e in term.get("matchExpressions") or []
    )


# ---- reading the cluster ----------------------------------------------------------------------


def read_facts(kube: KubeClient) -> ClusterFacts:
    """Everything the proofs need: a handful of list calls, made at the same time (they
    run before every batch)."""
    from concurrent.futures import ThreadPoolExecutor

    from taltasks.kube import ceph, cnpg

    calls = {
        "clusters": lambda: (
            kube.list_custom(ceph.GROUP, ceph.VERSION, ceph.PLURAL, what="list CephClusters") or []
        ),
        "pools": lambda: ceph.read_ceph_pools(kube),
        "cnpg": lambda: (
            kube.list_custom(cnpg.GROUP, cnpg.VERSION, cnpg.PLURAL, what="list CNPG clusters") or []
        ),
        "pdbs": lambda: (
            kube.call(
                "list PodDisruptionBudgets", kube.policy.list_pod_disruption_budget_for_all_namespaces
            ).get("items")
            or []
        ),
        "pods": lambda: kube.call("list pods", kube.core.list_pod_for_all_namespaces).get("items") or [],
    }
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="facts") as pool:
        futures = {name: pool.submit(fn) for name, fn in calls.items()}
        got = {name: f.result() for name, f in futures.items()}
    clusters, pods = tuple(got["clusters"]), tuple(got["pods"])
    return ClusterFacts(
        ceph_clusters=clusters,
        pools=tuple(got["pools"]) if clusters else (),
        cnpg=tuple(cnpg.parse_cnpg_cluster(o, pods) for o in got["cnpg"]),
        pdbs=tuple(got["pdbs"]),
        pods=pods,
        ceph_namespaces=frozenset((c.get("metadata") or {}).get("namespace", "") for c in clusters),
    )
