"""The repository's upgrade policy: ``talos/upgrade-policy.yaml``.

One file says how rolling upgrades may proceed: which health gates must hold before
anything starts (``preflight``), before each node (``pre``) and after it (``post``); in
which order nodes go; how long each wait may take and how long conditions must stay
true; how nodes are drained; which maintenance switches are flipped for the run. Its
``healthChecks`` list has tuppr's exact shape, or is read from the repo's tuppr
``TalosUpgrade`` through ``healthChecksFrom``, so the manual and the in-cluster paths
share one definition.

Everything is validated before a run starts; each error names ``file:line`` and the fix.
Without a file, :func:`default_policy` applies: the built-in gates, which pass vacuously
where the resources they look at (CephCluster, CNPG Cluster) do not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.model.durations import format_duration, parse_duration
from taltasks.model.gatekinds import COMMON_PARAMS, KINDS, TUPPR_FIELDS, GateKind, Param, ceph_code_forbidden
from taltasks.model.suggest import did_you_mean
from taltasks.yamlpos import KeyPath, YamlDoc

POLICY_FILE = "talos/upgrade-policy.yaml"
STAGES: tuple[str, ...] = ("preflight", "pre", "post")
STRATEGIES: tuple[str, ...] = ("control-planes-first", "zones")
ZONE_LABEL = "topology.kubernetes.io/zone"
BATCH_BY: tuple[str, ...] = ("node", "failure-domain")
ON_UNSAFE: tuple[str, ...] = ("one-at-a-time", "stop")
TUPPR_KINDS: tuple[str, ...] = ("TalosUpgrade",)

DEFAULT_GATES: dict[str, tuple[str, ...]] = {
    "preflight": ("talos-node", "etcd", "kube-node", "ceph", "cnpg"),
    "pre": ("talos-node", "etcd", "kube-node", "ceph", "cnpg"),
    "post": ("talos-node", "etcd", "kube-node", "ceph", "cnpg"),
}


@dataclass(frozen=True)
class GateSpec:
    """One gate as configured: its kind, the settings of that kind (defaults filled in),
    its deadline and stability window in seconds, and where it was written."""

    kind: str
    id: str
    timeout: float
    window: float
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    where: str | None = None

    def get(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name)
        return default if value is None else value

    def summary(self) -> str:
        return f"{self.id} ({self.kind}, timeout {format_duration(self.timeout)}, window {format_duration(self.window)})"


@dataclass(frozen=True)
class OrderPolicy:
    """Control planes go first, one at a time, the etcd leader last; then workers. With
    ``zones`` the workers go failure domain by failure domain (``zone_label``), still one
    at a time; :class:`BatchingPolicy` is what makes a domain's workers go together."""

    strategy: str = "control-planes-first"
    zone_label: str = ZONE_LABEL
    etcd_leader_last: bool = True


@dataclass(frozen=True)
class BatchingPolicy:
    """How many workers may be down at once.

    ``by: node`` (the default) is the classic rolling upgrade, one node at a time. With
    ``by: failure-domain`` the workers that share a value of ``label`` upgrade together
    (``max_domains`` domains per batch, at most ``max_nodes`` nodes when set), with the
    gates between batches. Batching is only ever *allowed* by the policy: before each
    batch the run proves it safe (Ceph pools replicate across exactly this label, every
    CNPG cluster keeps a ready instance outside the batch, PDBs allow the evictions) and
    otherwise goes one node at a time (``on_unsafe: one-at-a-time``) or stops before
    changing anything (``stop``). Control planes always go alone."""

    by: str = "node"
    label: str = ZONE_LABEL
    max_domains: int = 1
    max_nodes: int | None = None
    on_unsafe: str = "one-at-a-time"
    where: str | None = None  # file:line of the section, for messages

    @property
    def enabled(self) -> bool:
        return self.by == "failure-domain"

    def describe(self) -> str:
        if not self.enabled:
            return "one node at a time"
        domains = f"{self.max_domains} failure domain{'s' if self.max_domains != 1 else ''}"
        cap = f", at most {self.max_nodes} nodes" if self.max_nodes else ""
        return f"workers by {self.label}: {domains} at a time{cap}"


