"""etcd.*: etcd membership and status through the Talos API."""

from __future__ import annotations

from taltasks.tasks._cli import command
from taltasks.tasks._talos import ITERABLE, TALOS_HELP, error_row, fail_if_errors

COLLECTION = "etcd"
HELP = {
    **TALOS_HELP,
    "nodes": "control-plane nodes to ask (default: the context's endpoints, which are control planes)",
}


def client(talosconfig=None, context=None, endpoints=None, nodes=None):
    """Like the other Talos tasks, but etcd lives on control planes only: without --nodes,
    ask the endpoints (control planes by convention) rather than every node of the context."""
    from taltasks.tasks import _talos
    from taltasks.tasks._cli import split_list

    tc = _talos.client(talosconfig, context, endpoints, nodes)
    if not split_list(nodes):
        tc.default_nodes = [e.host for e in tc.transport.endpoints]
    return tc


@command(help=HELP, iterable=ITERABLE)
def status(c, talosconfig=None, context=None, endpoints=None, nodes=None, json=False):
    """etcd member status of each control-plane node (leader, raft index, DB size, errors)."""
    from taltasks.ui.tables import print_rows

    with client(talosconfig, context, endpoints, nodes) as tc:
        results = tc.etcd_status()
    rows = []
    for r in results:
        if not r.ok:
            rows.append(error_row(r))
            continue
        s = r.value
        rows.append(
            {
                "node": r.node,
                "member": s.member_id_hex,
                "db_size": s.db_size,
                "in_use": s.db_size_in_use,
                "leader": f"{s.leader:016x}",
                "is_leader": s.is_leader,
                "raft_index": s.raft_index,
                "raft_term": s.raft_term,
                "learner": s.is_learner,
                "errors": list(s.errors),
            }
        )
    print_rows(
        rows,
        [
            "node",
            "member",
            "db_size",
            "in_use",
            "leader",
            "raft_index",
            "raft_term",
            "learner",
            "errors",
            "error",
        ],
        as_json=json,
    )
    fail_if_errors(results, "etcd status")


@command(help=HELP, iterable=ITERABLE)
def members(c, talosconfig=None, context=None, endpoints=None, nodes=None, json=False):
    """etcd members as each queried control plane sees them."""
    from taltasks.ui.tables import print_rows

    with client(talosconfig, context, endpoints, nodes) as tc:
        results = tc.etcd_members()
    rows = []
    for r in results:
        if not r.ok:
            rows.append(error_row(r))
            continue
        for m in r.value:
            rows.append(
                {
                    "node": r.node,
                    "id": m.id_hex,
                    "hostname": m.hostname,
                    "peer_urls": list(m.peer_urls),
                    "client_urls": list(m.client_urls),
                    "learner": m.is_learner,
                }
            )
    print_rows(rows, ["node", "id", "hostname", "peer_urls", "client_urls", "learner", "error"], as_json=json)
    fail_if_errors(results, "etcd members")
