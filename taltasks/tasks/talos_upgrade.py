"""talos.plan, talos.upgrade-node, talos.upgrade-all, talos.apply-node: changing what nodes run.

Thin glue: read and validate the repo (cluster definition, upgrade policy) before any
connection, connect to Talos and Kubernetes with the checkout's configs, call one
workflow, render its events.
"""

from __future__ import annotations

import sys
from typing import Any

from taltasks.tasks._cli import TIMEOUT, command, repo_root, split_list
from taltasks.tasks._kube import talos_client

COLLECTION = "talos"
PLAN_COLUMNS = ["order", "node", "role", "running", "desired", "installer", "action", "reason"]


def plan_columns(rows: list) -> list[str]:
    """The plan table's columns; ``batch`` too when any row belongs to a failure domain."""
    columns = list(PLAN_COLUMNS)
    if any(r.get("domain") for r in rows):
        columns.insert(columns.index("action"), "batch")
    return columns


PATH_COLUMNS = ["step", "version", "contract", "kubernetes", "reason"]
COMMON_HELP = {
    "root": "the checkout holding talos/ (default: found from the current directory)",
    "talosconfig": "talosconfig file (default: $TALOSCONFIG, else talos/clusterconfig/talosconfig)",
    "kubeconfig": "kubeconfig file (default: $KUBECONFIG, else ./kubeconfig, else ~/.kube/config)",
    "json": "JSON lines of events on stdout (for CI)",
}
UPGRADE_HELP = {
    **COMMON_HELP,
    "dry-run": "print the plan and stop: nothing is changed",
    "force": "skip the etcd quorum guard (and only that)",
    "allow-downgrade": "allow nodes to go to an older Talos version",
}


def _load(root: str | None):
    from taltasks.model import load_cluster
    from taltasks.model.policy import load_policy

    path = repo_root(root)
    return path, load_cluster(path), load_policy(path)


def _kube(path, kubeconfig: str | None):
    from taltasks.kube.client import connect
    from taltasks.repo import kubeconfig_path

    return connect(kubeconfig_path(path, kubeconfig))


def _emitter(json: bool, *, plan_table: bool):
    """The reporter for this run; with plain lines the plan is also printed as a table."""
    from taltasks.events import Emitter
    from taltasks.ui.reporters import PlainReporter, make_reporter

    reporter = make_reporter(json_lines=json)
    emitter = Emitter(reporter)
    if plan_table and isinstance(reporter, PlainReporter):
        emitter.add(_plan_printer(reporter.stream))
    return reporter, emitter


def _plan_printer(stream: Any):
    from taltasks.ui.tables import print_rows

    def sink(event: Any) -> None:
        if event.kind == "plan":
            steps = event.data.get("steps") or []
            print_rows(steps, plan_columns(steps), stream=stream)

    return sink


def _upgrade(root, only, dry_run, force, allow_downgrade, talosconfig, kubeconfig, json, command_name):
    from taltasks.ui.tables import print_rows
    from taltasks.workflows.upgrade import UpgradeOptions, run_upgrade, select_nodes

    path, cluster, policy = _load(root)
    options = UpgradeOptions(
        only=tuple(only),
        dry_run=dry_run,
        force=force,
        allow_downgrade=allow_downgrade,
        command=command_name,
    )
    select_nodes(cluster, options.only)  # unknown names fail before any connection
    _configs_validate(path, cluster)
    reporter, emitter = _emitter(json, plan_table=not dry_run)
    with reporter, talos_client(path, talosconfig) as talos, _kube(path, kubeconfig) as kube:
        result = run_upgrade(path, cluster, policy, talos, kube, options, emitter=emitter)
    if dry_run and not json:
        print_rows(result.plan.rows(), plan_columns(result.plan.rows()))
        print(f"(dry run) {result.plan.summary()}; nothing was changed", file=sys.stderr)


def _configs_validate(path, cluster) -> None:
    """Upgrade only with a repository whose configs validate for each node's target Talos
    (what ``configure`` would write, rendered in memory): after a Renovate bump to a new
    minor, a patch the new contract refuses stops the run here, with its file:line, before
    any node is touched — not after half the cluster moved."""
    from taltasks.workflows.configure import plan_configure

    plan_configure(path, allow_new_secrets=False, cluster=cluster)