@dataclass(frozen=True)
class StabilityPolicy:
    """``window``: seconds every condition must hold, measured from the operators' own
    timestamps (and from uncordon for post gates). ``fresh_samples``: distinct Ceph
    ``lastChecked`` values required inside it. ``stale_after``: operator status older than
    this fails closed (None: 3× the reporter's own interval)."""

    window: float = 180.0
    fresh_samples: int = 2
    stale_after: float | None = None


@dataclass(frozen=True)
class TimeoutPolicy:
    gate: float = 900.0
    drain: float = 600.0
    # below Rook's 10-minute mon failover timer (health-gates.md §1.2)
    reboot: float = 540.0
    switchover: float = 300.0
    snapshot: float = 600.0  # the etcd snapshot taken before the first control plane


@dataclass(frozen=True)
class DrainPolicy:
    """Eviction-API drain, PDB-aware, bounded by ``timeouts.drain``. ``grace_period`` None
    means each pod's own terminationGracePeriodSeconds."""

    enabled: bool = True
    grace_period: int | None = None
    delete_emptydir_data: bool = True
    ignore_daemonsets: bool = True
    force: bool = False
    retry_interval: float = 5.0


@dataclass(frozen=True)
class MaintenancePolicy:
    """Switches flipped for the duration of a run and restored in ``finally``."""

    flux_suspend: bool = True
    flux_kinds: tuple[str, ...] = ("Kustomization", "HelmRelease")
    cnpg_maintenance: bool = False
    cnpg_reuse_pvc: bool = True
    tuppr_pause: bool = True


@dataclass(frozen=True)
class MaintenanceWindow:
    """When an in-cluster engine may *start* an upgrade: a 5-field cron ``start``, open for
    ``duration`` seconds, in an IANA ``timezone`` (tuppr's ``spec.maintenance.windows``)."""

    start: str
    duration: float
    timezone: str = "UTC"


@dataclass(frozen=True)
class HandoffPolicy:
    """``talos.handoff``: which in-cluster engine takes over, when it may start, and where
    in the Flux tree ``--write`` puts its resources."""

    engine: str = "tuppr"
    windows: tuple[MaintenanceWindow, ...] = ()
    path: str = "kubernetes/apps/system-upgrade/tuppr/upgrades"


@dataclass(frozen=True)
class UpgradePolicy:
    order: OrderPolicy = OrderPolicy()
    batching: BatchingPolicy = BatchingPolicy()
    stability: StabilityPolicy = StabilityPolicy()
    timeouts: TimeoutPolicy = TimeoutPolicy()
    drain: DrainPolicy = DrainPolicy()
    maintenance: MaintenancePolicy = MaintenancePolicy()
    etcd_snapshot: bool = True
    handoff: HandoffPolicy = HandoffPolicy()
    preflight: tuple[GateSpec, ...] = ()
    pre: tuple[GateSpec, ...] = ()
    post: tuple[GateSpec, ...] = ()
    source: str | None = None  # the file it came from; None for the built-in defaults

    def gates(self, stage: str) -> tuple[GateSpec, ...]:
        if stage not in STAGES:
            raise ValueError(f"unknown gate stage {stage!r}")
        return getattr(self, stage)

    def reboot_gates(self) -> tuple[GateSpec, ...]:
        """The wait for an upgraded node to come back, bounded by ``timeouts.reboot``: Talos
        running and ready on the expected version from a new boot, and its Kubernetes Node
        Ready — not yet schedulable, since it is uncordoned only after this wait."""
        back = replace(_default_gate("talos-node", self), id="back", timeout=self.timeouts.reboot)
        ready = replace(
            _default_gate("kube-node", self), id="back ready", timeout=self.timeouts.reboot, window=0.0
        )
        return back, replace(ready, params={**ready.params, "scope": "node", "schedulable": False})


# ---- public entry points ----------------------------------------------------------------


