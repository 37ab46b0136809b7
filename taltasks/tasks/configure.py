"""``invoke configure``: validate the cluster definition, then write machine configs."""

from __future__ import annotations

import sys

from invoke import Context

from taltasks.tasks._cli import command, repo_root

COLLECTION = ""


def _ask(path: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(
        f"{path} does not exist. Create NEW cluster secrets?\n"
        "Only do this for a new cluster: nodes installed with other secrets will not accept these.",
        file=sys.stderr,
    )
    return input("Create new secrets? [y/N] ").strip().lower() in ("y", "yes")


@command(
    help={
        "dry-run": "show a unified diff per file (secret values redacted) and write nothing",
        "yes": "create the secrets file without asking when it does not exist (first run of a new cluster)",
        "json": "print the per-node table as JSON",
        "root": "the checkout holding talos/talconfig.yaml (default: found from the current directory)",
    }
)
def configure(
    c: Context, dry_run: bool = False, yes: bool = False, json: bool = False, root: str | None = None
):
    """Validate talos/talconfig.yaml, then write talos/clusterconfig/<cluster>-<node>.yaml and talosconfig."""
    from taltasks.events import Emitter
    from taltasks.ui.reporters import PlainReporter
    from taltasks.ui.tables import print_rows
    from taltasks.workflows.configure import configure as run

    emitter = Emitter(
        PlainReporter(sys.stderr, quiet_kinds=frozenset({"step.done", "info"}) if json else frozenset())
    )
    plan = run(
        repo_root(root),
        dry_run=dry_run,
        confirm_new_secrets=(lambda _p: True) if yes else _ask,
        emitter=emitter,
    )
    if dry_run:
        for change in plan.files:
            if change.status != "unchanged":
                sys.stdout.write(change.diff())
        if plan.new_secrets is not None:
            print(
                f"(dry run) would create {plan.root.name}/talos/talsecret.sops.yaml with new secrets",
                file=sys.stderr,
            )
    print_rows(
        plan.rows(dry_run=dry_run), ["node", "role", "ip", "talos", "installer image", "config"], as_json=json
    )
