"""The rolling Talos upgrade: ``talos.upgrade-node`` and ``talos.upgrade-all``.

The shape is the one ``tests/test_rolling_sketch.py`` proves on in-memory fakes, here over
the real clients:

1. **look** — the versions every node runs (one Version fan-out), who leads etcd;
2. **plan** — :func:`~taltasks.workflows.plan.plan_upgrade`, emitted as the ``plan``
   event; refusals (downgrade, unreachable node) stop here with nothing changed, and so
   does ``--dry-run``;
3. **guards** — another upgrader at work (a node mid-upgrade, tuppr, Omni:
   :mod:`~taltasks.workflows.upgraders`) is refused, and so is a control plane whose
   reboot would cost etcd its quorum, before anything changes (``--force`` skips only the
   quorum guard);
4. **run**, journaled, with every temporary change on a cleanup stack undone in
   ``finally`` (also on Ctrl-C, SIGTERM, SIGHUP): preflight gates; every planned node's
   installer pulled (a bad image stops the run here, nothing changed); Flux suspended, CNPG
   maintenance window, tuppr paused, as the policy says; then per node — pre gates stable
   → quorum guard → etcd snapshot before the first control plane → cordon → CNPG
   primaries off the node → installer (Talos 1.13+: LifecycleService.Upgrade) → drain
   (Eviction API, PDB-aware, deadline) → reboot into the new version (1.13+: Reboot; older:
   the legacy Upgrade, without ``preserve``) followed to a new boot → back gates (new boot
   id, new version, running, ready, Node Ready) → uncordon → post gates stable from the
   uncordon. The path is chosen per node from the version it runs
   (:class:`~taltasks.talos.actions.NodeUpgrade`).

A failure stops the run at that node (:class:`UpgradeStopped`: which node, which step,
what was seen, how to resume); nothing after it is touched. Running the same command again
resumes: nodes already at their desired version are skipped, a node the previous run left
rebooting is waited for first, and changes a killed run left behind are undone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taltasks.errors import OperationFailed, TaltasksError
from taltasks.events import NULL, Emitter
from taltasks.model import Cluster, Node
from taltasks.model.policy import UpgradePolicy
from taltasks.workflows import maintenance as mt
from taltasks.workflows.journal import JournalState, journal_path, read_journal
from taltasks.workflows.plan import PlanStep, UpgradePlan, plan_upgrade

if TYPE_CHECKING:
    from taltasks.gates.engine import GateEngine
    from taltasks.gates.talossource import ApiTalosSource
    from taltasks.kube.client import KubeClient
    from taltasks.talos.actions import NodeUpgrade
    from taltasks.talos.client import TalosClient
    from taltasks.workflows.batches import BatchDecision
    from taltasks.workflows.cleanup import CleanupStack, Undo
    from taltasks.workflows.journal import Journal

OPERATION = "talos-upgrade"  # one journal and one lock for upgrade-node and upgrade-all
SNAPSHOTS = Path(".taltasks") / "snapshots"


@dataclass(frozen=True)
class UpgradeOptions:
    """What the command line chose. ``only``: hostnames or IPs (``upgrade-node``);
    ``force`` skips the etcd quorum guard and nothing else. Engine timings default to
    values derived from the policy's stability window."""

    only: tuple[str, ...] = ()
    dry_run: bool = False
    force: bool = False
    allow_downgrade: bool = False
    command: str = "talos.upgrade-all"
    poll_interval: float | None = None
    resync_interval: float | None = None
    report_every: float = 15.0


@dataclass
class UpgradeResult:
    plan: UpgradePlan
    upgraded: list[str] = field(default_factory=list)
    snapshot: str | None = None
    seconds: float = 0.0
    resumed: str | None = None  # the status of the previous run this one resumed

    @property
    def nothing_to_do(self) -> bool:
        return self.plan.nothing_to_do


