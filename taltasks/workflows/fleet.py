"""Several clusters from one fleet file: one plan for all, and one run after another.

* :func:`plan_fleet` looks at every cluster (read-only) and returns one
  :class:`FleetPlan`: per cluster its upgrade plan, or why it could not be planned (the
  other clusters are still planned). ``talos.plan --fleet`` prints it as one table or one
  JSON document.
* :func:`run_fleet` first plans every cluster and refuses the whole fleet when any of them
  refuses (a downgrade, an unreachable node), so nothing changes anywhere; then upgrades
  the clusters in the file's order, each with its own journal, gates and cleanup
  (:func:`taltasks.workflows.upgrade.run_upgrade` in its checkout), and stops the fleet at
  the first cluster that fails (:class:`FleetStopped`): the clusters before it are done and
  journaled, the ones after it untouched. Running the command again resumes: finished
  clusters have nothing left to do, the stopped one resumes from its journal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from taltasks.errors import OperationFailed, TaltasksError
from taltasks.events import NULL, Emitter, Event
from taltasks.model.fleet import Fleet, FleetMember
from taltasks.workflows.plan import UpgradePlan

if TYPE_CHECKING:
    from taltasks.kube.client import KubeClient
    from taltasks.talos.client import TalosClient
    from taltasks.workflows.upgrade import UpgradeOptions, UpgradeResult

Opener = Callable[[FleetMember], contextlib.AbstractContextManager[tuple["TalosClient", "KubeClient | None"]]]


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    repo: str
    plan: UpgradePlan | None = None
    error: str | None = None
    in_cluster: tuple[dict[str, Any], ...] = ()  # tuppr upgrades and their progress

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "repo": self.repo, "ok": self.ok}
        if self.plan is not None:
            out["summary"] = self.plan.summary()
            out["batching"] = self.plan.batching.describe()
            out["steps"] = self.plan.rows()
        else:
            out["summary"] = None
            out["steps"] = []
        if self.error is not None:
            out["error"] = self.error
        if self.in_cluster:
            out["inCluster"] = list(self.in_cluster)
        return out


@dataclass(frozen=True)
class FleetPlan:
    path: str
    clusters: tuple[ClusterPlan, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.clusters)

    def as_dict(self) -> dict[str, Any]:
        return {"fleet": self.path, "clusters": [c.as_dict() for c in self.clusters]}

    def rows(self) -> list[dict[str, Any]]:
        """One table for every cluster: its rows, or one row with its error."""
        out = []
        for c in self.clusters:
            if c.plan is None:
                out.append({"cluster": c.name, "node": "-", "action": "error", "reason": c.error})
                continue
            out.extend({"cluster": c.name, **row} for row in c.plan.rows())
        return out

    def summary(self) -> str:
        parts = []
        for c in self.clusters:
            parts.append(
                f"{c.name}: {c.plan.summary() if c.plan is not None else 'not planned: ' + str(c.error)}"
            )
        return "; ".join(parts)


class FleetStopped(OperationFailed):
    """The fleet stopped at ``cluster``; ``done`` clusters finished, ``left`` not started."""

    def __init__(self, cluster: str, cause: TaltasksError, *, done: list[str], left: list[str], command: str):
        finished = f"{', '.join(done)} finished" if done else "no cluster finished"
        untouched = f"{', '.join(left)} not started" if left else "no cluster after it"
        super().__init__(
            f"fleet stopped at cluster {cluster}: {cause}",
            where=cause.where,
            hint=f"{finished}; {untouched}; {cause.hint or 'fix the cause'}; run `invoke {command}` again to resume",
        )
        self.exit_code = cause.exit_code
        self.cluster = cluster
        self.cause = cause
        self.done = done
        self.left = left


@dataclass
class FleetResult:
    results: dict[str, UpgradeResult] = field(default_factory=dict)

    @property
    def done(self) -> list[str]:
        return list(self.results)


def open_member(
    member: FleetMember,
) -> contextlib.AbstractContextManager[tuple[TalosClient, KubeClient | None]]:
    """The cluster's Talos client and (when a kubeconfig is known) Kubernetes client, from
    the fleet file's paths or the checkout's own files — never from the environment."""

    @contextlib.contextmanager
    def opened() -> Iterator[tuple[TalosClient, KubeClient | None]]:
        from taltasks.kube.client import connect as kube_connect
        from taltasks.talos.connect import connect

        talosconfig = member.talosconfig_path()
        kubeconfig = member.kubeconfig_path()
        with connect(talosconfig=str(talosconfig) if talosconfig else None, context=member.context) as talos:
            if kubeconfig is None:
                yield talos, None
                return
            with kube_connect(kubeconfig) as kube:
                yield talos, kube

    return opened()


def plan_fleet(
    fleet: Fleet,
    *,
    allow_downgrade: bool = False,
    opener: Opener = open_member,
) -> FleetPlan:
    """Every cluster's plan; a cluster that cannot be asked gets its error instead."""
    from taltasks.gates.talossource import ApiTalosSource
    from taltasks.workflows.handoff import in_cluster_progress
    from taltasks.workflows.upgrade import UpgradeOptions, plan_for

    out = []
    for m in fleet.members:
        try:
            with opener(m) as (talos, kube):
                options = UpgradeOptions(allow_downgrade=allow_downgrade)
                plan = plan_for(m.cluster, m.policy, ApiTalosSource(talos, watch=False), options, kube=kube)
                progress = tuple(in_cluster_progress(kube)) if kube is not None else ()
            out.append(ClusterPlan(m.name, str(m.repo), plan, in_cluster=progress))
        except TaltasksError as exc:
            out.append(
                ClusterPlan(m.name, str(m.repo), error=exc.render() if hasattr(exc, "render") else str(exc))
            )
    return FleetPlan(str(fleet.path), tuple(out))


