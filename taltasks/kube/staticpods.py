"""Control-plane static pods as the API shows them (their mirror pods in ``kube-system``).

Talos writes the static pod manifests of kube-apiserver, kube-controller-manager and
kube-scheduler with the annotation ``talos.dev/config-version``: the version of the COSI
config resource the manifest was rendered from. A component change is therefore done on a
node when the mirror pod there carries the new version *and* is Ready — what
:func:`wait_for_static_pod` waits for. :func:`component_versions` reads the image tags the
running pods use (how ``talosctl upgrade-k8s`` finds the version to upgrade from).
"""

from __future__ import annotations

from typing import Any

from taltasks.events import NULL, Emitter
from taltasks.kube.client import KubeClient
from taltasks.kube.watch import wait_until
from taltasks.model.images import image_tag

CONFIG_VERSION = "talos.dev/config-version"
NAMESPACE = "kube-system"


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _on_node(pod: dict[str, Any], node: str, ip: str | None) -> bool:
    return (pod.get("spec") or {}).get("nodeName") == node or (
        ip is not None and (pod.get("status") or {}).get("hostIP") == ip
    )


def component_versions(client: KubeClient, component: str = "kube-apiserver") -> dict[str, str]:
    """Pod name → image tag of every running ``component`` pod."""
    body = client.call(
        f"list {component} pods",
        client.core.list_namespaced_pod,
        NAMESPACE,
        label_selector=f"k8s-app={component}",
    )
    out = {}
    for pod in body.get("items") or []:
        containers = (pod.get("spec") or {}).get("containers") or []
        tag = image_tag(containers[0].get("image", "")) if containers else None
        if tag:
            out[pod["metadata"]["name"]] = tag
    return out


def wait_for_static_pod(
    client: KubeClient,
    component: str,
    node: str,
    config_version: str,
    *,
    ip: str | None = None,
    timeout: float,
    emitter: Emitter = NULL,
) -> dict[str, Any]:
    """Watch until ``component``'s pod on ``node`` carries ``config_version`` and is Ready;
    OperationFailed naming the last state seen after ``timeout`` seconds."""
    emitter.emit(
        "gate.waiting",
        f"waiting for {component} on {node} to run config version {config_version} and be Ready",
        node=node,
        gate="static-pod",
    )

    def mine(objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for p in objects.values() if _on_node(p, node, ip)]

    def check(objects: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        for pod in mine(objects):
            annotations = pod["metadata"].get("annotations") or {}
            if annotations.get(CONFIG_VERSION) == config_version and _ready(pod):
                return pod
        return None

    def describe(objects: dict[str, dict[str, Any]]) -> str:
        pods = mine(objects)
        if not pods:
            return f"no {component} pod on {node}"
        return "; ".join(
            f"{p['metadata']['name']} config version "
            f"{(p['metadata'].get('annotations') or {}).get(CONFIG_VERSION, '?')}, "
            f"{'Ready' if _ready(p) else 'not Ready'}"
            for p in pods
        )

    pod = wait_until(
        client,
        client.core.list_namespaced_pod,
        check,
        NAMESPACE,
        timeout=timeout,
        what=f"{component} on {node} running config version {config_version}",
        describe=describe,
        label_selector=f"k8s-app={component}",
    )
    emitter.emit(
        "gate.passed",
        f"{component} on {node} runs config version {config_version} and is Ready",
        node=node,
        gate="static-pod",
    )
    return pod
