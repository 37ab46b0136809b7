"""The in-cluster machinery a workflow depends on, reduced to what it observes.

* :class:`Kubelet` — starts pods bound to Ready nodes (Running, Ready, IPs), finishes
  graceful deletions, removes pods of vanished nodes, keeps the control-plane mirror pods
  (``kubernetes.io/config.mirror``) of Ready control-plane nodes.
* :class:`Scheduler` — binds unscheduled pods to a Ready, schedulable node that matches
  their nodeSelector, required node affinity and tolerations, spreading by owner.
* :class:`DaemonSetController` — one pod per eligible node, created when the node is
  Ready; rolling template updates one node at a time; the status fields ``kubectl rollout
  status`` reads.
* :class:`DeploymentController` — replicas, rolling updates with maxSurge/maxUnavailable,
  status with observedGeneration and Available/Progressing conditions. Pods are owned by the
  Deployment directly (there are no ReplicaSets in the simulator).
* :class:`DisruptionController` — PodDisruptionBudget status (expectedPods, currentHealthy,
  desiredHealthy, disruptionsAllowed, the DisruptionAllowed condition).

Pod annotations tune the simulated kubelet per workload: ``sim.taltasks.dev/start-seconds``
(delay before a bound pod runs and is Ready) and ``sim.taltasks.dev/never-ready: "true"``
(the pod runs but never passes readiness).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taltasks.sim.kube import disruption, selectors
from taltasks.sim.kube.nodes import CONTROL_PLANE_LABEL, node_ready
from taltasks.sim.kube.objects import is_deleting, rfc3339
from taltasks.sim.kube.runtime import Controller, Reactor, Timer
from taltasks.sim.kube.status import ApiError

START_SECONDS = "sim.taltasks.dev/start-seconds"
NEVER_READY = "sim.taltasks.dev/never-ready"
MIRROR = "kubernetes.io/config.mirror"
_CHARS = "bcdfghjklmnpqrstvwxz2456789"
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def suffix(k: int = 5) -> str:
    return "".join(random.choices(_CHARS, k=k))


def template_hash(template: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    m = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    ref = disruption.controller_ref(obj)
    return ref is not None and ref.get("uid") == owner_uid


def tolerates(tolerations: list[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expr.get("operator", ""))
    if op is None:
        return False
    return selectors.Requirement(expr["key"], op, tuple(expr.get("values") or ())).matches(labels)


def node_fits(pod: Mapping[str, Any], node: Mapping[str, Any], *, ignore_unschedulable: bool = False) -> bool:
    """Whether the scheduler could place ``pod`` on ``node`` (readiness aside)."""
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    tolerations = spec.get("tolerations") or []
    cordoned = (node.get("spec") or {}).get("unschedulable") and not ignore_unschedulable
    if cordoned and not tolerates(
        tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    ):
        return False
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(
        all(_expression_matches(e, labels) for e in t.get("matchExpressions") or []) for t in terms
    ):
        return False
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return False
    return True


def pod_from_template(
    owner: Mapping[str, Any],
    template: Mapping[str, Any],
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    node: str | None = None,
    extra_tolerations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    tmeta = template.get("metadata") or {}
    spec = json.loads(json.dumps(template.get("spec") or {}))
    if node:
        spec["nodeName"] = node
    if extra_tolerations:
        spec["tolerations"] = (spec.get("tolerations") or []) + [
            t for t in extra_tolerations if t not in (spec.get("tolerations") or [])
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": {**(tmeta.get("labels") or {}), **dict(labels or {})},
            "annotations": dict(tmeta.get("annotations") or {}),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": spec,
    }


def _condition(
    kind: str,
    status: str,
    now: str,
    reason: str = "",
    message: str = "",
    previous: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    keep = previous is not None and previous.get("status") == status
    out = {
        "type": kind,
        "status": status,
        "lastTransitionTime": previous.get("lastTransitionTime") if keep else now,
    }  # type: ignore[union-attr]
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    out.update(extra)
    return out


def running_status(
    pod: Mapping[str, Any], node: Mapping[str, Any], pod_ip: str, *, ready: bool, now: str
) -> dict[str, Any]:
    host_ip = next(
        (
            a["address"]
            for a in (node.get("status") or {}).get("addresses") or []
            if a.get("type") == "InternalIP"
        ),
        "",
    )
    if (pod.get("spec") or {}).get("hostNetwork"):
        pod_ip = host_ip
    flag = "True" if ready else "False"
    containers = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        cid = hashlib.sha256(f"{pod['metadata']['uid']}/{c.get('name')}".encode()).hexdigest()
        containers.append(
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "imageID": f"{c.get('image')}@sha256:{cid[:64]}",
                "containerID": f"containerd://{cid}",
                "ready": ready,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
        )
    return {
        "phase": "Running",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
        "containerStatuses": containers,
    }


# ---- kubelet ----------------------------------------------------------------------------------

CONTROL_PLANE_STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class StaticPod:
    """A static pod a node's kubelet runs from its own manifests (``component`` is the pod
    name prefix and ``k8s-app`` label; ``annotations`` are the manifest's, e.g. Talos's
    ``talos.dev/config-version``)."""

    component: str
    image: str
    annotations: Mapping[str, str] = field(default_factory=dict)


StaticPodSource = Callable[[str], "Sequence[StaticPod] | None"]
"""node name → the static pods its kubelet runs, or None for the default set (the
control-plane components at the node's kubelet version, no annotations)."""


class Kubelet(Controller):
    """Every node's kubelet at once (see module docstring)."""

    watches = ("pods", "nodes")

    def __init__(
        self, reactor: Reactor, *, termination_seconds: float = 0.0, start_seconds: float = 0.0
    ) -> None:
        super().__init__(reactor)
        self.termination_seconds = termination_seconds
        self.start_seconds = start_seconds
        # Where a node's static pods come from: the simulated Talos nodes plug in here
        # (taltasks.sim.coupling); call ``trigger()`` after the source changes.
        self.static_pods: StaticPodSource | None = None
        self._starting: dict[str, Timer] = {}
        self._terminating: dict[str, Timer] = {}
        self._ips: dict[str, int] = defaultdict(int)

    def _pod_ip(self, node: Mapping[str, Any]) -> str:
        cidr = (node.get("spec") or {}).get("podCIDR") or "127.244.0.0/24"
        base = cidr.split("/")[0].rsplit(".", 1)[0]
        self._ips[base] += 1
        return f"{base}.{2 + (self._ips[base] - 1) % 250}"

    def reconcile(self) -> None:
        nodes = {n["metadata"]["name"]: n for n in self.store.list("nodes")}
        for pod in self.store.list("pods"):
            m, spec = pod["metadata"], pod.get("spec") or {}
            uid, node_name = m["uid"], spec.get("nodeName")
            if not node_name:
                continue
            node = nodes.get(node_name)
            if node is None:
                self._remove(pod)  # the pod garbage collector's job: node deleted
                continue
            if is_deleting(pod):
                if node_ready(node) and uid not in self._terminating:
                    grace = min(float(m.get("deletionGracePeriodSeconds") or 0), self.termination_seconds)
                    self._terminating[uid] = self.reactor.post(lambda p=pod: self._remove(p), grace)
                continue
            status = pod.get("status") or {}
            if status.get("phase") == "Pending" and node_ready(node) and uid not in self._starting:
                delay = float((m.get("annotations") or {}).get(START_SECONDS, self.start_seconds))
                self._starting[uid] = self.reactor.post(lambda p=pod: self._start(p), delay)
        self._mirror_pods(nodes)

    def _remove(self, pod: Mapping[str, Any]) -> None:
        m = pod["metadata"]
        self._terminating.pop(m["uid"], None)
        current = self.store.try_get("pods", m["name"], m["namespace"])
        if current is not None and current["metadata"]["uid"] == m["uid"]:
            try:
                self.store.delete("pods", m["name"], namespace=m["namespace"], grace_period_seconds=0)
            except ApiError as exc:
                if exc.code != 404:
                    raise

    def _start(self, pod: Mapping[str, Any]) -> None:
        m = pod["metadata"]
        self._starting.pop(m["uid"], None)
        current = self.store.try_get("pods", m["name"], m["namespace"])
        if current is None or current["metadata"]["uid"] != m["uid"] or is_deleting(current):
            return
        node = self.store.try_get("nodes", current["spec"]["nodeName"])
        if node is None or not node_ready(node) or (current.get("status") or {}).get("phase") != "Pending":
            return
        ready = (m.get("annotations") or {}).get(NEVER_READY) != "true"
        status = running_status(current, node, self._pod_ip(node), ready=ready, now=rfc3339())
        self.store.update_status("pods", m["name"], status, namespace=m["namespace"])

    def _mirror_pods(self, nodes: Mapping[str, Mapping[str, Any]]) -> None:
        """Mirror pods of the static pods each Ready control plane runs. A mirror pod whose
        image or annotations no longer match its static pod is replaced (the kubelet
        restarts the pod): deleted, then created again Pending, Ready once it started."""
        for name, node in nodes.items():
            if CONTROL_PLANE_LABEL not in (node["metadata"].get("labels") or {}) or not node_ready(node):
                continue
            desired = self.static_pods(name) if self.static_pods is not None else None
            if desired is None:
                version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
                desired = [StaticPod(c, f"registry.k8s.io/{c}:{version}") for c in CONTROL_PLANE_STATIC_PODS]
            for pod in desired:
                pod_name = f"{pod.component}-{name}"
                existing = self.store.try_get("pods", pod_name, "kube-system")
                if existing is not None:
                    if is_deleting(existing) or _runs(existing, pod):
                        continue
                    self.store.delete("pods", pod_name, namespace="kube-system", grace_period_seconds=0)
                    recorder = getattr(self.store, "recorder", None)
                    if recorder is not None:
                        recorder.record(
                            "kubelet.static_pod_replaced",
                            node=name,
                            pod=pod_name,
                            image=pod.image,
                            annotations=dict(pod.annotations),
                        )
                self.store.create(_mirror_pod(pod, pod_name, node))


def _runs(existing: Mapping[str, Any], pod: StaticPod) -> bool:
    """Whether a mirror pod already shows this static pod (same image and annotations)."""
    containers = (existing.get("spec") or {}).get("containers") or [{}]
    annotations = existing["metadata"].get("annotations") or {}
    return containers[0].get("image") == pod.image and all(
        annotations.get(k) == v for k, v in pod.annotations.items()
    )


def _mirror_pod(pod: StaticPod, pod_name: str, node: Mapping[str, Any]) -> dict[str, Any]:
    name = node["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": "kube-system",
            "labels": {"tier": "control-plane", "k8s-app": pod.component},
            "annotations": {
                **dict(pod.annotations),
                MIRROR: hashlib.sha256(
                    json.dumps([pod_name, pod.image, dict(pod.annotations)]).encode()
                ).hexdigest()[:32],
                "kubernetes.io/config.source": "file",
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": name,
                    "uid": node["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": name,
            "hostNetwork": True,
            "priorityClassName": "system-cluster-critical",
            "containers": [{"name": pod.component, "image": pod.image}],
            "tolerations": [{"operator": "Exists"}],
        },
    }


# ---- scheduler --------------------------------------------------------------------------------


class Scheduler(Controller):
    watches = ("pods", "nodes")

    def reconcile(self) -> None:
        nodes = [n for n in self.store.list("nodes") if node_ready(n)]
        pods = self.store.list("pods")
        load: dict[str, int] = defaultdict(int)
        by_owner: dict[tuple[str, str], int] = defaultdict(int)
        for p in pods:
            node = (p.get("spec") or {}).get("nodeName")
            if node:
                load[node] += 1
                ref = disruption.controller_ref(p)
                if ref:
                    by_owner[(ref["uid"], node)] += 1
        for pod in pods:
            spec, m = pod.get("spec") or {}, pod["metadata"]
            if (
                spec.get("nodeName")
                or is_deleting(pod)
                or spec.get("schedulerName", "default-scheduler") != "default-scheduler"
            ):
                continue
            fits = [n for n in nodes if node_fits(pod, n)]
            if not fits:
                self._unschedulable(pod, len(nodes))
                continue
            ref = disruption.controller_ref(pod)
            owner = ref["uid"] if ref else ""
            best = min(
                fits,
                key=lambda n: (
                    by_owner[(owner, n["metadata"]["name"])],
                    load[n["metadata"]["name"]],
                    n["metadata"]["name"],
                ),
            )
            name = best["metadata"]["name"]
            try:
                self.store.bind(m["name"], m["namespace"], name)
            except ApiError:
                continue
            load[name] += 1
            by_owner[(owner, name)] += 1

    def _unschedulable(self, pod: Mapping[str, Any], ready_nodes: int) -> None:
        m = pod["metadata"]
        conditions = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
        wanted = _condition(
            "PodScheduled",
            "False",
            rfc3339(),
            "Unschedulable",
            f"0/{ready_nodes} nodes are available: no Ready node fits the pod's node selector, affinity and tolerations.",
            conditions.get("PodScheduled"),
            lastProbeTime=None,
        )
        if conditions.get("PodScheduled") == wanted:
            return

        def put(obj: dict[str, Any]) -> None:
            status = obj.setdefault("status", {})
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
            ] + [wanted]

        self.store.mutate("pods", m["name"], put, namespace=m["namespace"], subresource="status")


# ---- DaemonSets -------------------------------------------------------------------------------


class DaemonSetController(Controller):
    watches = ("daemonsets.apps", "pods", "nodes")

    def reconcile(self) -> None:
        nodes = self.store.list("nodes")
        pods = self.store.list("pods")
        for ds in self.store.list("daemonsets.apps"):
            if not is_deleting(ds):
                self._sync(ds, nodes, pods)

    def _sync(self, ds: dict[str, Any], nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        m, spec = ds["metadata"], ds.get("spec") or {}
        template = spec.get("template") or {}
        revision = template_hash(template)
        mine = [p for p in pods if owned_by(p, m["uid"])]
        probe = pod_from_template(ds, template, "probe", extra_tolerations=DAEMON_TOLERATIONS)
        eligible = {n["metadata"]["name"]: n for n in nodes if node_fits(probe, n, ignore_unschedulable=True)}
        on_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in mine:
            on_node[(p.get("spec") or {}).get("nodeName", "")].append(p)
        outdated_allowed = 1
        unavailable = sum(
            1 for name in eligible if not any(disruption.pod_healthy(p) for p in on_node.get(name, []))
        )
        for name, node in sorted(eligible.items()):
            live = [p for p in on_node.get(name, []) if not is_deleting(p)]
            if not live and node_ready(node) and not on_node.get(name):
                pod = pod_from_template(
                    ds,
                    template,
                    f"{m['name']}-{suffix()}",
                    labels={
                        "controller-revision-hash": revision,
                        "pod-template-generation": str(m.get("generation", 1)),
                    },
                    node=name,
                    extra_tolerations=DAEMON_TOLERATIONS,
                )
                self.store.create(pod)
            for p in live:
                if (
                    (p["metadata"].get("labels") or {}).get("controller-revision-hash") != revision
                    and outdated_allowed > 0
                    and unavailable == 0
                ):
                    self.store.delete("pods", p["metadata"]["name"], namespace=m["namespace"])
                    outdated_allowed -= 1
        for node_name, node_pods in on_node.items():
            if node_name not in eligible:
                for p in node_pods:
                    if not is_deleting(p):
                        try:
                            self.store.delete("pods", p["metadata"]["name"], namespace=m["namespace"])
                        except ApiError as exc:  # the node going down removed it since we listed
                            if exc.code != 404:
                                raise
        scheduled = [n for n in eligible if any(not is_deleting(p) for p in on_node.get(n, []))]
        ready = [n for n in eligible if any(disruption.pod_healthy(p) for p in on_node.get(n, []))]
        updated = [
            n
            for n in eligible
            if any(
                (p["metadata"].get("labels") or {}).get("controller-revision-hash") == revision
                and not is_deleting(p)
                for p in on_node.get(n, [])
            )
        ]
        status = {
            "currentNumberScheduled": len(scheduled),
            "desiredNumberScheduled": len(eligible),
            "numberMisscheduled": sum(1 for n in on_node if n not in eligible and n),
            "numberReady": len(ready),
            "numberAvailable": len(ready),
            "updatedNumberScheduled": len(updated),
            "observedGeneration": m.get("generation", 1),
        }
        if len(eligible) - len(ready) > 0:
            status["numberUnavailable"] = len(eligible) - len(ready)
        if ds.get("status") != status:
            self.store.update_status("daemonsets.apps", m["name"], status, namespace=m["namespace"])


# ---- Deployments ------------------------------------------------------------------------------


def _resolve(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        x = int(value[:-1]) * total / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(value or 0)


class DeploymentController(Controller):
    watches = ("deployments.apps", "pods", "nodes")

    def reconcile(self) -> None:
        pods = self.store.list("pods")
        for dep in self.store.list("deployments.apps"):
            if not is_deleting(dep):
                self._sync(dep, pods)

    def _sync(self, dep: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        m, spec = dep["metadata"], dep.get("spec") or {}
        template = spec.get("template") or {}
        revision = template_hash(template)
        replicas = int(spec.get("replicas", 1))
        mine = [p for p in pods if owned_by(p, m["uid"]) and not is_deleting(p)]
        new = [p for p in mine if (p["metadata"].get("labels") or {}).get("pod-template-hash") == revision]
        old = [p for p in mine if p not in new]
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        surge = _resolve(rolling.get("maxSurge", "25%"), replicas, True)
        max_unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        if not spec.get("paused"):
            if strategy.get("type") == "Recreate" and old:
                for p in old:
                    self.store.delete("pods", p["metadata"]["name"], namespace=m["namespace"])
                old = []
            # scale the new revision up, within the surge budget
            room = replicas + surge - len(mine) if old else replicas - len(new)
            for _ in range(max(0, min(room, replicas - len(new)))):
                self.store.create(
                    pod_from_template(
                        dep,
                        template,
                        f"{m['name']}-{revision}-{suffix()}",
                        labels={"pod-template-hash": revision},
                    )
                )
            # scale old pods down while availability allows
            ready_total = sum(1 for p in mine if disruption.pod_healthy(p))
            for p in sorted(old, key=lambda p: (disruption.pod_healthy(p), p["metadata"]["name"])):
                if disruption.pod_healthy(p) and ready_total - 1 < replicas - max_unavailable:
                    break
                self.store.delete("pods", p["metadata"]["name"], namespace=m["namespace"])
                if disruption.pod_healthy(p):
                    ready_total -= 1
            # too many of the new revision (scale down): unscheduled and unready first
            extra = len(new) - replicas
            if extra > 0:
                for p in sorted(
                    new,
                    key=lambda p: (
                        bool((p.get("spec") or {}).get("nodeName")),
                        disruption.pod_healthy(p),
                        p["metadata"]["name"],
                    ),
                )[:extra]:
                    self.store.delete("pods", p["metadata"]["name"], namespace=m["namespace"])
        self._status(dep, replicas, max_unavailable, new, mine)

    def _status(
        self,
        dep: dict[str, Any],
        replicas: int,
        max_unavailable: int,
        new: list[dict[str, Any]],
        mine: list[dict[str, Any]],
    ) -> None:
        m = dep["metadata"]
        previous = {c.get("type"): c for c in (dep.get("status") or {}).get("conditions") or []}
        ready = sum(1 for p in mine if disruption.pod_healthy(p))
        updated = len(new)
        now = rfc3339()
        available = ready >= replicas - max_unavailable
        complete = updated == replicas and ready >= replicas and len(mine) == replicas
        conditions = [
            _condition(
                "Available",
                "True" if available else "False",
                now,
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
                previous.get("Available"),
            ),
            _condition(
                "Progressing",
                "True",
                now,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{m["name"]}-{template_hash((dep.get("spec") or {}).get("template") or {})}" '
                + ("has successfully progressed." if complete else "is progressing."),
                previous.get("Progressing"),
            ),
        ]
        for cond, old in zip(
            conditions, (previous.get("Available"), previous.get("Progressing")), strict=True
        ):
            cond["lastUpdateTime"] = (
                old.get("lastUpdateTime", now) if old and old.get("reason") == cond.get("reason") else now
            )
        status: dict[str, Any] = {
            "observedGeneration": m.get("generation", 1),
            "replicas": len(mine),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": conditions,
        }
        if replicas - ready > 0:
            status["unavailableReplicas"] = replicas - ready
        status = {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
        if dep.get("status") != status:
            self.store.update_status("deployments.apps", m["name"], status, namespace=m["namespace"])


# ---- PodDisruptionBudgets ----------------------------------------------------------------------


class DisruptionController(Controller):
    watches = ("poddisruptionbudgets.policy", "pods", "deployments.apps", "daemonsets.apps")

    def reconcile(self) -> None:
        pods = self.store.list("pods")
        for pdb in self.store.list("poddisruptionbudgets.policy"):
            m = pdb["metadata"]
            budget = disruption.evaluate(
                pdb, [p for p in pods if p["metadata"]["namespace"] == m["namespace"]], self._scale
            )
            previous = {c.get("type"): c for c in (pdb.get("status") or {}).get("conditions") or []}
            allowed = budget.disruptions_allowed > 0
            reason = "SyncFailed" if budget.failed else ("SufficientPods" if allowed else "InsufficientPods")
            status = {
                **budget.status_fields(),
                "observedGeneration": m.get("generation", 1),
                "conditions": [
                    _condition(
                        "DisruptionAllowed",
                        "True" if allowed else "False",
                        rfc3339(),
                        reason,
                        budget.failed,
                        previous.get("DisruptionAllowed")
                        if (previous.get("DisruptionAllowed") or {}).get("reason") == reason
                        else None,
                        observedGeneration=m.get("generation", 1),
                    )
                ],
            }
            if pdb.get("status") != status:
                self.store.update_status(
                    "poddisruptionbudgets.policy", m["name"], status, namespace=m["namespace"]
                )

    def _scale(self, namespace: str, ref: Mapping[str, Any]) -> int | None:
        return self.store.controller_scale(namespace, dict(ref))


def start_workload_controllers(
    reactor: Reactor, *, termination_seconds: float = 0.0, start_seconds: float = 0.0
) -> list[Controller]:
    """Start kubelet, scheduler, DaemonSet, Deployment and disruption controllers."""
    controllers: list[Controller] = [
        Kubelet(reactor, termination_seconds=termination_seconds, start_seconds=start_seconds),
        Scheduler(reactor),
        DaemonSetController(reactor),
        DeploymentController(reactor),
        DisruptionController(reactor),
    ]
    for c in controllers:
        c.start()
    return controllers
