"""Waiting for workloads to roll out and for every Node to be Ready.

:func:`rollout_pending` says, as ``kubectl rollout status`` does, why a DaemonSet,
Deployment or StatefulSet has not finished rolling out (None once it has): the controller
has not seen the latest generation yet, pods still run the old template, or new pods are
not available. :func:`wait_for_rollout` and :func:`wait_for_nodes_ready` block on watches
with a deadline and name the last state seen when it passes.
"""

from __future__ import annotations

from typing import Any

from taltasks.events import NULL, Emitter
from taltasks.kube.client import KubeClient
from taltasks.kube.nodes import NodeState
from taltasks.kube.watch import wait_until

ROLLOUT_KINDS = ("DaemonSet", "Deployment", "StatefulSet")


def rollout_pending(obj: dict[str, Any]) -> str | None:
    """Why ``obj`` has not rolled out yet, or None when it has."""
    kind = obj.get("kind", "")
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        return "waiting for the controller to see the new spec"
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        updated = status.get("updatedNumberScheduled", 0)
        available = status.get("numberAvailable", 0)
        if updated < desired:
            return f"{updated} of {desired} pods updated"
        if available < desired:
            return f"{available} of {desired} updated pods available"
        return None
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < replicas:
        return f"{updated} of {replicas} replicas updated"
    if kind == "Deployment":
        if status.get("replicas", 0) > updated:
            return f"{status.get('replicas', 0) - updated} old replicas pending termination"
        if status.get("availableReplicas", 0) < updated:
            return f"{status.get('availableReplicas', 0)} of {updated} updated replicas available"
        return None
    if status.get("readyReplicas", 0) < replicas:
        return f"{status.get('readyReplicas', 0)} of {replicas} replicas ready"
    return None


def wait_for_rollout(
    client: KubeClient, kind: str, name: str, namespace: str, *, timeout: float, emitter: Emitter = NULL
) -> dict[str, Any]:
    """Watch ``kind namespace/name`` until it has rolled out."""
    list_fn = {
        "DaemonSet": client.apps.list_namespaced_daemon_set,
        "Deployment": client.apps.list_namespaced_deployment,
        "StatefulSet": client.apps.list_namespaced_stateful_set,
    }[kind]
    ref = f"{kind} {namespace}/{name}"
    emitter.emit("gate.waiting", f"waiting for {ref} to roll out", gate="rollout")

    def current(objects: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        obj = objects.get(f"{namespace}/{name}")
        return {**obj, "kind": kind} if obj is not None else None

    def check(objects: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        obj = current(objects)
        return obj if obj is not None and rollout_pending(obj) is None else None

    def describe(objects: dict[str, dict[str, Any]]) -> str:
        obj = current(objects)
        return "it does not exist" if obj is None else str(rollout_pending(obj))

    obj = wait_until(
        client,
        list_fn,
        check,
        namespace,
        timeout=timeout,
        what=f"the rollout of {ref}",
        describe=describe,
        field_selector=f"metadata.name={name}",
    )
    emitter.emit("gate.passed", f"{ref} rolled out", gate="rollout")
    return obj


def wait_for_nodes_ready(client: KubeClient, *, timeout: float, emitter: Emitter = NULL) -> list[NodeState]:
    """Watch the Nodes until there is at least one and every one is Ready."""
    emitter.emit("gate.waiting", "waiting for every Node to be Ready", gate="nodes-ready")

    def states(objects: dict[str, dict[str, Any]]) -> list[NodeState]:
        return [NodeState.from_object(o) for o in objects.values()]

    def check(objects: dict[str, dict[str, Any]]) -> list[NodeState] | None:
        nodes = states(objects)
        return nodes if nodes and all(n.ready for n in nodes) else None

    def describe(objects: dict[str, dict[str, Any]]) -> str:
        nodes = states(objects)
        bad = [f"{n.name} {n.describe()}" for n in nodes if not n.ready]
        return "; ".join(bad) if bad else "no Nodes registered"

    nodes = wait_until(
        client, client.core.list_node, check, timeout=timeout, what="every Node Ready", describe=describe
    )
    emitter.emit("gate.passed", f"all {len(nodes)} Nodes are Ready", gate="nodes-ready")
    return nodes