class UpgradeStopped(OperationFailed):
    """The run stopped at ``node`` during ``step``; ``cause`` is the original error and
    ``last_values`` what the failing gate saw last (empty for non-gate failures)."""

    def __init__(self, node: str, step: str, cause: TaltasksError, *, done: int, left: int, command: str):
        from taltasks.gates.engine import DEFAULT_HINT

        base = (cause.hint or "").replace(DEFAULT_HINT, "nothing further was changed; fix the cause")
        again = f"run `invoke {command}` again to resume ({done} node(s) done, {left} left)"
        super().__init__(
            f"upgrade stopped at {node} ({step}): {cause}",
            where=None,
            hint=f"{base}; {again}" if base else again,
        )
        self.exit_code = cause.exit_code  # 4 for a step or gate, 3 for an unreachable API
        self.node = node
        self.step = step
        self.cause = cause
        self.last_values: dict[str, str] = dict(getattr(cause, "last_values", {}) or {})


# ---- planning -------------------------------------------------------------------------------


def select_nodes(cluster: Cluster, only: tuple[str, ...]) -> list[Node]:
    """The nodes named (hostname or IP; unknown ones are an InputError with the list of
    nodes), or every node."""
    if not only:
        return list(cluster.nodes)
    chosen = [cluster.node(name) for name in only]
    return list({n.hostname: n for n in chosen}.values())


def plan_for(
    cluster: Cluster,
    policy: UpgradePolicy,
    talos: ApiTalosSource,
    options: UpgradeOptions,
    *,
    kube: KubeClient | None = None,
) -> UpgradePlan:
    """Look at the nodes and plan (pure after the look); nothing is changed."""
    from taltasks.workflows.observe import observe_nodes

    nodes = select_nodes(cluster, options.only)
    observed = observe_nodes(talos, nodes, policy, control_planes=cluster.control_planes, kube=kube)
    return plan_upgrade(nodes, observed, policy, allow_downgrade=options.allow_downgrade)


# ---- running --------------------------------------------------------------------------------


def run_upgrade(
    root: Path,
    cluster: Cluster,
    policy: UpgradePolicy,
    talos: TalosClient,
    kube: KubeClient,
    options: UpgradeOptions = UpgradeOptions(),
    *,
    emitter: Emitter = NULL,
) -> UpgradeResult:
    """Plan, then (unless ``dry_run``) carry the plan out; see the module docstring."""
    from taltasks.gates.kubesource import ApiKubeSource
    from taltasks.gates.talossource import ApiTalosSource
    from taltasks.talos import roles

    if not options.dry_run:  # the plan is a read; the upgrade itself is os:admin's
        roles.require(talos, roles.ADMIN_ONLY, "upgrading Talos")

    source, kube_source = ApiTalosSource(talos), ApiKubeSource(kube, watch_seconds=5)
    try:
        return _Run(root, cluster, policy, source, kube_source, kube, options, emitter).execute()
    finally:
        source.close()
        kube_source.close()


def _engine_timings(policy: UpgradePolicy, options: UpgradeOptions) -> tuple[float, float]:
    """Polling scaled to the window: a 5 s demo window is checked every 0.5 s, a 180 s
    production window every 2 s."""
    window = policy.stability.window or 1.0
    poll = options.poll_interval or min(2.0, max(0.1, window / 10))
    resync = options.resync_interval or min(10.0, max(1.0, window / 2))
    return poll, resync


