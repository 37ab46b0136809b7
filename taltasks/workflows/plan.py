"""Planning a rolling Talos upgrade: desired vs observed per node → ordered steps.

Pure: it takes what the repo wants per node (the model's nodes: hostname, ip, role,
Talos version, installer image, zone/labels) and what the nodes run now
(:class:`ObservedNode`), and returns an :class:`UpgradePlan` — for every node an action
(``upgrade``, ``skip``, ``refuse``) with its reason, in the order they will go, grouped
in batches. ``--dry-run`` prints it; the executor carries out its batches in order.

Order: control planes first, one at a time, the etcd leader last (one leader election
instead of one per node); then workers, one at a time — ordered by zone with ``strategy:
zones`` — or, with ``batching: {by: failure-domain}``, in batches of the workers that share
the batching label's value (:func:`worker_batches`), domain after domain. Workers without
that label go alone, after the batches. The plan only *allows* a batch: the executor
proves each one safe before it starts (:mod:`taltasks.workflows.batchsafety`).

Several minors at once: every step carries the *path* from the running to the desired
version (:func:`~taltasks.model.versions.upgrade_path`): one hop within a minor or to the
next one; across minors, the latest patch of each minor on the way. Upstream tests upgrades
only between adjacent minors and its installer refuses hosts older than the target minor's
MinimumHostUpgradeVersion, so a node whose desired version skips a minor is *refused* with
its path; the operator steps through it by pinning each hop (Kubernetes must be inside each
hop's supported range, which may need an upgrade-k8s between hops — a decision the plan
shows but does not take).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from taltasks.errors import InputError
from taltasks.gates.talosnode import normalize_version
from taltasks.model.policy import BatchingPolicy, OrderPolicy, UpgradePolicy, did_you_mean
from taltasks.model.versions import Hop, Version, describe_path, talos_jump_refusal, upgrade_path

NO_ZONE = "(no zone)"


class DesiredNode(Protocol):
    """What the model's ``Node`` provides (``zone`` and ``labels`` are optional)."""

    hostname: str
    ip: str
    control_plane: bool
    talos_version: str
    installer_image: str


@dataclass(frozen=True)
class ObservedNode:
    """A node as it runs now. ``version`` None means it could not be asked (``error`` says why)."""

    hostname: str
    version: str | None = None
    image: str | None = None
    etcd_leader: bool = False
    zone: str | None = None
    error: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the live Node's, where read


@dataclass(frozen=True)
class PlanStep:
    hostname: str
    ip: str
    control_plane: bool
    zone: str | None
    running: str | None
    desired: str
    image: str
    action: str  # upgrade | skip | refuse
    reason: str
    order: int
    batch: int | None = None
    etcd_leader: bool = False
    snapshot_before: bool = False
    domain: str | None = None  # the batching label's value (failure-domain batching only)
    path: tuple[Hop, ...] = ()  # running → desired, minor by minor (empty: nothing to install)

    @property
    def role(self) -> str:
        return "controlplane" if self.control_plane else "worker"

    def row(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "node": self.hostname,
            "role": self.role + (" (etcd leader)" if self.etcd_leader else ""),
            "zone": self.zone,
            "running": self.running or "?",
            "desired": self.desired,
            "installer": self.image,
            "action": self.action,
            "reason": self.reason,
            "batch": self.batch,
            "domain": self.domain,
            "path": [h.row() for h in self.path],
        }

    @property
    def skips_minors(self) -> bool:
        return len(self.path) > 1


