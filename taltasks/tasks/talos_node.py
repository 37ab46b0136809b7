"""Day-2 node runbooks: reboot, reset, kubeconfig, logs, dmesg."""

from __future__ import annotations

from taltasks.tasks._cli import TIMEOUT, Whole, command, reporting
from taltasks.tasks._talos import ITERABLE, TALOS_HELP, client

COLLECTION = "talos"
NODE_HELP = {**{k: v for k, v in TALOS_HELP.items() if k != "json"}, "node": "node to act on: hostname or IP"}
JSON_HELP = {"json": "report progress as JSON lines"}


@command(
    numbers={"timeout": TIMEOUT},
    name="reboot-node",
    help={**NODE_HELP, **JSON_HELP, "timeout": "seconds to wait for the node to be back"},
    iterable=ITERABLE,
)
def reboot_node(c, node, timeout=900, talosconfig=None, context=None, endpoints=None, nodes=None, json=False):
    """Reboot a node and wait until it is back running and ready with a new boot id."""
    from taltasks.talos import actions, roles
    from taltasks.talos.discovery import resolve

    with reporting(json) as emitter, client(talosconfig, context, endpoints, nodes) as tc:
        roles.require(tc, roles.OPERATE, "rebooting a node")
        target = resolve(tc, node)
        with emitter.step("reboot", f"rebooting {target.hostname} ({target.ip})", node=target.hostname):
            out = actions.reboot(tc, target.ip, timeout=float(timeout))
        emitter.emit(
            "node.done", f"back after {out.seconds:.1f}s, boot id {out.boot_id_after}", node=target.hostname
        )


@command(
    name="reset-node",
    help={
        **NODE_HELP,
        **JSON_HELP,
        "graceful": "leave etcd and drain first (default); --no-graceful for a dead node",
        "reboot": "reboot into maintenance mode afterwards instead of powering off",
        "yes": "do not ask for confirmation",
    },
    iterable=ITERABLE,
)
def reset_node(
    c,
    node,
    graceful=True,
    reboot=False,
    yes=False,
    talosconfig=None,
    context=None,
    endpoints=None,
    nodes=None,
    json=False,
):
    """Wipe a node (Talos reset). Refuses for a control plane whose loss would break etcd quorum."""
    from taltasks.errors import OperationFailed
    from taltasks.talos import roles
    from taltasks.talos.discovery import members, resolve
    from taltasks.tasks._cli import confirm
    from taltasks.workflows import etcd as wf

    with reporting(json) as emitter, client(talosconfig, context, endpoints, nodes) as tc:
        roles.require(tc, roles.ADMIN_ONLY, "resetting a node")
        known = members(tc)
        target = resolve(tc, node, known)
        if target.control_plane:
            s = wf.survey(tc, [m.ip for m in known if m.control_plane])
            if not s.quorum_without(target.hostname):
                raise OperationFailed(
                    f"resetting {target.hostname} would leave etcd without quorum ({len(s.healthy)} healthy of {s.size})",
                    where=target.hostname,
                )
        confirm(
            f"Wipe {target.hostname} ({target.ip}){' and reboot it into maintenance mode' if reboot else ''}?",
            yes=yes,
        )
        with emitter.step(
            "reset",
            f"resetting {target.hostname} (graceful={graceful}, reboot={reboot})",
            node=target.hostname,
        ):
            tc.reset(node=target.ip, graceful=graceful, reboot=reboot)


@command(
    help={
        **NODE_HELP,
        "node": "control plane to ask (default: the first endpoint)",
        "out": "write to this file instead of merging into $KUBECONFIG / ~/.kube/config",
        "force": "overwrite --out if it exists",
    },
    iterable=ITERABLE,
)
def kubeconfig(
    c, node=None, out=None, force=False, talosconfig=None, context=None, endpoints=None, nodes=None
):
    """Fetch the admin kubeconfig and merge it into $KUBECONFIG (or write it to --out)."""
    from taltasks.talos import roles
    from taltasks.talos.kubeconfig import merge_into, write_new

    with client(talosconfig, context, endpoints, nodes) as tc:
        roles.require(tc, roles.ADMIN_ONLY, "fetching the admin kubeconfig")
        text = tc.kubeconfig(node=node or tc.transport.endpoints[0].host)
    path = write_new(text, out, force=force) if out else merge_into(text)
    print(f"kubeconfig written to {path}")