class _Run:
    def __init__(
        self,
        root: Path,
        cluster: Cluster,
        policy: UpgradePolicy,
        talos: ApiTalosSource,
        kube_source: Any,
        kube: KubeClient,
        options: UpgradeOptions,
        emitter: Emitter,
    ) -> None:
        from taltasks.gates.engine import GateEngine

        self.root = Path(root)
        self.cluster = cluster
        self.policy = policy
        self.talos = talos
        self.kube = kube
        self.options = options
        self.emitter = emitter
        poll, resync = _engine_timings(policy, options)
        self.engine: GateEngine = GateEngine(
            kube_source,
            talos,
            emitter=emitter,
            poll_interval=poll,
            resync_interval=resync,
            report_every=options.report_every,
        )
        self.handlers = mt.undo_handlers(kube, emitter)
        self.journal: Journal | None = None
        self.cleanup: CleanupStack | None = None
        self.result: UpgradeResult | None = None
        self.batches: BatchDecision | None = None  # failure-domain batching, when the policy asks
        self.node_upgrades: dict[str, NodeUpgrade] = {}  # per node: its path, pulled in advance

    # ---- top level --------------------------------------------------------------------------

    def execute(self) -> UpgradeResult:
        from taltasks.kube.nodes import list_nodes

        started = time.monotonic()
        previous = self._previous()
        if previous is not None and not self.options.dry_run:
            self._await_interrupted_node(previous)
        plan = plan_for(self.cluster, self.policy, self.talos, self.options, kube=self.kube)
        self.result = result = UpgradeResult(plan, resumed=previous.status if previous else None)
        self.emitter.emit("plan", f"plan: {plan.summary()}", steps=plan.rows(), dry_run=self.options.dry_run)
        plan.require_executable()
        if plan.actions:  # another upgrader at work: refuse before anything changes (--force or not)
            from taltasks.workflows.upgraders import refuse_if_busy

            refuse_if_busy(self.talos.client, self.kube, self.cluster.nodes)
        if self.options.dry_run:
            return result
        leftovers = previous is not None and not previous.finished and bool(previous.pending)
        if plan.nothing_to_do and not leftovers:
            if previous is not None:  # the stopped run is over now: close its story
                from taltasks.workflows.journal import Journal

                with Journal.open(self.root, OPERATION) as journal:
                    journal.note("nothing left to do after the previous run")
            self.emitter.emit(
                "summary",
                f"nothing to do: all {len(plan.steps)} node(s) already at the desired version",
                upgraded=[],
                skipped=[s.hostname for s in plan.steps],
            )
            return result
        list_nodes(self.kube)  # an unreachable Kubernetes API fails now (exit 3), not at a gate deadline
        if not self.options.force:
            self._quorum_precheck(plan)
        if plan.batching.enabled and any(len(b) > 1 for b in plan.batches()):
            from taltasks.workflows.batches import BatchDecision

            self.batches = BatchDecision(plan.batching, self.kube, self.emitter)
            self.batches.start()  # the run-wide proof, before anything changes
        self._journaled(plan)
        result.seconds = round(time.monotonic() - started, 3)
        skipped = len(plan.steps) - len(plan.actions)
        self.emitter.emit(
            "summary",
            f"upgraded {len(result.upgraded)} node(s) in {result.seconds:.1f}s"
            + (f"; {skipped} already at the desired version" if skipped else ""),
            upgraded=result.upgraded,
            skipped=[s.hostname for s in plan.steps if s.action == "skip"],
            seconds=result.seconds,
        )
        return result

    def _journaled(self, plan: UpgradePlan) -> None:
        from taltasks.gates.checks import GateContext
        from taltasks.workflows.cleanup import CleanupStack, signals_interrupt
        from taltasks.workflows.journal import Journal

        meta = {"command": self.options.command, "nodes": [s.hostname for s in plan.actions]}
        with (
            signals_interrupt(),
            Journal.open(self.root, OPERATION, meta=meta) as journal,
            CleanupStack(journal, self.emitter) as cleanup,
        ):
            self.journal, self.cleanup = journal, cleanup
            if journal.resumed and journal.previous is not None:
                self._adopt(journal.previous)
            for step in plan.steps:
                if step.action == "skip":
                    self.emitter.emit("node.skipped", step.reason, node=step.hostname)
            if not plan.actions:
                return  # only leftovers of a killed run to undo
            with self._step(None, "preflight", "preflight gates"):
                self.engine.wait(self.policy.preflight, GateContext(self.cluster.nodes, stage="preflight"))
            self._pull(plan.actions)  # a bad installer image fails here, before any change
            self._maintenance_on()
            total, done = len(plan.actions), 0
            for batch in plan.batches():
                if len(batch) > 1 and self.batches is not None and not self.batches.refused:
                    from taltasks.workflows.batches import run_batch

                    run_batch(self, batch, done=done, total=total)
                else:
                    for i, step in enumerate(batch):
                        self._upgrade_node(step, done=done + i, total=total)
                done += len(batch)

    # ---- before the run ---------------------------------------------------------------------

    def _previous(self) -> JournalState | None:
        path = journal_path(self.root, OPERATION)
        if not path.exists():
            return None
        state = read_journal(path)
        if state.status == "completed":
            return None
        stopped = ", ".join(state.in_progress) or "no node"
        self.emitter.emit(
            "info",
            f"the previous run ended {state.status} at {stopped} "
            f"({len(state.done_nodes)} node(s) done): resuming",
            previous=state.status,
            done=state.done_nodes,
        )
        return state

    def _await_interrupted_node(self, previous: JournalState) -> None:
        """A node the previous run sent Upgrade to may still be rebooting: wait for it to
        come back from that upgrade before looking at versions, or it would be refused as
        unreachable."""
        from taltasks.gates.checks import GateContext

        for host in previous.in_progress:
            steps = [s for s in previous.steps(host) if s.get("step") == "upgrade"]
            if not steps or steps[-1].get("status") == "done":
                continue
            started = [s for s in steps if s.get("status") == "started"]
            node = self.cluster.node(host)
            boot_id = started[-1].get("boot_id")
            try:
                state = self.talos.machine(node.ip)
                if state.stage == "running" and state.ready:
                    continue  # up, whatever it runs now: the plan decides
            except TaltasksError:
                pass  # down or rebooting: wait for it
            back = GateContext(
                self.cluster.nodes,
                node,
                stage="reboot",
                expected_version=started[-1].get("desired"),
                previous_boot_id=boot_id,
            )
            with self._step(host, "resume", f"waiting for {host} to come back from the interrupted upgrade"):
                self.engine.wait(self.policy.reboot_gates(), back)

    def _quorum_precheck(self, plan: UpgradePlan) -> None:
        """Refuse before any change when a planned control plane cannot go down now."""
        from taltasks.workflows.observe import etcd_members
        from taltasks.workflows.quorum import quorum_verdict

        cps = [s for s in plan.actions if s.control_plane]
        if not cps:
            return
        members = etcd_members(self.talos, self.cluster.control_planes)
        refused = [(s, v) for s in cps if not (v := quorum_verdict(members, s.hostname)).allowed]
        if refused:
            step, verdict = refused[0]
            raise OperationFailed(
                f"refusing to upgrade control plane {step.hostname}: {verdict.reason}; nothing was changed",
                where=step.hostname,
                hint="make every etcd member healthy first (invoke etcd.status); --force skips only this guard",
            )

    def _adopt(self, previous: JournalState) -> None:
        """Take over what a killed run left: cordons are undone now (the gates need every
        node schedulable); maintenance switches stay until this run ends."""
        assert self.cleanup is not None
        adopted = self.cleanup.adopt(previous, self.handlers)
        for entry in adopted:
            if entry.change.kind == mt.CORDON:
                self.cleanup.undo(entry)

    # ---- maintenance switches ---------------------------------------------------------------

    def _push(self, kind: str, target: str, data: dict[str, Any], *, node: str | None = None) -> Undo:
        """Journal a change (write-ahead) with the undo built from the same data."""
        from taltasks.workflows.journal import Change

        assert self.cleanup is not None
        handler = self.handlers[kind]
        change = Change("", kind, target, data, "", node)
        return self.cleanup.push(kind, target, lambda: handler(change), data=data, node=node)

    def _maintenance_on(self) -> None:
        m = self.policy.maintenance
        if m.flux_suspend:
            data = mt.plan_flux(self.kube, m.flux_kinds, self.emitter)
            if data["suspended"]:
                self._push(mt.FLUX, "flux", data)
                with self._step(None, "flux-suspend", "suspending Flux"):
                    mt.apply_flux(self.kube, data, self.emitter)
        if m.cnpg_maintenance:
            data = mt.plan_cnpg(self.kube)
            if data["clusters"]:
                self._push(mt.CNPG, "cnpg", data)
                with self._step(None, "cnpg-maintenance", "opening the CNPG maintenance window"):
                    mt.apply_cnpg(self.kube, data, m.cnpg_reuse_pvc, self.emitter)
        if m.tuppr_pause:
            data = mt.plan_tuppr(self.kube)
            if data["objects"]:
                self._push(mt.TUPPR, "tuppr", data)
                with self._step(None, "tuppr-pause", "pausing tuppr"):
                    mt.apply_tuppr(self.kube, data, self.emitter)

    # ---- one node ---------------------------------------------------------------------------

    def _upgrade_node(self, step: PlanStep, *, done: int, total: int) -> None:
        from taltasks.gates.checks import GateContext
        from taltasks.kube.nodes import cordon

        assert self.journal is not None and self.cleanup is not None and self.result is not None
        host, policy = step.hostname, self.policy
        node = self.cluster.node(host)
        nodes = self.cluster.nodes
        self.journal.node(host, "started", running=step.running, desired=step.desired)
        self.emitter.emit(
            "node.started",
            f"{host}: {step.running} → {step.desired} ({step.role})",
            node=host,
            running=step.running,
            desired=step.desired,
        )
        current = "quorum"
        try:
            if node.control_plane:  # refuse at once when etcd is already short of members
                with self._step(host, current, "etcd quorum guard"):
                    self._quorum_guard(host)
            current = "pre-gates"
            pre = GateContext(nodes, node, stage="pre")
            with self._step(host, current, "pre gates"):
                self.engine.wait(policy.pre, pre)
            if node.control_plane:  # and again: the wait may have taken a while
                current = "quorum"
                self._quorum_guard(host, report=False)
            baseline = self.engine.baseline(policy.post, pre)
            if step.snapshot_before:
                current = "snapshot"
                self._snapshot(host)
            boot_id = self.talos.client.boot_id(node.ip)
            current = "cordon"
            cordoned = self._push(mt.CORDON, host, {"node": host}, node=host)
            with self._step(host, current, f"cordoning {host}"):
                cordon(self.kube, host, emitter=self.emitter)
            current = "switchover"
            self._primaries_off(host)
            current = "install"
            self._install(step)
            if policy.drain.enabled:
                current = "drain"
                self._drain(host)
            current = "upgrade"
            self._upgrade(step, node, boot_id)
            current = "back"
            back = GateContext(
                nodes, node, stage="reboot", expected_version=step.desired, previous_boot_id=boot_id
            )
            with self._step(host, current, f"waiting for {host} to be back on {step.desired}"):
                self.engine.wait(policy.reboot_gates(), back)
            current = "uncordon"
            with self._step(host, current, f"uncordoning {host}"):
                self.cleanup.undo(cordoned)
            uncordoned_at = time.time()
            current = "post-gates"
            post = GateContext(
                nodes,
                node,
                stage="post",
                expected_version=step.desired,
                previous_boot_id=boot_id,
                not_before=uncordoned_at,
                baseline=baseline,
            )
            with self._step(host, current, "post gates"):
                self.engine.wait(policy.post, post)
        except TaltasksError as exc:
            self.journal.node(host, "failed", step=current, error=str(exc))
            stopped = UpgradeStopped(
                host, current, exc, done=done, left=total - done, command=self.options.command
            )
            self.emitter.emit("node.failed", f"{current}: {exc}", node=host, step=current)
            raise stopped from exc
        self.journal.node(host, "done", version=step.desired)
        self.result.upgraded.append(host)
        self.emitter.emit("node.done", f"{host} runs {step.desired}", node=host, version=step.desired)

    def _quorum_guard(self, host: str, *, report: bool = True) -> None:
        from taltasks.workflows.observe import etcd_members
        from taltasks.workflows.quorum import require_quorum

        verdict = require_quorum(
            etcd_members(self.talos, self.cluster.control_planes), host, force=self.options.force
        )
        if report or verdict.forced:
            self.emitter.emit("info", verdict.reason, node=host, step="quorum", forced=verdict.forced)

    def _snapshot(self, host: str) -> None:
        """An etcd snapshot from a healthy follower, before the first control plane goes."""
        from taltasks.workflows import etcd as wf

        assert self.journal is not None and self.result is not None
        client = self.talos.client
        source = wf.pick_snapshot_source(wf.survey(client, [n.ip for n in self.cluster.control_planes]))
        path = self.root / SNAPSHOTS / f"etcd-{self.journal.state().run}.db"
        with self._step(host, "snapshot", f"etcd snapshot from {source} to {path}", source=source):
            result = client.etcd_snapshot(path, node=source, timeout=self.policy.timeouts.snapshot)
        self.journal.note("etcd snapshot", path=result.path, size=result.size, sha256=result.sha256)
        self.emitter.emit(
            "info",
            f"etcd snapshot {result.path}: {result.size} bytes, sha256 {result.sha256[:16]}…",
            node=host,
            path=result.path,
            sha256=result.sha256,
        )
        self.result.snapshot = result.path

    def _primaries_off(self, hosts: str | Sequence[str]) -> None:
        """Cordoning a primary's node makes CNPG switch over; wait until every primary
        that lived there (on any of ``hosts``, a batch) has moved and settled, so the drain
        evicts only replicas."""
        from taltasks.kube.cnpg import GROUP, PLURAL, VERSION, read_cnpg_clusters
        from taltasks.kube.watch import wait_until

        hosts = [hosts] if isinstance(hosts, str) else list(hosts)
        host = ", ".join(hosts)
        node = hosts[0] if len(hosts) == 1 else None  # a batch's step is the run's, not one node's
        moving = {
            c.ref: c.current_primary
            for c in read_cnpg_clusters(self.kube)
            if c.instances > 1 and c.primary_node() in hosts
        }
        if not moving:
            return

        def moved(objects: dict[str, dict[str, Any]]) -> bool:
            for ref, old in moving.items():
                status = (objects.get(ref) or {}).get("status") or {}
                current, target = status.get("currentPrimary"), status.get("targetPrimary")
                if current == old or current != target:
                    return False
            return True

        def describe(objects: dict[str, dict[str, Any]]) -> str:
            parts = []
            for ref in moving:
                status = (objects.get(ref) or {}).get("status") or {}
                parts.append(
                    f"{ref}: primary {status.get('currentPrimary')}, target {status.get('targetPrimary')}, "
                    f"phase {status.get('phase')!r}"
                )
            return "; ".join(parts)

        listing = ", ".join(f"{ref} ({pod})" for ref, pod in moving.items())
        with self._step(node, "switchover", f"waiting for CNPG primaries to leave {host}: {listing}"):
            wait_until(
                self.kube,
                self.kube.custom.list_cluster_custom_object,
                moved,
                GROUP,
                VERSION,
                PLURAL,
                timeout=self.policy.timeouts.switchover,
                what=f"CNPG switchover off {host}",
                describe=describe,
            )

    def _drain(self, host: str) -> None:
        from taltasks.kube.drain import drain_node

        assert self.journal is not None
        d = self.policy.drain
        self.journal.step(host, "drain", "started")
        try:
            result = drain_node(
                self.kube,
                host,
                timeout=self.policy.timeouts.drain,
                retry_interval=d.retry_interval,
                poll_interval=min(1.0, d.retry_interval) / 4,  # how soon an evicted pod is seen gone
                grace_period_seconds=d.grace_period,
                force=d.force,
                delete_emptydir_data=d.delete_emptydir_data,
                uncordon_on_failure=False,  # the cleanup stack owns the cordon
                emitter=self.emitter,
            )
        except BaseException as exc:
            self.journal.step(host, "drain", "failed", error=str(exc))
            raise
        self.journal.step(host, "drain", "done", evicted=[str(p) for p in result.evicted])

    def _pull(self, steps: Sequence[PlanStep]) -> None:
        """Pull every planned node's installer first, all at once, on the path each node's
        running version calls for (ImageService.Pull on 1.13+, MachineService.ImagePull
        before): a missing or unpullable image stops the run here, with nothing changed."""
        from taltasks.talos.actions import NodeUpgrade

        client = self.talos.client
        for step in steps:
            ip = self.cluster.node(step.hostname).ip
            self.node_upgrades[step.hostname] = NodeUpgrade(client, ip, step.image, force=self.options.force)
        paths = {s.hostname: self.node_upgrades[s.hostname].path for s in steps}
        listing = ", ".join(f"{h} ({p})" for h, p in paths.items())
        with self._step(
            None, "pull", f"pulling the installer onto {listing}", nodes=list(paths), paths=paths
        ):
            failures = client.parallel([lambda s=s: self._pull_one(s) for s in steps])
            failed = [f for f in failures if f is not None]
            if failed:
                host, exc = failed[0]
                raise UpgradeStopped(host, "pull", exc, done=0, left=len(steps), command=self.options.command)

    def _pull_one(self, step: PlanStep) -> tuple[str, TaltasksError] | None:
        try:
            pulled = self.node_upgrades[step.hostname].pull()
        except TaltasksError as exc:
            return step.hostname, exc
        self.emitter.emit("info", f"installer pulled: {pulled}", node=step.hostname, step="pull")
        return None

    def _steps_of(self, step: PlanStep) -> NodeUpgrade:
        from taltasks.talos.actions import NodeUpgrade

        found = self.node_upgrades.get(step.hostname)
        if found is None:  # not pulled in advance (a single node resumed): the path decides now
            ip = self.cluster.node(step.hostname).ip
            found = self.node_upgrades[step.hostname] = NodeUpgrade(
                self.talos.client, ip, step.image, force=self.options.force
            )
        return found

    def _install(self, step: PlanStep) -> None:
        """Run the installer (Talos 1.13+: LifecycleService.Upgrade); nothing on the legacy
        path, where the Upgrade call installs and reboots at once."""
        steps = self._steps_of(step)
        if steps.path != "lifecycle":
            return

        def output(line: str) -> None:
            self.emitter.emit("info", line, node=step.hostname, step="install")

        with self._step(step.hostname, "install", f"running the installer {step.image} on {step.hostname}"):
            steps.install(on_output=output)

    def _upgrade(self, step: PlanStep, node: Node, boot_id: str) -> None:
        """Boot the node into the new version and follow it back: Reboot after the
        installer (1.13+), or the legacy Upgrade, which installs and reboots."""

        def progress(event: Any) -> None:
            if event.type == "MachineStatusEvent" and event.stage:
                self.emitter.emit("info", f"stage {event.stage.lower()}", node=step.hostname, step="upgrade")

        steps = self._steps_of(step)
        how = "rebooting into" if steps.path == "lifecycle" else "upgrading to"
        with self._step(
            step.hostname,
            "upgrade",
            f"{how} {step.image} on {step.hostname} ({steps.path} path)",
            boot_id=boot_id,
            desired=step.desired,
            image=step.image,
            path=steps.path,
        ):
            outcome = steps.reboot(timeout=self.policy.timeouts.reboot, on_event=progress)
        self.emitter.emit(
            "info",
            f"back after {outcome.seconds:.1f}s: boot id {outcome.boot_id_after[:8]}, Talos {outcome.version_after}",
            node=step.hostname,
            step="upgrade",
        )

    # ---- bookkeeping ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _step(self, host: str | None, name: str, message: str, **data: Any) -> Iterator[None]:
        """One journaled step with ``step.*`` events around it."""
        journal = self.journal
        if journal is not None:
            journal.step(host, name, "started", **data)
        try:
            with self.emitter.step(name, message, node=host):
                yield
        except KeyboardInterrupt:
            if journal is not None:
                journal.step(host, name, "interrupted")
            raise
        except BaseException as exc:
            if journal is not None:
                journal.step(host, name, "failed", error=str(exc))
            raise
        if journal is not None:
            journal.step(host, name, "done")