@dataclass(frozen=True)
class UpgradePlan:
    steps: tuple[PlanStep, ...]
    batching: BatchingPolicy = field(default_factory=BatchingPolicy)

    @property
    def actions(self) -> list[PlanStep]:
        return [s for s in self.steps if s.action == "upgrade"]

    @property
    def refused(self) -> list[PlanStep]:
        return [s for s in self.steps if s.action == "refuse"]

    @property
    def nothing_to_do(self) -> bool:
        return not self.actions and not self.refused

    def batches(self) -> list[list[PlanStep]]:
        out: dict[int, list[PlanStep]] = {}
        for s in self.actions:
            out.setdefault(s.batch or 0, []).append(s)
        return [out[k] for k in sorted(out)]

    def step(self, hostname: str) -> PlanStep:
        return next(s for s in self.steps if s.hostname == hostname)

    def rows(self) -> list[dict[str, Any]]:
        return [s.row() for s in self.steps]

    def paths(self) -> list[tuple[list[str], str, tuple[Hop, ...]]]:
        """Multi-minor paths, one per (running, desired) pair: (nodes, running, hops)."""
        groups: dict[tuple[str, str], list[PlanStep]] = {}
        for s in self.steps:
            if s.skips_minors and s.running:
                groups.setdefault((s.running, s.desired), []).append(s)
        return [
            ([s.hostname for s in group], running, group[0].path) for (running, _), group in groups.items()
        ]

    def summary(self) -> str:
        skipped = len(self.steps) - len(self.actions) - len(self.refused)
        parts = [f"{len(self.actions)} to upgrade"]
        if skipped:
            parts.append(f"{skipped} already at the desired version")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        return ", ".join(parts)

    def require_executable(self) -> None:
        """:class:`InputError` naming every refused node; nothing may start then."""
        if not self.refused:
            return
        first = self.refused[0]
        by_reason: dict[str, list[str]] = {}  # nodes refused for the same reason are named once
        for s in self.refused:
            by_reason.setdefault(s.reason, []).append(s.hostname)
        groups = [f"{', '.join(names)}: {reason}" for reason, names in by_reason.items()]
        hint = "nothing was changed"
        stepping = next((s for s in self.refused if s.skips_minors), None)
        if stepping is not None:
            first_hop = stepping.path[0].version
            hint = (
                f"go minor by minor: set talosVersion to {first_hop} (talos/talenv.yaml), run "
                "`invoke configure` and `invoke talos.upgrade-all`, then the next hop "
                "(`invoke talos.plan` shows the whole path); nothing was changed"
            )
        elif any("downgrade" in s.reason for s in self.refused):
            hint = "check the versions in talos/talenv.yaml and talconfig.yaml, or pass --allow-downgrade"
        elif any("not reachable" in s.reason for s in self.refused):
            hint = "bring the node back or leave it out with --node; nothing was changed"
        raise InputError(
            f"cannot upgrade {groups[0]}" + (f"; also {'; '.join(groups[1:])}" if groups[1:] else ""),
            where=first.hostname,
            hint=hint,
        )


def plan_upgrade(
    desired: Sequence[DesiredNode],
    observed: Mapping[str, ObservedNode],
    policy: UpgradePolicy | OrderPolicy | None = None,
    *,
    allow_downgrade: bool = False,
    only: Sequence[str] | None = None,
    batching: BatchingPolicy | None = None,
) -> UpgradePlan:
    """The ordered plan. ``only`` limits it to these hostnames (``upgrade-node``); an
    unknown one is an :class:`InputError` with a did-you-mean. ``batching`` defaults to
    the policy's (one node at a time for a bare :class:`OrderPolicy`)."""
    order = policy.order if isinstance(policy, UpgradePolicy) else (policy or OrderPolicy())
    snapshot = policy.etcd_snapshot if isinstance(policy, UpgradePolicy) else False
    if batching is None:
        batching = policy.batching if isinstance(policy, UpgradePolicy) else BatchingPolicy()
    known = [n.hostname for n in desired]
    if only:
        for name in only:
            if name not in known:
                raise InputError(
                    f"unknown node {name!r}{did_you_mean(name, known)}",
                    hint="nodes in talos/talconfig.yaml: " + ", ".join(known),
                )
        desired = [n for n in desired if n.hostname in set(only)]
    decided = [_decide(n, observed.get(n.hostname), order, batching, allow_downgrade) for n in desired]
    cps = sorted((s for s in decided if s.control_plane), key=lambda s: _cp_key(s, order))
    workers = [s for s in decided if not s.control_plane]
    groups = [[s] for s in cps if s.action == "upgrade"]
    if batching.enabled:
        groups += worker_batches([s for s in workers if s.action == "upgrade"], batching)
    else:
        groups += [[s] for s in sorted(workers, key=lambda s: _worker_key(s, order)) if s.action == "upgrade"]
    number = {s.hostname: b for b, group in enumerate(groups, start=1) for s in group}
    going = [s for group in groups for s in group]
    staying = [s for s in decided if s.action != "upgrade"]
    steps: list[PlanStep] = []
    first_cp_action = True
    for i, s in enumerate(sorted(going + staying, key=_position(going, cps, order, batching)), start=1):
        snap = snapshot and s.action == "upgrade" and s.control_plane and first_cp_action
        if snap:
            first_cp_action = False
        steps.append(replace(s, order=i, batch=number.get(s.hostname), snapshot_before=snap))
    return UpgradePlan(tuple(steps), batching)


def worker_batches(workers: Sequence[PlanStep], batching: BatchingPolicy) -> list[list[PlanStep]]:
    """The workers to upgrade, grouped for failure-domain batching: domains sorted by
    name, ``max_domains`` of them per batch, split into batches of at most ``max_nodes``
    (as even as possible); workers without the label go alone, after the batches."""
    by_domain: dict[str, list[PlanStep]] = {}
    loners = []
    for s in sorted(workers, key=lambda s: s.hostname):
        if s.domain:
            by_domain.setdefault(s.domain, []).append(s)
        else:
            loners.append(s)
    domains = sorted(by_domain)
    out: list[list[PlanStep]] = []
    for i in range(0, len(domains), batching.max_domains):
        members = [s for d in domains[i : i + batching.max_domains] for s in by_domain[d]]
        out.extend(_even_chunks(members, batching.max_nodes))
    return out + [[s] for s in loners]


