"""The Kubernetes sections of a simulator scenario file, parsed and checked.

A scenario is one YAML file. The Talos side owns ``cluster``, ``timings``, ``nodes`` and
Talos faults; this module owns ``kube``, ``ceph``, ``cnpg``, ``flux``, ``workloads`` and the
operator ``faults``. Every problem is an :class:`~taltasks.errors.InputError` at the
``file:line`` of the offending key, found before anything starts::

    kubernetes: {podStartSeconds: 0.0, podTerminationSeconds: 0.0}
    ceph:
      namespace: rook-ceph          # default rook-ceph
      name: rook-ceph               # default rook-ceph
      osds: {worker-1: [0], worker-2: [1], worker-3: [2]}
      mons: [cp-1, cp-2, cp-3]
      mgrs: 2
      recoverySeconds: 1.0          # PG_DEGRADED lasts this long after the last OSD is back
      checkIntervalSeconds: 0.5     # status.ceph.lastChecked refresh (Rook: 60 s)
      managePodBudgets: true
      pools:                        # CephBlockPools; default: ceph-blockpool, size 3, host
        - {name: ceph-blockpool, size: 3, minSize: 2, failureDomain: zone}
        - {name: builtin-mgr, poolName: .mgr, size: 3, failureDomain: zone}
    cnpg:
      switchoverSeconds: 0.3
      failoverDelaySeconds: 0.0
      clusters:
        - {namespace: database, name: postgres, instances: 3, nodes: [worker-1, worker-2, worker-3]}
    flux:
      reconcileSeconds: 0.1
      kustomizations: [{namespace: flux-system, name: cluster-apps}]
      helmReleases: [{namespace: kube-system, name: cilium, chart: cilium, version: 1.18.4}]
    workloads:
      - {kind: Deployment, namespace: default, name: web, replicas: 2, pdb: {minAvailable: 1}}
      - {kind: DaemonSet, namespace: kube-system, name: kube-proxy, tolerateControlPlane: true}
    tuppr:                          # a simulated tuppr controller (needs the Talos side)
      namespace: system-upgrade
      controllerNode: worker-1      # its pod's node (tuppr upgrades it first); default: first worker
      reconcileSeconds: 0.05
    faults:
      - {kind: ceph-stuck, health: HEALTH_WARN, details: [OSD_DOWN]}
      - {kind: pg-availability}
      - {kind: cnpg-never-healthy, cluster: database/postgres}
      - {kind: pdb-blocks-forever, namespace: default, name: critical-app, node: worker-1}

Fault ``trigger`` is ``first-disruption`` (default: from the first time an OSD, mon or
instance goes down) or ``start``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from taltasks.errors import InputError
from taltasks.yamlpos import KeyPath, YamlDoc

OPERATOR_FAULTS = ("ceph-stuck", "pg-availability", "cnpg-never-healthy", "pdb-blocks-forever")
TALOS_FAULTS = ("node-never-returns",)
TRIGGERS = ("first-disruption", "start")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class KubeTimings:
    pod_start_seconds: float = 0.0
    pod_termination_seconds: float = 0.0


POOL_DOMAINS = ("host", "zone")


@dataclass(frozen=True)
class PoolConfig:
    """A replicated Ceph pool as a CephBlockPool declares it: ``size`` replicas, one per
    ``failure_domain`` (CRUSH), I/O stops below ``min_size`` up (Ceph's default for a
    replicated pool: ``size - size // 2``)."""

    name: str
    size: int = 3
    min_size: int | None = None
    failure_domain: str = "host"
    pool_name: str | None = None  # spec.name: the Ceph pool's own name (".mgr" for Rook's builtin-mgr)

    @property
    def effective_min_size(self) -> int:
        return self.min_size if self.min_size is not None else self.size - self.size // 2


DEFAULT_POOLS = (PoolConfig("ceph-blockpool"),)  # what the rook-ceph-cluster chart creates


@dataclass(frozen=True)
class CephConfig:
    namespace: str = "rook-ceph"
    name: str = "rook-ceph"
    osds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    mons: tuple[str, ...] = ()
    mgrs: int = 2
    recovery_seconds: float = 1.0
    check_interval_seconds: float = 0.5
    manage_pod_budgets: bool = True
    image: str = "quay.io/ceph/ceph:v19.2.3"
    pools: tuple[PoolConfig, ...] = DEFAULT_POOLS

    def osd_hosts(self) -> dict[int, str]:
        return {osd: host for host, ids in self.osds.items() for osd in ids}


@dataclass(frozen=True)
class CnpgClusterConfig:
    namespace: str
    name: str
    instances: int = 3
    nodes: tuple[str, ...] = ()
    enable_pdb: bool = True
    maintenance_in_progress: bool = False
    reuse_pvc: bool = True
    image: str = "ghcr.io/cloudnative-pg/postgresql:17.5"

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class CnpgConfig:
    clusters: tuple[CnpgClusterConfig, ...] = ()
    switchover_seconds: float = 0.3
    failover_delay_seconds: float = 0.0


@dataclass(frozen=True)
class FluxObjectConfig:
    kind: str  # Kustomization | HelmRelease
    namespace: str
    name: str
    suspend: bool = False
    chart: str = ""
    version: str = ""
    path: str = ""


@dataclass(frozen=True)
class FluxConfig:
    objects: tuple[FluxObjectConfig, ...] = ()
    reconcile_seconds: float = 0.1


@dataclass(frozen=True)
class WorkloadConfig:
    kind: str  # Deployment | DaemonSet
    namespace: str
    name: str
    replicas: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerate_control_plane: bool = False
    pdb: dict[str, Any] | None = None
    start_seconds: float | None = None
    never_ready: bool = False
    image: str = "registry.k8s.io/pause:3.10"


@dataclass(frozen=True)
class FaultConfig:
    kind: str
    trigger: str = "first-disruption"
    health: str = "HEALTH_WARN"
    details: tuple[str, ...] = ()
    cluster: str = ""
    namespace: str = ""
    name: str = ""
    node: str = ""
    where: str = ""


@dataclass(frozen=True)
class WorldScenario:
    kube: KubeTimings = KubeTimings()
    ceph: CephConfig | None = None
    cnpg: CnpgConfig | None = None
    flux: FluxConfig | None = None
    workloads: tuple[WorkloadConfig, ...] = ()
    faults: tuple[FaultConfig, ...] = ()
    tuppr: Any = None  # TupprConfig when the scenario runs tuppr

    def faults_of(self, kind: str) -> list[FaultConfig]:
        return [f for f in self.faults if f.kind == kind]


# ---- parsing ------------------------------------------------------------------------------------


class _Checker:
    """Reads typed values out of a YamlDoc and collects every error before raising."""

    def __init__(self, doc: YamlDoc, node_names: Sequence[str]) -> None:
        self.doc = doc
        self.nodes = list(node_names)
        self.errors: list[InputError] = []

    def fail(self, keys: KeyPath, message: str, hint: str | None = None) -> None:
        self.errors.append(self.doc.error(keys, message, hint=hint))

    def mapping(self, keys: KeyPath, allowed: Iterable[str], *, required: bool = False) -> dict[str, Any]:
        value = self.doc.get(keys)
        if value is None:
            if required:
                self.fail(keys, f"{_dotted(keys)} is required")
            return {}
        if not isinstance(value, dict):
            self.fail(keys, f"{_dotted(keys)} must be a mapping, not {type(value).__name__}")
            return {}
        allowed = list(allowed)
        for key in value:
            if key not in allowed:
                self.fail(
                    (*keys, key),
                    f"unknown key {key!r} in {_dotted(keys)}",
                    hint=f"allowed keys: {', '.join(allowed)}",
                )
        return value

    def sequence(self, keys: KeyPath) -> list[Any]:
        value = self.doc.get(keys)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(keys, f"{_dotted(keys)} must be a list")
            return []
        return value

    def string(self, keys: KeyPath, default: str = "", *, name: bool = False, required: bool = False) -> str:
        value = self.doc.get(keys)
        if value is None:
            if required:
                self.fail(keys, f"{_dotted(keys)} is required")
            return default
        if not isinstance(value, str) or not value:
            self.fail(keys, f"{_dotted(keys)} must be a non-empty string")
            return default
        if name and not _NAME.match(value):
            self.fail(
                keys,
                f"{_dotted(keys)}: {value!r} is not a valid Kubernetes name",
                hint="lower-case letters, digits and '-'",
            )
        return str(value)

    def number(self, keys: KeyPath, default: float, *, minimum: float = 0.0) -> float:
        value = self.doc.get(keys)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            self.fail(keys, f"{_dotted(keys)} must be a number >= {minimum:g}")
            return default
        return float(value)

    def integer(self, keys: KeyPath, default: int, *, minimum: int = 0) -> int:
        value = self.doc.get(keys)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(keys, f"{_dotted(keys)} must be an integer >= {minimum}")
            return default
        return int(value)

    def boolean(self, keys: KeyPath, default: bool) -> bool:
        value = self.doc.get(keys)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(keys, f"{_dotted(keys)} must be true or false")
            return default
        return value

    def node(self, keys: KeyPath, value: Any = None) -> str:
        """The node named at ``keys`` (or ``value``, e.g. a mapping key), checked to exist."""
        value = self.doc.get(keys) if value is None else value
        if not isinstance(value, str) or value not in self.nodes:
            self.fail(
                keys,
                f"{_dotted(keys)}: {value!r} is not a node of this cluster",
                hint=f"nodes are: {', '.join(self.nodes) or '(none)'}",
            )
            return ""
        return value

    def labels(self, keys: KeyPath) -> dict[str, str]:
        value = self.mapping(keys, self.doc.get(keys) or {})
        return {str(k): str(v) for k, v in value.items()}


def _dotted(keys: KeyPath) -> str:
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "document"


def _kube(c: _Checker) -> KubeTimings:
    c.mapping(("kubernetes",), ("podStartSeconds", "podTerminationSeconds"))
    return KubeTimings(
        pod_start_seconds=c.number(("kubernetes", "podStartSeconds"), 0.0),
        pod_termination_seconds=c.number(("kubernetes", "podTerminationSeconds"), 0.0),
    )


def _ceph(c: _Checker) -> CephConfig | None:
    if c.doc.get(("ceph",)) is None:
        return None
    c.mapping(
        ("ceph",),
        (
            "namespace",
            "name",
            "osds",
            "mons",
            "mgrs",
            "recoverySeconds",
            "checkIntervalSeconds",
            "managePodBudgets",
            "image",
            "pools",
        ),
    )
    osds_raw = c.mapping(("ceph", "osds"), c.doc.get(("ceph", "osds")) or {}, required=True)
    osds: dict[str, tuple[int, ...]] = {}
    seen: dict[int, str] = {}
    for host in osds_raw:
        keys = ("ceph", "osds", host)
        c.node(keys, host)
        ids = c.doc.get(keys)
        if (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids)
        ):
            c.fail(keys, f"ceph.osds.{host} must be a non-empty list of OSD ids (integers >= 0)")
            continue
        for i in ids:
            if i in seen:
                c.fail(
                    keys,
                    f"OSD {i} is listed on both {seen[i]} and {host}",
                    hint="each OSD id lives on one node",
                )
            seen[i] = host
        osds[str(host)] = tuple(int(i) for i in ids)
    mons = []
    for i, _ in enumerate(c.sequence(("ceph", "mons"))):
        name = c.node(("ceph", "mons", i))
        if name in mons:
            c.fail(
                ("ceph", "mons", i),
                f"mon node {name} is listed twice",
                hint="Rook runs at most one mon per node",
            )
        mons.append(name)
    if not mons:
        c.fail(
            ("ceph", "mons"),
            "ceph.mons must list the nodes that run a Ceph monitor",
            hint="e.g. mons: [cp-1, cp-2, cp-3]",
        )
    return CephConfig(
        namespace=c.string(("ceph", "namespace"), "rook-ceph", name=True),
        name=c.string(("ceph", "name"), "rook-ceph", name=True),
        osds=osds,
        mons=tuple(mons),
        mgrs=c.integer(("ceph", "mgrs"), 2, minimum=1),
        recovery_seconds=c.number(("ceph", "recoverySeconds"), 1.0),
        check_interval_seconds=c.number(("ceph", "checkIntervalSeconds"), 0.5, minimum=0.01),
        manage_pod_budgets=c.boolean(("ceph", "managePodBudgets"), True),
        image=c.string(("ceph", "image"), "quay.io/ceph/ceph:v19.2.3"),
        pools=_pools(c) if c.doc.get(("ceph", "pools")) is not None else DEFAULT_POOLS,
    )


