"""talos.handoff: hand the upgrade to tuppr running in the cluster.

Thin glue: read and validate the repo, connect to Talos and Kubernetes, build the hand-off
(:func:`taltasks.workflows.handoff.plan_handoff`), then apply it server-side or write it
into the Flux tree; ``--dry-run`` prints the resources and changes nothing.
"""

from __future__ import annotations

import sys

from taltasks.tasks._cli import command, repo_root
from taltasks.tasks._kube import kube_client, talos_client

COLLECTION = "talos"


@command(
    help={
        "engine": "the in-cluster engine to hand over to (tuppr)",
        "write": "write the resources into the Flux tree (policy handoff.path) instead of applying them",
        "path": "with --write: the directory in the checkout (default: the policy's handoff.path)",
        "dry-run": "print the resources and what would change; change nothing",
        "allow-downgrade": "hand over downgrades too",
        "root": "the checkout holding talos/ (default: found from the current directory)",
        "talosconfig": "talosconfig file (default: $TALOSCONFIG, else talos/clusterconfig/talosconfig)",
        "kubeconfig": "kubeconfig file (default: $KUBECONFIG, else ./kubeconfig)",
        "json": "JSON lines of events on stdout",
    }
)
def handoff(
    c,
    engine="tuppr",
    write=False,
    path=None,
    dry_run=False,
    allow_downgrade=False,
    root=None,
    talosconfig=None,
    kubeconfig=None,
    json=False,
):
    """Hand the Talos and Kubernetes upgrades to tuppr in the cluster: versions, installer images, health checks, batches, maintenance windows."""
    from taltasks.errors import InputError
    from taltasks.events import Emitter
    from taltasks.gates.talossource import ApiTalosSource
    from taltasks.model import load_cluster
    from taltasks.model.policy import load_policy
    from taltasks.ui.reporters import make_reporter
    from taltasks.workflows.handoff import apply_handoff, plan_handoff, write_handoff

    checkout = repo_root(root)
    cluster, policy = load_cluster(checkout), load_policy(checkout)
    if engine != policy.handoff.engine:
        raise InputError(
            f"unknown engine {engine!r}", hint="the in-cluster engine taltasks hands over to: tuppr"
        )
    reporter = make_reporter(json_lines=json)
    emitter = Emitter(reporter)
    with (
        reporter,
        talos_client(checkout, talosconfig) as talos,
        kube_client(checkout, kubeconfig, talos) as kube,
    ):
        result = plan_handoff(
            cluster,
            policy,
            ApiTalosSource(talos, watch=False),
            kube,
            allow_downgrade=allow_downgrade,
            emitter=emitter,
        )
        for note in result.notes:
            emitter.emit("warning", note, step="handoff")
        if dry_run:
            print(result.manifests())
            print(f"(dry run) {', '.join(result.names())}; nothing was changed", file=sys.stderr)
            return
        if write:
            written = write_handoff(checkout, result, path or policy.handoff.path, emitter=emitter)
            from taltasks.workflows.handoff import annotate_nodes

            annotate_nodes(kube, result, emitter=emitter)
            print(
                f"{len(written)} file(s) written under {path or policy.handoff.path}; commit them for Flux",
                file=sys.stderr,
            )
        else:
            for line in apply_handoff(kube, result, emitter=emitter):
                print(line, file=sys.stderr)
    print(f"handed over to {engine}: {result.plan.summary()}", file=sys.stderr)
