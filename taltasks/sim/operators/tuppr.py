"""A simulated tuppr (home-operations/tuppr 0.5): TalosUpgrade plans carried out on the
simulated nodes with tuppr's documented semantics.

Per ``TalosUpgrade`` (cluster-scoped), on every reconcile:

* the ``tuppr.home-operations.com/suspend`` annotation (any value) parks it ``Pending``
  (reason ``Suspended``);
* outside every ``spec.maintenance.windows`` entry it waits in ``MaintenanceWindow`` with
  ``nextMaintenanceWindow``; windows only gate *starting* a batch;
* **one upgrade at a time cluster-wide**: while another TalosUpgrade (or a
  KubernetesUpgrade) is active, it stays ``Pending`` ("Waiting for another TalosUpgrade
  plan 'x' to complete");
* nodes matching ``spec.nodeSelector``, sorted by name with the controller's own node
  first, whose Talos version differs from the target (the Node annotation
  ``tuppr.home-operations.com/version`` overrides it) are pending; an unreachable one parks
  the plan (``NodeUnreachable``); none left → ``Completed`` ("Successfully upgraded N nodes");
* the batch is the first ``spec.parallelism`` pending nodes; **health checks run before
  each batch** (CEL over the live objects, tuppr's rules: a named object must exist, else
  every object of the kind passes, none with a selector fails) — failing ones keep it in
  ``HealthChecking`` with the reason;
* the image: ``<factory-url>/<schematic>:<version>`` from the Node annotations, else the
  node's ``.machine.install.image`` with the version swapped;
* one upgrade Job per batch node in the controller's namespace, its pod placed on another
  node — **never on the node it upgrades** (hard placement); the Job cordons and drains the
  node through the Eviction rules (PDBs respected), upgrades it, waits until it is back on
  the target version and uncordons it — what ``talosctl upgrade --wait`` does;
* phases ``Upgrading`` / ``Rebooting`` with ``currentNodes``; when every Job of the batch is
  done each node is verified (version and readiness) into ``completedNodes`` or
  ``failedNodes``; any failure ends the plan ``Failed``.

Status carries ``phase``, ``currentNode(s)``, ``completedNodes``, ``failedNodes``,
``message``, ``observedGeneration``, ``startedAt``, ``completedAt``, ``lastUpdated``,
``nextMaintenanceWindow`` and the ``Progressing``/``Ready`` conditions as tuppr sets them.

A ``KubernetesUpgrade`` is carried out too (:mod:`.tupprk8s`): it waits while any
TalosUpgrade is active or pending, runs its health checks, then one ``talosctl
upgrade-k8s`` Job moves the control planes' static pods and every kubelet to its version.

The Talos side is reached through :class:`Machines` (the simulator's nodes, in process).
Every step is recorded: ``tuppr.phase``, ``tuppr.health``, ``tuppr.job`` and
``tuppr.job_done`` (with the node the Job's pod ran on), ``tuppr.cordon``/``tuppr.uncordon``,
``tuppr.node``; the Kubernetes side's entries are ``tuppr.k8s_*``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from taltasks.sim.kube.nodes import node_ready
from taltasks.sim.kube.objects import is_deleting, rfc3339
from taltasks.sim.kube.runtime import Controller, Reactor
from taltasks.sim.kube.status import ApiError
from taltasks.sim.operators.common import ensure_namespace
from taltasks.sim.operators.tupprk8s import KubernetesUpgrades

GROUP = "tuppr.home-operations.com"
TALOS = f"talosupgrades.{GROUP}"
KUBERNETES = f"kubernetesupgrades.{GROUP}"
SUSPEND = f"{GROUP}/suspend"
VERSION_ANNOTATION = f"{GROUP}/version"
FACTORY_URL = f"{GROUP}/factory-url"
SCHEMATIC = f"{GROUP}/schematic"
TARGET_NODE_LABEL = f"{GROUP}/target-node"
UPGRADING_LABEL = f"{GROUP}/upgrading"
ACTIVE = ("HealthChecking", "PreHook", "Draining", "Upgrading", "Rebooting", "PostHook")
IN_FLIGHT = ("PreHook", "Draining", "Upgrading", "Rebooting", "PostHook")
TERMINAL = ("Completed", "Failed")


class Machines(Protocol):
    """What tuppr's Talos client and its Jobs' talosctl see of the nodes."""

    def version(self, node: str) -> str | None:
        """The running Talos version; None when the node does not answer."""

    def ready(self, node: str) -> bool: ...

    def boot_id(self, node: str) -> str: ...

    def install_image(self, node: str) -> str | None: ...

    def schematic(self, node: str) -> str: ...

    def upgrade(self, node: str, image: str) -> None:
        """Start the upgrade as ``talosctl upgrade`` does for this node's version; raises
        ``RuntimeError`` with Talos's refusal."""

    # what a KubernetesUpgrade's ``talosctl upgrade-k8s`` Job reads and changes

    def control_plane(self, node: str) -> bool: ...

    def kubernetes_image(self, node: str, component: str) -> str | None:
        """The image the node's config names for a component (None: Talos's default)."""

    def proxy_disabled(self, node: str) -> bool: ...

    def set_kubernetes_image(self, node: str, component: str, image: str) -> bool:
        """Set a component's image in the node's config and apply it without a reboot;
        False when already set; ``RuntimeError`` with the node's refusal."""