def default_policy() -> UpgradePolicy:
    """The policy used when the repository has no upgrade-policy file."""
    base = UpgradePolicy()
    gates = {
        stage: tuple(_default_gate(kind, base) for kind in kinds) for stage, kinds in DEFAULT_GATES.items()
    }
    return replace(base, **gates)


def load_policy(root: Path | str, *, path: Path | str | None = None) -> UpgradePolicy:
    """Read and validate the repo policy (``talos/upgrade-policy.yaml`` under ``root``,
    or ``path``); the defaults when the default file does not exist."""
    root = Path(root)
    file = Path(path) if path else root / POLICY_FILE
    if not file.is_absolute():
        file = root / file
    if path is None and not file.exists():
        return default_policy()
    display = _display(file, root)
    doc = YamlDoc.load(file, display=display)
    return parse_policy(doc, root=root)


def parse_policy(doc: YamlDoc, *, root: Path | str | None = None) -> UpgradePolicy:
    """Validate a parsed policy document; :class:`InputError` at the first problem."""
    if doc.data is None:
        return replace(default_policy(), source=str(doc.path))
    top = _Section(doc, (), "the policy", _TOP_KEYS)
    order = _order(doc)
    stability = _stability(doc)
    timeouts = _timeouts(doc)
    base = UpgradePolicy(
        order=order,
        batching=_batching(doc, order),
        stability=stability,
        timeouts=timeouts,
        drain=_drain(doc),
        maintenance=_maintenance(doc),
        etcd_snapshot=top.boolean("etcdSnapshot", True),
        handoff=_handoff(doc),
        source=str(doc.path) if doc.path else None,
    )
    checks = _health_checks(doc, base, Path(root) if root else None)
    stages = _Section(doc, ("gates",), "gates", STAGES)
    per_stage: dict[str, tuple[GateSpec, ...]] = {}
    for stage in STAGES:
        if stages.has(stage):
            entries = stages.seq(stage)
            gates = [_gate_entry(doc, ("gates", stage, i), entry, base) for i, entry in enumerate(entries)]
        else:
            gates = [_default_gate(kind, base) for kind in DEFAULT_GATES[stage]]
        per_stage[stage] = _unique_ids([*gates, *checks])
    return replace(base, **per_stage)


# ---- sections ---------------------------------------------------------------------------

_TOP_KEYS = (
    "order",
    "batching",
    "stability",
    "timeouts",
    "drain",
    "maintenance",
    "etcdSnapshot",
    "gates",
    "healthChecks",
    "healthChecksFrom",
    "handoff",
)


def _order(doc: YamlDoc) -> OrderPolicy:
    order = doc.get(("order",))
    if isinstance(order, Mapping) and "batch" in order:
        raise doc.error(
            ("order", "batch"),
            "order.batch is replaced by the 'batching' section",
            hint="write 'batching: {by: failure-domain, label: topology.kubernetes.io/zone}' "
            "(see docs/upgrade-policy.md, batching)",
        )
    s = _Section(doc, ("order",), "order", ("strategy", "zoneLabel", "etcdLeaderLast"))
    d = OrderPolicy()
    return OrderPolicy(
        strategy=s.choice("strategy", d.strategy, STRATEGIES),
        zone_label=_label_key(s, "zoneLabel", d.zone_label),
        etcd_leader_last=s.boolean("etcdLeaderLast", d.etcd_leader_last),
    )


