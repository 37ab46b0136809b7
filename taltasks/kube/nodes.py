"""Nodes: readiness as a value, cordon and uncordon, waiting for a node to come back.

Readiness follows the Ready condition and keeps its ``lastTransitionTime`` (health-gates'
stability rule: measure "stable for W" from the timestamps the cluster writes, not from our
own first poll). Cordon/uncordon are the strategic-merge patches kubectl sends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from taltasks.errors import OperationFailed
from taltasks.events import NULL, Emitter
from taltasks.kube.client import KubeApiError, KubeClient
from taltasks.kube.watch import wait_until

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class NodeState:
    name: str
    ready: bool
    ready_status: str  # "True", "False", "Unknown" or "" (no condition)
    reason: str
    message: str
    last_transition: dt.datetime | None
    unschedulable: bool
    kubelet_version: str
    os_image: str
    internal_ip: str
    boot_id: str
    control_plane: bool
    labels: dict[str, str] = field(default_factory=dict)
    resource_version: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> NodeState:
        m, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        info = status.get("nodeInfo") or {}
        labels = dict(m.get("labels") or {})
        return cls(
            name=m.get("name", ""),
            ready=ready.get("status") == "True",
            ready_status=ready.get("status", ""),
            reason=ready.get("reason", ""),
            message=ready.get("message", ""),
            last_transition=parse_time(ready.get("lastTransitionTime")),
            unschedulable=bool(spec.get("unschedulable")),
            kubelet_version=info.get("kubeletVersion", ""),
            os_image=info.get("osImage", ""),
            internal_ip=next(
                (
                    a.get("address", "")
                    for a in status.get("addresses") or []
                    if a.get("type") == "InternalIP"
                ),
                "",
            ),
            boot_id=info.get("bootID", ""),
            control_plane=CONTROL_PLANE_LABEL in labels,
            labels=labels,
            resource_version=m.get("resourceVersion", ""),
            annotations=dict(m.get("annotations") or {}),
        )

    def ready_for(self, now: dt.datetime | None = None) -> float:
        """Seconds the node has been Ready (0 when it is not)."""
        if not self.ready or self.last_transition is None:
            return 0.0
        now = now or dt.datetime.now(dt.UTC)
        return max(0.0, (now - self.last_transition).total_seconds())

    def describe(self) -> str:
        state = (
            "Ready"
            if self.ready
            else f"NotReady ({self.ready_status or 'no condition'}{': ' + self.reason if self.reason else ''})"
        )
        return state + (", cordoned" if self.unschedulable else "")


def get_node(client: KubeClient, name: str) -> NodeState:
    try:
        return NodeState.from_object(client.call(f"read node {name}", client.core.read_node, name))
    except KubeApiError as exc:
        if exc.status == 404:
            raise OperationFailed(
                f"node {name} does not exist in the cluster",
                where=client.server,
                hint="check the node name (`kubectl get nodes`)",
            ) from None
        raise


def list_nodes(client: KubeClient, label_selector: str | None = None) -> list[NodeState]:
    kwargs = {"label_selector": label_selector} if label_selector else {}
    body = client.call("list nodes", client.core.list_node, **kwargs)
    return [NodeState.from_object(o) for o in body.get("items") or []]


def _set_unschedulable(client: KubeClient, name: str, value: bool) -> bool:
    before = get_node(client, name)
    if before.unschedulable == value:
        return False
    patch = {"spec": {"unschedulable": True if value else None}}
    client.call(f"{'cordon' if value else 'uncordon'} node {name}", client.core.patch_node, name, patch)
    return True


def cordon(client: KubeClient, name: str, *, emitter: Emitter = NULL) -> bool:
    """Mark the node unschedulable; True if it was schedulable before."""
    changed = _set_unschedulable(client, name, True)
    emitter.emit(
        "info",
        f"cordoned {name}" if changed else f"{name} was already cordoned",
        node=name,
        step="cordon",
        changed=changed,
    )
    return changed


def uncordon(client: KubeClient, name: str, *, emitter: Emitter = NULL) -> bool:
    """Mark the node schedulable again; True if it was cordoned before."""
    changed = _set_unschedulable(client, name, False)
    emitter.emit(
        "cleanup" if changed else "info",
        f"uncordoned {name}" if changed else f"{name} was not cordoned",
        node=name,
        step="uncordon",
        changed=changed,
    )
    return changed


def wait_for_node(
    client: KubeClient,
    name: str,
    *,
    ready: bool = True,
    timeout: float,
    not_boot_id: str | None = None,
    kubelet_version: str | None = None,
    emitter: Emitter = NULL,
) -> NodeState:
    """Watch the node until it is Ready (or NotReady with ``ready=False``), optionally with
    a boot id different from ``not_boot_id`` (it really rebooted) and a given kubelet
    version; OperationFailed with the last state seen after ``timeout`` seconds."""
    goal = ("Ready" if ready else "NotReady") + (
        f" with kubelet {kubelet_version}" if kubelet_version else ""
    )
    emitter.emit("gate.waiting", f"waiting for {name} to be {goal}", node=name, gate="node-ready")

    def check(objects: dict[str, dict[str, Any]]) -> NodeState | None:
        obj = objects.get(name)
        if obj is None:
            return None
        state = NodeState.from_object(obj)
        if state.ready != ready:
            return None
        if not_boot_id and state.boot_id == not_boot_id:
            return None
        if kubelet_version and state.kubelet_version != kubelet_version:
            return None
        return state

    def describe(objects: dict[str, dict[str, Any]]) -> str:
        obj = objects.get(name)
        if obj is None:
            return f"node {name} not found"
        state = NodeState.from_object(obj)
        return f"{state.describe()}, kubelet {state.kubelet_version or '?'}"

    state = wait_until(
        client,
        client.core.list_node,
        check,
        timeout=timeout,
        what=f"node {name} becoming {goal}",
        describe=describe,
        field_selector=f"metadata.name={name}",
    )
    emitter.emit("gate.passed", f"{name} is {goal}", node=name, gate="node-ready")
    return state
