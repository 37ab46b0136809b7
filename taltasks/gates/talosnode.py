"""Gate kind ``talos-node``: the Talos machine is running and ready — and, after its
upgrade, reports the expected version from a new boot (talosctl's own done-condition:
MachineStatus running+ready seen after the action AND the boot id changed).

The boot id comes from Talos (the 1.14 ``BootID`` resource, readable by every role, else
the admin-only Read); where the talosconfig's role cannot read it, from the Kubernetes
Node's ``status.nodeInfo.bootID`` (the kubelet reports the same kernel boot id)."""

from __future__ import annotations

from taltasks.gates.checks import ALWAYS, Check, GateContext, NodeLike, no_source, short_error
from taltasks.gates.sources import Sources
from taltasks.model.policy import GateSpec


def targets(spec: GateSpec, ctx: GateContext) -> list[NodeLike]:
    scope = spec.get("scope") or ("node" if ctx.subjects else "all")
    if scope == "node" and ctx.subjects:
        return ctx.subjects
    return list(ctx.nodes)


def talos_nodes(spec: GateSpec, ctx: GateContext) -> list[str]:
    return [n.ip for n in targets(spec, ctx)]


def observe(spec: GateSpec, sources: Sources, ctx: GateContext, now: float) -> list[Check]:
    if sources.talos is None:
        return no_source("talos", "Talos")
    out: list[Check] = []
    for node in targets(spec, ctx):
        subject = f"talos {node.hostname}"
        try:
            m = sources.talos.machine(node.ip)
        except Exception as exc:
            out.append(Check(subject, "reachable", "the Talos API answers", False, short_error(exc)))
            continue
        out.append(Check(subject, "stage", "stage is running", m.stage == "running", m.stage, since=ALWAYS))
        unmet = f"not ready: {', '.join(m.unmet)}" if m.unmet else "not ready"
        out.append(
            Check(subject, "ready", "machine is ready", m.ready, "ready" if m.ready else unmet, since=ALWAYS)
        )
        expected_version, previous_boot_id = ctx.expectation(node)
        if expected_version:
            want = normalize_version(expected_version)
            got = normalize_version(m.version)
            out.append(
                Check(subject, "version", f"runs Talos {want}", got == want, got or "unknown", since=ALWAYS)
            )
        if previous_boot_id:
            boot_id = m.boot_id or _kube_boot_id(sources, node.hostname)
            changed = bool(boot_id) and boot_id != previous_boot_id
            if changed:
                seen = "new boot id"
            elif boot_id:
                seen = "same boot id as before the upgrade"
            else:
                seen = "boot id unreadable: Talos < 1.14 shows it to os:admin only, and no Kubernetes Node has it"
            out.append(
                Check(subject, "rebooted", "booted again (boot id changed)", changed, seen, since=ALWAYS)
            )
    return out


def _kube_boot_id(sources: Sources, hostname: str) -> str:
    """The kernel boot id as the kubelet reports it (``status.nodeInfo.bootID``): the
    reader-visible source where Talos keeps it behind the admin-only Read (before 1.14)."""
    from taltasks.gates.sources import ResourceQuery

    if sources.kube is None:
        return ""
    try:
        obj = sources.kube.get(ResourceQuery("v1", "Node", name=hostname))
    except Exception:
        return ""
    return str(((obj or {}).get("status") or {}).get("nodeInfo", {}).get("bootID") or "")


def normalize_version(version: str | None) -> str:
    """``1.12.1`` and ``v1.12.1`` are the same Talos version."""
    if not version:
        return ""
    return version if version.startswith("v") else f"v{version}"
