"""talos.upgrade-k8s: Kubernetes upgrades through machine-config patches."""

from __future__ import annotations

from taltasks.tasks._cli import TIMEOUT, command
from taltasks.tasks._kube import KUBE_HELP
from taltasks.tasks._talos import ITERABLE, TALOS_HELP

COLLECTION = "talos"


@command(
    numbers={"timeout": TIMEOUT},
    name="upgrade-k8s",
    help={
        "to": "Kubernetes version to upgrade to (default: kubernetesVersion in talos/talenv.yaml)",
        "dry_run": "print the plan and change nothing",
        "pre_pull": "pull the new images on every node before switching (default; --no-pre-pull to skip)",
        "kubelet": "upgrade the kubelet on every node too (default; --no-kubelet to skip)",
        "timeout": "seconds one component may take on one node (config applied → pod Ready)",
        "root": "the checkout (default: the nearest directory holding talos/talconfig.yaml)",
        "talosconfig": TALOS_HELP["talosconfig"],
        "context": TALOS_HELP["context"],
        "endpoints": TALOS_HELP["endpoints"],
        "json": "report progress (or the plan) as JSON lines",
        **KUBE_HELP,
    },
    iterable=[e for e in ITERABLE if e != "nodes"],
)
def upgrade_k8s(
    c,
    to=None,
    dry_run=False,
    pre_pull=True,
    kubelet=True,
    timeout=300,
    root=None,
    talosconfig=None,
    context=None,
    endpoints=None,
    kubeconfig=None,
    json=False,
):
    """Upgrade Kubernetes one minor at a time: control-plane components node by node, then kubelets."""
    from taltasks.events import Emitter
    from taltasks.talos import roles
    from taltasks.tasks._cli import repo_root
    from taltasks.tasks._kube import kube_client, talos_client
    from taltasks.ui.reporters import make_reporter
    from taltasks.ui.tables import print_rows
    from taltasks.workflows import k8s_upgrade as wf
    from taltasks.workflows.cleanup import signals_interrupt

    checkout = repo_root(root)
    target, pinned = _target(checkout, to)
    with make_reporter(json_lines=json) as reporter:
        emitter = Emitter(reporter)
        if pinned is not None and pinned != target:
            emitter.emit(
                "warning",
                f"talos/talenv.yaml pins Kubernetes {pinned}; after upgrading to {target}, set "
                "kubernetesVersion there too, or the next `invoke configure` + apply rolls the images back",
            )
        with talos_client(checkout, talosconfig, context, endpoints) as tc:
            # even the plan reads machine configs (os:admin); say so before the first call
            roles.require(tc, roles.ADMIN_ONLY, "upgrading Kubernetes")
            with kube_client(checkout, kubeconfig, tc) as kube:
                state = wf.observe(tc, kube)
                plan = wf.plan_upgrade(state, target, pre_pull=pre_pull, kubelet=kubelet)
                if dry_run:
                    if not json:
                        print(
                            f"Kubernetes {plan.from_version} → {plan.to_version} (dry run: nothing changes)"
                        )
                    print_rows(plan.rows(), wf.PLAN_COLUMNS, as_json=json)
                    return
                timeouts = wf.Timeouts(control_plane=float(timeout), kubelet=float(timeout))
                with signals_interrupt():
                    wf.execute(tc, kube, plan, root=checkout, emitter=emitter, timeouts=timeouts)


def _target(root, to):
    """(target version, the repo's pin or None); ``--to`` wins over the pin."""
    from taltasks.errors import InputError
    from taltasks.model.versions import Version

    pinned = None
    if (root / "talos" / "talconfig.yaml").exists():
        from taltasks.model import load_cluster

        pinned = Version.parse(load_cluster(root).kubernetes_version)
    if to:
        try:
            return Version.parse(to), pinned
        except ValueError:
            raise InputError(f"--to {to!r} is not a version", hint="use e.g. --to v1.35.0") from None
    if pinned is None:
        raise InputError(
            "no target version: pass --to, or run from a checkout whose talos/talenv.yaml pins kubernetesVersion"
        )
    return pinned, pinned
