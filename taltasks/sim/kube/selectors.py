"""Label and field selectors, parsed and matched the way kube-apiserver does.

String form (query parameters): ``app=web,tier!=db,env in (a,b),!legacy,release``; field
selectors allow only ``=``, ``==`` and ``!=`` on the field labels a resource supports.
Object form (``spec.selector`` of PDBs, Deployments…): ``matchLabels`` + ``matchExpressions``.
Parse errors are :class:`~.status.ApiError` 400s, as on the real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from taltasks.sim.kube.status import bad_request

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("gt", "lt"):
            try:
                number = int(value or "")
            except ValueError:
                return False
            bound = int(self.values[0])
            return number > bound if self.op == "gt" else number < bound
        return False


Selector = tuple[Requirement, ...]


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> str:
    if not _KEY.match(key):
        raise bad_request(
            f'unable to parse requirement: <nil>: Invalid value: "{key}": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise bad_request(
            f'unable to parse requirement: values[0]: Invalid value: "{value}": a valid label must be an '
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character"
        )
    return value


_SET = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")
_CMP = re.compile(r"^\s*([^\s!=<>]+)\s*(==|=|!=|>|<)\s*(.*?)\s*$")


def parse_labels(text: str | None) -> Selector:
    """Parse a label selector string; empty or None selects everything."""
    if not text or not text.strip():
        return ()
    out: list[Requirement] = []
    for part in _split_top_level(text):
        part = part.strip()
        if not part:
            raise bad_request(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        if m := _SET.match(part):
            values = tuple(_check_value(v.strip()) for v in m.group(3).split(",") if v.strip())
            if not values:
                raise bad_request(
                    f"unable to parse requirement: for 'in', 'notin' operators, values set can't be empty: {part!r}"
                )
            out.append(Requirement(_check_key(m.group(1)), m.group(2), values))
        elif part.startswith("!"):
            out.append(Requirement(_check_key(part[1:].strip()), "!"))
        elif m := _CMP.match(part):
            key, op, value = m.group(1), m.group(2), m.group(3)
            _check_key(key)
            if op in (">", "<"):
                if not re.fullmatch(r"-?\d+", value):
                    raise bad_request(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {part!r}"
                    )
                out.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
            else:
                out.append(Requirement(key, "!=" if op == "!=" else "=", (_check_value(value),)))
        elif re.fullmatch(r"\s*\S+\s*", part) and not any(c in part for c in "=!()<> "):
            out.append(Requirement(_check_key(part.strip()), "exists"))
        else:
            raise bad_request(f"unable to parse requirement: {part!r}")
    return tuple(out)


def matches(selector: Selector, labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in selector)


def from_label_selector(spec: Mapping[str, Any] | None) -> Selector | None:
    """A ``metav1.LabelSelector`` → requirements; ``None`` (no selector) selects nothing, ``{}``
    selects everything, as for PodDisruptionBudgets in policy/v1."""
    if spec is None:
        return None
    out = [Requirement(k, "=", (str(v),)) for k, v in (spec.get("matchLabels") or {}).items()]
    for expr in spec.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expr.get("operator"))
        if op is None:
            raise bad_request(f"{expr.get('operator')!r} is not a valid label selector operator")
        out.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return tuple(out)


def selects(spec: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    sel = from_label_selector(spec)
    return sel is not None and matches(sel, labels)


# ---- field selectors -------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


FieldSelector = tuple[FieldRequirement, ...]


def parse_fields(text: str | None, supported: frozenset[str]) -> FieldSelector:
    if not text or not text.strip():
        return ()
    out: list[FieldRequirement] = []
    for part in text.split(","):
        m = re.match(r"^\s*([^=!]+?)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.groups()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        out.append(FieldRequirement(field, op != "!=", value))
    return tuple(out)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string a field selector compares: missing → ``""``, booleans → ``true``/``false``."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            node = None
            break
        node = node.get(part)
    if node is None:
        return "false" if path == "spec.unschedulable" else ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def fields_match(selector: FieldSelector, obj: Mapping[str, Any]) -> bool:
    return all((field_value(obj, r.field) == r.value) == r.equal for r in selector)


def compile_filter(
    label_selector: str | None, field_selector: str | None, field_labels: frozenset[str]
) -> Callable[[Mapping[str, Any]], bool]:
    """Both query-parameter selectors as one predicate (400 on a bad selector)."""
    return object_filter(parse_labels(label_selector), parse_fields(field_selector, field_labels))


def object_filter(labels: Selector, fields: FieldSelector) -> Callable[[Mapping[str, Any]], bool]:
    def accept(obj: Mapping[str, Any]) -> bool:
        return matches(labels, (obj.get("metadata") or {}).get("labels")) and fields_match(fields, obj)

    return accept


__all__ = [
    "FieldSelector",
    "Requirement",
    "Selector",
    "compile_filter",
    "field_value",
    "fields_match",
    "from_label_selector",
    "matches",
    "object_filter",
    "parse_fields",
    "parse_labels",
    "selects",
]
