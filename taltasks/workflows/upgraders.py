"""Other upgraders at work: a rolling upgrade refuses to start while one is.

Our quorum guard protects etcd from *our* reboots; it cannot see someone else's. Before
anything changes, ``upgrade-all`` / ``upgrade-node`` look for the other ways a Talos node
gets upgraded, and refuse (with nothing changed) when one is active — ``--force`` skips
the quorum guard only, never this:

* **a node already mid-sequence** (talosctl, another taltasks, a person): its MachineStatus
  stage is upgrading, rebooting, installing, resetting or shutting down, or its Kubernetes
  Node carries ``talos.dev/cordoned`` — Talos cordons its own Node for an upgrade, shutdown
  or reset and lifts that cordon only when it has booted again;
* **tuppr**: a ``TalosUpgrade`` or ``KubernetesUpgrade`` in an active phase (health
  checking, draining, upgrading, rebooting or in a hook) — pausing it does not stop a Job
  already running; let it finish or suspend it first;
* **Omni**: machines connected to Omni over SideroLink (``SiderolinkStatuses``): Omni
  runs their upgrades itself.

Nodes that do not answer are left to the plan, which refuses them already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taltasks.errors import OperationFailed, TaltasksError

if TYPE_CHECKING:
    from taltasks.kube.client import KubeClient
    from taltasks.model import Node
    from taltasks.talos.client import TalosClient

MACHINE_STATUS = "MachineStatuses.runtime.talos.dev"
SIDEROLINK_STATUS = "SiderolinkStatuses.siderolink.talos.dev"
TALOS_CORDONED = "talos.dev/cordoned"
BUSY_STAGES = frozenset({"upgrading", "rebooting", "installing", "resetting", "shutting down"})
TUPPR_GROUP, TUPPR_VERSION = "tuppr.home-operations.com", "v1alpha1"
TUPPR_ACTIVE = frozenset({"HealthChecking", "PreHook", "Draining", "Upgrading", "Rebooting", "PostHook"})


@dataclass(frozen=True)
class Upgrader:
    """One sign of another upgrader: who (``talos``, ``tuppr``, ``omni``), where, what."""

    who: str
    where: str
    what: str


def find_upgraders(client: TalosClient, kube: KubeClient | None, nodes: Sequence[Node]) -> list[Upgrader]:
    """Every sign of another upgrader at work on ``nodes`` (and, through Kubernetes, the
    cluster); [] when there is none."""
    per_node = client.parallel([lambda n=n: _look_at(client, n) for n in nodes])
    found = [u for signs in per_node for u in signs]
    if kube is not None:
        found += _cordoned_by_talos(kube, {n.hostname for n in nodes})
        found += _tuppr_active(kube)
    return found


def refuse_if_busy(client: TalosClient, kube: KubeClient | None, nodes: Sequence[Node]) -> None:
    """Raise (nothing changed) when :func:`find_upgraders` finds anything."""
    found = find_upgraders(client, kube, nodes)
    if not found:
        return
    who = {u.who for u in found}
    hints = []
    if "tuppr" in who:
        hints.append(
            "let tuppr finish, or suspend it (annotate the plan tuppr.home-operations.com/suspend=true) "
            "once no node is mid-upgrade"
        )
    if "omni" in who:
        hints.append("upgrade Omni-managed machines through Omni")
    if "talos" in who:
        hints.append("wait for the node to finish (invoke talos.version; talos.get machinestatus)")
    raise OperationFailed(
        "another upgrader is at work, so nothing was changed: " + "; ".join(u.what for u in found),
        where=found[0].where,
        hint="; ".join(hints) + " — then run the command again (--force does not skip this check)",
    )


def _look_at(client: TalosClient, node: Node) -> list[Upgrader]:
    out: list[Upgrader] = []
    try:
        status = client.get(MACHINE_STATUS, "machine", namespace="runtime", node=node.ip)
    except TaltasksError:
        return out  # not answering: the plan refuses it
    stage = str((status.spec or {}).get("stage") or "").lower() if isinstance(status.spec, dict) else ""
    if stage in BUSY_STAGES:
        out.append(Upgrader("talos", node.hostname, f"{node.hostname} is {stage}"))
    host = _siderolink_host(client, node.ip)
    if host:
        out.append(
            Upgrader("omni", node.hostname, f"{node.hostname} is managed by Omni (SideroLink to {host})")
        )
    return out


def _siderolink_host(client: TalosClient, ip: str) -> str | None:
    from taltasks.talos.results import TalosCallError

    try:
        res = client.get(SIDEROLINK_STATUS, "siderolink-status", namespace="config", node=ip)
    except TalosCallError as exc:
        if exc.code in ("NOT_FOUND", "PERMISSION_DENIED"):  # no SideroLink, or a Talos without the type
            return None
        raise
    spec: Any = res.spec if isinstance(res.spec, dict) else {}
    return str(spec.get("host") or "") or None


def _cordoned_by_talos(kube: KubeClient, names: set[str]) -> list[Upgrader]:
    from taltasks.kube.nodes import list_nodes

    return [
        Upgrader(
            "talos",
            n.name,
            f"Talos cordoned {n.name} (talos.dev/cordoned): it is upgrading, shutting down or resetting",
        )
        for n in list_nodes(kube)
        if n.name in names and TALOS_CORDONED in n.annotations
    ]


def _tuppr_active(kube: KubeClient) -> list[Upgrader]:
    out: list[Upgrader] = []
    for plural, kind in (("talosupgrades", "TalosUpgrade"), ("kubernetesupgrades", "KubernetesUpgrade")):
        items = kube.list_custom(TUPPR_GROUP, TUPPR_VERSION, plural, what=f"list tuppr {kind}s") or []
        for item in items:
            status = item.get("status") or {}
            phase = status.get("phase") or ""
            if phase not in TUPPR_ACTIVE:
                continue
            name = item["metadata"]["name"]
            nodes = status.get("currentNodes") or (
                [status["currentNode"]] if status.get("currentNode") else []
            )
            on = f" on {', '.join(nodes)}" if nodes else ""
            out.append(Upgrader("tuppr", f"{kind}/{name}", f"tuppr {kind} {name!r} is {phase}{on}"))
    return out