@command(
    numbers={"tail": Whole(minimum=-1)},
    help={
        **NODE_HELP,
        "service": "service id (kubelet, etcd, apid, …) or container id with --kubernetes",
        "follow": "keep streaming new lines",
        "tail": "only the last N lines (-1: all)",
        "kubernetes": "read a Kubernetes container log (namespace k8s.io) instead of a Talos service",
    },
    iterable=ITERABLE,
)
def logs(
    c,
    service,
    node,
    follow=False,
    tail=-1,
    kubernetes=False,
    talosconfig=None,
    context=None,
    endpoints=None,
    nodes=None,
):
    """Print a service's log from a node."""
    import sys

    from taltasks.talos.discovery import resolve

    with client(talosconfig, context, endpoints, nodes) as tc:
        target = resolve(tc, node).ip
        for chunk in tc.logs(
            service, node=target, follow=follow, tail_lines=int(tail), kubernetes=kubernetes
        ):
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()


@command(
    help={**NODE_HELP, "follow": "keep streaming new messages", "tail": "only new messages (with --follow)"},
    iterable=ITERABLE,
)
def dmesg(c, node, follow=False, tail=False, talosconfig=None, context=None, endpoints=None, nodes=None):
    """Print the kernel log of a node."""
    import sys

    from taltasks.talos.discovery import resolve

    with client(talosconfig, context, endpoints, nodes) as tc:
        target = resolve(tc, node).ip
        for chunk in tc.dmesg(node=target, follow=follow, tail=tail):
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()


@command(
    numbers={"timeout": TIMEOUT},
    name="replace-node",
    help={
        "node": "the node to replace (hostname from talconfig.yaml)",
        "root": "the checkout (default: found from the current directory)",
        "force": "remove its etcd member even though it still looks healthy",
        "maintenance_ip": "where the new machine answers in maintenance mode (default: the node's address)",
        "talosconfig": "talosconfig (default: the checkout's)",
        "kubeconfig": "kubeconfig (default: the checkout's)",
        "timeout": "seconds each waiting step may take",
        "yes": "do not ask for confirmation",
        "json": "report progress as JSON lines",
    },
)
def replace_node(
    c,
    node,
    root=None,
    force=False,
    maintenance_ip=None,
    talosconfig=None,
    kubeconfig=None,
    timeout=900,
    yes=False,
    json=False,
):
    """Replace a node safely: remove its etcd member, reset/forget the old one, install the new."""
    from pathlib import Path

    from taltasks.tasks._cli import confirm, repo_root
    from taltasks.workflows.replace import ReplaceOptions
    from taltasks.workflows.replace import replace_node as run

    options = ReplaceOptions(
        root=repo_root(root),
        node=node,
        force=force,
        maintenance_ip=maintenance_ip,
        talosconfig=Path(talosconfig) if talosconfig else None,
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        timeout=float(timeout),
    )
    confirm(
        f"Replace {node}: remove its etcd member, reset or forget the old machine, install the new one?",
        yes=yes,
    )
    with reporting(json) as emitter:
        run(options, emitter)


@command(
    name="diff-config",
    help={
        "node": "only this node (hostname or IP; default: every node)",
        "root": "the checkout (default: found from the current directory)",
        "talosconfig": "talosconfig (default: the checkout's)",
        "exit_code": "exit non-zero when any node differs (for CI)",
        "json": "print {node, changed, summary, changes, diff} objects",
        "unified": "also print the line diff (secret values masked)",
    },
)
def diff_config(c, node=None, root=None, talosconfig=None, exit_code=False, json=False, unified=False):
    """Running machine config of each node vs the generated one, as settings: moved to a
    document vs changed, and what takes effect only at the next reboot; secrets masked."""
    import json as jsonlib

    from taltasks.errors import OperationFailed
    from taltasks.tasks._cli import repo_root
    from taltasks.workflows.diffconfig import diff_nodes

    results = diff_nodes(repo_root(root), node=node, talosconfig=talosconfig)
    if json:
        print(
            jsonlib.dumps(
                [
                    {
                        "node": r.node,
                        "changed": bool(r.diff),
                        "summary": r.changes.summary() if r.diff else "no differences",
                        "changes": [ch.as_dict() for ch in r.changes.changes],
                        "diff": r.diff,
                        "error": r.error,
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    else:
        for r in results:
            if r.error:
                print(f"# {r.node}: {r.error}")
            elif r.diff:
                print(f"# {r.node}: {r.changes.summary()}")
                for ch in r.changes.changes:
                    print(f"  {ch.line()}")
                if unified:
                    print(r.diff, end="" if r.diff.endswith("\n") else "\n")
            else:
                print(f"# {r.node}: no differences")
    reboot = sorted({r.node for r in results if r.changes.reboot_only})
    if reboot and not json:
        print(
            f"# {len(reboot)} node(s) have changes that take effect only at their next reboot: "
            f"{', '.join(reboot)} (apply now, then reboot each in turn, e.g. with talos.reboot-node)"
        )
    differing = [r.node for r in results if r.diff or r.error]
    if exit_code and differing:
        raise OperationFailed(
            f"{len(differing)} node(s) differ from the generated config: {', '.join(differing)}"
        )
