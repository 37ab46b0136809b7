"""Object validation: what kube-apiserver answers 422 (or 400) for.

Deliberately a subset — names, labels, the required parts of the kinds the simulator uses,
and the immutable fields clients are most likely to trip on — but every check here is one
the real server makes, with its wording, so a client bug shows up in tests instead of on a
real cluster.
"""

from __future__ import annotations

import re
from typing import Any

from taltasks.sim.kube.resources import ResourceType
from taltasks.sim.kube.selectors import from_label_selector, matches
from taltasks.sim.kube.status import ApiError, invalid

Cause = tuple[str, str, str]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# kinds whose names are DNS labels rather than subdomains
_LABEL_NAMED = frozenset({"Namespace", "Service"})


def _name_causes(rt: ResourceType, name: str) -> list[Cause]:
    if rt.kind in _LABEL_NAMED:
        ok, limit, what = _DNS_LABEL.match(name), 63, "RFC 1123 label"
    else:
        ok, limit, what = _DNS_SUBDOMAIN.match(name), 253, "RFC 1123 subdomain"
    if len(name) > limit or not ok:
        return [
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase {what} must consist of lower case alphanumeric '
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


def _key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_QUALIFIED.match(name))


def _metadata_causes(meta: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in (meta.get("labels") or {}).items():
        if not _key_ok(str(key)):
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": name part must be a valid label key',
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist of '
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
    for key, value in (meta.get("annotations") or {}).items():
        if not _key_ok(str(key)):
            causes.append(
                (
                    "metadata.annotations",
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": name part must be a valid annotation key',
                )
            )
        if not isinstance(value, str):
            causes.append(
                (
                    "metadata.annotations",
                    "FieldValueInvalid",
                    f"Invalid value: {key}: annotation values must be strings",
                )
            )
    return causes


def _template_selector_causes(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        return [("spec.selector", "FieldValueRequired", "Required value")]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    sel = from_label_selector(selector)
    if not sel:
        return [
            ("spec.selector", "FieldValueInvalid", "Invalid value: empty selector is invalid for deployment")
        ]
    if not matches(sel, labels):
        return [
            (
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                f"Invalid value: {labels}: `selector` does not match template `labels`",
            )
        ]
    containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
    if not containers:
        return [("spec.template.spec.containers", "FieldValueRequired", "Required value")]
    return []


def _pod_causes(obj: dict[str, Any]) -> list[Cause]:
    containers = (obj.get("spec") or {}).get("containers")
    if not containers:
        return [("spec.containers", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append((f"spec.containers[{i}].name", "FieldValueRequired", "Required value"))
        elif not (c.get("image") or "").strip():
            causes.append((f"spec.containers[{i}].image", "FieldValueRequired", "Required value"))
    return causes


def _pdb_causes(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        return [
            ("spec", "FieldValueInvalid", "Invalid value: minAvailable and maxUnavailable cannot be both set")
        ]
    return []


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Raise a 422 :class:`ApiError` listing every problem found."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes = _name_causes(rt, name) + _metadata_causes(meta)
    if rt.group == "" and rt.kind == "Pod":
        causes += _pod_causes(obj)
        if old is not None:
            causes += _pod_update_causes(old, obj)
    elif rt.group == "apps" and rt.kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"):
        causes += _template_selector_causes(obj)
        if old is not None and (old.get("spec") or {}).get("selector") != (obj.get("spec") or {}).get(
            "selector"
        ):
            causes.append(("spec.selector", "FieldValueInvalid", "Invalid value: field is immutable"))
    elif rt.group == "policy" and rt.kind == "PodDisruptionBudget":
        causes += _pdb_causes(obj)
    if old is not None:
        added = set(meta.get("finalizers") or []) - set((old.get("metadata") or {}).get("finalizers") or [])
        if added and (old.get("metadata") or {}).get("deletionTimestamp"):
            causes.append(
                (
                    "metadata.finalizers",
                    "FieldValueForbidden",
                    f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)}",
                )
            )
    if causes:
        raise invalid(rt, name, causes)


# Fields of a pod spec that may change after creation (everything else is immutable).
_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates")


def _strip_mutable(spec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in spec.items() if k not in _POD_MUTABLE}
    for key in ("containers", "initContainers"):
        if isinstance(out.get(key), list):
            out[key] = [{k: v for k, v in c.items() if k != "image"} for c in out[key] if isinstance(c, dict)]
    return out


def _pod_update_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    if _strip_mutable(old.get("spec") or {}) != _strip_mutable(new.get("spec") or {}):
        return [
            (
                "spec",
                "FieldValueForbidden",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                "(allow it to be set to 1 if it was previously negative)",
            )
        ]
    return []


__all__ = ["ApiError", "validate"]