def run_fleet(
    fleet: Fleet,
    options: UpgradeOptions,
    *,
    emitter: Emitter = NULL,
    opener: Opener = open_member,
) -> FleetResult:
    """Upgrade the clusters one after another; :class:`FleetStopped` at the first failure."""
    from taltasks.errors import InputError
    from taltasks.workflows.upgrade import run_upgrade

    command = options.command
    plans = plan_fleet(fleet, allow_downgrade=options.allow_downgrade, opener=opener)
    emitter.emit("plan", f"fleet plan: {plans.summary()}", fleet=plans.as_dict())
    for c in plans.clusters:
        if not c.ok:
            raise InputError(
                f"cannot plan cluster {c.name}: {c.error}",
                where=str(fleet.path),
                hint="nothing was changed in any cluster; fix it or leave the cluster out of the fleet file",
            )
        assert c.plan is not None
        try:
            c.plan.require_executable()
        except InputError as exc:
            raise InputError(
                f"cluster {c.name}: {exc.message}",
                where=exc.where,
                hint=f"nothing was changed in any cluster; {exc.hint or ''}".rstrip("; "),
            ) from None
    result = FleetResult()
    names = fleet.names()
    for i, m in enumerate(fleet.members):
        tagged = cluster_emitter(emitter, m.name)
        emitter.emit("fleet.cluster.started", f"cluster {m.name} ({i + 1}/{len(names)})", cluster=m.name)
        try:
            with opener(m) as (talos, kube):
                if kube is None:
                    raise InputError(
                        f"cluster {m.name} has no kubeconfig",
                        where=m.where,
                        hint="set kubeconfig for it in the fleet file, or write <repo>/kubeconfig",
                    )
                cluster_options = replace(options, command=command)
                result.results[m.name] = run_upgrade(
                    m.repo, m.cluster, m.policy, talos, kube, cluster_options, emitter=tagged
                )
        except TaltasksError as exc:
            emitter.emit("fleet.cluster.failed", f"cluster {m.name}: {exc}", cluster=m.name)
            raise FleetStopped(m.name, exc, done=result.done, left=names[i + 1 :], command=command) from exc
        emitter.emit("fleet.cluster.done", f"cluster {m.name} done", cluster=m.name)
    emitter.emit("summary", f"fleet done: {', '.join(result.done)}", clusters=result.done)
    return result


def cluster_emitter(parent: Emitter, cluster: str) -> Emitter:
    """An emitter whose events reach ``parent`` marked with the cluster they belong to."""

    def forward(event: Event) -> None:
        parent.emit(
            event.kind, f"[{cluster}] {event.message}", node=event.node, **{**event.data, "cluster": cluster}
        )

    return Emitter(forward)
