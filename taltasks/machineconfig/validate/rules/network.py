"""Cross-document conflicts of the 1.12+ network documents with the v1alpha1 document
(Talos's ``V1Alpha1ConflictValidate`` and the documents' own ``Validate``)."""

from __future__ import annotations

from taltasks.machineconfig.validate.findings import yaml_value
from taltasks.machineconfig.validate.registry import RuleContext, rule


@rule("hostname-config", first="1.12")
def _hostname_config(ctx: RuleContext) -> None:
    network = ctx.machine.get("network") or {}
    features = ctx.machine.get("features") or {}
    for doc in ctx.documents("HostnameConfig"):
        auto, hostname = doc.get("auto"), doc.get("hostname")
        if not auto and not hostname:
            ctx.error(doc, (), "set auto or hostname")
        if hostname and auto not in (None, "off"):
            ctx.error(
                doc,
                ("auto",),
                f"hostname {yaml_value(hostname)} conflicts with auto: {yaml_value(auto)}",
                hint="set auto: off",
            )
        if auto and auto not in ("stable", "off"):
            ctx.error(doc, ("auto",), f"auto must be stable or off, not {yaml_value(auto)}")
        if network.get("hostname"):
            ctx.error(
                ctx.v1alpha1,
                ("machine", "network", "hostname"),
                "static hostname is already set in v1alpha1 config (machine.network.hostname) "
                "and in a HostnameConfig document",
            )
        if features.get("stableHostname"):
            ctx.error(
                ctx.v1alpha1,
                ("machine", "features", "stableHostname"),
                "stable hostname is already set in v1alpha1 config (features.stableHostname) "
                "and in a HostnameConfig document",
            )


@rule("resolver-config", first="1.12")
def _resolver_config(ctx: RuleContext) -> None:
    if not (ctx.machine.get("network") or {}).get("nameservers"):
        return
    for doc in ctx.documents("ResolverConfig"):
        ctx.error(
            doc,
            ("nameservers",),
            "nameservers are already set in v1alpha1 machine.network.nameservers",
            hint="keep them in one place: the ResolverConfig document",
        )
