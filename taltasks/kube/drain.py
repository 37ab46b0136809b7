"""Drain a node through the eviction API, the way kubectl does, with a hard deadline.

:func:`plan_drain` decides per pod (pure, table-tested): DaemonSet pods and mirror (static)
pods are skipped, pods already terminating are waited for, unmanaged pods and pods with
``emptyDir`` volumes are refused unless allowed — refusing happens before anything is
evicted. :func:`drain_node` cordons, evicts every remaining pod with ``policy/v1``
Eviction, retries the ones a PodDisruptionBudget protects (429) every ``retry_interval``,
waits until evicted pods are gone (404, or re-created with a new uid), and gives up at the
deadline. It never falls back to a plain delete (that bypasses the budgets).

When the drain does not finish, the node is uncordoned again (if this drain cordoned it)
and :class:`DrainTimeout` says which pods are left and which budget blocks each, by name.
Progress goes to the emitter: ``step.started``/``step.done``/``step.failed`` (step
``drain``), ``info`` per evicted pod, ``warning`` when a budget blocks a pod (once per
change), ``cleanup`` for the uncordon.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from taltasks.errors import OperationFailed
from taltasks.events import NULL, Emitter
from taltasks.kube.client import KubeApiError, KubeClient
from taltasks.kube.nodes import cordon, get_node, uncordon

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_BUDGET = re.compile(r"The disruption budget (\S+) ")


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class DrainPlan:
    evict: tuple[PodRef, ...]
    skip: tuple[tuple[PodRef, str], ...]
    refuse: tuple[tuple[PodRef, str], ...]
    wait: tuple[PodRef, ...] = ()


@dataclass(frozen=True)
class Blocker:
    """A pod whose eviction was refused, and by what."""

    pod: PodRef
    budget: str  # "namespace/name" of the PodDisruptionBudget, or "" when none was named
    message: str

    def describe(self) -> str:
        by = f"PodDisruptionBudget {self.budget}" if self.budget else "the API server"
        return f"{self.pod} blocked by {by} ({self.message})"


@dataclass
class DrainResult:
    node: str
    evicted: list[PodRef] = field(default_factory=list)
    skipped: list[tuple[PodRef, str]] = field(default_factory=list)
    seconds: float = 0.0
    cordoned: bool = False  # this drain cordoned the node (it was schedulable before)


class DrainTimeout(OperationFailed):
    """The drain did not finish before its deadline."""

    def __init__(
        self,
        message: str,
        *,
        node: str,
        blockers: list[Blocker],
        remaining: list[PodRef],
        hint: str | None = None,
    ) -> None:
        super().__init__(message, where=node, hint=hint)
        self.node = node
        self.blockers = blockers
        self.remaining = remaining
        self.uncordoned = False


class DrainRefused(OperationFailed):
    """Some pods cannot be drained safely with the options given; nothing was evicted."""

    def __init__(
        self, message: str, *, node: str, pods: list[tuple[PodRef, str]], hint: str | None = None
    ) -> None:
        super().__init__(message, where=node, hint=hint)
        self.pods = pods
        self.uncordoned = False


def _ref(pod: dict[str, Any]) -> PodRef:
    m = pod.get("metadata") or {}
    return PodRef(m.get("namespace", ""), m.get("name", ""), m.get("uid", ""))


def _controller(pod: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (r for r in (pod.get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")), None
    )


def plan_drain(
    pods: Iterable[dict[str, Any]], *, force: bool = False, delete_emptydir_data: bool = True
) -> DrainPlan:
    """kubectl drain's filters, in kubectl's order, for the pods of one node."""
    evict, skip, refuse, wait = [], [], [], []
    for pod in pods:
        ref = _ref(pod)
        m, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase")
        controller = _controller(pod)
        if m.get("deletionTimestamp"):
            wait.append(ref)
        elif MIRROR_ANNOTATION in (m.get("annotations") or {}):
            skip.append((ref, "mirror pod of a static pod"))
        elif controller is not None and controller.get("kind") == "DaemonSet":
            skip.append((ref, f"managed by DaemonSet {controller.get('name')}"))
        elif phase in ("Succeeded", "Failed"):
            evict.append(ref)
        elif controller is None and not force:
            refuse.append((ref, "not managed by a controller (it would be gone for good)"))
        elif any("emptyDir" in v for v in spec.get("volumes") or []) and not delete_emptydir_data:
            refuse.append((ref, "uses emptyDir storage (its data would be deleted)"))
        else:
            evict.append(ref)
    return DrainPlan(tuple(evict), tuple(skip), tuple(refuse), tuple(wait))


def blocker_from(ref: PodRef, error: KubeApiError) -> Blocker:
    """Name the budget behind a 429 from the eviction's Status causes."""
    for cause in error.causes:
        if cause.get("reason") == "DisruptionBudget" or cause.get("type") == "DisruptionBudget":
            message = str(cause.get("message", ""))
            m = _BUDGET.search(message)
            budget = f"{ref.namespace}/{m.group(1)}" if m else ""
            detail = message.split(" ", 4)[-1] if m else message
            return Blocker(ref, budget, detail or error.message)
    return Blocker(ref, "", (error.body or {}).get("message") or error.message)


