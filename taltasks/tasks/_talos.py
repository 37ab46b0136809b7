"""Options shared by tasks that talk to the Talos API, and the client they build."""

from __future__ import annotations

from taltasks.tasks._cli import split_list

TALOS_HELP = {
    "talosconfig": "talosconfig file (default: $TALOSCONFIG or ~/.talos/config)",
    "context": "talosconfig context to use (default: the current one)",
    "endpoints": "endpoints to dial, comma-separated (default: the context's)",
    "nodes": "nodes to target, comma-separated (default: the context's nodes, else the endpoint)",
    "json": "print machine-readable JSON instead of a table",
}
ITERABLE = ["nodes", "endpoints"]


def client(talosconfig=None, context=None, endpoints=None, nodes=None, insecure=False):
    from taltasks.talos.connect import connect

    return connect(
        talosconfig=talosconfig,
        context=context,
        endpoints=split_list(endpoints),
        nodes=split_list(nodes),
        insecure=insecure,
    )


def error_row(result) -> dict:
    return {"node": result.node, "error": f"{result.error.message} ({result.error.code})"}


def fail_if_errors(results, what: str) -> None:
    from taltasks.errors import OperationFailed

    failed = [r for r in results if not r.ok]
    if failed:
        raise OperationFailed(
            f"{what} failed on {len(failed)} of {len(results)} nodes: "
            + "; ".join(str(r.error) for r in failed)
        )


def ordered(results, tc):
    """Replies arrive in completion order; show them in the order the nodes were asked for."""
    order = {n: i for i, n in enumerate(tc.default_nodes)}
    return sorted(results, key=lambda r: order.get(r.node, len(order)))
