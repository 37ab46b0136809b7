"""CustomResourceDefinitions: registering served types, and the ones the simulator ships.

Creating a ``CustomResourceDefinition`` object registers its served versions with the
registry (and marks it Established), deleting it unregisters them — what the real server
does, so an install that brings its own CRDs works against the emulator. The simulator
pre-installs the CRDs its operators use: Rook's CephCluster and its pool kinds
(CephBlockPool, CephFilesystem, CephObjectStore), CloudNativePG's Cluster,
Flux's Kustomization and HelmRelease (plus its source kinds), and tuppr's TalosUpgrade.
"""

from __future__ import annotations

from typing import Any

from taltasks.sim.kube.resources import BASE_FIELDS, Column, Registry, ResourceType
from taltasks.sim.kube.status import ApiError, invalid

_CRD_RT = ResourceType(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False
)


def _types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    name = (crd.get("metadata") or {}).get("name", "")
    causes = []
    if not group:
        causes.append(("spec.group", "FieldValueRequired", "Required value"))
    if not plural:
        causes.append(("spec.names.plural", "FieldValueRequired", "Required value"))
    if not kind:
        causes.append(("spec.names.kind", "FieldValueRequired", "Required value"))
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "spec.scope",
                "FieldValueNotSupported",
                'Unsupported value: supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            (
                "spec.versions",
                "FieldValueInvalid",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    if causes:
        raise invalid(_CRD_RT, name, causes)
    storage = next(v["name"] for v in versions if v.get("storage"))
    out = []
    for v in versions:
        if not v.get("served", True):
            continue
        subresources = v.get("subresources") or {}
        columns = tuple(
            Column(
                name=c["name"],
                type=c.get("type", "string"),
                json_path=c.get("jsonPath", ""),
                description=c.get("description", ""),
                priority=int(c.get("priority", 0)),
                format=c.get("format", ""),
            )
            for c in v.get("additionalPrinterColumns") or []
        )
        out.append(
            ResourceType(
                group,
                v["name"],
                kind,
                plural,
                spec["scope"] == "Namespaced",
                singular=names.get("singular", kind.lower()),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in subresources,
                generation=True,
                builtin=False,
                return_deleted=True,
                field_labels=BASE_FIELDS,
                subresources=("scale",) if "scale" in subresources else (),
                columns=columns,
                storage_version=storage,
            )
        )
    return out


def accept_definition(registry: Registry, crd: dict[str, Any]) -> None:
    """Register the CRD's served versions and write the status the real server would."""
    types = _types(crd)
    for existing in registry.all():
        if existing.group == types[0].group and existing.plural == types[0].plural and existing.builtin:
            raise ApiError(409, "AlreadyExists", f"{types[0].qualified} is a built-in resource")
    registry.remove_group_plural(types[0].group, types[0].plural)
    for rt in types:
        registry.add(rt)
    spec = crd["spec"]
    crd["status"] = {
        "acceptedNames": dict(spec["names"]),
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": [next(v["name"] for v in spec["versions"] if v.get("storage"))],
    }


def forget_definition(registry: Registry, crd: dict[str, Any]) -> None:
    spec = crd.get("spec") or {}
    registry.remove_group_plural(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))


def definition(
    group: str,
    kind: str,
    plural: str,
    versions: list[str],
    *,
    namespaced: bool = True,
    short_names: tuple[str, ...] = (),
    columns: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    scale: str | None = None,
    categories: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A CRD manifest: the last version is the storage version; ``columns`` are
    ``(name, type, jsonPath)``; ``scale`` is the spec path of the replica count."""
    subresources: dict[str, Any] = {"status": {}}
    if scale:
        subresources["scale"] = {"specReplicasPath": scale, "statusReplicasPath": ".status.instances"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                **({"shortNames": list(short_names)} if short_names else {}),
                **({"categories": list(categories)} if categories else {}),
            },
            "scope": "Namespaced" if namespaced else "Cluster",
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == len(versions) - 1,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                    "subresources": subresources,
                    "additionalPrinterColumns": [{"name": n, "type": t, "jsonPath": p} for n, t, p in columns]
                    + [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                }
                for i, v in enumerate(versions)
            ],
        },
    }


_READY = '.status.conditions[?(@.type=="Ready")].status'
_READY_MSG = '.status.conditions[?(@.type=="Ready")].message'

SIMULATOR_CRDS: tuple[dict[str, Any], ...] = (
    definition(
        "ceph.rook.io",
        "CephCluster",
        "cephclusters",
        ["v1"],
        columns=[
            ("DataDirHostPath", "string", ".spec.dataDirHostPath"),
            ("MonCount", "string", ".spec.mon.count"),
            ("Phase", "string", ".status.phase"),
            ("Message", "string", ".status.message"),
            ("Health", "string", ".status.ceph.health"),
        ],
    ),
    definition(
        "ceph.rook.io",
        "CephBlockPool",
        "cephblockpools",
        ["v1"],
        columns=[("Phase", "string", ".status.phase"), ("Type", "string", ".status.info.type")],
    ),
    definition(
        "ceph.rook.io",
        "CephFilesystem",
        "cephfilesystems",
        ["v1"],
        columns=[
            ("ActiveMDS", "string", ".spec.metadataServer.activeCount"),
            ("Phase", "string", ".status.phase"),
        ],
    ),
    definition(
        "ceph.rook.io",
        "CephObjectStore",
        "cephobjectstores",
        ["v1"],
        columns=[("Phase", "string", ".status.phase")],
    ),
    definition(
        "postgresql.cnpg.io",
        "Cluster",
        "clusters",
        ["v1"],
        columns=[
            ("Instances", "integer", ".status.instances"),
            ("Ready", "integer", ".status.readyInstances"),
            ("Status", "string", ".status.phase"),
            ("Primary", "string", ".status.currentPrimary"),
        ],
        scale=".spec.instances",
    ),
    definition(
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
        ["v1"],
        short_names=("ks",),
        columns=[("Ready", "string", _READY), ("Status", "string", _READY_MSG)],
    ),
    definition(
        "helm.toolkit.fluxcd.io",
        "HelmRelease",
        "helmreleases",
        ["v2"],
        short_names=("hr",),
        columns=[("Ready", "string", _READY), ("Status", "string", _READY_MSG)],
    ),
    definition(
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
        ["v1"],
        short_names=("gitrepo",),
        columns=[
            ("URL", "string", ".spec.url"),
            ("Ready", "string", _READY),
            ("Status", "string", _READY_MSG),
        ],
    ),
    definition(
        "source.toolkit.fluxcd.io",
        "OCIRepository",
        "ocirepositories",
        ["v1"],
        short_names=("ocirepo",),
        columns=[
            ("URL", "string", ".spec.url"),
            ("Ready", "string", _READY),
            ("Status", "string", _READY_MSG),
        ],
    ),
    definition(
        "tuppr.home-operations.com",
        "TalosUpgrade",
        "talosupgrades",
        ["v1alpha1"],
        namespaced=False,
        columns=[("Phase", "string", ".status.phase")],
    ),
)
