"""The Talos-side cluster health checks of ``talosctl health`` (talos-api.md §10.2, checks
1–9), which need nothing but the Talos API. Each check returns a :class:`Check` naming what
was looked at and what was wrong, so a failure explains itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from taltasks.errors import TaltasksError
from taltasks.talos.client import TalosClient
from taltasks.talos.results import NodeResult

MIN_MEMORY_KIB = {"controlplane": 1698 * 1024, "worker": 874 * 1024}
MIN_EPHEMERAL_BYTES = 6 * 1024**3 - 1024**3  # 6 GiB minus system partitions, roughly


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = "OK"
    skipped: bool = False


@dataclass
class Topology:
    control_planes: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return self.control_planes + self.workers


def discover(client: TalosClient, node: str | None = None) -> Topology:
    """Cluster members as the endpoint sees them (COSI ``Members`` resources)."""
    topo = Topology()
    for member in client.list("Members.cluster.talos.dev", namespace="cluster", node=node):
        spec = member.spec or {}
        addresses = spec.get("addresses") or []
        if not addresses:
            continue
        (topo.control_planes if spec.get("machineType") in ("controlplane", "init") else topo.workers).append(
            str(addresses[0])
        )
    return topo


def _failures(results: list[NodeResult], expected: list[str]) -> list[str]:
    out = [str(r.error) for r in results if r.error is not None]
    missing = set(expected) - {r.node for r in results}
    out += [f"{n}: no reply" for n in sorted(missing)]
    return out


def _service_check(client: TalosClient, service: str, nodes: list[str]) -> Check:
    results = client.services(nodes)
    problems = _failures(results, nodes)
    for r in results:
        if r.value is None:
            continue
        svc = next((s for s in r.value if s.id == service), None)
        if svc is None:
            problems.append(f"{r.node}: {service} is not present")
        elif not svc.running_and_healthy:
            problems.append(f"{r.node}: {service} is {svc.state}, healthy={svc.healthy} ({svc.last_message})")
    return Check(f"{service} to be healthy", not problems, "; ".join(problems) or "OK")


def run_checks(client: TalosClient, topology: Topology) -> list[Check]:
    """Every check, in talosctl's order; later checks still run when earlier ones fail."""
    cps, everyone = topology.control_planes, topology.all
    checks: list[Callable[[], Check]] = [
        lambda: _service_check(client, "etcd", cps),
        lambda: _etcd_consistent(client, cps),
        lambda: _etcd_members_are_control_planes(client, cps),
        lambda: _apid_ready(client, everyone),
        lambda: _memory(client, topology),
        lambda: _disks(client, everyone),
        lambda: _diagnostics(client, everyone),
        lambda: _service_check(client, "kubelet", cps),
        lambda: _booted(client, everyone),
    ]
    out = []
    for check in checks:
        try:
            out.append(check())
        except TaltasksError as exc:  # a check that cannot even run is a failed check, not a crash
            out.append(Check(getattr(check, "__name__", "check"), False, str(exc)))
    return out


def _etcd_consistent(client: TalosClient, cps: list[str]) -> Check:
    results = client.etcd_members(cps, query_local=False)
    problems = _failures(results, cps)
    views = {
        r.node: sorted((m.hostname, m.id, m.is_learner) for m in r.value)
        for r in results
        if r.value is not None
    }
    if len({tuple(v) for v in views.values()}) > 1:
        problems.append(
            "members differ: " + "; ".join(f"{n}: {[h for h, _, _ in v]}" for n, v in sorted(views.items()))
        )
    return Check("etcd members to be consistent across nodes", not problems, "; ".join(problems) or "OK")


def _etcd_members_are_control_planes(client: TalosClient, cps: list[str]) -> Check:
    results = client.etcd_members(cps[:1], query_local=False)
    problems = _failures(results, cps[:1])
    for r in results:
        for m in r.value or []:
            ips = {u.split("//", 1)[-1].rsplit(":", 1)[0].strip("[]") for u in m.peer_urls}
            if not ips & set(cps):
                problems.append(f"member {m.hostname} ({', '.join(sorted(ips))}) is not a control-plane node")
    return Check("etcd members to be control plane nodes", not problems, "; ".join(problems) or "OK")


def _apid_ready(client: TalosClient, nodes: list[str]) -> Check:
    problems = _failures(client.version(nodes), nodes)
    return Check("apid to be ready", not problems, "; ".join(problems) or "OK")


def _memory(client: TalosClient, topo: Topology) -> Check:
    results = client.memory(topo.all)
    problems = _failures(results, topo.all)
    for r in results:
        if r.value is None:
            continue
        role = "controlplane" if r.node in topo.control_planes else "worker"
        if r.value.total_kib < MIN_MEMORY_KIB[role]:
            problems.append(
                f"{r.node}: {r.value.total_kib // 1024} MiB is less than the {MIN_MEMORY_KIB[role] // 1024} MiB a {role} needs"
            )
    return Check("all nodes memory sizes", not problems, "; ".join(problems) or "OK")


def _per_node(
    client: TalosClient, nodes: list[str], type_: str, id_: str
) -> Iterator[tuple[str, dict, str | None]]:
    """``(node, spec, error)`` for one runtime resource read from every node."""
    for n in nodes:
        try:
            res = client.get(type_, id_, namespace="runtime", node=n)
        except TaltasksError as exc:
            yield n, {}, str(exc)
            continue
        yield n, res.spec or {}, None


def _disks(client: TalosClient, nodes: list[str]) -> Check:
    problems = []
    for n, spec, error in _per_node(client, nodes, "VolumeStatuses.block.talos.dev", "EPHEMERAL"):
        size = int(spec.get("size", 0))
        if error or size < MIN_EPHEMERAL_BYTES:
            problems.append(f"{n}: {error or f'EPHEMERAL is {size / 1024**3:.1f} GiB'}")
    return Check("all nodes disk sizes", not problems, "; ".join(problems) or "OK")


def _diagnostics(client: TalosClient, nodes: list[str]) -> Check:
    problems = []
    for n in nodes:
        for d in client.list("Diagnostics.runtime.talos.dev", namespace="runtime", node=n):
            problems.append(f"{n}: {(d.spec or {}).get('message', d.id)}")
    return Check("no diagnostics", not problems, "; ".join(problems) or "OK")


def _booted(client: TalosClient, nodes: list[str]) -> Check:
    problems = []
    for n, spec, error in _per_node(client, nodes, "MachineStatuses.runtime.talos.dev", "machine"):
        if error:
            problems.append(f"{n}: {error}")
        elif spec.get("stage") != "running" or not (spec.get("status") or {}).get("ready"):
            unmet = ", ".join(
                f"{u.get('name')}: {u.get('reason')}"
                for u in (spec.get("status") or {}).get("unmetConditions") or []
            )
            problems.append(f"{n}: stage {spec.get('stage')}" + (f" ({unmet})" if unmet else ", not ready"))
    return Check("all nodes to finish boot sequence", not problems, "; ".join(problems) or "OK")
