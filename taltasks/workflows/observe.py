"""What the cluster runs now, per node: the input the upgrade plan compares with the repo.

One Version fan-out answers for every node at once (a node that does not answer gets an
``ObservedNode`` with its error, which the plan refuses); the control planes' etcd views
say which one leads etcd (it goes last); zones and the batching label come from the live
Nodes when the policy orders by zone or batches by failure domain and the repo does not say.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taltasks.gates.etcd import leader_hostname, member_health
from taltasks.gates.sources import EtcdView
from taltasks.gates.talossource import ApiTalosSource
from taltasks.model import Node
from taltasks.model.policy import UpgradePolicy
from taltasks.workflows.plan import ObservedNode


def etcd_views(talos: ApiTalosSource, control_planes: Sequence[Node]) -> dict[str, EtcdView | None]:
    """Each control plane's view of etcd by hostname; None where the node did not answer."""
    views: dict[str, EtcdView | None] = {}
    for node in control_planes:
        try:
            views[node.hostname] = talos.etcd(node.ip)
        except Exception:
            views[node.hostname] = None
    return views


def etcd_members(talos: ApiTalosSource, control_planes: Sequence[Node]) -> list[Any]:
    """Member health for the quorum guard (:func:`taltasks.workflows.quorum.quorum_verdict`)."""
    return member_health(etcd_views(talos, control_planes))


def observe_nodes(
    talos: ApiTalosSource,
    nodes: Sequence[Node],
    policy: UpgradePolicy,
    *,
    control_planes: Sequence[Node] = (),
    kube: Any = None,
) -> dict[str, ObservedNode]:
    """``ObservedNode`` per hostname of ``nodes``. ``control_planes`` (all of the cluster's)
    are asked who leads etcd; ``kube`` (a KubeClient) supplies the live Node labels (zone,
    batching label) for ``strategy: zones`` and failure-domain batching."""
    results = {r.node: r for r in talos.client.version([n.ip for n in nodes])}
    views = etcd_views(talos, control_planes)
    leader = leader_hostname(v for v in views.values() if v is not None)
    labels = _live_labels(kube) if kube is not None and needs_live_labels(policy) else {}
    out: dict[str, ObservedNode] = {}
    for node in nodes:
        r = results.get(node.ip)
        if r is None or not r.ok or r.value is None:
            why = r.error.message if r is not None and r.error is not None else "no reply"
            out[node.hostname] = ObservedNode(node.hostname, error=why)
            continue
        out[node.hostname] = ObservedNode(
            node.hostname,
            version=r.value.tag,
            etcd_leader=node.hostname == leader,
            zone=labels.get(node.hostname, {}).get(policy.order.zone_label),
            labels=labels.get(node.hostname, {}),
        )
    return out


def needs_live_labels(policy: UpgradePolicy) -> bool:
    """Whether planning reads the live Nodes' labels (so needs a Kubernetes client)."""
    return policy.order.strategy == "zones" or policy.batching.enabled


def _live_labels(kube: Any) -> dict[str, dict[str, str]]:
    from taltasks.kube.nodes import list_nodes

    return {n.name: dict(n.labels) for n in list_nodes(kube)}
