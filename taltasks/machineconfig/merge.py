"""Talos's strategic merge, ported to plain YAML data (dicts, lists, scalars).

Talos merges typed Go structs (``pkg/machinery/config/merge``); we merge the decoded YAML,
so the few rules that depend on Go types are written down here as paths:

* a scalar on the right replaces the left unless it is a zero value (``""``, ``0``,
  ``null``); ``false`` always replaces;
* mappings merge key by key, recursively; lists are **appended**;
* fields Talos tags ``merge:"replace"`` are replaced instead (pod/service subnets, the
  audit policy, firewall rule ingress and ports);
* keyed lists merge items with the same key (network interfaces by ``interface`` or
  ``deviceSelector``, their VLANs by ``vlanId``, admission plugins by ``name``, extension
  service config files by ``mountPath``);
* inside struct-typed places a zero scalar is never written (Talos omits empty fields);
  inside free-form maps (labels, annotations, taints, sysctls, extraArgs, unstructured
  configuration) a zero value is added when the key is new, as Go's map merge does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

Path = tuple[str, ...]

# Paths are matched per document kind ("" is the v1alpha1 document); "*" matches a list item.
REPLACE: dict[str, tuple[Path, ...]] = {
    "": (
        ("cluster", "network", "podSubnets"),
        ("cluster", "network", "serviceSubnets"),
        ("cluster", "apiServer", "auditPolicy"),
    ),
    "NetworkRuleConfig": (("ingress",), ("portSelector", "ports")),
}
KEYED: dict[str, dict[Path, tuple[str, ...]]] = {
    "": {
        ("machine", "network", "interfaces"): ("interface", "deviceSelector"),
        ("machine", "network", "interfaces", "*", "vlans"): ("vlanId",),
        ("cluster", "apiServer", "admissionControl"): ("name",),
    },
    "ExtensionServiceConfig": {("configFiles",): ("mountPath",)},
}
# Keys whose value is a free-form map (Go map / Unstructured) rather than a struct.
FREE_FORM = frozenset(
    {
        "nodeLabels",
        "nodeAnnotations",
        "nodeTaints",
        "sysctls",
        "sysfs",
        "env",
        "extraArgs",
        "extraConfig",
        "configuration",
        "auditPolicy",
        "extraManifestHeaders",
        "mirrors",
        "config",
        "environment",
        "credentialProviderConfig",
        "options",
        "annotations",
        "labels",
    }
)


class MergeError(ValueError):
    """Two values of different kinds met at ``path`` (a patch has the wrong shape)."""

    def __init__(self, path: Sequence[str], left: Any, right: Any) -> None:
        self.path = tuple(path)
        super().__init__(
            f"cannot merge {_kind(right)} into {_kind(left)} at {'.'.join(self.path) or 'the document root'}"
        )


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a scalar"


def is_zero(value: Any) -> bool:
    """Go's zero value for scalars; ``False`` is *not* treated as zero (it always merges)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == 0
    return isinstance(value, str) and value == ""


def _match(pattern: Path, path: Path) -> bool:
    return len(pattern) == len(path) and all(p == "*" or p == q for p, q in zip(pattern, path, strict=True))


def _rules(kind: str, path: Path) -> tuple[bool, tuple[str, ...] | None]:
    replace = any(_match(p, path) for p in REPLACE.get(kind, ()))
    keys = next((k for p, k in KEYED.get(kind, {}).items() if _match(p, path)), None)
    return replace, keys


Recorder = Callable[[tuple[str | int, ...], tuple[str | int, ...]], None]


def merge_document(
    left: dict[str, Any], right: dict[str, Any], kind: str = "", record: Recorder | None = None
) -> None:
    """Merge ``right`` into ``left`` in place (``kind`` selects the path rules).

    ``record(result_path, patch_path)`` is called for every value ``right`` writes into
    ``left`` (provenance: the result path has real list indices)."""
    _merge_map(left, right, (), kind, False, _Paths((), (), record))


class _Paths:
    """The result path and the patch path of the value being merged, plus the recorder."""

    __slots__ = ("pp", "record", "rp")

    def __init__(self, rp: tuple, pp: tuple, record: Recorder | None) -> None:
        self.rp, self.pp, self.record = rp, pp, record

    def down(self, rkey: str | int, pkey: str | int) -> _Paths:
        if self.record is None:
            return self
        return _Paths((*self.rp, rkey), (*self.pp, pkey), self.record)

    def wrote(self) -> None:
        if self.record is not None:
            self.record(self.rp, self.pp)