@command(
    name="upgrade-all",
    help={
        **UPGRADE_HELP,
        "fleet": "a fleet file: upgrade its clusters one after another, stopping at the first that fails",
    },
)
def upgrade_all(
    c,
    dry_run=False,
    force=False,
    allow_downgrade=False,
    root=None,
    talosconfig=None,
    kubeconfig=None,
    json=False,
    fleet=None,
):
    """Rolling Talos upgrade of every node to its desired version, gated on etcd, nodes, Ceph, CNPG."""
    if fleet:
        _upgrade_fleet(fleet, dry_run, force, allow_downgrade, json)
        return
    _upgrade(root, (), dry_run, force, allow_downgrade, talosconfig, kubeconfig, json, "talos.upgrade-all")


def _upgrade_fleet(fleet_file: str, dry_run: bool, force: bool, allow_downgrade: bool, json: bool) -> None:
    from taltasks.model.fleet import load_fleet
    from taltasks.ui.tables import print_rows
    from taltasks.workflows.fleet import plan_fleet, run_fleet
    from taltasks.workflows.upgrade import UpgradeOptions

    fleet = load_fleet(fleet_file)  # every cluster's definition and policy, before any connection
    if dry_run:
        result = plan_fleet(fleet, allow_downgrade=allow_downgrade)
        print_rows(result.rows(), ["cluster", *PLAN_COLUMNS])
        print(f"(dry run) {result.summary()}; nothing was changed", file=sys.stderr)
        return
    options = UpgradeOptions(
        force=force, allow_downgrade=allow_downgrade, command=f"talos.upgrade-all --fleet {fleet_file}"
    )
    reporter, emitter = _emitter(json, plan_table=False)
    with reporter:
        run_fleet(fleet, options, emitter=emitter)


@command(
    name="upgrade-node",
    help={**UPGRADE_HELP, "node": "node(s) to upgrade: hostname or IP, comma-separated"},
    iterable=["node"],
)
def upgrade_node(
    c,
    node,
    dry_run=False,
    force=False,
    allow_downgrade=False,
    root=None,
    talosconfig=None,
    kubeconfig=None,
    json=False,
):
    """Upgrade one node (or a few) with the same gates, journal and cleanup as upgrade-all."""
    from taltasks.errors import InputError

    names = split_list(node)
    if not names:
        raise InputError("--node is required", hint="e.g. invoke talos.upgrade-node --node worker-1")
    nodes_arg = ",".join(names)
    _upgrade(
        root,
        names,
        dry_run,
        force,
        allow_downgrade,
        talosconfig,
        kubeconfig,
        json,
        f"talos.upgrade-node --node {nodes_arg}",
    )


@command(
    help={
        **COMMON_HELP,
        "json": "print the plan as JSON for CI: a list (one object per node), or one document with --fleet",
        "allow-downgrade": "plan downgrades as upgrades instead of refusing them",
        "fleet": "a fleet file: plan every cluster it lists, in one table or one JSON document",
    }
)
def plan(c, root=None, talosconfig=None, kubeconfig=None, json=False, allow_downgrade=False, fleet=None):
    """Desired vs running Talos version per node, and what upgrade-all would do (changes nothing)."""
    if fleet:
        _plan_fleet(fleet, json, allow_downgrade)
        return
    from taltasks import repo
    from taltasks.errors import ConnectionFailed
    from taltasks.gates.talossource import ApiTalosSource
    from taltasks.ui.tables import print_rows
    from taltasks.workflows.handoff import in_cluster_progress, node_progress
    from taltasks.workflows.observe import needs_live_labels
    from taltasks.workflows.upgrade import UpgradeOptions, plan_for

    path, cluster, policy = _load(root)
    options = UpgradeOptions(allow_downgrade=allow_downgrade)
    required = needs_live_labels(policy)
    kube = _kube(path, kubeconfig) if required or repo.kubeconfig_path(path, kubeconfig) else None
    progress: list = []
    try:
        with talos_client(path, talosconfig) as talos:
            result = plan_for(cluster, policy, ApiTalosSource(talos, watch=False), options, kube=kube)
        if kube is not None:
            try:
                progress = in_cluster_progress(kube)
            except ConnectionFailed:
                if required:
                    raise
    finally:
        if kube is not None:
            kube.close()
    rows = result.rows()
    columns = plan_columns(rows)
    if progress:
        labels = {n.hostname: {**n.labels} for n in cluster.nodes}
        for row in rows:
            node = cluster.node(row["node"])
            seen = {"node-role.kubernetes.io/control-plane": ""} if node.control_plane else {}
            row["in_cluster"] = node_progress(progress, row["node"], {**labels[row["node"]], **seen})
        columns.append("in_cluster")
    print_rows(rows, columns, as_json=json)  # JSON rows carry each node's path
    if not json:
        for nodes, running, hops in result.paths():
            print(f"\n{', '.join(nodes)}: {running} → {hops[-1].version} crosses minors; go minor by minor")
            path_rows = [{"step": i, **hop.row()} for i, hop in enumerate(hops, start=1)]
            print_rows(path_rows, PATH_COLUMNS)
    print(result.summary(), file=sys.stderr)
    for p in progress:
        done = f", {len(p['completedNodes'])} done" if p["kind"] == "TalosUpgrade" else ""
        print(
            f"in-cluster: {p['kind']} {p['name']} → {p['target']}: {p['phase']}{done} — {p['message']}",
            file=sys.stderr,
        )


