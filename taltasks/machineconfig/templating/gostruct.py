"""The machine config seen the way talhelper's templates see it: Talos's Go structs.

talhelper executes templates with Talos's ``v1alpha1.Config`` value as data, so a template
reads Go field names (``.MachineConfig.MachineInstall.InstallImage``) and gets Go's zero
values for unset fields. :class:`GoStruct` gives our plain YAML data that face, using the
field table generated from upstream's types (``v1alpha1_fields.json``, see its ``source``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def field_table() -> dict[str, list[tuple[str, str, str]]]:
    """Go type name → [(Go field, YAML key, simplified type)] (embedded structs: key "")."""
    text = resources.files(__package__).joinpath("v1alpha1_fields.json").read_text(encoding="utf-8")
    return {name: [tuple(f) for f in fields] for name, fields in json.loads(text)["types"].items()}


class NilPointer:
    """A nil ``*T``: printing gives ``<nil>``; reading a field of it is an error, as in Go."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<nil>"


class GoStruct:
    """A struct value of Go type ``type_name`` backed by a YAML mapping."""

    __slots__ = ("data", "pointer", "type_name")

    def __init__(self, type_name: str, data: dict[str, Any] | None, *, pointer: bool = False) -> None:
        self.type_name = type_name
        self.data = data if isinstance(data, dict) else {}
        self.pointer = pointer

    @property
    def go_type(self) -> str:
        return f"{'*' if self.pointer else ''}v1alpha1.{self.type_name}"

    def fields(self) -> list[tuple[str, str, str]]:
        """Every field, embedded structs flattened (Go promotes their fields)."""
        out: list[tuple[str, str, str]] = []
        for go, key, kind in field_table().get(self.type_name, []):
            if key == "" and kind in field_table():
                out.extend(GoStruct(kind, self.data).fields())
            else:
                out.append((go, key, kind))
        return out

    def field_names(self) -> list[str]:
        return [go for go, _, _ in self.fields()]

    def get(self, name: str) -> tuple[bool, Any]:
        """(found, value) of the Go field ``name``."""
        for go, key, kind in self.fields():
            if go == name:
                return True, typed(kind, self.data.get(key))
        return False, None


def typed(kind: str, value: Any) -> Any:
    """A YAML value as the Go value of ``kind``; absent values become Go's zero value."""
    if kind.startswith("*"):
        inner = kind[1:]
        if value is None:
            return NilPointer(inner)
        return GoStruct(inner, value, pointer=True)
    if kind in field_table():
        return GoStruct(kind, value)
    if kind.startswith("[]"):
        if not isinstance(value, list):
            return []
        return [typed(kind[2:], v) for v in value]
    if kind.startswith("map[string]"):
        if not isinstance(value, dict):
            return {}
        elem = kind[len("map[string]") :]
        return {str(k): typed(elem, v) for k, v in value.items()}
    if kind == "string":
        return "" if value is None else value if isinstance(value, str) else _text(value)
    if kind == "bool":
        return bool(value) if value is not None else False
    if kind == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else 0
    if kind == "float":
        return float(value) if isinstance(value, int | float) else 0.0
    return value  # any: the YAML value as written


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_value(doc: dict[str, Any]) -> GoStruct:
    """The v1alpha1 document as talhelper's template data (``*v1alpha1.Config``)."""
    return GoStruct("Config", doc, pointer=True)
