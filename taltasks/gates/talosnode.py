"""Gate kind ``talos-node``: the Talos machine is running and ready — and, after its
upgrade, reports the expected version from a new boot (talosctl's own done-condition:
MachineStatus running+ready seen after the action AND the boot id changed)."""

from __future__ import annotations

from taltasks.gates.checks import ALWAYS, Check, GateContext, NodeLike, no_source, short_error
from taltasks.gates.sources import Sources
from taltasks.model.policy import GateSpec


def targets(spec: GateSpec, ctx: GateContext) -> list[NodeLike]:
    scope = spec.get("scope") or ("node" if ctx.node is not None else "all")
    if scope == "node" and ctx.node is not None:
        return [ctx.node]
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
        if ctx.is_target(node) and ctx.expected_version:
            want = normalize_version(ctx.expected_version)
            got = normalize_version(m.version)
            out.append(
                Check(subject, "version", f"runs Talos {want}", got == want, got or "unknown", since=ALWAYS)
            )
        if ctx.is_target(node) and ctx.previous_boot_id:
            changed = bool(m.boot_id) and m.boot_id != ctx.previous_boot_id
            seen = "new boot id" if changed else "same boot id as before the upgrade"
            out.append(
                Check(subject, "rebooted", "booted again (boot id changed)", changed, seen, since=ALWAYS)
            )
    return out


def normalize_version(version: str | None) -> str:
    """``1.12.1`` and ``v1.12.1`` are the same Talos version."""
    if not version:
        return ""
    return version if version.startswith("v") else f"v{version}"
