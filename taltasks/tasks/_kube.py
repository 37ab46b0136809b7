"""Options shared by tasks that talk to the Kubernetes API, and the client they build."""

from __future__ import annotations

from pathlib import Path

KUBE_HELP = {
    "kubeconfig": "kubeconfig file (default: $KUBECONFIG, else the checkout's ./kubeconfig, else "
    "fetched from a control plane through the Talos API, never written to your files)",
}


def kube_client(root: Path, kubeconfig: str | None = None, talos=None):
    """A Kubernetes client: ``--kubeconfig``, ``$KUBECONFIG`` or the checkout's
    ``kubeconfig``; with none of them, the admin kubeconfig Talos hands out (as
    ``talosctl upgrade-k8s`` does), never written to the user's files (the kubernetes
    client library itself keeps the key in a 0600 temp file while the process runs)."""
    from taltasks import repo
    from taltasks.errors import InputError
    from taltasks.kube.client import connect, connect_text

    path = repo.kubeconfig_path(root, kubeconfig)
    if path is not None:
        return connect(path)
    if talos is None:
        raise InputError(
            "no kubeconfig: pass --kubeconfig, set KUBECONFIG, or write one with `invoke talos.kubeconfig`"
        )
    endpoint = talos.transport.endpoints[0].host
    return connect_text(talos.kubeconfig(node=endpoint), source=f"kubeconfig from {endpoint} (Talos API)")


def talos_client(root: Path, talosconfig: str | None = None, context: str | None = None, endpoints=None):
    """A Talos client from ``--talosconfig``, ``$TALOSCONFIG``, the checkout's
    ``talos/clusterconfig/talosconfig`` or ``~/.talos/config``, in that order."""
    from taltasks import repo
    from taltasks.tasks._talos import client

    path = repo.talosconfig_path(root, talosconfig)
    return client(str(path) if path else None, context, endpoints, None)
