"""Who is in the cluster, as Talos's own discovery (COSI ``Members``) reports it.

Lets every task accept a hostname or an IP for ``--node`` without needing the repository:
the endpoint lists the members it knows, with role, addresses and OS version.
"""

from __future__ import annotations

from dataclasses import dataclass

from taltasks.errors import InputError
from taltasks.talos.client import TalosClient


@dataclass(frozen=True)
class ClusterMember:
    hostname: str
    ip: str
    control_plane: bool
    os: str

    @property
    def role(self) -> str:
        return "controlplane" if self.control_plane else "worker"


def members(client: TalosClient, node: str | None = None) -> list[ClusterMember]:
    out = []
    for r in client.list("Members.cluster.talos.dev", namespace="cluster", node=node):
        spec = r.spec or {}
        addresses = spec.get("addresses") or []
        if not addresses:
            continue
        out.append(
            ClusterMember(
                hostname=str(spec.get("hostname", r.id)),
                ip=str(addresses[0]),
                control_plane=spec.get("machineType") in ("controlplane", "init"),
                os=str(spec.get("operatingSystem", "")),
            )
        )
    return sorted(out, key=lambda m: (not m.control_plane, m.hostname))


def resolve(client: TalosClient, name_or_ip: str, known: list[ClusterMember] | None = None) -> ClusterMember:
    """A member by hostname or IP; an unknown name is an error listing the members."""
    known = known if known is not None else members(client)
    for m in known:
        if name_or_ip in (m.hostname, m.ip):
            return m
    listing = ", ".join(f"{m.hostname} ({m.ip})" for m in known) or "none"
    raise InputError(f"unknown node {name_or_ip!r}", hint=f"cluster members: {listing}")


def answering(client: TalosClient, ips: list[str]) -> dict[str, bool]:
    """Which nodes answer with the client's talosconfig (mutual TLS, i.e. configured)."""
    from taltasks.errors import ConnectionFailed

    try:
        results = client.version(ips, timeout=5)
    except ConnectionFailed:
        return dict.fromkeys(ips, False)
    ok = {r.node: r.ok for r in results}
    return {ip: ok.get(ip, False) for ip in ips}


def maintenance_stage(ip: str) -> str | None:
    """The stage a node reports over the insecure maintenance API (``maintenance``,
    ``installing``, …), or None when it does not answer there — e.g. it is configured."""
    from taltasks.errors import TaltasksError
    from taltasks.talos.config import Context

    try:
        with TalosClient.from_context(
            Context("maintenance", endpoints=[ip]), insecure=True, connect_timeout=3
        ) as m:
            res = m.get("MachineStatuses.runtime.talos.dev", "machine", namespace="runtime")
            return (res.spec or {}).get("stage")
    except TaltasksError:
        return None
