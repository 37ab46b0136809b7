"""The three patch formats kube-apiserver accepts, plus the field bookkeeping of apply.

* JSON merge patch (RFC 7386, ``application/merge-patch+json``): the body must be an
  object; ``null`` deletes; lists are replaced.
* JSON patch (RFC 6902, ``application/json-patch+json``): a list of operations.
* Strategic merge patch (``application/strategic-merge-patch+json``, built-in kinds only):
  like a merge patch, but lists of objects with a *merge key* (containers by ``name``,
  conditions by ``type``, taints by ``key``…) are merged item by item, ``finalizers`` are
  merged as a set, and the ``$patch``, ``$retainKeys``, ``$deleteFromPrimitiveList/…`` and
  ``$setElementOrder/…`` directives are honoured. The merge keys come from a table of the
  fields we know rather than from OpenAPI schemas; unknown lists are replaced, which is
  what the real server does for lists without a patch strategy.

All functions are pure: they return new values and never modify their arguments. Errors
are :class:`~.status.ApiError` with the status codes the real server uses.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from taltasks.sim.kube.status import ApiError, bad_request

# list field -> merge key, for built-in kinds (patchMergeKey in the Go types)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "taints": "key",
    "addresses": "type",
    "ownerReferences": "uid",
    "ports": "containerPort",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
# kind-specific overrides: Service ports merge on "port"
KIND_MERGE_KEYS: dict[str, dict[str, str]] = {"Service": {"ports": "port"}}
# lists of scalars merged as sets (patchStrategy merge without a key)
SET_LISTS = frozenset({"finalizers"})


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


# ---- RFC 7386 ------------------------------------------------------------------------------


def merge_patch(original: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def check_merge_patch_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        kind = "array" if isinstance(body, list) else type(body).__name__
        raise bad_request(
            f"error decoding patch: json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
        )
    return body


# ---- RFC 6902 ------------------------------------------------------------------------------


def json_patch(original: Any, operations: Any) -> Any:
    """RFC 6902 via the shared implementation; a malformed patch is a 400, an operation
    that does not apply (missing path, failed ``test``) a 422, as kube-apiserver answers."""
    from taltasks.machineconfig import jsonpatch

    if not isinstance(operations, list):
        raise bad_request(
            "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
        )
    for i, operation in enumerate(operations):
        if (
            not isinstance(operation, dict)
            or operation.get("op") not in jsonpatch.OPS
            or "path" not in operation
        ):
            raise bad_request(
                f"jsonpatch: operation {i + 1} needs 'op' (one of {', '.join(jsonpatch.OPS)}) and 'path'"
            )
    try:
        return jsonpatch.apply(original, operations)
    except jsonpatch.JsonPatchError as exc:
        raise _unprocessable(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from None


# ---- strategic merge patch ---------------------------------------------------------------------


def strategic_merge(original: Any, patch: Any, kind: str = "") -> Any:
    """Apply a strategic-merge patch to a built-in object."""
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    return _smp_map(original if isinstance(original, dict) else {}, patch, KIND_MERGE_KEYS.get(kind, {}))


def _smp_map(original: dict[str, Any], patch: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    result = copy.deepcopy(original)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            target = key.split("/", 1)[1]
            if isinstance(result.get(target), list):
                result[target] = [v for v in result[target] if v not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            if value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                base = result.get(key)
                result[key] = _smp_map(base if isinstance(base, dict) else {}, value, overrides)
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value, overrides)
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(field: str, original: Any, patch: list[Any], overrides: dict[str, str]) -> list[Any]:
    original = original if isinstance(original, list) else []
    if patch and isinstance(patch[0], dict) and patch[0].get("$patch") == "replace":
        return [copy.deepcopy(v) for v in patch[1:]]
    if field in SET_LISTS:
        out = list(original)
        for v in patch:
            if v not in out:
                out.append(v)
        return out
    key = overrides.get(field) or MERGE_KEYS.get(field)
    if not key or not all(isinstance(v, dict) for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    out = [copy.deepcopy(v) for v in original]
    for item in patch:
        if key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, v in enumerate(out) if isinstance(v, dict) and v.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del out[index]
        elif index is None:
            out.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            out[index] = _smp_map(out[index], item, overrides)
    return out


# ---- apply bookkeeping ------------------------------------------------------------------------

Path = tuple[str, ...]
IDENTITY: frozenset[Path] = frozenset(
    {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
)


def leaf_paths(obj: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path to a scalar or list (lists are atomic in this simplified field set)."""
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            yield from leaf_paths(value, (*prefix, str(key)))
    elif prefix:
        yield prefix


def value_at(obj: Any, path: Path) -> tuple[bool, Any]:
    node = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def remove_path(obj: dict[str, Any], path: Path) -> None:
    node: Any = obj
    parents = []
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        parents.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    # drop maps the removal left empty
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break


def fields_v1(paths: set[Path]) -> dict[str, Any]:
    """The ``fieldsV1`` form of a path set: ``{"f:spec": {"f:replicas": {}}}``."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def paths_from_fields_v1(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, child in fields.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        sub = {k: v for k, v in (child or {}).items() if k.startswith("f:")}
        if sub:
            out |= paths_from_fields_v1(sub, path)
        else:
            out.add(path)
    return out


def overlaps(a: Path, b: Path) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]
