"""talos.install-cni: Cilium from the repository's own Flux HelmRelease."""

from __future__ import annotations

from taltasks.tasks._cli import TIMEOUT, command
from taltasks.tasks._kube import KUBE_HELP
from taltasks.tasks._talos import TALOS_HELP

COLLECTION = "talos"


@command(
    numbers={"timeout": TIMEOUT},
    name="install-cni",
    help={
        "release": "the HelmRelease to install (default: cilium)",
        "dry_run": "render and ask the API server what would change (server-side dry run); change nothing",
        "timeout": "seconds to wait for the rollout and every Node Ready",
        "root": "the checkout (default: the nearest directory holding talos/talconfig.yaml)",
        "talosconfig": TALOS_HELP["talosconfig"] + "; used only to fetch a kubeconfig when none is given",
        "context": TALOS_HELP["context"],
        "json": "report progress as JSON lines",
        **KUBE_HELP,
    },
)
def install_cni(
    c,
    release="cilium",
    dry_run=False,
    timeout=600,
    root=None,
    kubeconfig=None,
    talosconfig=None,
    context=None,
    json=False,
):
    """Install Cilium with the values of kubernetes/…/cilium's HelmRelease, so bootstrap and Flux agree."""
    from taltasks import repo
    from taltasks.events import Emitter
    from taltasks.tasks._cli import repo_root
    from taltasks.tasks._kube import kube_client, talos_client
    from taltasks.ui.reporters import make_reporter
    from taltasks.workflows.cleanup import signals_interrupt
    from taltasks.workflows.cni import install_cni as install

    checkout = repo_root(root)
    with make_reporter(json_lines=json) as reporter:
        emitter = Emitter(reporter)
        if repo.kubeconfig_path(checkout, kubeconfig) is not None:
            kube = kube_client(checkout, kubeconfig)
        else:
            with talos_client(checkout, talosconfig, context) as tc:
                kube = kube_client(checkout, None, tc)
        with kube, signals_interrupt():
            install(kube, checkout, emitter=emitter, timeout=float(timeout), release=release, dry_run=dry_run)
