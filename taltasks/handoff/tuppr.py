"""tuppr's resources, built from the repository and checked against tuppr's CRD schemas.

What maps onto what (tuppr 0.5, ``api/v1alpha1``):

* desired Talos version → ``TalosUpgrade.spec.talos.version``; a node pinned to another
  version → the Node annotation ``tuppr.home-operations.com/version``;
* installer image → tuppr has no image field: it swaps the version in each node's
  ``.machine.install.image``, or builds ``<factory-url>/<schematic>:<version>`` from the Node
  annotations ``tuppr.home-operations.com/factory-url`` and ``…/schematic``. A node whose
  image comes from the Image Factory gets both annotations, so tuppr installs exactly the
  image the repo names (a new schematic included);
* the policy's ``healthChecks`` (already tuppr's shape; the taltasks-only ``window`` is
  dropped, and said so) plus the built-in ``ceph``, ``cnpg`` and ``kube-node`` pre gates as
  equivalent CEL checks → ``spec.healthChecks`` (tuppr runs them before every node or batch);
* batching → one plan per failure domain (``spec.nodeSelector`` on the label,
  ``spec.parallelism`` = the batch size) next to a control-plane plan with parallelism 1:
  tuppr runs one plan at a time cluster-wide, so domains still go one after another;
* ``handoff.maintenanceWindows`` → ``spec.maintenance.windows``;
* Kubernetes version → the single ``KubernetesUpgrade``.

:func:`validate` checks a resource against the CRD's ``openAPIV3Schema`` strictly: types,
patterns, enums, bounds, required fields, and no field the schema does not know (what the
API server's strict field validation rejects).
"""

from __future__ import annotations

import functools
import gzip
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from taltasks.model.policy import GateSpec, MaintenanceWindow, UpgradePolicy

GROUP, VERSION = "tuppr.home-operations.com", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURALS = {"TalosUpgrade": "talosupgrades", "KubernetesUpgrade": "kubernetesupgrades"}
CRD_FILES = {kind: f"{GROUP}_{plural}.yaml.gz" for kind, plural in PLURALS.items()}
VERSION_ANNOTATION = f"{GROUP}/version"
FACTORY_URL_ANNOTATION = f"{GROUP}/factory-url"
SCHEMATIC_ANNOTATION = f"{GROUP}/schematic"
SUSPEND_ANNOTATION = f"{GROUP}/suspend"
NODE_ANNOTATIONS = (VERSION_ANNOTATION, FACTORY_URL_ANNOTATION, SCHEMATIC_ANNOTATION)
MANAGED_BY = ("app.kubernetes.io/managed-by", "taltasks")
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
FACTORY = "factory.talos.dev"
_SCHEMATIC = re.compile(r"^[0-9a-f]{64}$")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# ---- the CRDs ---------------------------------------------------------------------------------