def _pools(c: _Checker) -> tuple[PoolConfig, ...]:
    out: list[PoolConfig] = []
    for i, _ in enumerate(c.sequence(("ceph", "pools"))):
        keys: KeyPath = ("ceph", "pools", i)
        c.mapping(keys, ("name", "poolName", "size", "minSize", "failureDomain"), required=True)
        name = c.string((*keys, "name"), required=True, name=True)
        size = c.integer((*keys, "size"), 3, minimum=1)
        min_size = (
            c.integer((*keys, "minSize"), 1, minimum=1) if c.doc.get((*keys, "minSize")) is not None else None
        )
        if min_size is not None and min_size > size:
            c.fail((*keys, "minSize"), f"pool {name}: minSize {min_size} is larger than size {size}")
        domain = c.string((*keys, "failureDomain"), "host")
        if domain not in POOL_DOMAINS:
            c.fail(
                (*keys, "failureDomain"),
                f"pool {name}: the simulator models failure domains {', '.join(POOL_DOMAINS)}, not {domain!r}",
            )
        if any(p.name == name for p in out):
            c.fail(keys, f"pool {name} is defined twice")
        pool_name = c.string((*keys, "poolName"), "") or None
        out.append(PoolConfig(name, size, min_size, domain, pool_name))
    if not out:
        c.fail(("ceph", "pools"), "ceph.pools must list at least one pool (leave it out for the default)")
    return tuple(out)


