"""API discovery documents: the legacy ones (``/api``, ``/apis``, ``/api/v1``,
``/apis/<group>/<version>``) and aggregated discovery (``apidiscovery.k8s.io/v2``), which
kubectl ≥ 1.30 asks for first and which lets it resolve ``nodes``, ``no``, ``cephcluster``…
in one round trip. Built from the live registry, so CRDs appear as soon as they exist.
"""

from __future__ import annotations

from typing import Any

from taltasks.sim.kube.resources import Registry, ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

_SUB_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "finalize": ["update"],
}


def _sub_kind(rt: ResourceType, sub: str) -> tuple[str, str, str]:
    if sub == "eviction":
        return ("policy", "v1", "Eviction")
    if sub == "scale":
        return ("autoscaling", "v1", "Scale")
    return (rt.group, rt.version, rt.kind)


def _resource_entries(rt: ResourceType) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular_name,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    out = [entry]
    for sub in rt.all_subresources():
        group, version, kind = _sub_kind(rt, sub)
        sub_entry: dict[str, Any] = {
            "name": f"{rt.plural}/{sub}",
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": kind,
            "verbs": ["create"] if sub == "eviction" else _SUB_VERBS.get(sub, ["get"]),
        }
        if (group, version) != (rt.group, rt.version):
            sub_entry["group"], sub_entry["version"] = group, version
        out.append(sub_entry)
    return out


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = list(registry.in_group_version(group, version))
    if not types:
        return None
    resources = [e for rt in types for e in _resource_entries(rt)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def group_list(registry: Registry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in registry.groups() if g],
    }


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    for g, versions in registry.groups():
        if g == name and g:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(g, versions)}
    return None


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular_name,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for sub in rt.all_subresources():
        g, v, k = _sub_kind(rt, sub)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": g, "version": v, "kind": k},
                "verbs": ["create"] if sub == "eviction" else _SUB_VERBS.get(sub, ["get"]),
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(
    registry: Registry, *, core: bool, api_version: str = "apidiscovery.k8s.io/v2"
) -> dict[str, Any]:
    """``/api`` (core only) or ``/apis`` (every named group) as an APIGroupDiscoveryList."""
    items = []
    for g, versions in registry.groups():
        if bool(g) == core:
            continue
        items.append(
            {
                "metadata": {"name": g} if g else {},
                "versions": [
                    {
                        "version": v,
                        "resources": [_aggregated_resource(rt) for rt in registry.in_group_version(g, v)],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}