def drain_node(
    client: KubeClient,
    node: str,
    *,
    timeout: float,
    retry_interval: float = 5.0,
    poll_interval: float = 1.0,
    grace_period_seconds: int | None = None,
    force: bool = False,
    delete_emptydir_data: bool = True,
    uncordon_on_failure: bool = True,
    emitter: Emitter = NULL,
    sleep: Callable[[float], None] = time.sleep,
) -> DrainResult:
    """Cordon ``node`` and evict its pods within ``timeout`` seconds (see module doc)."""
    started = time.monotonic()
    deadline = started + timeout
    emitter.emit("step.started", f"draining {node} (deadline {timeout:g}s)", node=node, step="drain")
    was_cordoned = get_node(client, node).unschedulable
    result = DrainResult(node=node, cordoned=cordon(client, node, emitter=emitter) and not was_cordoned)
    try:
        _evict_all(
            client,
            node,
            result,
            deadline,
            timeout,
            retry_interval,
            poll_interval,
            grace_period_seconds,
            force,
            delete_emptydir_data,
            emitter,
            sleep,
        )
    except BaseException as exc:
        if uncordon_on_failure and result.cordoned:
            try:
                uncordon(client, node, emitter=emitter)
                if isinstance(exc, DrainTimeout | DrainRefused):
                    exc.uncordoned = True
                    exc.message += f"; {node} was uncordoned again"
            except Exception as undo:  # report, but keep the original failure
                emitter.emit(
                    "warning", f"could not uncordon {node} after the failed drain: {undo}", node=node
                )
        emitter.emit("step.failed", f"drain of {node} failed: {exc}", node=node, step="drain")
        raise
    result.seconds = round(time.monotonic() - started, 3)
    emitter.emit(
        "step.done",
        f"drained {node}: {len(result.evicted)} evicted, {len(result.skipped)} skipped",
        node=node,
        step="drain",
        seconds=result.seconds,
    )
    return result


def _pods_on(client: KubeClient, node: str) -> list[dict[str, Any]]:
    body = client.call(
        f"list pods on {node}",
        client.core.list_pod_for_all_namespaces,
        field_selector=f"spec.nodeName={node}",
    )
    return list(body.get("items") or [])


def _gone(client: KubeClient, ref: PodRef) -> bool:
    try:
        pod = client.call(f"read pod {ref}", client.core.read_namespaced_pod, ref.name, ref.namespace)
    except KubeApiError as exc:
        if exc.status == 404:
            return True
        raise
    return (pod.get("metadata") or {}).get("uid") != ref.uid