def _cnpg(c: _Checker) -> CnpgConfig | None:
    if c.doc.get(("cnpg",)) is None:
        return None
    c.mapping(("cnpg",), ("clusters", "switchoverSeconds", "failoverDelaySeconds"))
    clusters = []
    seen: set[str] = set()
    for i, _ in enumerate(c.sequence(("cnpg", "clusters"))):
        keys: KeyPath = ("cnpg", "clusters", i)
        c.mapping(
            keys,
            ("namespace", "name", "instances", "nodes", "enablePDB", "nodeMaintenanceWindow", "image"),
            required=True,
        )
        namespace = c.string((*keys, "namespace"), required=True, name=True)
        name = c.string((*keys, "name"), required=True, name=True)
        instances = c.integer((*keys, "instances"), 3, minimum=1)
        nodes = [c.node((*keys, "nodes", j)) for j, _ in enumerate(c.sequence((*keys, "nodes")))]
        if nodes and len(nodes) < instances:
            c.fail(
                (*keys, "nodes"),
                f"cluster {namespace}/{name} has {instances} instances but only {len(nodes)} nodes",
                hint="list one node per instance",
            )
        if len(set(nodes)) != len(nodes):
            c.fail(
                (*keys, "nodes"),
                f"cluster {namespace}/{name} lists a node twice",
                hint="CNPG places at most one instance per node (required anti-affinity)",
            )
        if f"{namespace}/{name}" in seen:
            c.fail(keys, f"CNPG cluster {namespace}/{name} is defined twice")
        seen.add(f"{namespace}/{name}")
        window = c.mapping((*keys, "nodeMaintenanceWindow"), ("inProgress", "reusePVC"))
        clusters.append(
            CnpgClusterConfig(
                namespace=namespace,
                name=name,
                instances=instances,
                nodes=tuple(nodes),
                enable_pdb=c.boolean((*keys, "enablePDB"), True),
                maintenance_in_progress=c.boolean((*keys, "nodeMaintenanceWindow", "inProgress"), False)
                if window
                else False,
                reuse_pvc=c.boolean((*keys, "nodeMaintenanceWindow", "reusePVC"), True) if window else True,
                image=c.string((*keys, "image"), "ghcr.io/cloudnative-pg/postgresql:17.5"),
            )
        )
    return CnpgConfig(
        clusters=tuple(clusters),
        switchover_seconds=c.number(("cnpg", "switchoverSeconds"), 0.3),
        failover_delay_seconds=c.number(("cnpg", "failoverDelaySeconds"), 0.0),
    )


