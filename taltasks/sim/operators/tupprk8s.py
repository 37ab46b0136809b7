"""The simulated tuppr's KubernetesUpgrade controller (home-operations/tuppr 0.5).

Per ``KubernetesUpgrade`` (cluster-scoped, one per cluster), on every reconcile, in tuppr's
order:

* the ``tuppr.home-operations.com/suspend`` annotation parks it ``Pending`` (``Suspended``);
* a spec the status has not seen yet (``observedGeneration``, so also a new resource)
  resets it to ``Pending`` ("Spec updated to <v>, restarting upgrade process");
* ``Failed`` stays; ``Completed`` stays while every Node's kubelet runs the target, else it
  re-opens (``completionCycles``, at most five times, then ``Failed``);
* not yet active: outside every maintenance window it waits in ``MaintenanceWindow``; while
  any TalosUpgrade is active **or Pending** it waits (``WaitingForOtherUpgrade``);
* the upgrade Job, when there is one: running → ``Upgrading``; succeeded → ``Completed``
  ("Cluster successfully upgraded to <v>") once every control plane's kubelet runs the
  target, else the Job goes and the next reconcile starts another; failed on its last
  attempt (backoffLimit 5) → ``Failed`` ("Kubernetes upgrade job failed permanently",
  ``lastError`` "Job failed permanently");
* every Node already on the target and the API server reporting it → ``Completed``;
* otherwise the health checks run first (``HealthChecking``, the same CEL checks as a
  TalosUpgrade's) and, once they pass, one Job runs ``talosctl upgrade-k8s --to <v>``
  against the *controller node*: the first control plane (by name) whose kubelet is not on
  the target. The Job's pod has no node affinity and tolerates every taint (tuppr's
  talosctl pod spec), so it lands on any Ready node; its talosctl is the controller node's
  Talos version.

What the Job's ``talosctl upgrade-k8s`` does, as ``talos.upgrade-k8s`` does it (through
:class:`~taltasks.sim.operators.tuppr.Machines`): per component (kube-apiserver,
kube-controller-manager, kube-scheduler) per control plane, set the image in the node's
config, apply it without a reboot, and wait until that node's static pod runs the new
image, Ready; then kube-proxy's image on the control planes (unless disabled); then the
kubelet image node by node (control planes first), each time waiting until the Node
reports the version, Ready. A step already done is skipped, so a retried attempt picks up
where the last one stopped. The first error ends the attempt with nothing further
touched; the Job retries (a new pod) until its backoff limit, then it has failed.

Status carries tuppr's fields: ``phase``, ``controllerNode``, ``currentVersion``,
``targetVersion``, ``jobName``, ``message``, ``lastError``, ``observedGeneration``,
``startedAt``, ``completedAt``, ``history`` (newest first, three entries),
``completionCycles``, ``nextMaintenanceWindow``, ``lastUpdated`` and the
``Progressing``/``Ready`` conditions. Recorded: ``tuppr.k8s_phase``, ``tuppr.k8s_health``,
``tuppr.k8s_job`` (with the node the pod ran on), ``tuppr.k8s_step`` (one node, one
component), ``tuppr.k8s_attempt`` (an attempt's end, with the error) and
``tuppr.k8s_job_done``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taltasks.sim.kube.nodes import CONTROL_PLANE_LABEL, node_ready
from taltasks.sim.kube.objects import rfc3339
from taltasks.sim.operators.common import pod_up

if TYPE_CHECKING:
    from taltasks.sim.operators.tuppr import TupprController

GROUP = "tuppr.home-operations.com"
KUBERNETES = f"kubernetesupgrades.{GROUP}"
TALOS = f"talosupgrades.{GROUP}"
APP_NAME = "kubernetes-upgrade"
BACKOFF_LIMIT = 5  # tuppr's KubernetesJobBackoffLimit
MAX_COMPLETION_CYCLES = 5
HISTORY = 3
DEFAULT_ENDPOINT = "https://kubernetes.default.svc.cluster.local:443"


@dataclass
class K8sJob:
    upgrade: str
    name: str
    node: str  # the controller node talosctl is pointed at
    target: str
    repository: str  # spec.kubernetes.imageRepository ("" : each image's own repository)
    pod_node: str
    thread: threading.Thread | None = None
    attempts: int = 0
    outcome: str = ""  # "", succeeded, failed
    error: str = ""


class KubernetesUpgrades:
    """The KubernetesUpgrade half of :class:`TupprController` (same store, clock and Talos
    view; Jobs are the controller's threads)."""

    def __init__(self, controller: TupprController) -> None:
        self.c = controller
        self.jobs: dict[str, K8sJob] = {}

    @property
    def store(self):
        return self.c.store

    # ---- the loop -------------------------------------------------------------------------

    def reconcile(self, upgrade: dict[str, Any]) -> None:
        from taltasks.sim.operators.tuppr import ACTIVE, SUSPEND

        meta = upgrade["metadata"]
        spec, status = upgrade.get("spec") or {}, upgrade.get("status") or {}
        target = (spec.get("kubernetes") or {}).get("version", "")
        phase = status.get("phase", "")
        annotations = meta.get("annotations") or {}
        if SUSPEND in annotations:
            message = f"Controller suspended via annotation (value: {annotations[SUSPEND]}) - remove annotation to resume"
            self._set(upgrade, "Pending", message, reason="Suspended")
            return
        if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 1):
            self._set(
                upgrade,
                "Pending",
                f"Spec updated to {target}, restarting upgrade process",
                extra={"jobName": "", "retries": 0, "lastError": "", "completionCycles": 0},
            )
            return
        if phase == "Failed":
            return
        if phase == "Completed":
            if self._all_nodes_at(target):
                return
            cycles = int(status.get("completionCycles") or 0)
            if cycles >= MAX_COMPLETION_CYCLES:
                self._set(
                    upgrade,
                    "Failed",
                    f"Some nodes never converged to {target} after {cycles} completion cycles; "
                    f"add the {GROUP}/reset annotation or bump the spec to retry",
                )
            else:
                self._set(
                    upgrade,
                    "Pending",
                    "Node lagging target version, restarting upgrade",
                    extra={"completionCycles": cycles + 1},
                )
            return
        if phase not in ACTIVE:
            upcoming = self.c.closed_window(spec)
            if upcoming:
                self._set(
                    upgrade,
                    "MaintenanceWindow",
                    f"Waiting for maintenance window (next: {upcoming})",
                    extra={"nextMaintenanceWindow": upcoming},
                )
                return
            blocker = self._blocker()
            if blocker:
                self._set(upgrade, "Pending", blocker, reason="WaitingForOtherUpgrade")
                return
        job = self.jobs.get(meta["name"])
        if job is not None:
            self._job_status(upgrade, job)
            return
        current = self._server_version()
        self._patch(upgrade, {"currentVersion": current, "targetVersion": target})
        if self._all_nodes_at(target):
            if current == target:
                self._set(
                    upgrade,
                    "Completed",
                    f"Kubernetes successfully upgraded to {target}",
                    extra={"currentVersion": target, "targetVersion": target},
                )
            return  # the API server does not report it yet
        failing = self.c.health(spec.get("healthChecks") or [])
        self.c.record("k8s_health", upgrade=meta["name"], passed=not failing, failing=failing)
        if failing:
            self._set(upgrade, "HealthChecking", f"Waiting for health checks: {'; '.join(failing)}")
            return
        self._set(upgrade, "HealthChecking", "Running health checks")
        self._start(upgrade, target, spec)

    def _blocker(self) -> str:
        from taltasks.sim.operators.tuppr import ACTIVE

        for t in self.store.list(TALOS):
            if (t.get("status") or {}).get("phase") in (*ACTIVE, "Pending"):
                return f"Waiting for TalosUpgrade '{t['metadata']['name']}' to complete"
        return ""

    # ---- versions -------------------------------------------------------------------------

    def _kubelets(self, control_planes_only: bool = False) -> dict[str, str]:
        return {
            n["metadata"]["name"]: ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
            for n in self.store.list("nodes")
            if not control_planes_only or CONTROL_PLANE_LABEL in (n["metadata"].get("labels") or {})
        }

    def _all_nodes_at(self, target: str) -> bool:
        """Every Node whose kubelet reports a version reports ``target`` (tuppr skips an
        empty one: a kubelet that has not reported yet)."""
        kubelets = self._kubelets()
        return bool(kubelets) and all(v in ("", target) for v in kubelets.values())

    def _server_version(self) -> str:
        """What the API server reports: the lowest kube-apiserver running (the mirror pods'
        image tags), else the lowest kubelet."""
        from taltasks.model.images import image_tag
        from taltasks.model.versions import Version

        tags = [
            image_tag(((p.get("spec") or {}).get("containers") or [{}])[0].get("image"))
            for p in self.store.list("pods", "kube-system", label_selector="k8s-app=kube-apiserver")
        ] or list(self._kubelets().values())
        versions = []
        for tag in tags:
            try:
                versions.append((Version.parse(tag or ""), tag or ""))
            except ValueError:
                continue
        return min(versions)[1] if versions else ""

    # ---- the Job --------------------------------------------------------------------------

    def _controller_node(self, target: str) -> str:
        kubelets = sorted(self._kubelets(control_planes_only=True).items())
        lagging = [n for n, v in kubelets if v != target]
        return (lagging or [n for n, _ in kubelets] or [""])[0]

    def _start(self, upgrade: dict[str, Any], target: str, spec: dict[str, Any]) -> None:
        name = upgrade["metadata"]["name"]
        node = self._controller_node(target)
        if not node:
            self._set(
                upgrade,
                "Failed",
                "Failed to find controller node: no controller node found with "
                "node-role.kubernetes.io/control-plane label",
            )
            return
        talosctl = self.c.machines.version(node)
        if not talosctl:
            self._set(
                upgrade,
                "Failed",
                f"Failed to create job: failed to build job: failed to detect talosctl version for node {node}",
                controller_node=node,
            )
            return
        k8s = spec.get("kubernetes") or {}
        repository = str(k8s.get("imageRepository") or "").rstrip("/")
        pod_node = next(
            (
                n["metadata"]["name"]
                for n in sorted(self.store.list("nodes"), key=lambda n: n["metadata"]["name"])
                if node_ready(n) and not (n.get("spec") or {}).get("unschedulable")
            ),
            "",
        )
        job_name = f"{name}-{node}"[: 57 - 10] + f"-{uuid.uuid4().hex[:8]}"
        args = [
            "upgrade-k8s",
            f"--endpoints={node}",
            f"--nodes={node}",
            f"--to={target}",
            f"--endpoint={k8s.get('endpoint') or DEFAULT_ENDPOINT}",
        ]
        if repository:
            args += [
                f"--{flag}-image={repository}/{component}"
                for flag, component in (
                    ("apiserver", "kube-apiserver"),
                    ("controller-manager", "kube-controller-manager"),
                    ("scheduler", "kube-scheduler"),
                    ("proxy", "kube-proxy"),
                    ("kubelet", "kubelet"),
                )
            ]
        labels = {
            "app.kubernetes.io/name": APP_NAME,
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/part-of": "tuppr",
            f"{GROUP}/target-node": node,
        }
        self.store.upsert(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": job_name, "namespace": self.c.config.namespace, "labels": labels},
                "spec": {
                    "backoffLimit": BACKOFF_LIMIT,
                    "completions": 1,
                    "parallelism": 1,
                    "activeDeadlineSeconds": 3600,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "priorityClassName": "system-node-critical",
                            "tolerations": [{"operator": "Exists"}],
                            "containers": [
                                {
                                    "name": "upgrade-k8s",
                                    "image": f"ghcr.io/siderolabs/talosctl:{talosctl}",
                                    "args": args,
                                }
                            ],
                        },
                    },
                },
            }
        )
        job = K8sJob(name, job_name, node, target, repository, pod_node)
        self.c.record("k8s_job", upgrade=name, job=job_name, node=node, pod_node=pod_node, target=target)
        job.thread = threading.Thread(
            target=self._run, args=(job,), name=f"sim-tuppr-k8s-{name}", daemon=True
        )
        self.jobs[name] = job
        job.thread.start()
        self._set(
            upgrade,
            "Upgrading",
            f"Upgrading Kubernetes to {target} on controller node {node}",
            controller_node=node,
            extra={"jobName": job_name},
        )

    def _job_status(self, upgrade: dict[str, Any], job: K8sJob) -> None:
        status = upgrade.get("status") or {}
        controller = status.get("controllerNode", "")
        if not job.outcome:
            self._set(
                upgrade,
                "Upgrading",
                f"Upgrading Kubernetes to {job.target} (job: {job.name})",
                controller_node=controller,
                extra={"jobName": job.name},
            )
            return
        del self.jobs[job.upgrade]
        if job.outcome == "failed":
            self._set(
                upgrade,
                "Failed",
                "Kubernetes upgrade job failed permanently",
                controller_node=controller,
                extra={"lastError": "Job failed permanently", "jobName": job.name},
            )
            self._delete_job(job)
            return
        if all(v == job.target for v in self._kubelets(control_planes_only=True).values()):
            self._set(
                upgrade,
                "Completed",
                f"Cluster successfully upgraded to {job.target}",
                extra={"currentVersion": job.target, "targetVersion": job.target},
            )
            return
        self._delete_job(job)
        self._set(
            upgrade,
            "Upgrading",
            f"Upgrading Kubernetes to {job.target}, continuing to next node",
            extra={"jobName": ""},
        )
        self.c.trigger()

    def _delete_job(self, job: K8sJob) -> None:
        if self.store.try_get("jobs.batch", job.name, self.c.config.namespace) is not None:
            self.store.delete("jobs.batch", job.name, namespace=self.c.config.namespace)

    def _job_counts(self, job: K8sJob, **counts: int) -> None:
        namespace = self.c.config.namespace
        current = self.store.try_get("jobs.batch", job.name, namespace)
        if current is not None:
            status = {**(current.get("status") or {}), **counts}
            self.store.update_status("jobs.batch", job.name, status, namespace=namespace)

    def _run(self, job: K8sJob) -> None:
        """The Job: pods running ``talosctl upgrade-k8s`` until one succeeds or the backoff
        limit is reached."""
        stopping = self.c.stopping
        while not stopping.is_set():
            job.attempts += 1
            self._job_counts(job, active=1)
            try:
                self._upgrade_k8s(job)
            except Exception as exc:  # this pod failed
                job.error = str(exc)
                self.c.record("k8s_attempt", upgrade=job.upgrade, attempt=job.attempts, error=job.error)
                self._job_counts(job, active=0, failed=job.attempts)
                if job.attempts >= BACKOFF_LIMIT:
                    job.outcome = "failed"
                    break
                stopping.wait(self.c.config.drain_retry_seconds)
                continue
            self.c.record("k8s_attempt", upgrade=job.upgrade, attempt=job.attempts, error="")
            self._job_counts(job, active=0, succeeded=1)
            job.outcome, job.error = "succeeded", ""
            break
        self.c.record(
            "k8s_job_done",
            upgrade=job.upgrade,
            job=job.name,
            node=job.node,
            outcome=job.outcome,
            error=job.error,
            attempts=job.attempts,
        )
        self.c.trigger()

    def _upgrade_k8s(self, job: K8sJob) -> None:
        """One ``talosctl upgrade-k8s`` run, in its order; raises at the first error."""
        from taltasks.machineconfig.kubecomponents import CONTROL_PLANE, KUBE_PROXY, KUBELET

        machines = self.c.machines
        nodes = sorted(
            (n["metadata"]["name"] for n in self.store.list("nodes")),
            key=lambda n: (not machines.control_plane(n), n),
        )
        planes = [n for n in nodes if machines.control_plane(n)]
        deadline = time.monotonic() + self.c.config.job_timeout_seconds
        for component in CONTROL_PLANE:
            for node in planes:
                self._step(
                    job,
                    node,
                    component,
                    deadline,
                    lambda image, node=node, name=component.name: self._static_pod_runs(node, name, image),
                )
        for node in planes:  # a DaemonSet: nothing of it to wait for on the node
            if not machines.proxy_disabled(node):
                self._step(job, node, KUBE_PROXY, deadline, None)
        for node in nodes:
            self._step(
                job, node, KUBELET, deadline, lambda _image, node=node: self._kubelet_at(node, job.target)
            )

    def _step(self, job: K8sJob, node: str, component: Any, deadline: float, done: Any) -> None:
        """Set one component's image on one node, then wait until ``done(image)``."""
        image = self._image(job, node, component)
        changed = self.c.machines.set_kubernetes_image(node, component.name, image)
        if done is not None:
            self._wait(deadline, lambda: done(image), f"{component.name} on {node} did not run {image}")
        self.c.record(
            "k8s_step", upgrade=job.upgrade, node=node, component=component.name, image=image, changed=changed
        )

    def _image(self, job: K8sJob, node: str, component: Any) -> str:
        from taltasks.model.images import retag

        if job.repository:
            return f"{job.repository}/{component.name}:{job.target}"
        current = self.c.machines.kubernetes_image(node, component.name)
        return retag(current or component.repository, job.target)

    def _wait(self, deadline: float, done: Any, what: str) -> None:
        stopping = self.c.stopping
        while time.monotonic() < deadline and not stopping.is_set():
            if done():
                return
            stopping.wait(0.02)
        raise RuntimeError(f"{what} within {self.c.config.job_timeout_seconds:g}s")

    def _static_pod_runs(self, node: str, component: str, image: str) -> bool:
        pods = self.store.list(
            "pods",
            "kube-system",
            label_selector=f"k8s-app={component}",
            field_selector=f"spec.nodeName={node}",
        )
        return any(
            ((p.get("spec") or {}).get("containers") or [{}])[0].get("image") == image and pod_up(p)
            for p in pods
        )

    def _kubelet_at(self, node: str, target: str) -> bool:
        n = self.store.try_get("nodes", node) or {}
        return (
            node_ready(n) and ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") == target
        )

    # ---- status ---------------------------------------------------------------------------

    def _patch(self, upgrade: dict[str, Any], fields: dict[str, Any]) -> None:
        name = upgrade["metadata"]["name"]
        current = self.store.try_get(KUBERNETES, name) or upgrade
        old = dict(current.get("status") or {})
        if all(old.get(k) == v for k, v in fields.items()):
            return
        self.store.update_status(KUBERNETES, name, {**old, **fields, "lastUpdated": rfc3339()})

    def _set(
        self,
        upgrade: dict[str, Any],
        phase: str,
        message: str,
        *,
        reason: str = "",
        controller_node: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """tuppr's setPhaseWithUpdates: phase, controllerNode, message and conditions with
        the audit fields (startedAt, completedAt, history); nothing written when nothing
        changes."""
        from taltasks.sim.operators.tuppr import ACTIVE, TERMINAL, _conditions, same_but_stamp

        name = upgrade["metadata"]["name"]
        generation = upgrade["metadata"].get("generation", 1)
        current = self.store.try_get(KUBERNETES, name) or upgrade
        old = dict(current.get("status") or {})
        now = rfc3339()
        conditions = _conditions(
            old.get("conditions") or [], phase, reason or phase, message, generation, now
        )
        status = {
            **old,
            "phase": phase,
            "controllerNode": controller_node,
            "message": message,
            "conditions": conditions,
            "observedGeneration": generation,
            **(extra or {}),
        }
        if same_but_stamp(status, old):
            return
        previous = old.get("phase", "")
        if phase == "Pending" and previous != "Pending":
            status.pop("startedAt", None)
            status.pop("completedAt", None)
        elif phase in ACTIVE and not old.get("startedAt"):
            status["startedAt"] = now
        elif phase in TERMINAL and previous not in TERMINAL and not old.get("completedAt"):
            status["completedAt"] = now
            if phase == "Failed" or old.get("startedAt"):
                entry = {
                    **({"fromVersion": old["currentVersion"]} if old.get("currentVersion") else {}),
                    "toVersion": old.get("targetVersion", ""),
                    "startedAt": old.get("startedAt") or now,
                    "completedAt": now,
                    "phase": phase,
                }
                if old.get("retries"):
                    entry["retries"] = int(old["retries"])
                if phase == "Failed":
                    entry["lastError"] = old.get("lastError") or message
                status["history"] = [entry, *(old.get("history") or [])][:HISTORY]
        status["lastUpdated"] = now
        self.store.update_status(KUBERNETES, name, status)
        if previous != phase or old.get("message") != message:
            self.c.record("k8s_phase", upgrade=name, phase=phase, message=message, node=controller_node)