@dataclass(frozen=True)
class TupprConfig:
    namespace: str = "system-upgrade"
    controller_node: str = ""  # where the controller pod runs ("" : the first worker)
    reconcile_seconds: float = 0.05
    job_timeout_seconds: float = 120.0  # spec.policy.timeout wins when set
    drain_retry_seconds: float = 0.05


@dataclass
class _Job:
    plan: str
    node: str
    image: str
    target: str
    pod_node: str
    thread: threading.Thread | None = None
    outcome: str = ""  # "", succeeded, failed
    error: str = ""


class TupprController(Controller):
    watches = (TALOS, KUBERNETES, "nodes")

    def __init__(self, reactor: Reactor, config: TupprConfig, machines: Machines) -> None:
        super().__init__(reactor)
        self.config = config
        self.machines = machines
        self.jobs: dict[tuple[str, str], _Job] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._windows: dict[tuple[str, str, str, str], tuple[bool, dt.datetime]] = {}
        self.kubernetes = KubernetesUpgrades(self)

    def stop(self) -> None:
        """Running Jobs give up (the simulator is going away)."""
        self.stopping.set()

    # ---- set-up ---------------------------------------------------------------------------

    def start(self) -> None:
        ensure_namespace(self.store, self.config.namespace)
        super().start()
        self.reactor.every(self.config.reconcile_seconds, self.trigger)

    @property
    def controller_node(self) -> str:
        if self.config.controller_node:
            return self.config.controller_node
        workers = sorted(
            n["metadata"]["name"]
            for n in self.store.list("nodes")
            if "node-role.kubernetes.io/control-plane" not in (n["metadata"].get("labels") or {})
        )
        return workers[0] if workers else ""

    def record(self, kind: str, **data: Any) -> None:
        recorder = self.store.recorder
        if recorder is not None:
            recorder.record(f"tuppr.{kind}", **data)

    # ---- the loop -------------------------------------------------------------------------

    def reconcile(self) -> None:
        plans = sorted(
            self.store.list(TALOS),
            key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]),
        )
        for plan in plans:
            if not is_deleting(plan):
                self._talos(plan)
        for upgrade in self.store.list(KUBERNETES):
            if not is_deleting(upgrade):
                self.kubernetes.reconcile(upgrade)

    def _talos(self, plan: dict[str, Any]) -> None:
        name, spec = plan["metadata"]["name"], plan.get("spec") or {}
        status = plan.get("status") or {}
        phase = status.get("phase", "")
        annotations = plan["metadata"].get("annotations") or {}
        if SUSPEND in annotations:
            value = annotations[SUSPEND]
            self._set(
                plan,
                "Pending",
                f"Controller suspended via annotation (value: {value}) - remove annotation to resume",
                reason="Suspended",
            )
            return
        generation = plan["metadata"].get("generation", 1)
        if status.get("observedGeneration") not in (None, generation) and phase not in IN_FLIGHT:
            self._set(plan, "Pending", "Spec changed, restarting upgrade", reset=True)
            return
        if phase == "Failed":
            return
        if phase == "Completed":
            if self._pending_nodes(plan)[0]:
                self._set(plan, "Pending", "New node detected, restarting upgrade", reset=True)
            return
        if phase not in ACTIVE:
            if not self._window_open(plan):
                return
            blocker = self._blocker(name)
            if blocker:
                self._set(plan, "Pending", blocker, reason="WaitingForOtherUpgrade")
                return
        running = [j for (p, _), j in self.jobs.items() if p == name]
        if running:
            self._batch_status(plan, running)
            return
        if status.get("failedNodes"):
            self._set(plan, "Failed", self._completion_message(plan))
            return
        self._next_batch(plan, spec)

    # ---- coordination and windows ---------------------------------------------------------

    def _blocker(self, name: str) -> str:
        for k in self.store.list(KUBERNETES):
            if (k.get("status") or {}).get("phase") in ACTIVE:
                return f"Waiting for KubernetesUpgrade '{k['metadata']['name']}' to complete"
        for t in self.store.list(TALOS):
            if t["metadata"]["name"] != name and (t.get("status") or {}).get("phase") in ACTIVE:
                return f"Waiting for another TalosUpgrade plan '{t['metadata']['name']}' to complete"
        return ""

    def _window_open(self, plan: dict[str, Any]) -> bool:
        upcoming = self.closed_window(plan.get("spec") or {})
        if upcoming:
            self._set(
                plan,
                "MaintenanceWindow",
                f"Waiting for maintenance window (next: {upcoming})",
                extra={"nextMaintenanceWindow": upcoming},
            )
        return not upcoming

    def closed_window(self, spec: Mapping[str, Any]) -> str:
        """When the next of ``spec.maintenance.windows`` opens (RFC 3339, UTC) while every
        one is closed; "" when one is open or there are none."""
        windows = (spec.get("maintenance") or {}).get("windows") or []
        if not windows:
            return ""
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        nexts = []
        for w in windows:
            key = (str(w.get("start")), str(w.get("duration")), str(w.get("timezone")), now.isoformat())
            if key not in self._windows:  # one evaluation per window and minute
                self._windows[key] = window_state(w, now)
            opened, upcoming = self._windows[key]
            if opened:
                return ""
            nexts.append(upcoming)
        return min(nexts).strftime("%Y-%m-%dT%H:%M:%SZ")

    # ---- nodes ----------------------------------------------------------------------------

    def _nodes(self, plan: dict[str, Any]) -> list[dict[str, Any]]:
        from taltasks.workflows.batchsafety import selector_matches

        selector = (plan.get("spec") or {}).get("nodeSelector")
        nodes = [
            n
            for n in self.store.list("nodes")
            if selector is None or selector_matches(selector, n["metadata"].get("labels") or {})
        ]
        first = self.controller_node
        return sorted(nodes, key=lambda n: (n["metadata"]["name"] != first, n["metadata"]["name"]))

    def _target(self, plan: dict[str, Any], node: dict[str, Any]) -> str:
        override = (node["metadata"].get("annotations") or {}).get(VERSION_ANNOTATION)
        return override or (plan.get("spec") or {}).get("talos", {}).get("version", "")

    def _pending_nodes(self, plan: dict[str, Any]) -> tuple[list[str], list[str]]:
        status = plan.get("status") or {}
        done = set(status.get("completedNodes") or [])
        failed = {f.get("nodeName") for f in status.get("failedNodes") or []}
        pending, unreachable = [], []
        for node in self._nodes(plan):
            name = node["metadata"]["name"]
            if name in done or name in failed:
                continue
            version = self.machines.version(name)
            if version is None:
                unreachable.append(name)
            elif version != self._target(plan, node):
                pending.append(name)
        return pending, unreachable

    def _image(self, plan: dict[str, Any], node: dict[str, Any]) -> str:
        name = node["metadata"]["name"]
        target = self._target(plan, node)
        annotations = node["metadata"].get("annotations") or {}
        if annotations.get(FACTORY_URL):
            schematic = annotations.get(SCHEMATIC) or self.machines.schematic(name)
            if not schematic:
                raise RuntimeError(
                    f"node {name}: annotation {FACTORY_URL} is set but no schematic is available"
                )
            return f"{annotations[FACTORY_URL].rstrip('/')}/{schematic}:{target}"
        current = self.machines.install_image(name) or ""
        repo, sep, _ = current.rpartition(":")
        if not sep or "/" in current.rsplit(":", 1)[-1]:
            raise RuntimeError(f"invalid current image format for node {name}: {current}")
        return f"{repo}:{target}"

    # ---- a batch --------------------------------------------------------------------------

    def _next_batch(self, plan: dict[str, Any], spec: dict[str, Any]) -> None:
        name = plan["metadata"]["name"]
        pending, unreachable = self._pending_nodes(plan)
        if unreachable:
            self._set(
                plan,
                "Pending",
                f"Waiting for unreachable node(s): {', '.join(unreachable)}",
                reason="NodeUnreachable",
            )
            return
        if not pending:
            self._set(plan, "Completed", self._completion_message(plan))
            return
        batch = pending[: max(1, int(spec.get("parallelism") or 1))]
        nodes = {n["metadata"]["name"]: n for n in self._nodes(plan)}
        try:
            images = {n: self._image(plan, nodes[n]) for n in batch}
        except RuntimeError as exc:
            self._set(plan, "Pending", f"Cannot build target image: {exc}", reason="BuildTargetImage")
            return
        failing = self.health(spec.get("healthChecks") or [])
        self.record("health", plan=name, nodes=batch, passed=not failing, failing=failing)
        if failing:
            self._set(plan, "HealthChecking", f"Waiting for health checks: {'; '.join(failing)}")
            return
        self._set(plan, "HealthChecking", "Running health checks")
        for node in batch:
            self._start_job(plan, node, images[node], self._target(plan, nodes[node]), batch)
        self._set(plan, "Upgrading", f"Upgrading {len(batch)} nodes", nodes=batch)

    def health(self, checks: list[Mapping[str, Any]]) -> list[str]:
        """The failing checks (described), evaluated once as tuppr's checker does per tick."""
        from taltasks.model.cel import evaluate
        from taltasks.workflows.batchsafety import selector_matches

        failing = []
        for i, check in enumerate(checks):
            label = check.get("description") or f"check {i}"
            rt = self._resource(check.get("apiVersion", ""), check.get("kind", ""))
            if rt is None:
                failing.append(f"{label}: {check.get('apiVersion')} {check.get('kind')} is not served")
                continue
            namespace = check.get("namespace") or None
            if check.get("name"):
                obj = self.store.try_get(rt.qualified, check["name"], namespace)
                objects = [obj] if obj is not None else []
                if not objects:
                    failing.append(f"{label}: {check['name']} not found")
                    continue
            else:
                objects = self.store.list(rt.qualified, namespace)
                selector = check.get("labelSelector")
                if selector:
                    objects = [
                        o for o in objects if selector_matches(selector, o["metadata"].get("labels") or {})
                    ]
                    if not objects:
                        failing.append(f"{label}: no object matches the selector")
                        continue
            for obj in objects:
                passed, seen = evaluate(check.get("expr", ""), obj)
                if not passed:
                    failing.append(f"{label}: {obj['metadata']['name']}: {seen}")
                    break
        return failing

    def _resource(self, api_version: str, kind: str) -> Any:
        group, _, version = api_version.rpartition("/")
        for rt in self.store.registry.all():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def _start_job(self, plan: dict[str, Any], node: str, image: str, target: str, batch: list[str]) -> None:
        """An upgrade Job for ``node``: its pod on a Ready, schedulable node outside the
        batch — never on ``node`` itself (tuppr's hard placement)."""
        name = plan["metadata"]["name"]
        candidates = [
            n["metadata"]["name"]
            for n in self.store.list("nodes")
            if node_ready(n)
            and not (n.get("spec") or {}).get("unschedulable")
            and n["metadata"]["name"] not in batch
        ]
        pod_node = sorted(candidates)[0] if candidates else ""
        job_name = f"tuppr-{name}-{node}"[:63].rstrip("-")
        self.store.upsert(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": job_name,
                    "namespace": self.config.namespace,
                    "labels": {
                        "app.kubernetes.io/name": "talos-upgrade",
                        "app.kubernetes.io/instance": name,
                        "app.kubernetes.io/part-of": "tuppr",
                        TARGET_NODE_LABEL: node,
                    },
                },
                "spec": {
                    "backoffLimit": 2,
                    "template": {
                        "spec": {
                            "affinity": {
                                "nodeAffinity": {
                                    "requiredDuringSchedulingIgnoredDuringExecution": {
                                        "nodeSelectorTerms": [
                                            {
                                                "matchExpressions": [
                                                    {
                                                        "key": "kubernetes.io/hostname",
                                                        "operator": "NotIn",
                                                        "values": [node],
                                                    }
                                                ]
                                            }
                                        ]
                                    }
                                }
                            },
                            "containers": [
                                {
                                    "name": "upgrade",
                                    "image": "ghcr.io/siderolabs/talosctl",
                                    "args": ["upgrade", f"--image={image}"],
                                }
                            ],
                            "restartPolicy": "Never",
                        }
                    },
                },
            }
        )
        self.store.mutate("nodes", node, _label)
        job = _Job(name, node, image, target, pod_node)
        timeout = (
            _seconds(((plan.get("spec") or {}).get("policy") or {}).get("timeout"))
            or self.config.job_timeout_seconds
        )
        self.record("job", plan=name, node=node, image=image, pod_node=pod_node, job=job_name)
        job.thread = threading.Thread(
            target=self._run_job, args=(job, timeout), name=f"sim-tuppr-{node}", daemon=True
        )
        with self._lock:
            self.jobs[(name, node)] = job
        job.thread.start()

    def _run_job(self, job: _Job, timeout: float) -> None:
        """What the Job's ``talosctl upgrade --wait`` does to the node."""
        deadline = time.monotonic() + timeout
        stopping = self.stopping
        try:
            before = self.machines.boot_id(job.node)
            self._cordon(job.node, True)
            self._drain(job.node, deadline)
            self.machines.upgrade(job.node, job.image)
            while time.monotonic() < deadline and not stopping.is_set():
                if (
                    self.machines.ready(job.node)
                    and self.machines.version(job.node) == job.target
                    and self.machines.boot_id(job.node) != before
                    and node_ready(self.store.try_get("nodes", job.node) or {})
                ):
                    break
                stopping.wait(0.02)
            else:
                raise RuntimeError(f"node {job.node} did not come back on {job.target} within {timeout:g}s")
            self._cordon(job.node, False)
            job.outcome = "succeeded"
        except Exception as exc:  # the Job fails; the controller verifies the node
            job.error = str(exc)
            job.outcome = "failed"
        self.record("job_done", plan=job.plan, node=job.node, outcome=job.outcome, error=job.error)
        self.trigger()

    def _cordon(self, node: str, on: bool) -> None:
        def put(n: dict[str, Any]) -> None:
            spec = n.setdefault("spec", {})
            if on:
                spec["unschedulable"] = True
            else:
                spec.pop("unschedulable", None)

        self.store.mutate("nodes", node, put)
        self.record("cordon" if on else "uncordon", node=node)

    def _drain(self, node: str, deadline: float) -> None:
        """Evict every pod but DaemonSet and mirror pods, PDBs respected, retrying refusals."""
        stopping = self.stopping
        while time.monotonic() < deadline and not stopping.is_set():
            left = [
                p
                for p in self.store.list("pods", field_selector=f"spec.nodeName={node}")
                if not _daemon_or_mirror(p)
            ]
            if not left:
                return
            for pod in left:
                if is_deleting(pod):
                    continue
                try:
                    self.store.evict(pod["metadata"]["name"], pod["metadata"]["namespace"])
                except ApiError as exc:
                    if exc.code not in (404, 429):
                        raise
            stopping.wait(self.config.drain_retry_seconds)
        raise RuntimeError(f"draining {node} did not finish in time")

    def _batch_status(self, plan: dict[str, Any], running: list[_Job]) -> None:
        name = plan["metadata"]["name"]
        nodes = [j.node for j in running]
        if any(not j.outcome for j in running):
            rebooting = any(not node_ready(self.store.try_get("nodes", j.node) or {}) for j in running)
            phase, message = (
                ("Rebooting", f"Nodes rebooting ({sum(not j.outcome for j in running)} running)")
                if rebooting
                else ("Upgrading", f"Upgrading {len(running)} nodes")
            )
            self._set(plan, phase, message, nodes=nodes)
            return
        completed = list((plan.get("status") or {}).get("completedNodes") or [])
        failed = list((plan.get("status") or {}).get("failedNodes") or [])
        for job in running:
            node = self.store.try_get("nodes", job.node)
            ok = (
                node is not None
                and self.machines.ready(job.node)
                and self.machines.version(job.node) == job.target
            )
            if ok:
                completed.append(job.node)
            else:
                failed.append(
                    {
                        "nodeName": job.node,
                        "retries": 0,
                        "lastError": job.error or "verification failed",
                        "jobName": f"tuppr-{name}-{job.node}",
                    }
                )
            self.store.mutate("nodes", job.node, _unlabel)
            self.record(
                "node", plan=name, node=job.node, outcome="completed" if ok else "failed", error=job.error
            )
            with self._lock:
                self.jobs.pop((name, job.node), None)
        extra = {"completedNodes": completed, "failedNodes": failed}
        if failed:
            self._set(
                plan, "Failed", f"Batch upgrade stopped: {len(failed)} nodes failed - stopping", extra=extra
            )
        else:
            self._set(
                plan,
                "Pending",
                f"Batch completed successfully ({len(completed)} total completed)",
                extra=extra,
            )
        self.trigger()

    # ---- status ---------------------------------------------------------------------------

    def _completion_message(self, plan: dict[str, Any]) -> str:
        status = plan.get("status") or {}
        done, failed = len(status.get("completedNodes") or []), len(status.get("failedNodes") or [])
        if failed:
            return f"Completed with failures: {done} successful, {failed} failed"
        return f"Successfully upgraded {done} nodes"

    def _set(
        self,
        plan: dict[str, Any],
        phase: str,
        message: str,
        *,
        reason: str = "",
        nodes: list[str] | None = None,
        reset: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        name = plan["metadata"]["name"]
        generation = plan["metadata"].get("generation", 1)
        current = self.store.try_get(TALOS, name) or plan
        old = dict(current.get("status") or {})
        status = dict(old)
        if reset:
            for key in ("completedNodes", "failedNodes", "rebootingNodes", "startedAt", "completedAt"):
                status.pop(key, None)
        now = rfc3339()
        status.update(
            {
                "phase": phase,
                "message": message,
                "currentNodes": list(nodes or []),
                "currentNode": (nodes or [""])[0],
                "observedGeneration": generation,
            }
        )
        status.update(extra or {})
        if phase in ACTIVE and not status.get("startedAt"):
            status["startedAt"] = now
        if phase in TERMINAL:
            status.setdefault("completedAt", now)
        status["conditions"] = _conditions(
            old.get("conditions") or [], phase, reason or phase, message, generation, now
        )
        if same_but_stamp(status, old):
            return
        status["lastUpdated"] = now
        self.store.update_status(TALOS, name, status)
        if old.get("phase") != phase or old.get("message") != message:
            self.record("phase", plan=name, phase=phase, message=message, nodes=list(nodes or []))


def same_but_stamp(status: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether ``status`` says nothing ``old`` did not (``lastUpdated`` aside): tuppr writes
    a status only when something in it changed, so watchers are not woken by a time stamp."""
    return {k: v for k, v in status.items() if k != "lastUpdated"} == {
        k: v for k, v in old.items() if k != "lastUpdated"
    }


def _conditions(
    existing: list[dict[str, Any]], phase: str, reason: str, message: str, generation: int, now: str
) -> list[dict[str, Any]]:
    """tuppr's Progressing (True while in flight) and Ready (True unless Failed) conditions;
    ``lastTransitionTime`` moves only when the status does."""
    wanted = {
        "Progressing": "True" if phase in IN_FLIGHT else "False",
        "Ready": "False" if phase == "Failed" else "True",
    }
    previous = {c.get("type"): c for c in existing}
    out = []
    for kind, value in wanted.items():
        before = previous.get(kind) or {}
        out.append(
            {
                "type": kind,
                "status": value,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": before.get("lastTransitionTime", now)
                if before.get("status") == value
                else now,
            }
        )
    return out


def _unlabel(node: dict[str, Any]) -> None:
    (node["metadata"].get("labels") or {}).pop(UPGRADING_LABEL, None)


def _label(node: dict[str, Any]) -> None:
    node["metadata"].setdefault("labels", {})[UPGRADING_LABEL] = "true"


def _daemon_or_mirror(pod: Mapping[str, Any]) -> bool:
    m = pod.get("metadata") or {}
    if "kubernetes.io/config.mirror" in (m.get("annotations") or {}):
        return True
    return any(o.get("kind") == "DaemonSet" for o in m.get("ownerReferences") or [])


def _seconds(text: Any) -> float | None:
    if not text:
        return None
    from taltasks.model.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        return None


def window_state(window: Mapping[str, Any], now: dt.datetime) -> tuple[bool, dt.datetime]:
    """Whether a window (5-field cron ``start``, ``duration``, ``timezone``) is open at
    ``now``, and when it opens next (UTC). Minute resolution, looking back one duration and
    ahead eight days."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(window.get("timezone") or "UTC")
    length = _seconds(window.get("duration")) or 0.0
    local = now.astimezone(tz).replace(second=0, microsecond=0)
    minute = dt.timedelta(minutes=1)
    t = local - dt.timedelta(seconds=length)
    while t <= local:
        if cron_matches(window.get("start", ""), t) and local < t + dt.timedelta(seconds=length):
            return True, now
        t += minute
    t = local + minute
    end = local + dt.timedelta(days=8)
    while t < end:
        if cron_matches(window.get("start", ""), t):
            return False, t.astimezone(dt.UTC)
        t += minute
    return False, end.astimezone(dt.UTC)


def cron_matches(expr: str, t: dt.datetime) -> bool:
    """A 5-field cron expression at minute ``t`` (numbers, ``*``, lists, ranges, steps;
    day-of-month and day-of-week OR-ed when both are restricted, as cron does)."""
    fields = expr.split()
    if len(fields) != 5:
        return False
    minute, hour, dom, month, dow = fields
    weekday = (t.weekday() + 1) % 7  # cron: 0 (and 7) is Sunday
    dom_ok, dow_ok = (
        _field(dom, t.day, 1, 31),
        _field(dow, weekday, 0, 7) or (weekday == 0 and _field(dow, 7, 0, 7)),
    )
    day = (dom_ok or dow_ok) if dom != "*" and dow != "*" else (dom_ok and dow_ok)
    return (
        _field(minute, t.minute, 0, 59)
        and _field(hour, t.hour, 0, 23)
        and _field(month, t.month, 1, 12)
        and day
    )


_NAMES = {
    name: i
    for names in (("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),)
    for i, name in enumerate(names, start=1)
} | {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


def _field(text: str, value: int, low: int, high: int) -> bool:
    for name, number in _NAMES.items():
        text = text.upper().replace(name, str(number))
    for part in text.split(","):
        base, _, step = part.partition("/")
        every = int(step) if step else 1
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(base)
            end = high if step else start
        if start <= value <= end and (value - start) % every == 0:
            return True
    return False