def _flux(c: _Checker) -> FluxConfig | None:
    if c.doc.get(("flux",)) is None:
        return None
    c.mapping(("flux",), ("kustomizations", "helmReleases", "reconcileSeconds"))
    objects = []
    seen: set[tuple[str, str, str]] = set()
    for section, kind in (("kustomizations", "Kustomization"), ("helmReleases", "HelmRelease")):
        for i, _ in enumerate(c.sequence(("flux", section))):
            keys: KeyPath = ("flux", section, i)
            c.mapping(keys, ("namespace", "name", "suspend", "chart", "version", "path"), required=True)
            obj = FluxObjectConfig(
                kind=kind,
                namespace=c.string((*keys, "namespace"), "flux-system", name=True),
                name=c.string((*keys, "name"), required=True, name=True),
                suspend=c.boolean((*keys, "suspend"), False),
                chart=c.string((*keys, "chart"), ""),
                version=c.string((*keys, "version"), ""),
                path=c.string((*keys, "path"), ""),
            )
            if (kind, obj.namespace, obj.name) in seen:
                c.fail(keys, f"{kind} {obj.namespace}/{obj.name} is defined twice")
            seen.add((kind, obj.namespace, obj.name))
            objects.append(obj)
    return FluxConfig(objects=tuple(objects), reconcile_seconds=c.number(("flux", "reconcileSeconds"), 0.1))


