"""bootstrap: a new cluster from machines in maintenance mode, in resumable stages."""

from __future__ import annotations

from taltasks.tasks._cli import TIMEOUT, command, repo_root, reporting

COLLECTION = ""


@command(
    numbers={"timeout": TIMEOUT},
    help={
        "root": "the checkout (default: found from the current directory)",
        "talosconfig": "talosconfig (default: talos/clusterconfig/talosconfig written by configure)",
        "kubeconfig": "where to write the kubeconfig (default: ./kubeconfig in the checkout)",
        "merge_kubeconfig": "merge the kubeconfig into $KUBECONFIG / ~/.kube/config instead",
        "flux": "also apply the Flux bootstrap manifests under kubernetes/flux/",
        "until": "stop after this stage: configs, etcd, kubeconfig, api, cni, secrets, flux",
        "timeout": "seconds each waiting step may take",
        "json": "report progress as JSON lines",
    },
)
def bootstrap(
    c,
    root=None,
    talosconfig=None,
    kubeconfig=None,
    merge_kubeconfig=False,
    flux=False,
    until=None,
    timeout=600,
    json=False,
):
    """Bootstrap a new cluster: apply configs, etcd, kubeconfig, API, CNI, secrets (resumable)."""
    from pathlib import Path

    from taltasks.workflows.bootstrap import BootstrapOptions
    from taltasks.workflows.bootstrap import bootstrap as run_bootstrap

    checkout = repo_root(root)
    options = BootstrapOptions(
        root=checkout,
        talosconfig=Path(talosconfig) if talosconfig else None,
        kubeconfig_out=Path(kubeconfig) if kubeconfig else None,
        merge_kubeconfig=merge_kubeconfig,
        flux=flux,
        until=until,
        timeout=float(timeout),
    )
    with reporting(json) as emitter:
        run_bootstrap(options, emitter)
