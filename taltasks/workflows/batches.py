"""Failure-domain batches inside ``talos.upgrade-all``: proving them safe, and running one.

The planner groups workers into batches (:func:`taltasks.workflows.plan.worker_batches`);
this module decides whether each batch may really go down together and carries it out:

* :class:`BatchDecision` — once per run, before anything changes, the Ceph proof (pools
  replicate across the batching label with ``min_size`` to spare): when it fails, every
  batch goes one node at a time and the run says why — or, with ``onUnsafe: stop``, the
  run stops before any change. Before each batch, the per-batch proofs (a ready CNPG
  instance outside the batch, every PDB still met) on fresh facts: a batch that fails them
  goes one node at a time (or stops the run), with the reason; the next batch is judged
  afresh.
* :func:`run_batch` — one batch, with the same steps and the same per-node code as a single
  node, in this order: pre gates once (cluster-wide) → the per-batch proofs → post-gate
  baseline → every node's boot id → every node cordoned (so nothing evicted lands on another
  node of the batch) → CNPG primaries off the batch → every node, in parallel, drained and
  then upgraded and followed to its new boot → back gates for the whole batch → every node
  uncordoned → post gates once, their window counted from the uncordon. Each node is
  journaled as in a rolling run; a failure stops the run at the batch with the node and
  step that failed, after every node already rebooting has come back or timed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taltasks.errors import OperationFailed, TaltasksError

if TYPE_CHECKING:
    from taltasks.events import Emitter
    from taltasks.kube.client import KubeClient
    from taltasks.model.policy import BatchingPolicy
    from taltasks.workflows.batchsafety import BatchVerdict, Finding
    from taltasks.workflows.plan import PlanStep


@dataclass
class BatchDecision:
    """Whether batches may run as batches in this run, and why not."""

    batching: BatchingPolicy
    kube: KubeClient
    emitter: Emitter
    ceph: list[Finding] = field(default_factory=list)
    refused: str = ""  # run-wide reason: every batch goes one node at a time

    def start(self) -> None:
        """The run-wide Ceph proof, before anything changes."""
        from taltasks.workflows.batchsafety import ceph_findings, read_facts

        self.ceph = ceph_findings(read_facts(self.kube), self.batching)
        failed = [f.message for f in self.ceph if not f.ok]
        if not failed:
            self.emitter.emit(
                "info",
                f"batching proven for the run: {self.batching.describe()}; "
                + "; ".join(f.message for f in self.ceph),
                step="batching",
            )
            return
        self.refused = "; ".join(failed)
        if self.batching.on_unsafe == "stop":
            raise OperationFailed(
                f"batching by {self.batching.label} cannot be proven safe: {self.refused}; nothing was changed",
                where=self.batching.where,
                hint="fix the cause, or set batching.onUnsafe: one-at-a-time to upgrade one node at a time instead",
            )
        self.emitter.emit(
            "warning",
            f"batching refused, going one node at a time: {self.refused}",
            step="batching",
            reason=self.refused,
        )

    def judge(self, batch: Sequence[str]) -> BatchVerdict | None:
        """The per-batch proofs on fresh facts; None when the run already refused batching."""
        from taltasks.workflows.batchsafety import check_batch, read_facts

        if self.refused:
            return None
        return check_batch(read_facts(self.kube), batch, self.batching, ceph=self.ceph)


def run_batch(run: Any, steps: Sequence[PlanStep], *, done: int, total: int) -> None:
    """Upgrade ``steps`` (workers of one failure domain) together; ``run`` is the upgrade
    run whose per-node steps are reused (see :mod:`taltasks.workflows.upgrade`)."""
    from taltasks.gates.checks import GateContext
    from taltasks.kube.nodes import cordon
    from taltasks.workflows import maintenance as mt
    from taltasks.workflows.upgrade import UpgradeStopped

    hosts = [s.hostname for s in steps]
    label = ", ".join(hosts)
    policy, engine, journal = run.policy, run.engine, run.journal
    nodes = run.cluster.nodes
    current, failing = "pre-gates", hosts[0]
    run.emitter.emit("batch.started", f"batch of {len(hosts)}: {label}", nodes=hosts, domain=steps[0].domain)
    try:
        pre = GateContext(nodes, stage="pre")
        with run._step(None, "pre-gates", f"pre gates before the batch {label}", nodes=hosts):
            engine.wait(policy.pre, pre)
        verdict = run.batches.judge(hosts)
        if verdict is not None and not verdict.safe:
            if run.batches.batching.on_unsafe == "stop":
                raise OperationFailed(
                    f"the batch {label} cannot be proven safe: {verdict.explain()}",
                    hint="nothing of this batch was changed; set batching.onUnsafe: one-at-a-time to go one node at a time",
                )
            run.emitter.emit(
                "warning",
                f"batch {label} goes one node at a time: {verdict.explain()}",
                step="batching",
                nodes=hosts,
                reason=verdict.explain(),
            )
            for i, step in enumerate(steps):
                run._upgrade_node(step, done=done + i, total=total)
            return
        if verdict is not None:
            run.emitter.emit(
                "info", f"batch {label} proven safe: {verdict.explain()}", step="batching", nodes=hosts
            )
        for s in steps:
            journal.node(s.hostname, "started", running=s.running, desired=s.desired, batch=hosts)
            run.emitter.emit(
                "node.started",
                f"{s.hostname}: {s.running} → {s.desired} ({s.role}, batch of {len(hosts)})",
                node=s.hostname,
                running=s.running,
                desired=s.desired,
            )
        baseline = engine.baseline(policy.post, pre)
        boot_ids: dict[str, str] = {}

        def read_boot_id(host: str) -> None:
            boot_ids[host] = run.talos.client.boot_id(run.cluster.node(host).ip)

        _parallel(hosts, read_boot_id)
        current = "cordon"
        # every cordon journaled first (write-ahead), then applied together
        cordons = {host: run._push(mt.CORDON, host, {"node": host}, node=host) for host in hosts}

        def cordon_one(host: str) -> None:
            with run._step(host, "cordon", f"cordoning {host}"):
                cordon(run.kube, host, emitter=run.emitter)

        failing = _parallel(hosts, cordon_one)
        current, failing = "switchover", hosts[0]
        run._primaries_off(hosts)
        by_host = {s.hostname: s for s in steps}
        phase: dict[str, str] = dict.fromkeys(hosts, "drain")

        def drain_then_upgrade(host: str) -> None:
            # every node of the batch is cordoned and its primaries are gone: a node may go
            # down as soon as its own installer and drain are done, without waiting for the others'
            phase[host] = "install"
            run._install(by_host[host])
            phase[host] = "drain"
            if policy.drain.enabled:
                run._drain(host)
            phase[host] = "upgrade"
            run._upgrade(by_host[host], run.cluster.node(host), boot_ids[host])

        current = "drain" if policy.drain.enabled else "upgrade"
        try:
            failing = _parallel(hosts, drain_then_upgrade)
        except TaltasksError as exc:
            current = phase.get(getattr(exc, "batch_node", ""), current)
            raise
        current = "upgrade"
        current = "back"
        back = GateContext(
            nodes,
            stage="reboot",
            batch=tuple(run.cluster.node(h) for h in hosts),
            expected={s.hostname: (s.desired, boot_ids[s.hostname]) for s in steps},
        )
        with run._step(None, current, f"waiting for {label} to be back on {steps[0].desired}", nodes=hosts):
            engine.wait(policy.reboot_gates(), back)
        current = "uncordon"

        def uncordon_one(host: str) -> None:
            with run._step(host, "uncordon", f"uncordoning {host}"):
                run.cleanup.undo(cordons[host])

        failing = _parallel(hosts, uncordon_one)
        uncordoned_at = time.time()
        current, failing = "post-gates", hosts[0]
        post = GateContext(nodes, stage="post", not_before=uncordoned_at, baseline=baseline)
        with run._step(None, current, f"post gates after the batch {label}", nodes=hosts):
            engine.wait(policy.post, post)
    except TaltasksError as exc:
        failing = getattr(exc, "batch_node", failing)
        for host in hosts:
            if host not in run.result.upgraded:
                journal.node(host, "failed", step=current, error=str(exc), batch=hosts)
        run.emitter.emit("node.failed", f"{current}: {exc}", node=failing, step=current, nodes=hosts)
        raise UpgradeStopped(
            failing, current, exc, done=done, left=total - done, command=run.options.command
        ) from exc
    for s in steps:
        journal.node(s.hostname, "done", version=s.desired, batch=hosts)
        run.result.upgraded.append(s.hostname)
        run.emitter.emit("node.done", f"{s.hostname} runs {s.desired}", node=s.hostname, version=s.desired)
    run.emitter.emit("batch.done", f"batch of {len(hosts)} done: {label}", nodes=hosts)


def _parallel(hosts: Sequence[str], action: Callable[[str], Any]) -> str:
    """``action`` on every host at once; every one is waited for, then the first failure (in
    the batch's order) is raised as the error of its host. Returns the last host."""
    errors: dict[str, BaseException] = {}

    def one(host: str) -> None:
        try:
            action(host)
        except BaseException as exc:  # collected: the others are still running
            errors[host] = exc

    with ThreadPoolExecutor(max_workers=max(1, len(hosts)), thread_name_prefix="batch") as pool:
        list(pool.map(one, hosts))
    for host in hosts:
        if host in errors:
            exc = errors[host]
            if isinstance(exc, TaltasksError):
                raise _attach(exc, host)
            raise exc
    return hosts[-1]


def _attach(exc: TaltasksError, host: str) -> TaltasksError:
    exc.batch_node = host  # type: ignore[attr-defined]
    return exc