def _plan_fleet(fleet_file: str, json: bool, allow_downgrade: bool) -> None:
    import json as jsonlib

    from taltasks.errors import OperationFailed
    from taltasks.model.fleet import load_fleet
    from taltasks.ui.tables import print_rows
    from taltasks.workflows.fleet import plan_fleet

    fleet = load_fleet(fleet_file)
    result = plan_fleet(fleet, allow_downgrade=allow_downgrade)
    if json:
        print(jsonlib.dumps(result.as_dict(), indent=2, default=str))
    else:
        print_rows(result.rows(), ["cluster", *PLAN_COLUMNS])
    print(result.summary(), file=sys.stderr)
    if not result.ok:
        failed = ", ".join(c.name for c in result.clusters if not c.ok)
        raise OperationFailed(
            f"fleet plan incomplete: {failed} could not be planned", hint="see the rows above"
        )


@command(
    numbers={"timeout": TIMEOUT},
    name="apply-node",
    help={
        "root": COMMON_HELP["root"],
        "talosconfig": COMMON_HELP["talosconfig"],
        "kubeconfig": COMMON_HELP["kubeconfig"] + "; used to cordon and drain before a reboot",
        "node": "node to configure: hostname or IP from talos/talconfig.yaml",
        "mode": "auto (default), reboot (apply, then reboot safely: cordon + drain first), no-reboot, staged or try",
        "dry-run": "show what Talos would do and the config diff (secrets redacted); change nothing",
        "insecure": "the node is in maintenance mode (found out by itself when not given)",
        "timeout": "seconds to wait for the node after a reboot (default: the policy's reboot timeout)",
        "json": "JSON lines of events on stdout",
    },
)
def apply_node(
    c,
    node,
    mode="auto",
    dry_run=False,
    insecure=False,
    timeout=None,
    root=None,
    talosconfig=None,
    kubeconfig=None,
    json=False,
):
    """Apply a node's generated machine config; a reboot (asked for, or one Talos up to 1.13
    needs) is done safely and followed until the node is back; what waits for a reboot is said."""
    from taltasks.repo import talosconfig_path
    from taltasks.talos.config import TalosConfig
    from taltasks.workflows.apply import ApplyOptions
    from taltasks.workflows.apply import apply_node as run

    path, cluster, policy = _load(root)
    cluster.node(node)  # an unknown name fails before any connection
    found = talosconfig_path(path, talosconfig)
    context = TalosConfig.load(str(found) if found else None).context()
    options = ApplyOptions(
        mode=mode,
        dry_run=dry_run,
        insecure=insecure,
        timeout=float(timeout) if timeout else policy.timeouts.reboot,
        drain_timeout=policy.timeouts.drain,
        drain=policy.drain,
    )
    reporter, emitter = _emitter(json, plan_table=False)
    kubes = []

    def kube():
        kubes.append(_kube(path, kubeconfig))
        return kubes[-1]

    try:
        with reporter:
            outcome = run(path, cluster, node, context, options, emitter=emitter, kube=kube)
    finally:
        for k in kubes:
            k.close()
    if dry_run:
        print(outcome.details)
    elif not json:
        print(f"{outcome.node}: {outcome.summary()}", file=sys.stderr)
