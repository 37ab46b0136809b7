"""etcd runbooks: look before you cut.

``survey`` asks every member, through its own node, whether it answers and is healthy, so
decisions rest on what each member says about itself rather than on one node's view.
``plan_removal`` refuses what would hurt: removing a member that is up and healthy (unless
forced), or a removal after which the remaining members could not hold quorum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from taltasks.errors import InputError, OperationFailed
from taltasks.events import NULL, Emitter
from taltasks.talos.client import TalosClient
from taltasks.talos.results import EtcdMember, SnapshotResult


@dataclass(frozen=True)
class MemberHealth:
    member: EtcdMember
    ip: str | None
    reachable: bool
    healthy: bool
    leader: bool
    detail: str

    @property
    def name(self) -> str:
        return self.member.hostname

    @property
    def down(self) -> bool:
        return not self.reachable or not self.healthy


@dataclass(frozen=True)
class EtcdSurvey:
    members: tuple[MemberHealth, ...]
    source: str  # the node whose member list we used

    @property
    def size(self) -> int:
        return len([m for m in self.members if not m.member.is_learner])

    @property
    def healthy(self) -> list[MemberHealth]:
        return [m for m in self.members if not m.down and not m.member.is_learner]

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    def has_quorum(self) -> bool:
        return len(self.healthy) >= self.quorum

    def quorum_without(self, name: str) -> bool:
        """Would quorum hold while ``name`` is down (e.g. rebooting for an upgrade)?"""
        return len([m for m in self.healthy if m.name != name]) >= self.quorum

    def find(self, name_or_id: str) -> MemberHealth:
        wanted = name_or_id.lower().removeprefix("0x")
        for m in self.members:
            if wanted in (m.name.lower(), m.member.id_hex, m.ip or ""):
                return m
        listing = ", ".join(f"{m.name} ({m.member.id_hex})" for m in self.members)
        raise InputError(f"no etcd member {name_or_id!r}", hint=f"members: {listing}")


def _peer_ip(member: EtcdMember) -> str | None:
    for url in member.peer_urls:
        host = url.split("//", 1)[-1].rsplit(":", 1)[0].strip("[]")
        if host:
            return host
    return None


def survey(client: TalosClient, control_planes: list[str]) -> EtcdSurvey:
    """Member list from the first control plane that answers, then each member's own status."""
    source = None
    members: list[EtcdMember] = []
    errors = []
    for cp in control_planes:
        [res] = client.etcd_members([cp])
        if res.ok and res.value:
            source, members = cp, res.value
            break
        errors.append(str(res.error))
    if source is None:
        raise OperationFailed(
            "no control plane could list etcd members: " + "; ".join(errors),
            hint="if etcd has lost quorum, recover from a snapshot (talosctl bootstrap --recover-from)",
        )
    ips = [_peer_ip(m) for m in members]
    statuses = {r.node: r for r in client.etcd_status([ip for ip in ips if ip])}
    out = []
    for m, ip in zip(members, ips, strict=True):
        st = statuses.get(ip or "")
        if st is None or not st.ok:
            out.append(MemberHealth(m, ip, False, False, False, str(st.error) if st else "no address"))
            continue
        status = st.value
        healthy = not status.errors
        out.append(
            MemberHealth(m, ip, True, healthy, status.is_leader, "; ".join(status.errors) or "healthy")
        )
    return EtcdSurvey(tuple(out), source)


@dataclass(frozen=True)
class RemovalPlan:
    target: MemberHealth
    via: str  # the healthy member's node that performs the removal
    members_after: int
    healthy_after: int


def plan_removal(s: EtcdSurvey, name_or_id: str, *, force: bool = False) -> RemovalPlan:
    target = s.find(name_or_id)
    if not target.down and not force:
        raise OperationFailed(
            f"etcd member {target.name} ({target.member.id_hex}) is up and healthy; refusing to remove a working member",
            hint="to replace a node use `invoke talos.replace-node`; to remove it anyway shut it down first, or pass --force",
        )
    remaining = [m for m in s.members if m is not target and not m.member.is_learner]
    healthy_after = len([m for m in remaining if not m.down])
    if healthy_after < len(remaining) // 2 + 1:
        down = ", ".join(m.name for m in remaining if m.down) or "none"
        raise OperationFailed(
            f"after removing {target.name}, only {healthy_after} of {len(remaining)} members would be healthy: etcd would have no quorum (also down: {down})",
            hint="bring the other members back first, or recover the cluster from a snapshot",
        )
    via = next((m for m in s.healthy if m is not target), None)
    if via is None or via.ip is None:
        raise OperationFailed("no healthy member left to perform the removal")
    return RemovalPlan(target, via.ip, len(remaining), healthy_after)


def remove_member(client: TalosClient, plan: RemovalPlan, emitter: Emitter = NULL) -> None:
    t = plan.target
    with emitter.step(
        "etcd.remove", f"removing etcd member {t.name} ({t.member.id_hex}) via {plan.via}", node=t.name
    ):
        client.etcd_remove_member(t.member.id, node=plan.via)


def pick_snapshot_source(s: EtcdSurvey) -> str:
    """A healthy member to stream from (a follower when possible: spare the leader)."""
    candidates = sorted(s.healthy, key=lambda m: m.leader)
    if not candidates or candidates[0].ip is None:
        raise OperationFailed("no healthy etcd member to take a snapshot from")
    return candidates[0].ip


def snapshot(
    client: TalosClient,
    path: Path,
    node: str,
    emitter: Emitter = NULL,
    progress: Callable[[int], None] | None = None,
    *,
    timeout: float = 600.0,
) -> SnapshotResult:
    with emitter.step("etcd.snapshot", f"etcd snapshot from {node} to {path}", node=node):
        result = client.etcd_snapshot(path, node=node, progress=progress, timeout=timeout)
    emitter.emit(
        "info",
        f"snapshot {result.path}: {result.size} bytes, sha256 {result.sha256}",
        node=node,
        size=result.size,
        sha256=result.sha256,
    )
    return result