@functools.cache
def crd(kind: str) -> dict[str, Any]:
    """tuppr's CustomResourceDefinition of ``kind``, as shipped with this package."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(loader):  # type: ignore[misc,valid-type]
        """YAML 1.2 reads ``=`` as a string (PyYAML's 1.1 rules would call it a 'value' tag)."""

    Loader.add_constructor("tag:yaml.org,2002:value", lambda self, node: self.construct_scalar(node))
    data = resources.files("taltasks.handoff").joinpath(CRD_FILES[kind]).read_bytes()
    return yaml.load(gzip.decompress(data), Loader=Loader)


def schema(kind: str) -> dict[str, Any]:
    version = next(v for v in crd(kind)["spec"]["versions"] if v["name"] == VERSION)
    return version["schema"]["openAPIV3Schema"]


def validate(resource: Mapping[str, Any]) -> list[str]:
    """Every way ``resource`` breaks its CRD schema, as ``path: problem`` (empty: accepted)."""
    import jsonschema

    kind = resource.get("kind")
    if kind not in PLURALS or resource.get("apiVersion") != API_VERSION:
        return [f"apiVersion/kind: {resource.get('apiVersion')}/{kind} is not a tuppr resource"]
    problems = []
    name = str((resource.get("metadata") or {}).get("name") or "")
    if not _DNS_NAME.match(name) or len(name) > 253:
        problems.append(f"metadata.name: {name!r} is not a valid Kubernetes name")
    body = {k: v for k, v in resource.items() if k != "metadata"}
    validator = jsonschema.Draft7Validator(_structural(schema(kind)))
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        problems.append(f"{_dotted(error.absolute_path)}: {error.message}")
    problems.extend(_unknown_fields(body, schema(kind), ()))
    return problems


def _structural(node: Any) -> Any:
    """The schema without ``metadata`` (the API server validates it itself) and with the
    OpenAPI-only keywords jsonschema does not know left in place (they are ignored)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    props = dict(out.get("properties") or {})
    props.pop("metadata", None)
    if "properties" in out:
        out["properties"] = props
    return out


def _unknown_fields(value: Any, node: Mapping[str, Any], path: tuple[Any, ...]) -> list[str]:
    """Fields the schema does not declare (strict field validation), recursively."""
    if not isinstance(node, Mapping) or node.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(value, Mapping):
        props = node.get("properties")
        extra = node.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                out.extend(_unknown_fields(item, props[key], (*path, key)))
            elif isinstance(extra, Mapping):
                out.extend(_unknown_fields(item, extra, (*path, key)))
            elif props is not None and not (path == () and key in ("apiVersion", "kind")):
                out.append(f"{_dotted((*path, key))}: unknown field (tuppr's CRD does not declare it)")
    elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
        for i, item in enumerate(value):
            out.extend(_unknown_fields(item, node["items"], (*path, i)))
    return out


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(resource)"


# ---- values -----------------------------------------------------------------------------------


def tuppr_duration(seconds: float) -> str:
    """A duration tuppr's CRD accepts (``^([0-9]+[smh])+$``): whole seconds, rounded up."""
    total = max(1, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return out


@dataclass(frozen=True)
class Translated:
    checks: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()


def health_checks(policy: UpgradePolicy) -> Translated:
    """tuppr's ``healthChecks`` from the policy's pre gates: its CEL checks as they are
    (``window`` dropped: tuppr has none), and the built-in ``ceph``, ``cnpg`` and
    ``kube-node`` gates as the CEL checks that mean the same before a node."""
    checks: list[dict[str, Any]] = []
    notes: list[str] = []
    for gate in policy.pre:
        if gate.kind == "expression":
            checks.append(_expression_check(gate))
            if gate.window:
                notes.append(
                    f"health check {gate.id!r}: window dropped (tuppr checks without a stability window)"
                )
        elif gate.kind in _BUILT_IN:
            checks.append(_BUILT_IN[gate.kind](gate))
        else:
            notes.append(
                f"gate {gate.id!r} ({gate.kind}) has no tuppr equivalent; tuppr checks etcd and Talos itself"
            )
    unique: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for c in checks:
        unique.setdefault((c["apiVersion"], c["kind"], c.get("name", ""), c["expr"]), c)
    return Translated(tuple(unique.values()), tuple(notes))


def _expression_check(gate: GateSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": gate.get("apiVersion"), "kind": gate.get("kind")}
    for key in ("name", "namespace"):
        if gate.get(key):
            out[key] = gate.get(key)
    selector = gate.get("labelSelector")
    if selector:
        out["labelSelector"] = {k: v for k, v in selector.items() if v}
    out["expr"] = gate.get("expr")
    out["timeout"] = tuppr_duration(gate.timeout)
    if gate.description:
        out["description"] = gate.description
    return out


def _ceph_check(gate: GateSpec) -> dict[str, Any]:
    allowed = sorted(gate.get("allow") or ())
    expr = "status.ceph.health == 'HEALTH_OK'"
    if allowed:
        codes = ", ".join(f"'{c}'" for c in allowed)
        expr += (
            f" || (status.ceph.health == 'HEALTH_WARN' && status.ceph.details.all(code, code in [{codes}]))"
        )
    return _check(gate, "ceph.rook.io/v1", "CephCluster", expr, "Ceph reports HEALTH_OK")


def _cnpg_check(gate: GateSpec) -> dict[str, Any]:
    expr = "status.phase == 'Cluster in healthy state' && status.readyInstances == object.spec.instances"
    return _check(
        gate, "postgresql.cnpg.io/v1", "Cluster", expr, "every CNPG cluster healthy, all instances ready"
    )


def _nodes_check(gate: GateSpec) -> dict[str, Any]:
    expr = "status.conditions.filter(c, c.type == 'Ready').all(c, c.status == 'True')"
    return _check(gate, "v1", "Node", expr, "every Node Ready")


def _check(gate: GateSpec, api_version: str, kind: str, expr: str, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    for key in ("name", "namespace"):
        if gate.get(key):
            out[key] = gate.get(key)
    out["expr"] = expr
    out["timeout"] = tuppr_duration(gate.timeout)
    out["description"] = f"{what} (taltasks gate {gate.id})"
    return out


_BUILT_IN = {"ceph": _ceph_check, "cnpg": _cnpg_check, "kube-node": _nodes_check}


def maintenance(windows: Sequence[MaintenanceWindow]) -> dict[str, Any] | None:
    if not windows:
        return None
    return {
        "windows": [
            {"start": w.start, "duration": tuppr_duration(w.duration), "timezone": w.timezone}
            for w in windows
        ]
    }


# ---- resources --------------------------------------------------------------------------------


def talos_upgrade(
    name: str,
    version: str,
    *,
    checks: Sequence[Mapping[str, Any]] = (),
    node_selector: Mapping[str, Any] | None = None,
    parallelism: int = 1,
    windows: Sequence[MaintenanceWindow] = (),
    timeout: float | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"talos": {"version": version}}
    if checks:
        spec["healthChecks"] = [dict(c) for c in checks]
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    spec["parallelism"] = parallelism
    if timeout:
        spec["policy"] = {"timeout": tuppr_duration(timeout)}
    window = maintenance(windows)
    if window:
        spec["maintenance"] = window
    return _resource("TalosUpgrade", name, spec, annotations)


def kubernetes_upgrade(
    version: str,
    *,
    checks: Sequence[Mapping[str, Any]] = (),
    windows: Sequence[MaintenanceWindow] = (),
    name: str = "kubernetes",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"kubernetes": {"version": version}}
    if checks:
        spec["healthChecks"] = [dict(c) for c in checks]
    window = maintenance(windows)
    if window:
        spec["maintenance"] = window
    return _resource("KubernetesUpgrade", name, spec, None)


def _resource(
    kind: str, name: str, spec: dict[str, Any], annotations: Mapping[str, str] | None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {MANAGED_BY[0]: MANAGED_BY[1]}}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}


def plan_name(*parts: str) -> str:
    """A Kubernetes name from parts (``talos-workers`` + ``zone-a`` → ``talos-workers-zone-a``)."""
    text = "-".join(p for p in parts if p).lower()
    text = re.sub(r"[^a-z0-9-]+", "-", text).strip("-")
    return re.sub(r"-{2,}", "-", text)[:63].rstrip("-") or "talos"


def node_annotations(installer_image: str, version: str, target: str) -> dict[str, str | None]:
    """The tuppr annotations one Node needs so tuppr installs exactly ``installer_image``
    at ``version`` when the plan's target is ``target``; None removes a stale one."""
    out: dict[str, str | None] = dict.fromkeys(NODE_ANNOTATIONS)
    if version != target:
        out[VERSION_ANNOTATION] = version
    factory = factory_parts(installer_image)
    if factory is not None:
        out[FACTORY_URL_ANNOTATION], out[SCHEMATIC_ANNOTATION] = factory
    return out


def factory_parts(image: str) -> tuple[str, str] | None:
    """``factory.talos.dev/metal-installer/<schematic>:v1.12.0`` → (``factory.talos.dev/metal-installer``,
    ``<schematic>``); None for an image that does not come from the Image Factory."""
    repo = image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@", 1)[0]
    base, _, schematic = repo.rpartition("/")
    if not base.startswith(FACTORY + "/") or not _SCHEMATIC.match(schematic):
        return None
    return base, schematic
