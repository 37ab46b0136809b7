"""More of Talos's v1alpha1 checks, one rule per section (``v1alpha1_validation.go``).

Features (host DNS, Kubernetes access to the Talos API), KubeSpan, logging destinations,
registries, inline manifests, the discovery service, the external cloud provider and system
disk encryption.
Where a check changed between minors the difference is data (:data:`TALOS_API_ROLES`,
:data:`RBAC_SWITCH_LAST`), not a version test in the rule.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from taltasks.machineconfig.docmap import lookup
from taltasks.machineconfig.validate.findings import yaml_value
from taltasks.machineconfig.validate.registry import RuleContext, rule
from taltasks.model.syntax import endpoint_problem, ip_problem, is_cidr

# roles kubernetesTalosAPIAccess may grant (Talos's role.All), by first contract
TALOS_API_ROLES: tuple[tuple[tuple[int, int], frozenset[str]], ...] = (
    ((1, 0), frozenset({"os:admin", "os:operator", "os:reader", "os:etcd:backup", "os:impersonator"})),
    (
        (1, 13),
        frozenset(
            {
                "os:admin",
                "os:operator",
                "os:reader",
                "os:etcd:backup",
                "os:image:verifier",
                "os:meta:writer",
                "os:impersonator",
            }
        ),
    ),
)
# the last contract where features.rbac can be switched off (later it is always on)
RBAC_SWITCH_LAST = (1, 11)
KUBESPAN_MIN_MTU = 1280


def _roles(contract: tuple[int, int]) -> frozenset[str]:
    return next(roles for first, roles in reversed(TALOS_API_ROLES) if contract >= first)


def _machine_section(ctx: RuleContext, *keys: str) -> dict[str, Any] | None:
    """``machine.<keys>`` of the v1alpha1 document when it is a mapping, else ``None``."""
    section = lookup(ctx.machine, keys)
    return section if ctx.v1alpha1 is not None and isinstance(section, dict) else None


@rule("v1alpha1-features")
def _features(ctx: RuleContext) -> None:
    doc, features = ctx.v1alpha1, _machine_section(ctx, "features")
    if features is None:
        return
    where = ("machine", "features")
    dns = features.get("hostDNS") or {}
    if dns.get("forwardKubeDNSToHost") and not dns.get("enabled"):
        ctx.error(
            doc,
            (*where, "hostDNS", "forwardKubeDNSToHost"),
            "forwardKubeDNSToHost needs hostDNS enabled",
            hint="set machine.features.hostDNS.enabled: true",
        )
    access = features.get("kubernetesTalosAPIAccess") or {}
    if not access.get("enabled"):
        return
    path = (*where, "kubernetesTalosAPIAccess")
    if ctx.contract.key <= RBAC_SWITCH_LAST and not features.get("rbac"):
        ctx.error(doc, path, "Kubernetes access to the Talos API needs features.rbac: true")
    if not ctx.control_plane:
        ctx.error(doc, path, "Kubernetes access to the Talos API can only be enabled on control planes")
    allowed = _roles(ctx.contract.key)
    for i, role in enumerate(access.get("allowedRoles") or []):
        if role not in allowed:
            ctx.error(
                doc,
                (*path, "allowedRoles", i),
                f"{yaml_value(role)} is not a Talos role",
                hint=f"roles: {', '.join(sorted(allowed))}",
            )


@rule("v1alpha1-kubespan")
def _kubespan(ctx: RuleContext) -> None:
    doc, kubespan = ctx.v1alpha1, _machine_section(ctx, "network", "kubespan")
    if kubespan is None or not kubespan.get("enabled"):
        return
    path = ("machine", "network", "kubespan")
    cluster = ctx.cluster
    if not lookup(cluster, ("discovery", "enabled")):
        ctx.error(doc, path, "KubeSpan needs the discovery service: cluster.discovery.enabled: true")
    for key in ("id", "secret"):
        if not cluster.get(key):
            ctx.error(doc, path, f"KubeSpan needs cluster.{key}")
    mtu = kubespan.get("mtu")
    if isinstance(mtu, int) and not isinstance(mtu, bool) and mtu < KUBESPAN_MIN_MTU:
        ctx.error(
            doc, (*path, "mtu"), f"the KubeSpan link MTU must be at least {KUBESPAN_MIN_MTU}, not {mtu}"
        )
    for i, cidr in enumerate(lookup(kubespan, ("filters", "endpoints")) or []):
        text = str(cidr).removeprefix("!")
        if not is_cidr(text) and ip_problem(text):
            ctx.error(
                doc,
                (*path, "filters", "endpoints", i),
                f"{yaml_value(cidr)} is not an address or CIDR (or !CIDR)",
            )


@rule("v1alpha1-logging")
def _logging(ctx: RuleContext) -> None:
    doc = ctx.v1alpha1
    destinations = lookup(ctx.machine, ("logging", "destinations"))
    if doc is None or not isinstance(destinations, list):
        return
    for i, dest in enumerate(destinations):
        if not isinstance(dest, dict):
            continue
        path = ("machine", "logging", "destinations", i)
        endpoint = dest.get("endpoint")
        if not endpoint:
            ctx.error(doc, (*path, "endpoint"), "a logging destination needs an endpoint")
            continue
        parts = urlsplit(str(endpoint))
        if not parts.netloc:
            ctx.error(doc, (*path, "endpoint"), f"{yaml_value(endpoint)} has no host")
        if parts.scheme not in ("tcp", "udp"):
            ctx.error(
                doc,
                (*path, "endpoint"),
                f"logging endpoint scheme {yaml_value(parts.scheme)} is not tcp or udp",
                hint="like udp://192.0.2.7:5140/",
            )
        if dest.get("format") != "json_lines":
            ctx.error(
                doc, (*path, "format"), f"logging format {yaml_value(dest.get('format'))} is not json_lines"
            )


@rule("v1alpha1-registries")
def _registries(ctx: RuleContext) -> None:
    doc, registries = ctx.v1alpha1, _machine_section(ctx, "registries")
    if registries is None:
        return
    for section in ("config", "mirrors"):
        entries = registries.get(section)
        for name, value in (entries or {}).items() if isinstance(entries, dict) else ():
            if value is None:
                ctx.error(
                    doc,
                    ("machine", "registries", section, name),
                    f"registries.{section}[{yaml_value(name)}] is empty",
                    hint="give it settings or remove it",
                )


@rule("v1alpha1-cluster-sections")
def _cluster_sections(ctx: RuleContext) -> None:
    doc = ctx.v1alpha1
    cluster = ctx.cluster
    if doc is None or not cluster:
        return
    for i, manifest in enumerate(cluster.get("inlineManifests") or []):
        if isinstance(manifest, dict) and not str(manifest.get("name") or "").strip():
            ctx.error(doc, ("cluster", "inlineManifests", i, "name"), "an inline manifest needs a name")
    discovery = cluster.get("discovery")
    if isinstance(discovery, dict) and discovery.get("enabled"):
        service = lookup(discovery, ("registries", "service")) or {}
        if not service.get("disabled"):
            endpoint = service.get("endpoint")
            path = ("cluster", "discovery", "registries", "service", "endpoint")
            if endpoint:
                parts = urlsplit(str(endpoint))
                if not parts.scheme or not parts.netloc:
                    ctx.error(doc, path, f"{yaml_value(endpoint)} is not a URL")
                elif parts.path not in ("", "/"):
                    ctx.error(doc, path, "the discovery service endpoint must not have a path")
            for key in ("id", "secret"):
                if not cluster.get(key):
                    ctx.error(doc, ("cluster", "discovery"), f"the discovery service needs cluster.{key}")
    provider = cluster.get("externalCloudProvider")
    if isinstance(provider, dict):
        manifests = provider.get("manifests") or []
        if manifests and not provider.get("enabled"):
            ctx.error(
                doc,
                ("cluster", "externalCloudProvider", "manifests"),
                "the external cloud provider is disabled, but manifests are given",
            )
        for i, url in enumerate(manifests):
            problem = endpoint_problem(str(url))
            if problem:
                ctx.error(doc, ("cluster", "externalCloudProvider", "manifests", i), problem)


@rule("v1alpha1-disk-encryption")
def _disk_encryption(ctx: RuleContext) -> None:
    doc, encryption = ctx.v1alpha1, _machine_section(ctx, "systemDiskEncryption")
    if encryption is None:
        return
    for label in ("state", "ephemeral"):
        spec = encryption.get(label)
        if not isinstance(spec, dict):
            continue
        path = ("machine", "systemDiskEncryption", label)
        keys = spec.get("keys") or []
        if not keys:
            ctx.error(doc, (*path, "keys"), f"partition {label}: no encryption keys given")
        slots: set[Any] = set()
        for i, key in enumerate(keys):
            if not isinstance(key, dict):
                continue
            slot = key.get("slot", 0)
            if slot in slots:
                ctx.error(
                    doc, (*path, "keys", i, "slot"), f"partition {label}: key slot {slot} is used twice"
                )
            slots.add(slot)
            if not any(key.get(k) is not None for k in ("static", "nodeID", "kms", "tpm")):
                ctx.error(
                    doc,
                    (*path, "keys", i),
                    f"partition {label}: the key at slot {slot} has no configuration",
                    hint="give it one of static, nodeID, kms or tpm",
                )
