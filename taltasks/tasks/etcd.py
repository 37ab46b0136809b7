"""etcd.*: etcd membership and status through the Talos API."""

from __future__ import annotations

from taltasks.tasks._cli import TIMEOUT, command, reporting
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


def _control_planes(tc) -> list[str]:
    from taltasks.talos.discovery import members

    known = [m.ip for m in members(tc) if m.control_plane]
    return known or list(tc.default_nodes)


@command(
    numbers={"timeout": TIMEOUT},
    help={
        **TALOS_HELP,
        "path": "file to write the snapshot to",
        "node": "control plane to stream from (default: a healthy follower)",
        "timeout": "seconds the whole snapshot may take (default: 600)",
    },
    iterable=ITERABLE,
)
def snapshot(
    c,
    path,
    node=None,
    timeout=600,
    talosconfig=None,
    context=None,
    endpoints=None,
    nodes=None,
    json=False,
):
    """Stream an etcd snapshot to PATH (via a temp file, fsync'd, with its sha256)."""
    import json as jsonlib
    from pathlib import Path

    from taltasks.talos import roles
    from taltasks.talos.discovery import resolve
    from taltasks.workflows import etcd as wf

    with reporting(json) as emitter, client(talosconfig, context, endpoints, nodes) as tc:
        roles.require(tc, roles.SNAPSHOT, "an etcd snapshot")
        source = resolve(tc, node).ip if node else wf.pick_snapshot_source(wf.survey(tc, _control_planes(tc)))
        result = wf.snapshot(tc, Path(path), source, emitter, timeout=float(timeout))
    if json:
        print(
            jsonlib.dumps({"path": result.path, "size": result.size, "sha256": result.sha256, "node": source})
        )


@command(
    name="remove-member",
    help={
        **TALOS_HELP,
        "member": "member to remove: hostname, IP or hex member id",
        "force": "remove it even though it is up and healthy (never skips the quorum check)",
        "yes": "do not ask for confirmation",
    },
    iterable=ITERABLE,
)
def remove_member(
    c, member, force=False, yes=False, talosconfig=None, context=None, endpoints=None, nodes=None, json=False
):
    """Remove a dead member from etcd; refuses when it is still healthy or quorum would break."""
    from taltasks.talos import roles
    from taltasks.tasks._cli import confirm
    from taltasks.workflows import etcd as wf

    with reporting(json) as emitter, client(talosconfig, context, endpoints, nodes) as tc:
        roles.require(tc, roles.ADMIN_ONLY, "removing an etcd member")
        s = wf.survey(tc, _control_planes(tc))
        plan = wf.plan_removal(s, member, force=force)
        t = plan.target
        emitter.emit(
            "plan",
            f"remove {t.name} ({t.member.id_hex}, {t.detail}); {plan.healthy_after} of {plan.members_after} members stay healthy",
            node=t.name,
        )
        confirm(f"Remove etcd member {t.name} ({t.member.id_hex})?", yes=yes)
        wf.remove_member(tc, plan, emitter)
