"""Gate kind ``etcd``: the checks of CACPPT and ``talosctl health`` together — every
member's etcd service running and healthy, one member per control plane, the same member
list seen from every control plane, no learner left, one agreed leader.

Also the small derivations the upgrade workflow needs from the same observations: which
node hosts the leader, and each member's health for the quorum guard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from taltasks.gates.checks import ALWAYS, Check, GateContext, no_source, short_error
from taltasks.gates.sources import EtcdView, Sources
from taltasks.model.policy import GateSpec


def talos_nodes(spec: GateSpec, ctx: GateContext) -> list[str]:
    return [n.ip for n in ctx.control_planes]


def observe(spec: GateSpec, sources: Sources, ctx: GateContext, now: float) -> list[Check]:
    cps = ctx.control_planes
    if sources.talos is None:
        return no_source("etcd", "Talos")
    if not cps:
        return [
            Check(
                "etcd", "members", "control planes are known", False, "no control-plane nodes in the cluster"
            )
        ]
    out: list[Check] = []
    views: dict[str, EtcdView] = {}
    for node in cps:
        subject = f"etcd {node.hostname}"
        try:
            view = sources.talos.etcd(node.ip)
        except Exception as exc:
            out.append(Check(subject, "reachable", "the node answers etcd queries", False, short_error(exc)))
            continue
        views[node.hostname] = view
        out.append(
            Check(
                subject,
                "healthy",
                "etcd running and healthy",
                view.healthy,
                _service_text(view),
                since=ALWAYS,
            )
        )
    if not views:
        return out
    member_sets = {host: frozenset(v.members) for host, v in views.items()}
    first_host, reference = next(iter(member_sets.items()))
    names = sorted(m.hostname for m in reference)
    out.append(
        Check(
            "etcd",
            "members",
            f"{len(cps)} members, one per control plane",
            len(reference) == len(cps),
            f"{len(reference)} members ({', '.join(names)})",
            since=ALWAYS,
        )
    )
    differing = [host for host, members in member_sets.items() if members != reference]
    seen = "all control planes agree"
    if differing:
        seen = "; ".join(
            f"{h} sees {', '.join(sorted(m.hostname for m in member_sets[h]))}"
            for h in [first_host, *differing]
        )
    out.append(
        Check(
            "etcd",
            "consistent",
            "every control plane sees the same members",
            not differing,
            seen,
            since=ALWAYS,
        )
    )
    learners = sorted(m.hostname for m in reference if m.is_learner)
    out.append(
        Check(
            "etcd",
            "learners",
            "no member is still a learner",
            not learners,
            f"learners: {', '.join(learners)}" if learners else "none",
            since=ALWAYS,
        )
    )
    leaders = {v.leader_id for v in views.values()}
    agreed = len(leaders) == 1 and next(iter(leaders)) not in (None, 0)
    leader = leader_hostname(views.values())
    seen = f"leader {leader}" if agreed and leader else f"leaders reported: {sorted(str(x) for x in leaders)}"
    out.append(Check("etcd", "leader", "one leader, agreed by every member", agreed, seen, since=ALWAYS))
    return out


def _service_text(view: EtcdView) -> str:
    text = f"{view.service_state}, {'healthy' if view.service_healthy else 'unhealthy'}"
    if view.is_learner:
        text += ", learner"
    if view.errors:
        text += f", errors: {'; '.join(view.errors)}"
    return text


def leader_hostname(views: Iterable[EtcdView]) -> str | None:
    """Hostname of the member every reachable view names as leader, if they agree."""
    views = list(views)
    leaders = {v.leader_id for v in views}
    if len(leaders) != 1:
        return None
    leader = next(iter(leaders))
    for v in views:
        for m in v.members:
            if m.id == leader:
                return m.hostname
    return None


@dataclass(frozen=True)
class MemberHealth:
    """One etcd member as the quorum guard needs it."""

    hostname: str
    healthy: bool
    learner: bool = False


def member_health(views: Mapping[str, EtcdView | None]) -> list[MemberHealth]:
    """Per member of the (first reachable) member list: healthy when the control plane
    hosting it answered and its etcd is running, healthy and error-free. ``views`` maps
    control-plane hostnames to their view, or None when the node did not answer."""
    reachable = [v for v in views.values() if v is not None]
    if not reachable:
        return [MemberHealth(host, False) for host in views]
    out = []
    for m in reachable[0].members:
        view = views.get(m.hostname)
        out.append(MemberHealth(m.hostname, bool(view is not None and view.healthy), m.is_learner))
    return out
