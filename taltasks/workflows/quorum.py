"""The etcd quorum guard: may this control plane go down now?

Talos's own check exists only on its legacy upgrade path and is skipped with
``--preserve`` (health-gates.md §3.3), so taltasks does it itself before every
control-plane upgrade. Voting members only count (learners do not vote); the node going
down counts as lost when it is healthy now. A single-member etcd is allowed: it is
unavailable during the reboot, but nothing else could keep it up, and its data stays.
``force`` skips this guard and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taltasks.errors import OperationFailed
from taltasks.gates.etcd import MemberHealth


@dataclass(frozen=True)
class QuorumVerdict:
    allowed: bool
    reason: str
    voters: int
    healthy: int
    quorum: int
    forced: bool = False


def quorum_verdict(members: Sequence[MemberHealth], target: str, *, force: bool = False) -> QuorumVerdict:
    voters = [m for m in members if not m.learner]
    n = len(voters)
    quorum = n // 2 + 1
    healthy = [m for m in voters if m.healthy]
    me = next((m for m in voters if m.hostname == target), None)

    def verdict(allowed: bool, reason: str) -> QuorumVerdict:
        if not allowed and force:
            return QuorumVerdict(
                True, f"quorum guard skipped by --force: {reason}", n, len(healthy), quorum, True
            )
        return QuorumVerdict(allowed, reason, n, len(healthy), quorum)

    if me is None:
        role = "a learner" if any(m.hostname == target for m in members) else "not an etcd member"
        return verdict(True, f"{target} is {role}; quorum is unaffected")
    if n == 1:
        return verdict(
            True, f"{target} is the only etcd member: etcd is down while it reboots, its data is kept"
        )
    remaining = len(healthy) - (1 if me.healthy else 0)
    unhealthy = sorted(m.hostname for m in voters if not m.healthy)
    detail = f" (unhealthy now: {', '.join(unhealthy)})" if unhealthy else ""
    if remaining >= quorum:
        return verdict(
            True, f"with {target} down, {remaining} of {n} members stay healthy (quorum {quorum}){detail}"
        )
    return verdict(
        False,
        f"with {target} down, only {remaining} of {n} members would be healthy, below quorum {quorum}{detail}",
    )


def require_quorum(members: Sequence[MemberHealth], target: str, *, force: bool = False) -> QuorumVerdict:
    """The verdict, or :class:`OperationFailed` when taking ``target`` down would lose quorum."""
    v = quorum_verdict(members, target, force=force)
    if not v.allowed:
        raise OperationFailed(
            f"refusing to upgrade control plane {target}: {v.reason}",
            where=target,
            hint="make every etcd member healthy first (invoke etcd.status); --force skips only this guard",
        )
    return v