def _even_chunks(items: list[PlanStep], cap: int | None) -> list[list[PlanStep]]:
    """``items`` in consecutive chunks of at most ``cap``, sizes differing by at most one."""
    if not cap or len(items) <= cap:
        return [items]
    count = -(-len(items) // cap)
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _position(going: list[PlanStep], cps: list[PlanStep], order: OrderPolicy, batching: BatchingPolicy):
    """Sort key of the plan's rows: control planes in their order, then the workers — by
    failure domain in the order they go when batching, else in their one-by-one order;
    workers that stay keep their place among their domain or zone."""
    rank = {s.hostname: i for i, s in enumerate(going)}
    cp_rank = {s.hostname: i for i, s in enumerate(cps)}

    def key(s: PlanStep) -> tuple[Any, ...]:
        if s.control_plane:
            return (0, cp_rank[s.hostname])
        if batching.enabled:
            return (1, s.domain or "\uffff", s.hostname not in rank, rank.get(s.hostname, 0), s.hostname)
        return (1, *_worker_key(s, order))

    return key


def _decide(
    node: DesiredNode,
    seen: ObservedNode | None,
    order: OrderPolicy,
    batching: BatchingPolicy,
    allow_downgrade: bool,
) -> PlanStep:
    desired = normalize_version(node.talos_version)
    labels = getattr(node, "labels", None) or {}
    zone = labels.get(order.zone_label) or getattr(node, "zone", None) or (seen.zone if seen else None)
    domain = None
    if batching.enabled and not node.control_plane:
        live = seen.labels if seen is not None else {}
        domain = labels.get(batching.label) or live.get(batching.label)
        if domain is None and batching.label == order.zone_label:
            domain = zone
    base = PlanStep(
        hostname=node.hostname,
        ip=node.ip,
        control_plane=bool(node.control_plane),
        zone=zone,
        running=None,
        desired=desired,
        image=node.installer_image,
        action="refuse",
        reason="",
        order=0,
        etcd_leader=bool(seen and seen.etcd_leader),
        domain=domain,
    )
    if seen is None or seen.version is None:
        why = (seen.error if seen else None) or "no answer from the Talos API"
        return replace(base, reason=f"not reachable: {why}")
    running = normalize_version(seen.version)
    base = replace(base, running=running)
    cmp = compare_versions(running, desired)
    if cmp is None:
        return replace(base, reason=f"cannot compare versions {running} and {desired}")
    if cmp == 0:
        if seen.image and node.installer_image and seen.image != node.installer_image:
            return replace(base, action="upgrade", reason=f"installer image changes (Talos stays {desired})")
        return replace(base, action="skip", reason=f"already at {desired}")
    if cmp < 0:
        path = _path(running, desired)
        refusal = _jump_refusal(running, desired)
        if refusal:
            return replace(
                base,
                path=path,
                reason=f"{refusal}; path: {describe_path(Version.parse(running), list(path))}",
            )
        return replace(base, action="upgrade", reason=f"{running} → {desired}", path=path)
    if allow_downgrade:
        return replace(base, action="upgrade", reason=f"downgrade {running} → {desired} (allowed)")
    return replace(base, reason=f"downgrade {running} → {desired} refused without --allow-downgrade")


def _path(running: str, desired: str) -> tuple[Hop, ...]:
    try:
        return tuple(upgrade_path(Version.parse(running), Version.parse(desired)))
    except ValueError:
        return ()


def _jump_refusal(running: str, desired: str) -> str | None:
    try:
        return talos_jump_refusal(Version.parse(running), Version.parse(desired))
    except ValueError:
        return None


def _cp_key(s: PlanStep, order: OrderPolicy) -> tuple[Any, ...]:
    leader_last = order.etcd_leader_last and s.etcd_leader
    zone = (s.zone or "\uffff") if order.strategy == "zones" else ""
    return (leader_last, zone, s.hostname)


def _worker_key(s: PlanStep, order: OrderPolicy) -> tuple[Any, ...]:
    zone = (s.zone or "\uffff") if order.strategy == "zones" else ""
    return (zone, s.hostname)


def compare_versions(a: str, b: str) -> int | None:
    """-1, 0 or 1 comparing Talos versions (``v1.12.1``, ``v1.13.0-beta.1``); None when
    either does not parse. A pre-release sorts before its release."""
    from taltasks.model.versions import compare

    return compare(a, b)
