"""A healthy six-node cluster held in the in-memory gate sources, for pure gate tests.

Builders return Kubernetes objects shaped as the API returns them (CephCluster and CNPG
Cluster status as Rook and CNPG write it), with timestamps from the test's FakeClock.
Addresses are loopback, though nothing here connects anywhere.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from taltasks.gates.checks import GateContext, NodeTarget
from taltasks.gates.clock import FakeClock
from taltasks.gates.memory import MemoryKube, MemoryTalos
from taltasks.gates.sources import EtcdMember, EtcdView, MachineState
from taltasks.model.policy import default_policy

NODES = (
    NodeTarget("cp1", "127.0.0.11", True),
    NodeTarget("cp2", "127.0.0.12", True),
    NodeTarget("cp3", "127.0.0.13", True),
    NodeTarget("w1", "127.0.0.21"),
    NodeTarget("w2", "127.0.0.22"),
    NodeTarget("w3", "127.0.0.23"),
)
MEMBERS = tuple(EtcdMember(0x1000 + i, n.hostname) for i, n in enumerate(NODES[:3]))
LONG_AGO = -3 * 86400.0
HEALTHY = "Cluster in healthy state"


def gate(gate_kind: str, /, **params: Any):
    """A GateSpec of ``gate_kind`` with the default policy's settings plus ``params``
    (``timeout``/``window``/``id`` are spec fields, the rest are kind settings)."""
    kind = gate_kind
    base = next(g for g in default_policy().pre if g.kind == kind) if kind != "expression" else None
    fields = {k: params.pop(k) for k in ("timeout", "window", "id", "description") if k in params}
    if base is None:
        from taltasks.model.policy import GateSpec

        base = GateSpec(kind="expression", id="check", timeout=900.0, window=0.0, params={})
    return replace(base, params={**base.params, **params}, **fields)


def ctx(stage: str = "pre", node: str | None = None, **kw: Any) -> GateContext:
    target = next((n for n in NODES if n.hostname == node), None)
    return GateContext(nodes=NODES, node=target, stage=stage, **kw)


def node_obj(
    clock: FakeClock, name: str, *, ready: str = "True", since: float = LONG_AGO, cordoned: bool = False
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "KubeletReady",
                    "lastTransitionTime": clock.iso(since),
                }
            ]
        },
    }


def ceph_obj(
    clock: FakeClock,
    *,
    health: str = "HEALTH_OK",
    details: dict[str, str] | None = None,
    checked: float = -5.0,
    changed: float | None = LONG_AGO,
    phase: str = "Ready",
    manage_pdbs: bool = True,
    interval: str = "60s",
    name: str = "rook-ceph",
) -> dict:
    ceph: dict[str, Any] = {"health": health, "lastChecked": clock.iso(checked)}
    if changed is not None:
        ceph["lastChanged"] = clock.iso(changed)
        ceph["previousHealth"] = "HEALTH_WARN"
    if details:
        ceph["details"] = {code: {"severity": "HEALTH_WARN", "message": msg} for code, msg in details.items()}
    return {
        "apiVersion": "ceph.rook.io/v1",
        "kind": "CephCluster",
        "metadata": {"name": name, "namespace": "rook-ceph", "creationTimestamp": clock.iso(2 * LONG_AGO)},
        "spec": {
            "disruptionManagement": {"managePodBudgets": manage_pdbs},
            "healthCheck": {"daemonHealth": {"status": {"interval": interval}}},
        },
        "status": {"phase": phase, "ceph": ceph},
    }


def cnpg_obj(
    clock: FakeClock,
    name: str,
    *,
    namespace: str = "database",
    instances: int = 3,
    ready: int | None = None,
    phase: str = HEALTHY,
    primary: str | None = None,
    target: str | None = None,
    timeline: int = 1,
    ready_since: float = LONG_AGO,
) -> dict:
    primary = primary or f"{name}-1"
    ok = phase == HEALTHY
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"instances": instances},
        "status": {
            "phase": phase,
            "instances": instances,
            "readyInstances": instances if ready is None else ready,
            "currentPrimary": primary,
            "targetPrimary": target or primary,
            "timelineID": timeline,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ok else "False",
                    "reason": "ClusterIsReady" if ok else "ClusterIsNotReady",
                    "lastTransitionTime": clock.iso(ready_since),
                }
            ],
        },
    }


def pdb_obj(name: str, namespace: str = "rook-ceph") -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
    }


def pdb_state(draining: str = "") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "rook-ceph-pdbstatemap", "namespace": "rook-ceph"},
        "data": {"draining-failure-domain": draining, "set-no-out": ""},
    }


def pod_obj(name: str, node: str, cluster: str, namespace: str = "database") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"cnpg.io/cluster": cluster}},
        "spec": {"nodeName": node},
    }


def machine(
    node: NodeTarget,
    *,
    version: str = "v1.12.1",
    boot: str = "boot-a",
    stage: str = "running",
    ready: bool = True,
) -> MachineState:
    return MachineState(node.ip, stage, ready, version, f"{node.hostname}-{boot}")


def etcd_view(
    node: NodeTarget, *, members: tuple[EtcdMember, ...] = MEMBERS, leader: int = MEMBERS[2].id, **kw: Any
) -> EtcdView:
    me = next((m.id for m in members if m.hostname == node.hostname), None)
    return EtcdView(node.ip, kw.pop("state", "Running"), kw.pop("healthy", True), members, me, leader, **kw)


def healthy_world(clock: FakeClock, *, streaming: bool = True) -> tuple[MemoryKube, MemoryTalos]:
    kube = MemoryKube(
        [
            *(node_obj(clock, n.hostname) for n in NODES),
            ceph_obj(clock),
            pdb_obj("rook-ceph-osd"),
            pdb_state(),
            cnpg_obj(clock, "app-db"),
            cnpg_obj(clock, "auth-db", instances=2),
            pod_obj("app-db-1", "w1", "app-db"),
            pod_obj("app-db-2", "w2", "app-db"),
            pod_obj("app-db-3", "w3", "app-db"),
        ],
        streaming=streaming,
    )
    talos = MemoryTalos(streaming=streaming)
    for n in NODES:
        talos.set_machine(machine(n))
        if n.control_plane:
            talos.set_etcd(etcd_view(n))
    return kube, talos