_LABEL_KEY = re.compile(
    r"^(([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def _label_key(s: _Section, key: str, default: str) -> str:
    """A Kubernetes label key (``[prefix/]name``), checked like the API server does."""
    value = s.string(key, default)
    prefix, _, name = value.rpartition("/")
    if not _LABEL_KEY.match(value) or len(prefix) > 253 or len(name) > 63:
        raise s._err(
            key,
            f"{key}: {value!r} is not a Kubernetes label key",
            hint="e.g. topology.kubernetes.io/zone or topology.rook.io/rack",
        )
    return value


def _batching(doc: YamlDoc, order: OrderPolicy) -> BatchingPolicy:
    keys = ("by", "label", "maxUnavailable", "maxNodes", "onUnsafe")
    s = _Section(doc, ("batching",), "batching", keys)
    d = BatchingPolicy()
    by = s.choice("by", d.by, BATCH_BY)
    if by == "node":
        for key in ("label", "maxUnavailable", "maxNodes"):
            if s.has(key):
                raise s._err(
                    key,
                    f"batching.{key} only applies with 'by: failure-domain'",
                    hint="add 'by: failure-domain', or remove the key to upgrade one node at a time",
                )
    return BatchingPolicy(
        by=by,
        label=_label_key(s, "label", order.zone_label),
        max_domains=_max_domains(s),
        max_nodes=s.integer("maxNodes", None, minimum=1),
        on_unsafe=s.choice("onUnsafe", d.on_unsafe, ON_UNSAFE),
        where=doc.where(("batching",)) if doc.get(("batching",)) is not None else None,
    )


_DOMAINS = re.compile(r"^\s*(\d+)\s*(domains?|failure[- ]domains?)?\s*$")


def _max_domains(s: _Section) -> int:
    """``maxUnavailable``: how many failure domains may be down at once — ``1 domain``,
    ``2 domains`` or a bare number."""
    if not s.has("maxUnavailable"):
        return BatchingPolicy().max_domains
    value = s.data["maxUnavailable"]
    match = _DOMAINS.match(str(value)) if not isinstance(value, bool) else None
    if match is None or int(match.group(1)) < 1:
        raise s._err(
            "maxUnavailable",
            f"maxUnavailable must count failure domains, like '1 domain', not {value!r}",
            hint="nodes per batch are capped with maxNodes; a domain is every worker sharing the label's value",
        )
    return int(match.group(1))


def _stability(doc: YamlDoc) -> StabilityPolicy:
    s = _Section(doc, ("stability",), "stability", ("window", "freshSamples", "staleAfter"))
    d = StabilityPolicy()
    return StabilityPolicy(
        window=s.duration("window", d.window),
        fresh_samples=s.integer("freshSamples", d.fresh_samples, minimum=0),
        stale_after=s.duration("staleAfter", None, positive=True),
    )


def _timeouts(doc: YamlDoc) -> TimeoutPolicy:
    s = _Section(doc, ("timeouts",), "timeouts", ("gate", "drain", "reboot", "switchover", "snapshot"))
    d = TimeoutPolicy()
    return TimeoutPolicy(
        gate=s.duration("gate", d.gate, positive=True),
        drain=s.duration("drain", d.drain, positive=True),
        reboot=s.duration("reboot", d.reboot, positive=True),
        switchover=s.duration("switchover", d.switchover, positive=True),
        snapshot=s.duration("snapshot", d.snapshot, positive=True),
    )


def _drain(doc: YamlDoc) -> DrainPolicy:
    keys = ("enabled", "gracePeriod", "deleteEmptyDirData", "ignoreDaemonSets", "force", "retryInterval")
    s = _Section(doc, ("drain",), "drain", keys)
    d = DrainPolicy()
    return DrainPolicy(
        enabled=s.boolean("enabled", d.enabled),
        grace_period=s.integer("gracePeriod", None, minimum=0),
        delete_emptydir_data=s.boolean("deleteEmptyDirData", d.delete_emptydir_data),
        ignore_daemonsets=s.boolean("ignoreDaemonSets", d.ignore_daemonsets),
        force=s.boolean("force", d.force),
        retry_interval=s.duration("retryInterval", d.retry_interval, positive=True),
    )


def _maintenance(doc: YamlDoc) -> MaintenancePolicy:
    _Section(doc, ("maintenance",), "maintenance", ("flux", "cnpg", "tuppr"))
    flux = _Section(doc, ("maintenance", "flux"), "maintenance.flux", ("suspend", "kinds"))
    cnpg = _Section(doc, ("maintenance", "cnpg"), "maintenance.cnpg", ("maintenanceWindow", "reusePVC"))
    tuppr = _Section(doc, ("maintenance", "tuppr"), "maintenance.tuppr", ("pause",))
    d = MaintenancePolicy()
    kinds = flux.strings("kinds", d.flux_kinds)
    for i, kind in enumerate(kinds):
        if kind not in ("Kustomization", "HelmRelease"):
            raise doc.error(
                ("maintenance", "flux", "kinds", i),
                f"unknown Flux kind {kind!r}",
                hint="Flux objects that can be suspended here: Kustomization, HelmRelease",
            )
    return MaintenancePolicy(
        flux_suspend=flux.boolean("suspend", d.flux_suspend),
        flux_kinds=tuple(kinds),
        cnpg_maintenance=cnpg.boolean("maintenanceWindow", d.cnpg_maintenance),
        cnpg_reuse_pvc=cnpg.boolean("reusePVC", d.cnpg_reuse_pvc),
        tuppr_pause=tuppr.boolean("pause", d.tuppr_pause),
    )


ENGINES: tuple[str, ...] = ("tuppr",)
MAX_WINDOW = 168 * 3600.0  # tuppr's upper bound on a window's duration
_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_CRON_TOKEN = re.compile(r"^[0-9A-Za-z*?/,-]+$")


def _handoff(doc: YamlDoc) -> HandoffPolicy:
    s = _Section(doc, ("handoff",), "handoff", ("engine", "maintenanceWindows", "path"))
    d = HandoffPolicy()
    windows = []
    for i, _ in enumerate(s.seq("maintenanceWindows")):
        path = ("handoff", "maintenanceWindows", i)
        w = _Section(doc, path, f"maintenanceWindows[{i}]", ("start", "duration", "timezone"))
        if not w.has("start") or not w.has("duration"):
            raise doc.error(
                path,
                "a maintenance window needs 'start' (cron) and 'duration'",
                hint='e.g. {start: "0 2 * * 0", duration: 4h}',
            )
        start = _cron(w, "start")
        duration = w.duration("duration", None, positive=True)
        if duration > MAX_WINDOW:
            raise w._err("duration", "duration may be at most 168h (tuppr's limit)")
        windows.append(MaintenanceWindow(start, duration, _timezone(w, "timezone")))
    path = s.string("path", d.path)
    if Path(path).is_absolute() or ".." in Path(path).parts:
        raise s._err(
            "path",
            f"path {path!r} must stay inside the repository",
            hint="e.g. kubernetes/apps/system-upgrade/tuppr/upgrades",
        )
    return HandoffPolicy(engine=s.choice("engine", d.engine, ENGINES), windows=tuple(windows), path=path)


def _cron(s: _Section, key: str) -> str:
    """A standard 5-field cron expression (minute hour day-of-month month day-of-week)."""
    value = s.string(key, "")
    fields = value.split()
    if len(fields) != 5:
        raise s._err(
            key,
            f"{key} must be a 5-field cron expression, not {value!r}",
            hint='e.g. "0 2 * * 0" (Sundays at 02:00)',
        )
    for text, (label, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        if not _CRON_TOKEN.match(text):
            raise s._err(key, f"{key}: {label} field {text!r} is not cron syntax")
        for number in re.findall(r"\d+", text.split("/")[0]):
            if not low <= int(number) <= high:
                raise s._err(key, f"{key}: {label} {number} is outside {low}-{high}")
    return value


def _timezone(s: _Section, key: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = s.string(key, "UTC")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise s._err(
            key, f"unknown time zone {value!r}", hint="an IANA name such as UTC or Europe/Paris"
        ) from None
    return value


# ---- gates ------------------------------------------------------------------------------


def _default_gate(kind: str, base: UpgradePolicy) -> GateSpec:
    return _build_spec(KINDS[kind], {}, base, where=None)


def _gate_entry(doc: YamlDoc, path: KeyPath, entry: Any, base: UpgradePolicy) -> GateSpec:
    if isinstance(entry, str):
        kind = _known_kind(doc, path, entry)
        return _build_spec(kind, {}, base, where=doc.where(path))
    if not isinstance(entry, Mapping):
        raise doc.error(path, "a gate entry is a kind name or a mapping with 'gate: <kind>'")
    if "gate" not in entry:
        hint = "start the entry with 'gate: <kind>'; kinds: " + ", ".join(KINDS)
        if "expr" in entry:
            hint = "CEL checks in tuppr's shape go under 'healthChecks:', or write 'gate: expression'"
        raise doc.error(path, "gate entry has no 'gate' key", hint=hint)
    kind = _known_kind(doc, (*path, "gate"), entry["gate"])
    allowed = [p.name for p in COMMON_PARAMS] + [p.name for p in kind.params]
    return _validated_spec(doc, path, entry, kind, allowed, base)


def _known_kind(doc: YamlDoc, path: KeyPath, name: Any) -> GateKind:
    if not isinstance(name, str) or name not in KINDS:
        raise doc.error(
            path,
            f"unknown gate kind {name!r}{did_you_mean(str(name), KINDS)}",
            hint="kinds: " + ", ".join(KINDS),
        )
    return KINDS[name]


def _health_check(doc: YamlDoc, path: KeyPath, entry: Any, base: UpgradePolicy) -> GateSpec:
    if not isinstance(entry, Mapping):
        raise doc.error(path, "a healthChecks entry is a mapping (apiVersion, kind, expr, …)")
    return _validated_spec(doc, path, entry, KINDS["expression"], [*TUPPR_FIELDS, "window"], base)


def _validated_spec(
    doc: YamlDoc,
    path: KeyPath,
    entry: Mapping[str, Any],
    kind: GateKind,
    allowed: Sequence[str],
    base: UpgradePolicy,
) -> GateSpec:
    for key in entry:
        if key not in allowed:
            raise doc.error(
                (*path, key),
                f"unknown setting {key!r} for a {kind.name} gate{did_you_mean(str(key), allowed)}",
                hint="settings: " + ", ".join(a for a in allowed if a != "gate"),
            )
    params: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "gate":
            continue
        param = kind.by_name.get(key) or next(p for p in COMMON_PARAMS if p.name == key)
        params[key] = _param_value(doc, (*path, key), param, value)
    for p in kind.params:
        if p.required and p.name not in params:
            raise doc.error(path, f"{kind.name} gate needs '{p.name}'", hint=p.help or None)
    if "name" in params and "labelSelector" in params:
        raise doc.error((*path, "labelSelector"), "set either 'name' or 'labelSelector', not both")
    if kind.name == "ceph":
        for i, code in enumerate(params.get("allow", ())):
            if ceph_code_forbidden(code):
                raise doc.error(
                    (*path, "allow", i),
                    f"{code} cannot be allowed: it means blocked IO, lost or damaged data, or no room to recover",
                    hint="remove it from 'allow'; fix the cluster before upgrading",
                )
    return _build_spec(kind, params, base, where=doc.where(path))


def _param_value(doc: YamlDoc, path: KeyPath, param: Param, value: Any) -> Any:
    label = path[-1]
    try:
        if param.type == "bool":
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if param.type == "int":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("expected a whole number ≥ 0")
            return int(value)
        if param.type in ("str", "choice"):
            if not isinstance(value, str) or not value:
                raise ValueError("expected a non-empty string")
            if param.choices and value not in param.choices:
                raise ValueError(
                    f"expected one of {', '.join(param.choices)}{did_you_mean(value, param.choices)}"
                )
            return str(value)
        if param.type == "duration":
            seconds = parse_duration(value)
            if label == "timeout" and seconds <= 0:
                raise ValueError("a timeout must be longer than 0s")
            return seconds
        if param.type == "codes":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ValueError(
                    "expected a list of Ceph health-check codes such as [OSD_FLAGS, RECENT_CRASH]"
                )
            return tuple(str(v) for v in value)
        if param.type == "selector":
            return _selector(doc, path, value)
        if param.type == "expr":
            return _expression(doc, path, value)
    except ValueError as exc:
        raise doc.error(path, f"{label}: {exc}") from None
    raise AssertionError(f"unhandled parameter type {param.type}")


def _selector(doc: YamlDoc, path: KeyPath, value: Any) -> dict[str, Any]:
    """A metav1.LabelSelector: matchLabels and/or matchExpressions."""
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping with matchLabels and/or matchExpressions")
    for key in value:
        if key not in ("matchLabels", "matchExpressions"):
            raise doc.error(
                (*path, key),
                f"unknown labelSelector field {key!r}{did_you_mean(str(key), ('matchLabels', 'matchExpressions'))}",
            )
    labels = value.get("matchLabels") or {}
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise doc.error((*path, "matchLabels"), "matchLabels maps label keys to string values")
    exprs = value.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise doc.error((*path, "matchExpressions"), "matchExpressions is a list of {key, operator, values}")
    out_exprs = []
    for i, e in enumerate(exprs):
        where = (*path, "matchExpressions", i)
        if not isinstance(e, Mapping) or not isinstance(e.get("key"), str):
            raise doc.error(where, "each matchExpressions item needs a 'key'")
        op = e.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise doc.error(
                (*where, "operator"), f"operator must be In, NotIn, Exists or DoesNotExist, not {op!r}"
            )
        values = e.get("values") or []
        if op in ("In", "NotIn") and not values:
            raise doc.error(where, f"operator {op} needs a non-empty 'values' list")
        if op in ("Exists", "DoesNotExist") and values:
            raise doc.error((*where, "values"), f"operator {op} takes no values")
        out_exprs.append({"key": str(e["key"]), "operator": op, "values": [str(v) for v in values]})
    if not labels and not out_exprs:
        raise ValueError("an empty selector matches everything; leave labelSelector out instead")
    return {"matchLabels": {str(k): str(v) for k, v in labels.items()}, "matchExpressions": out_exprs}


def _expression(doc: YamlDoc, path: KeyPath, value: Any) -> str:
    from taltasks.model.cel import CelSyntaxError, compile_expr

    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a CEL expression, e.g. status.ceph.health in ['HEALTH_OK']")
    try:
        compile_expr(value)
    except CelSyntaxError as exc:
        raise doc.error(
            path, str(exc), hint="variables are 'object' (the whole resource) and 'status'; see docs/gates.md"
        ) from None
    return str(value)


def _build_spec(
    kind: GateKind, params: dict[str, Any], base: UpgradePolicy, *, where: str | None
) -> GateSpec:
    full = {p.name: p.default for p in kind.params}
    full.update({k: v for k, v in params.items() if k not in ("id", "timeout", "window", "description")})
    if kind.name == "ceph" and full.get("freshSamples") is None:
        full["freshSamples"] = base.stability.fresh_samples
    if kind.name == "ceph" and full.get("staleAfter") is None:
        full["staleAfter"] = base.stability.stale_after
    window = params.get("window")
    if window is None:
        window = base.stability.window if kind.window == "stability" else 0.0
    return GateSpec(
        kind=kind.name,
        id=params.get("id") or _auto_id(kind, full),
        timeout=params.get("timeout") or base.timeouts.gate,
        window=float(window),
        params=full,
        description=params.get("description"),
        where=where,
    )


def _auto_id(kind: GateKind, params: Mapping[str, Any]) -> str:
    if kind.name != "expression":
        return kind.name
    target = params.get("name") or ""
    if params.get("namespace") and target:
        target = f"{params['namespace']}/{target}"
    return f"check {params['kind']}{' ' + target if target else ''}"


def _unique_ids(gates: list[GateSpec]) -> tuple[GateSpec, ...]:
    """Gate ids name gates in output, history and the journal, so they must differ within
    a stage: a repeated id gets ``#2``, ``#3``…"""
    seen: dict[str, int] = {}
    out = []
    for g in gates:
        seen[g.id] = seen.get(g.id, 0) + 1
        out.append(replace(g, id=f"{g.id} #{seen[g.id]}") if seen[g.id] > 1 else g)
    return tuple(out)


def _health_checks(doc: YamlDoc, base: UpgradePolicy, root: Path | None) -> list[GateSpec]:
    top = _Section(doc, (), "the policy", _TOP_KEYS)
    checks = [_health_check(doc, ("healthChecks", i), e, base) for i, e in enumerate(top.seq("healthChecks"))]
    source = top.string("healthChecksFrom", None)
    if source is not None:
        checks.extend(_tuppr_checks(doc, source, base, root))
    return checks


def _tuppr_checks(doc: YamlDoc, source: str, base: UpgradePolicy, root: Path | None) -> list[GateSpec]:
    """``spec.healthChecks`` of the TalosUpgrade resources in a repo manifest."""
    file = Path(source)
    if not file.is_absolute():
        file = (root or Path.cwd()) / file
    if not file.exists():
        raise doc.error(("healthChecksFrom",), f"healthChecksFrom: {source} does not exist")
    docs = YamlDoc.load_all(file, display=_display(file, root))
    out: list[GateSpec] = []
    found = False
    for tdoc in docs:
        if not isinstance(tdoc.data, Mapping) or tdoc.data.get("kind") not in TUPPR_KINDS:
            continue
        found = True
        entries = tdoc.get(("spec", "healthChecks")) or []
        if not isinstance(entries, list):
            raise tdoc.error(("spec", "healthChecks"), "spec.healthChecks must be a list")
        out.extend(_health_check(tdoc, ("spec", "healthChecks", i), e, base) for i, e in enumerate(entries))
    if not found:
        raise doc.error(
            ("healthChecksFrom",),
            f"{source} holds no tuppr TalosUpgrade resource",
            hint="point healthChecksFrom at the file with 'kind: TalosUpgrade'",
        )
    return out


# ---- helpers ----------------------------------------------------------------------------


def _display(file: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(file.resolve().relative_to(Path(root).resolve()))
        except ValueError:
            pass
    return str(file)


class _Section:
    """Typed reads of one mapping of the policy, with ``file:line`` errors and a
    did-you-mean for keys it does not know."""

    def __init__(self, doc: YamlDoc, path: KeyPath, label: str, keys: Sequence[str]) -> None:
        self.doc, self.path, self.label = doc, tuple(path), label
        node = doc.get(path) if path else doc.data
        if node is None:
            node = {}
        if not isinstance(node, Mapping):
            raise doc.error(path, f"{label} must be a mapping")
        for key in node:
            if key not in keys:
                raise doc.error(
                    (*path, key),
                    f"unknown key {key!r} in {label}{did_you_mean(str(key), keys)}",
                    hint="known keys: " + ", ".join(keys),
                )
        self.data = node

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def _err(self, key: str, message: str, hint: str | None = None) -> InputError:
        return self.doc.error((*self.path, key), message, hint=hint)

    def boolean(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise self._err(key, f"{key} must be true or false, not {value!r}")
        return value

    def integer(self, key: str, default: int | None, *, minimum: int = 0) -> Any:
        if not self.has(key):
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._err(key, f"{key} must be a whole number ≥ {minimum}, not {value!r}")
        return int(value)

    def string(self, key: str, default: str | None) -> Any:
        if not self.has(key):
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value:
            raise self._err(key, f"{key} must be a non-empty string")
        return str(value)

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise self._err(
                key, f"{key} must be one of {', '.join(choices)}, not {value!r}{did_you_mean(value, choices)}"
            )
        return value

    def duration(self, key: str, default: float | None, *, positive: bool = False) -> Any:
        if not self.has(key):
            return default
        try:
            seconds = parse_duration(self.data[key])
        except ValueError as exc:
            raise self._err(key, f"{key}: {exc}") from None
        if positive and seconds <= 0:
            raise self._err(key, f"{key} must be longer than 0s")
        return seconds

    def strings(self, key: str, default: Sequence[str]) -> list[str]:
        if not self.has(key):
            return list(default)
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._err(key, f"{key} must be a list of strings")
        return [str(v) for v in value]

    def seq(self, key: str) -> list[Any]:
        if not self.has(key):
            return []
        value = self.data[key]
        if not isinstance(value, list):
            raise self._err(key, f"{key} must be a list")
        return list(value)
