"""Gate kind name → the module that observes it.

Each module has ``observe(spec, sources, ctx, now) -> list[Check]`` and may have
``kube_queries(spec, ctx)`` / ``talos_nodes(spec, ctx)`` (what to watch) and
``baseline(spec, sources, ctx)`` (what to remember before a node).
"""

from __future__ import annotations

from types import ModuleType

from taltasks.gates import ceph, cnpg, etcd, expression, kubenode, talosnode

OBSERVERS: dict[str, ModuleType] = {
    "talos-node": talosnode,
    "etcd": etcd,
    "kube-node": kubenode,
    "ceph": ceph,
    "cnpg": cnpg,
    "expression": expression,
}