def _workloads(c: _Checker) -> tuple[WorkloadConfig, ...]:
    out = []
    for i, _ in enumerate(c.sequence(("workloads",))):
        keys: KeyPath = ("workloads", i)
        c.mapping(
            keys,
            (
                "kind",
                "namespace",
                "name",
                "replicas",
                "labels",
                "nodeSelector",
                "tolerateControlPlane",
                "pdb",
                "startSeconds",
                "neverReady",
                "image",
            ),
            required=True,
        )
        kind = c.string((*keys, "kind"), "Deployment")
        if kind not in ("Deployment", "DaemonSet"):
            c.fail(
                (*keys, "kind"),
                f"workload kind {kind!r} is not supported",
                hint="use Deployment or DaemonSet",
            )
        pdb = c.mapping((*keys, "pdb"), ("minAvailable", "maxUnavailable"))
        if pdb and ("minAvailable" in pdb) == ("maxUnavailable" in pdb):
            c.fail(
                (*keys, "pdb"), "a PodDisruptionBudget needs exactly one of minAvailable and maxUnavailable"
            )
        start = c.doc.get((*keys, "startSeconds"))
        out.append(
            WorkloadConfig(
                kind=kind,
                namespace=c.string((*keys, "namespace"), "default", name=True),
                name=c.string((*keys, "name"), required=True, name=True),
                replicas=c.integer((*keys, "replicas"), 1),
                labels=c.labels((*keys, "labels")),
                node_selector=c.labels((*keys, "nodeSelector")),
                tolerate_control_plane=c.boolean((*keys, "tolerateControlPlane"), False),
                pdb={str(k): v for k, v in pdb.items()} if pdb else None,
                start_seconds=c.number((*keys, "startSeconds"), 0.0) if start is not None else None,
                never_ready=c.boolean((*keys, "neverReady"), False),
                image=c.string((*keys, "image"), "registry.k8s.io/pause:3.10"),
            )
        )
    return tuple(out)


