"""talos.version, talos.services, talos.health, talos.get: read-only views of the nodes."""

from __future__ import annotations

from taltasks.tasks._cli import Whole, command
from taltasks.tasks._talos import ITERABLE, TALOS_HELP, client, error_row, fail_if_errors, ordered

COLLECTION = "talos"


@command(help=TALOS_HELP, iterable=ITERABLE)
def version(c, talosconfig=None, context=None, endpoints=None, nodes=None, json=False):
    """Talos version of each node (one row per node; --json for one entry per node)."""
    from taltasks.ui.tables import print_rows

    with client(talosconfig, context, endpoints, nodes) as tc:
        results = ordered(tc.version(), tc)
    rows = []
    for r in results:
        if r.ok:
            v = r.value
            rows.append(
                {
                    "node": r.node,
                    "tag": v.tag,
                    "sha": v.sha,
                    "os": v.os,
                    "arch": v.arch,
                    "platform": v.platform,
                }
            )
        else:
            rows.append(error_row(r))
    print_rows(rows, ["node", "tag", "os", "arch", "platform", "error"], as_json=json)
    fail_if_errors(results, "version")


@command(help=TALOS_HELP, iterable=ITERABLE)
def services(c, talosconfig=None, context=None, endpoints=None, nodes=None, json=False):
    """Services of each node with their state and health."""
    from taltasks.ui.tables import print_rows

    with client(talosconfig, context, endpoints, nodes) as tc:
        results = ordered(tc.services(), tc)
    rows = []
    for r in results:
        if not r.ok:
            rows.append(error_row(r))
            continue
        for s in r.value:
            health = "?" if s.health_unknown else ("OK" if s.healthy else "Fail")
            rows.append(
                {
                    "node": r.node,
                    "service": s.id,
                    "state": s.state,
                    "health": health,
                    "last_message": s.last_message,
                }
            )
    print_rows(rows, ["node", "service", "state", "health", "last_message", "error"], as_json=json)
    fail_if_errors(results, "services")


@command(
    numbers={"wait": Whole(minimum=0)},
    help={
        **TALOS_HELP,
        "control_planes": "control-plane node IPs (default: discovered from cluster members)",
        "workers": "worker node IPs (default: discovered from cluster members)",
        "wait": "keep re-checking for this many seconds until every check passes",
    },
    iterable=[*ITERABLE, "control_planes", "workers"],
)
def health(
    c,
    talosconfig=None,
    context=None,
    endpoints=None,
    nodes=None,
    control_planes=None,
    workers=None,
    wait=0,
    json=False,
):
    """Talos-side cluster health: etcd, apid, memory, disks, diagnostics, kubelet, boot."""
    import time

    from taltasks import deadline as deadlines
    from taltasks.errors import OperationFailed
    from taltasks.talos import health as h
    from taltasks.tasks._cli import split_list
    from taltasks.ui.tables import print_rows

    with client(talosconfig, context, endpoints, nodes) as tc:
        topo = h.Topology(split_list(control_planes), split_list(workers))
        if not topo.control_planes:
            topo = h.discover(tc)
        deadline = time.monotonic() + float(wait)
        while True:
            # with --wait, a node that stops answering cannot hold a round past the deadline
            with deadlines.until(deadline if float(wait) > 0 else None):
                checks = h.run_checks(tc, topo)
            if all(x.ok for x in checks) or time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
    rows = [
        {"check": x.name, "result": "OK" if x.ok else "FAIL", "detail": "" if x.ok else x.detail}
        for x in checks
    ]
    print_rows(
        rows,
        ["check", "result", "detail"],
        as_json=json,
        title=None if json else f"control planes {topo.control_planes}, workers {topo.workers}",
    )
    failed = [x for x in checks if not x.ok]
    if failed:
        raise OperationFailed(
            f"{len(failed)} health check(s) failed: " + "; ".join(f"{x.name}: {x.detail}" for x in failed)
        )


@command(
    help={
        **TALOS_HELP,
        "type": "resource type or alias (machinestatus, members, mc, …)",
        "id": "resource id (default: all)",
        "namespace": "namespace (default: the type's)",
        "output": "table (default), yaml or json",
    },
    iterable=ITERABLE,
)
def get(
    c,
    type,
    id=None,
    namespace=None,
    talosconfig=None,
    context=None,
    endpoints=None,
    nodes=None,
    output="table",
    json=False,
):
    """Read COSI resources, like `talosctl get`: one query per node."""
    import json as jsonlib

    import yaml

    from taltasks.ui.tables import print_rows

    fmt = "json" if json else output
    out = []
    with client(talosconfig, context, endpoints, nodes) as tc:
        targets = tc.default_nodes or [None]
        for node in targets:
            ns, full = tc.resolve_type(type, node)
            ns = namespace or ns
            items = (
                [tc.get(full, id, namespace=ns, node=node)] if id else tc.list(full, namespace=ns, node=node)
            )
            for r in items:
                out.append(
                    {
                        "node": node or tc.transport.endpoint_host(),
                        "namespace": r.namespace,
                        "type": r.type,
                        "id": r.id,
                        "version": r.version,
                        "spec": r.spec,
                    }
                )
    if fmt == "json":
        print(jsonlib.dumps(out, indent=2, default=str))
    elif fmt == "yaml":
        print(yaml.safe_dump_all(out, sort_keys=False), end="")
    else:
        print_rows(out, ["node", "namespace", "type", "id", "version"])