def _evict_all(
    client: KubeClient,
    node: str,
    result: DrainResult,
    deadline: float,
    timeout: float,
    retry_interval: float,
    poll_interval: float,
    grace: int | None,
    force: bool,
    delete_emptydir_data: bool,
    emitter: Emitter,
    sleep: Callable[[float], None],
) -> None:
    plan = plan_drain(_pods_on(client, node), force=force, delete_emptydir_data=delete_emptydir_data)
    if plan.refuse:
        listing = "; ".join(f"{ref}: {why}" for ref, why in plan.refuse)
        raise DrainRefused(
            f"cannot drain {node}: {listing}",
            node=node,
            pods=list(plan.refuse),
            hint="allow these explicitly (force for unmanaged pods, delete_emptydir_data for emptyDir) or move them first",
        )
    result.skipped = list(plan.skip)
    for ref, why in plan.skip:
        emitter.emit("info", f"skipping {ref}: {why}", node=node, pod=str(ref))
    pending: dict[PodRef, float] = {ref: 0.0 for ref in plan.evict}  # pod -> next attempt time
    evicted: list[PodRef] = list(plan.wait)
    blockers: dict[PodRef, Blocker] = {}
    body_options: dict[str, Any] = {} if grace is None else {"gracePeriodSeconds": grace}
    while pending or evicted:
        now = time.monotonic()
        for ref, due in list(pending.items()):
            if due > now:
                continue
            eviction = {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": ref.name, "namespace": ref.namespace},
            }
            if body_options:
                eviction["deleteOptions"] = body_options
            try:
                client.call(
                    f"evict pod {ref}",
                    client.core.create_namespaced_pod_eviction,
                    ref.name,
                    ref.namespace,
                    eviction,
                )
            except KubeApiError as exc:
                if exc.status == 404:
                    del pending[ref]
                    continue
                if exc.status == 429 or (
                    exc.status == 403 and any(c.get("reason") == "NamespaceTerminating" for c in exc.causes)
                ):
                    blocker = blocker_from(ref, exc)
                    if blockers.get(ref) != blocker:
                        emitter.emit(
                            "warning",
                            f"eviction of {blocker.describe()}; retrying every {retry_interval:g}s",
                            node=node,
                            pod=str(ref),
                            pdb=blocker.budget,
                        )
                    blockers[ref] = blocker
                    pending[ref] = time.monotonic() + retry_interval
                    continue
                raise
            del pending[ref]
            blockers.pop(ref, None)
            evicted.append(ref)
            result.evicted.append(ref)
            emitter.emit("info", f"evicted {ref}", node=node, pod=str(ref))
        evicted = [ref for ref in evicted if not _gone(client, ref)]
        if not pending and not evicted:
            return
        now = time.monotonic()
        if now >= deadline:
            _timeout(node, timeout, list(pending), evicted, blockers)
        next_due = min([*pending.values(), now + poll_interval] if evicted else pending.values())
        sleep(max(0.0, min(next_due, deadline) - now))


def _timeout(
    node: str,
    timeout: float,
    pending: list[PodRef],
    terminating: list[PodRef],
    blockers: dict[PodRef, Blocker],
) -> None:
    parts = [blockers[r].describe() if r in blockers else f"{r} not evicted yet" for r in pending]
    parts += [f"{r} still terminating" for r in terminating]
    budgets = sorted({b.budget for b in blockers.values() if b.budget})
    hint = (
        f"PodDisruptionBudget {', '.join(budgets)} allows no disruption now: wait for the workload to become healthy, "
        "scale it up, or relax the budget, then retry"
        if budgets
        else "pods are slow to terminate: check their terminationGracePeriodSeconds and finalizers"
    )
    raise DrainTimeout(
        f"drain of {node} did not finish within {timeout:g}s: {len(pending) + len(terminating)} pod(s) left: {'; '.join(parts)}",
        node=node,
        blockers=[blockers[r] for r in pending if r in blockers],
        remaining=pending + terminating,
        hint=hint,
    )