def _merge_map(
    left: dict[str, Any], right: dict[str, Any], path: Path, kind: str, free: bool, at: _Paths
) -> None:
    for key, rv in right.items():
        sub = (*path, str(key))
        child_free = free or str(key) in FREE_FORM
        child = at.down(key, key)
        if key not in left or left[key] is None:
            if rv is None or (is_zero(rv) and not free):
                continue
            left[key] = copy.deepcopy(rv)
            child.wrote()
            continue
        left[key] = _merge_value(left[key], rv, sub, kind, child_free, child)


def _merge_value(lv: Any, rv: Any, path: Path, kind: str, free: bool, at: _Paths) -> Any:
    replace, keys = _rules(kind, path)
    if isinstance(rv, dict):
        if not isinstance(lv, dict):
            raise MergeError(path, lv, rv)
        if replace:
            at.wrote()
            return copy.deepcopy(rv)
        _merge_map(lv, rv, path, kind, free, at)
        return lv
    if isinstance(rv, list):
        if not isinstance(lv, list):
            raise MergeError(path, lv, rv)
        if replace:
            at.wrote()
            return copy.deepcopy(rv)
        if keys:
            return _merge_keyed(lv, rv, path, kind, keys, at)
        for j in range(len(rv)):
            at.down(len(lv) + j, j).wrote()
        return lv + copy.deepcopy(rv)
    if isinstance(lv, dict | list):
        if rv is None:
            return lv
        raise MergeError(path, lv, rv)
    if is_zero(rv):
        return lv
    at.wrote()
    return rv


def _merge_keyed(
    left: list[Any], right: list[Any], path: Path, kind: str, keys: tuple[str, ...], at: _Paths
) -> list[Any]:
    out = list(left)
    for j, item in enumerate(right):
        target = None
        if isinstance(item, dict):
            for i, existing in enumerate(out):
                if isinstance(existing, dict) and any(
                    k in item and k in existing and existing[k] == item[k] for k in keys
                ):
                    target = i
                    break
        if target is None:
            out.append(copy.deepcopy(item))
            at.down(len(out) - 1, j).wrote()
        else:
            _merge_map(out[target], item, (*path, "*"), kind, False, at.down(target, j))
    return out


# ---- document identity and multi-document merge -------------------------------------------


def doc_id(doc: dict[str, Any]) -> tuple[str, str, str]:
    """(apiVersion, kind, name); the legacy v1alpha1 document is ``("", "v1alpha1", "")``."""
    kind = doc.get("kind")
    if not kind:
        return ("", "v1alpha1", "")
    return (str(doc.get("apiVersion", "")), str(kind), str(doc.get("name") or ""))


def describe(ident: tuple[str, str, str]) -> str:
    api, kind, name = ident
    if kind == "v1alpha1" and not api:
        return "v1alpha1"
    return f"{api}/{kind}" + (f" {name!r}" if name else "")


def merge_documents(
    config: list[dict[str, Any]],
    patch: list[dict[str, Any]],
    record: Callable[[tuple[str, str, str], int, tuple, tuple], None] | None = None,
) -> list[dict[str, Any]]:
    """Merge each patch document into the config document with the same identity; a patch
    document without a match is appended (Talos's container merge).

    ``record(identity, patch_doc_index, result_path, patch_path)`` hears of every value
    written (an appended document is one write at its root)."""
    index = {doc_id(d): i for i, d in enumerate(config)}
    for n, pdoc in enumerate(patch):
        ident = doc_id(pdoc)
        rec: Recorder | None = None
        if record is not None:

            def rec(rp: tuple, pp: tuple, _ident=ident, _n=n) -> None:
                record(_ident, _n, rp, pp)

        if ident in index:
            kind = "" if ident[1] == "v1alpha1" and not ident[0] else ident[1]
            merge_document(config[index[ident]], pdoc, kind, rec)
        else:
            config.append(copy.deepcopy(pdoc))
            index[ident] = len(config) - 1
            if rec is not None:
                rec((), ())
    return config
