"""A simulated CloudNativePG: Cluster status, instance pods, PDBs, switchover and failover.

Per Cluster (health-gates.md §2): instance pods ``<cluster>-<n>`` pinned to the node that
holds their volume, labelled ``cnpg.io/cluster``, ``cnpg.io/instanceName``,
``cnpg.io/instanceRole`` (and the legacy ``role``); the ``<cluster>-primary`` PDB
(minAvailable 1) and, from 3 instances, the ``<cluster>`` replica PDB (minAvailable
instances-2), both dropped as CNPG does while ``spec.nodeMaintenanceWindow.inProgress``
with ``reusePVC`` (the primary one only for single-instance clusters).

Behaviour:

* Switchover on cordon: when the primary's node becomes unschedulable (or carries a drain
  taint) and every instance is ready and a ready replica sits on a schedulable node, the
  phase goes ``Switchover in progress`` with ``targetPrimary`` set; ``switchoverSeconds``
  later ``currentPrimary`` follows, ``timelineID`` bumps and the pods swap role labels.
  Preconditions not met: it waits, like CNPG. ``status.targetPrimary`` patched by someone
  else (``kubectl cnpg promote``) starts the same switchover.
* Failover: the primary's pod gone or unready (a node rebooted without a drain) for
  ``failoverDelaySeconds`` → ``Failing over`` → the most suitable ready replica is promoted.
* Instances whose pod is missing are re-created on their node once it is Ready and
  schedulable (local volume). With a maintenance window in progress and ``reusePVC:
  false`` an instance whose node is unavailable is re-cloned on another node instead.
* ``phase``/``readyInstances``/``Ready`` condition (``lastTransitionTime`` only on change)
  follow the instances; ``cnpg-never-healthy`` keeps a cluster out of the healthy phase
  from its trigger on.

Every change of phase, ready count, primary or timeline is recorded as ``cnpg.status``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from taltasks.sim.kube.nodes import node_ready
from taltasks.sim.kube.objects import is_deleting, rfc3339
from taltasks.sim.kube.runtime import Controller, Reactor, Timer
from taltasks.sim.operators.common import (
    TOLERATE_CONTROL_PLANE,
    draining,
    ensure_namespace,
    pdb,
    pod_up,
    sync_pdbs,
)
from taltasks.sim.operators.scenario import CnpgClusterConfig, CnpgConfig, FaultConfig

HEALTHY = "Cluster in healthy state"
SWITCHOVER = "Switchover in progress"
FAILING_OVER = "Failing over"
WAITING = "Waiting for the instances to become active"
CLUSTER_LABEL = "cnpg.io/cluster"
ROLE_LABEL = "cnpg.io/instanceRole"


@dataclass
class _State:
    config: CnpgClusterConfig
    placement: dict[str, str] = field(default_factory=dict)  # instance -> node
    serial: int = 0
    primary: str = ""
    timeline: int = 1
    target: str = ""
    transition: str = ""  # "", "switchover", "failover"
    timer: Timer | None = None
    primary_lost_at: float | None = None
    primary_was_up: bool = False  # no failover before the first primary ever ran
    disrupted: bool = False
    healthy_once: bool = False
    primary_since: str = ""
    target_since: str = ""


class CnpgOperator(Controller):
    watches = ("pods", "nodes", "clusters.postgresql.cnpg.io")

    def __init__(self, reactor: Reactor, config: CnpgConfig, faults: list[FaultConfig] | None = None) -> None:
        super().__init__(reactor)
        self.config = config
        self.faults = list(faults or [])
        self.states: dict[str, _State] = {c.ref: _State(c) for c in config.clusters}

    # ---- set-up ---------------------------------------------------------------------------

    def start(self) -> None:
        nodes = self.store.list("nodes")
        for state in self.states.values():
            self._install(state, nodes)
        super().start()

    def _install(self, state: _State, nodes: list[dict[str, Any]]) -> None:
        c = state.config
        ensure_namespace(self.store, c.namespace)
        if self.store.try_get("clusters.postgresql.cnpg.io", c.name, c.namespace) is None:
            self.store.create(
                {
                    "apiVersion": "postgresql.cnpg.io/v1",
                    "kind": "Cluster",
                    "metadata": {"name": c.name, "namespace": c.namespace},
                    "spec": {
                        "instances": c.instances,
                        "imageName": c.image,
                        "primaryUpdateStrategy": "unsupervised",
                        "enablePDB": c.enable_pdb,
                        "nodeMaintenanceWindow": {
                            "inProgress": c.maintenance_in_progress,
                            "reusePVC": c.reuse_pvc,
                        },
                        "stopDelay": 1800,
                        "switchoverDelay": 3600,
                        "failoverDelay": int(self.config.failover_delay_seconds),
                        "affinity": {
                            "podAntiAffinityType": "required",
                            "topologyKey": "kubernetes.io/hostname",
                        },
                        "storage": {"size": "10Gi"},
                    },
                }
            )
        candidates = (
            list(c.nodes)
            or sorted(
                (
                    n["metadata"]["name"]
                    for n in nodes
                    if "node-role.kubernetes.io/control-plane" not in (n["metadata"].get("labels") or {})
                ),
            )
            or sorted(n["metadata"]["name"] for n in nodes)
        )
        for i in range(c.instances):
            state.serial += 1
            node = candidates[i] if i < len(candidates) else ""
            state.placement[f"{c.name}-{state.serial}"] = node
        state.primary = f"{c.name}-1"
        state.target = state.primary
        state.primary_since = state.target_since = rfc3339()

    # ---- helpers --------------------------------------------------------------------------

    def _fault(self, state: _State) -> bool:
        return any(
            f.kind == "cnpg-never-healthy"
            and f.cluster == state.config.ref
            and (f.trigger == "start" or state.disrupted)
            for f in self.faults
        )

    def _pod(self, state: _State, name: str, node: str, role: str) -> dict[str, Any]:
        c = state.config
        cluster = self.store.get("clusters.postgresql.cnpg.io", c.name, c.namespace)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": c.namespace,
                "labels": {
                    CLUSTER_LABEL: c.name,
                    "cnpg.io/instanceName": name,
                    "cnpg.io/podRole": "instance",
                    ROLE_LABEL: role,
                    "role": role,
                },
                "ownerReferences": [
                    {
                        "apiVersion": "postgresql.cnpg.io/v1",
                        "kind": "Cluster",
                        "name": c.name,
                        "uid": cluster["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 1800,
                "containers": [{"name": "postgres", "image": c.image}],
                "tolerations": [dict(TOLERATE_CONTROL_PLANE)],
            },
        }

    def _set_role(self, namespace: str, pod: str, role: str) -> None:
        current = self.store.try_get("pods", pod, namespace)
        if current is None or (current["metadata"].get("labels") or {}).get(ROLE_LABEL) == role:
            return

        def put(obj: dict[str, Any]) -> None:
            obj["metadata"]["labels"][ROLE_LABEL] = role
            obj["metadata"]["labels"]["role"] = role

        self.store.mutate("pods", pod, put, namespace=namespace)

    # ---- reconcile ------------------------------------------------------------------------

    def reconcile(self) -> None:
        nodes = {n["metadata"]["name"]: n for n in self.store.list("nodes")}
        for state in self.states.values():
            cluster = self.store.try_get(
                "clusters.postgresql.cnpg.io", state.config.name, state.config.namespace
            )
            if cluster is not None and not is_deleting(cluster):
                self._sync(state, cluster, nodes)

    def _sync(self, state: _State, cluster: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> None:
        c = state.config
        spec = cluster.get("spec") or {}
        window = spec.get("nodeMaintenanceWindow") or {}
        in_maintenance, reuse_pvc = bool(window.get("inProgress")), window.get("reusePVC", True)
        pods = {
            p["metadata"]["name"]: p
            for p in self.store.list("pods", c.namespace, label_selector=f"{CLUSTER_LABEL}={c.name}")
            if not is_deleting(p)
        }
        # re-clone instances whose node is unavailable during maintenance without reusePVC
        if in_maintenance and not reuse_pvc and not state.transition:
            for inst, node in list(state.placement.items()):
                n = nodes.get(node)
                if (
                    inst not in pods
                    and inst != state.primary
                    and (n is None or not node_ready(n) or draining(n))
                ):
                    used = set(state.placement.values())
                    spare = sorted(
                        name
                        for name, nd in nodes.items()
                        if name not in used and node_ready(nd) and not draining(nd)
                    )
                    del state.placement[inst]
                    state.serial += 1
                    state.placement[f"{c.name}-{state.serial}"] = spare[0] if spare else ""
        # instance pods: re-create on their node when it can run them
        for inst, node in sorted(state.placement.items()):
            n = nodes.get(node)
            if inst not in pods and n is not None and node_ready(n) and not draining(n):
                role = "primary" if inst == state.primary else "replica"
                self.store.create(self._pod(state, inst, node, role))
        ready = sorted(i for i in state.placement if pod_up(pods.get(i)))
        if len(ready) < len(state.placement) and state.primary_was_up and len(state.placement) == c.instances:
            state.disrupted = state.disrupted or state.healthy_once
        self._maybe_switch(state, cluster, pods, nodes, ready)
        self._sync_pdbs(state, in_maintenance, reuse_pvc, spec)
        self._write_status(state, cluster, pods, ready)

    def _candidate(self, state: _State, nodes: dict[str, dict[str, Any]], ready: list[str]) -> str:
        for inst in sorted(ready, key=lambda n: int(n.rsplit("-", 1)[1])):
            node = nodes.get(state.placement.get(inst, ""))
            if inst != state.primary and node is not None and node_ready(node) and not draining(node):
                return inst
        return ""

    def _maybe_switch(
        self,
        state: _State,
        cluster: dict[str, Any],
        pods: dict[str, Any],
        nodes: dict[str, dict[str, Any]],
        ready: list[str],
    ) -> None:
        if state.transition:
            return
        c = state.config
        requested = (cluster.get("status") or {}).get("targetPrimary")
        if requested and requested not in (state.primary, state.target, "pending") and requested in ready:
            self._begin(state, requested, "switchover")
            return
        primary_node = nodes.get(state.placement.get(state.primary, ""))
        if state.primary not in ready and not state.primary_was_up:
            return
        if state.primary not in ready:
            now = time.monotonic()
            if state.primary_lost_at is None:
                state.primary_lost_at = now
                if self.config.failover_delay_seconds > 0:
                    self.reactor.post(self.trigger, self.config.failover_delay_seconds + 0.001)
            if now - state.primary_lost_at >= self.config.failover_delay_seconds:
                candidate = self._candidate(state, nodes, ready)
                if candidate:
                    self._begin(state, candidate, "failover")
            return
        state.primary_lost_at = None
        state.primary_was_up = True
        if draining(primary_node) and len(ready) == c.instances:
            candidate = self._candidate(state, nodes, ready)
            if candidate:
                self._begin(state, candidate, "switchover")

    def _begin(self, state: _State, target: str, kind: str) -> None:
        state.transition = kind
        state.target = target
        state.target_since = rfc3339()
        state.timer = self.reactor.post(lambda: self._complete(state), self.config.switchover_seconds)

    def _complete(self, state: _State) -> None:
        c = state.config
        old = state.primary
        state.primary = state.target
        state.timeline += 1
        state.primary_since = rfc3339()
        state.transition = ""
        state.primary_lost_at = None
        self._set_role(c.namespace, old, "replica")
        self._set_role(c.namespace, state.primary, "primary")
        self.trigger()

    def _sync_pdbs(self, state: _State, in_maintenance: bool, reuse_pvc: bool, spec: dict[str, Any]) -> None:
        c = state.config
        wanted = []
        if spec.get("enablePDB", True):
            relaxed = in_maintenance and reuse_pvc
            if not (relaxed and c.instances == 1):
                wanted.append(
                    pdb(
                        c.namespace,
                        f"{c.name}-primary",
                        {CLUSTER_LABEL: c.name, ROLE_LABEL: "primary"},
                        min_available=1,
                        labels={CLUSTER_LABEL: c.name},
                    )
                )
            if c.instances >= 3 and not relaxed:
                wanted.append(
                    pdb(
                        c.namespace,
                        c.name,
                        {CLUSTER_LABEL: c.name, ROLE_LABEL: "replica"},
                        min_available=c.instances - 2,
                        labels={CLUSTER_LABEL: c.name},
                    )
                )
        sync_pdbs(self.store, c.namespace, wanted, ("cnpg.io/managed-by", c.name))

    def _write_status(
        self, state: _State, cluster: dict[str, Any], pods: dict[str, Any], ready: list[str]
    ) -> None:
        c = state.config
        now = rfc3339()
        instances = int((cluster.get("spec") or {}).get("instances", c.instances))
        if state.transition == "switchover":
            phase, reason = SWITCHOVER, f"Switching over to {state.target}"
        elif state.transition == "failover" or (
            state.primary not in ready and state.primary_lost_at is not None
        ):
            phase, reason = (
                FAILING_OVER,
                f"Failing over from {state.primary}" + (f" to {state.target}" if state.transition else ""),
            )
        elif len(ready) == instances and not self._fault(state):
            phase, reason = HEALTHY, ""
        else:
            phase, reason = WAITING, "Some instances are not yet active. Please wait."
        healthy = phase == HEALTHY
        state.healthy_once = state.healthy_once or len(ready) == instances
        old = cluster.get("status") or {}
        old_ready = next((x for x in old.get("conditions") or [] if x.get("type") == "Ready"), None)
        flag = "True" if healthy else "False"
        condition = {
            "type": "Ready",
            "status": flag,
            "reason": "ClusterIsReady" if healthy else "ClusterIsNotReady",
            "message": "Cluster is Ready" if healthy else "Cluster Is Not Ready",
            "lastTransitionTime": old_ready["lastTransitionTime"]
            if old_ready and old_ready.get("status") == flag
            else now,
        }
        status: dict[str, Any] = {
            "instances": len(state.placement),
            "readyInstances": len(ready),
            "instanceNames": sorted(state.placement),
            "instancesStatus": {
                "healthy": ready,
                **(
                    {"failed": sorted(set(state.placement) - set(ready))}
                    if set(state.placement) - set(ready)
                    else {}
                ),
            },
            "currentPrimary": state.primary,
            "currentPrimaryTimestamp": state.primary_since,
            "targetPrimary": "pending" if phase == FAILING_OVER and not state.transition else state.target,
            "targetPrimaryTimestamp": state.target_since,
            "timelineID": state.timeline,
            "latestGeneratedNode": state.serial,
            "phase": phase,
            "conditions": [condition],
            "instancesReportedState": {
                i: {
                    "isPrimary": i == state.primary,
                    "timeLineID": state.timeline,
                    "ip": ((pods.get(i) or {}).get("status") or {}).get("podIP", ""),
                }
                for i in ready
            },
            "writeService": f"{c.name}-rw",
            "readService": f"{c.name}-r",
            "healthyPVC": sorted(state.placement),
        }
        if reason:
            status["phaseReason"] = reason
        key = (phase, len(ready), state.primary, state.timeline)
        old_key = (
            old.get("phase"),
            old.get("readyInstances"),
            old.get("currentPrimary"),
            old.get("timelineID"),
        )
        if key != old_key and self.store.recorder is not None:
            self.store.recorder.record(
                "cnpg.status",
                cluster=c.ref,
                phase=phase,
                readyInstances=len(ready),
                instances=instances,
                currentPrimary=state.primary,
                targetPrimary=status["targetPrimary"],
                timelineID=state.timeline,
            )
        # recorded first: whoever sees the new status can already find its record
        if old != status:
            self.store.update_status("clusters.postgresql.cnpg.io", c.name, status, namespace=c.namespace)