def _faults(
    c: _Checker, cnpg: CnpgConfig | None, ceph: CephConfig | None, foreign: frozenset[str]
) -> tuple[FaultConfig, ...]:
    out = []
    for i, raw in enumerate(c.sequence(("faults",))):
        keys: KeyPath = ("faults", i)
        if not isinstance(raw, dict):
            c.fail(keys, "each fault must be a mapping with a 'kind'")
            continue
        kind = raw.get("kind")
        if kind in foreign:
            continue
        if kind not in OPERATOR_FAULTS:
            c.fail(
                (*keys, "kind"),
                f"unknown fault kind {kind!r}",
                hint=f"known kinds: {', '.join((*OPERATOR_FAULTS, *sorted(foreign)))}",
            )
            continue
        allowed = {
            "ceph-stuck": ("kind", "trigger", "health", "details"),
            "pg-availability": ("kind", "trigger"),
            "cnpg-never-healthy": ("kind", "trigger", "cluster"),
            "pdb-blocks-forever": ("kind", "namespace", "name", "node"),
        }[kind]
        c.mapping(keys, allowed)
        trigger = c.string((*keys, "trigger"), "first-disruption")
        if trigger not in TRIGGERS:
            c.fail(
                (*keys, "trigger"), f"unknown trigger {trigger!r}", hint=f"use one of: {', '.join(TRIGGERS)}"
            )
        fault = FaultConfig(kind=kind, trigger=trigger, where=c.doc.where(keys))
        if kind in ("ceph-stuck", "pg-availability") and ceph is None:
            c.fail(keys, f"fault {kind} needs a ceph section")
        if kind == "ceph-stuck":
            health = c.string((*keys, "health"), "HEALTH_WARN")
            if health not in ("HEALTH_WARN", "HEALTH_ERR"):
                c.fail((*keys, "health"), f"health must be HEALTH_WARN or HEALTH_ERR, not {health!r}")
            details = c.sequence((*keys, "details"))
            if not all(isinstance(d, str) and re.fullmatch(r"[A-Z_]+|error", d) for d in details):
                c.fail(
                    (*keys, "details"),
                    "details must be Ceph health check codes such as OSD_DOWN or PG_DEGRADED",
                )
            fault = FaultConfig(
                kind=kind,
                trigger=trigger,
                health=health,
                details=tuple(str(d) for d in details) or ("OSD_DOWN",),
                where=fault.where,
            )
        elif kind == "cnpg-never-healthy":
            ref = c.string((*keys, "cluster"), required=True)
            known = {cl.ref for cl in (cnpg.clusters if cnpg else ())}
            if ref and ref not in known:
                c.fail(
                    (*keys, "cluster"),
                    f"no CNPG cluster {ref!r} in the cnpg section",
                    hint=f"clusters are: {', '.join(sorted(known)) or '(none)'}",
                )
            fault = FaultConfig(kind=kind, trigger=trigger, cluster=ref, where=fault.where)
        elif kind == "pdb-blocks-forever":
            fault = FaultConfig(
                kind=kind,
                namespace=c.string((*keys, "namespace"), "default", name=True),
                name=c.string((*keys, "name"), "critical-app", name=True),
                node=c.node((*keys, "node")),
                where=fault.where,
            )
        out.append(fault)
    return tuple(out)


def _tuppr(c: _Checker) -> Any:
    from taltasks.sim.operators.tuppr import TupprConfig

    if c.doc.get(("tuppr",)) is None:
        return None
    c.mapping(("tuppr",), ("namespace", "controllerNode", "reconcileSeconds", "jobTimeoutSeconds"))
    d = TupprConfig()
    node = c.node(("tuppr", "controllerNode")) if c.doc.get(("tuppr", "controllerNode")) is not None else ""
    return TupprConfig(
        namespace=c.string(("tuppr", "namespace"), d.namespace, name=True),
        controller_node=node,
        reconcile_seconds=c.number(("tuppr", "reconcileSeconds"), d.reconcile_seconds, minimum=0.01),
        job_timeout_seconds=c.number(("tuppr", "jobTimeoutSeconds"), d.job_timeout_seconds, minimum=1.0),
    )


def parse_world(
    doc: YamlDoc,
    node_names: Sequence[str],
    *,
    foreign_fault_kinds: Iterable[str] = TALOS_FAULTS,
) -> WorldScenario:
    """The Kubernetes-side sections of ``doc``. ``node_names`` are the hostnames of the
    cluster (every node reference is checked against them); faults whose kind is in
    ``foreign_fault_kinds`` belong to the Talos side and are skipped. All problems are
    reported together as one InputError per problem (the first raised, the rest chained
    in its message)."""
    c = _Checker(doc, node_names)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise doc.error((), "a scenario must be a YAML mapping")
    kube = _kube(c)
    ceph = _ceph(c)
    cnpg = _cnpg(c)
    flux = _flux(c)
    workloads = _workloads(c)
    faults = _faults(c, cnpg, ceph, frozenset(foreign_fault_kinds))
    tuppr = _tuppr(c)
    if c.errors:
        first = c.errors[0]
        if len(c.errors) > 1:
            more = "; ".join(str(e) for e in c.errors[1:])
            raise InputError(
                f"{first.message} (and {len(c.errors) - 1} more: {more})", where=first.where, hint=first.hint
            )
        raise first
    return WorldScenario(
        kube=kube, ceph=ceph, cnpg=cnpg, flux=flux, workloads=workloads, faults=faults, tuppr=tuppr
    )
