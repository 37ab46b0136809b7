"""The type model Talos decodes a contract's documents with, built from the shipped schemas.

For contract ``1.N`` each schema definition (``v1alpha1.KubeletConfig``,
``network.HostnameConfigV1Alpha1``…) becomes a :class:`Type`:

* its properties are those of the 1.N schema, plus the ones older shipped schemas (1.8
  onward) document and 1.N hides — Talos stops *documenting* a deprecated field
  (``docgen:nodoc``) long before it stops *decoding* it;
* corrected by :mod:`.corrections` (fields no schema documents, fields removed from the Go
  struct, custom unmarshalers, kind names);
* fields marked ``Deprecated:`` in that contract's Go types carry their replacement
  (``schemas/talos-deprecations.json``).

The schemas are package data (``taltasks/machineconfig/schemas/``): validation never looks
outside the installed package. A contract newer than the newest shipped schema uses the
newest one; the note from :func:`model_note` says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from taltasks.machineconfig.validate import corrections

Version = tuple[int, int]
SCHEMA_PACKAGE = "taltasks.machineconfig.schemas"
_SCHEMA_NAME = re.compile(r"talos-config\.schema\.v(\d+)\.(\d+)\.json$")


@dataclass(frozen=True)
class Deprecation:
    """A field Talos still decodes but has marked deprecated, and what to use instead."""

    replacements: tuple[str, ...] = ()
    note: str | None = None

    def advice(self) -> str:
        if not self.replacements:
            return self.note or "see the Talos configuration reference"
        docs = [r for r in self.replacements if r[:1].isupper()]
        fields = [r for r in self.replacements if not r[:1].isupper()]
        parts = []
        if fields:
            parts.append("use " + " or ".join(f"`{f}`" for f in fields))
        if docs:
            kinds = " and ".join(d.replace("*", "…") for d in docs)
            parts.append(
                f"write {'a ' if len(docs) == 1 else ''}{kinds} document{'s' if len(docs) > 1 else ''}"
            )
        return ("; or ".join(parts)) + " instead"


@dataclass(eq=False)
class Type:
    """A node of the type model. ``kind`` is one of: struct, map, list, string, int, number,
    bool, any, oneof."""

    kind: str
    name: str = ""  # the schema definition, for structs
    fields: dict[str, Type] = field(default_factory=dict)
    deprecated: dict[str, Deprecation] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], Type]] = field(default_factory=list)
    item: Type | None = None  # list items, map values
    options: list[Type] = field(default_factory=list)
    enum: tuple[Any, ...] | None = None
    pattern: re.Pattern[str] | None = None


ANY = Type("any")


@cache
def shipped_contracts() -> tuple[Version, ...]:
    """The contracts a schema is shipped for, oldest first."""
    found = []
    for entry in resources.files(SCHEMA_PACKAGE).iterdir():
        m = _SCHEMA_NAME.match(entry.name)
        if m:
            found.append((int(m[1]), int(m[2])))
    return tuple(sorted(found))


@cache
def _schema(version: Version) -> dict[str, Any]:
    name = f"talos-config.schema.v{version[0]}.{version[1]}.json"
    return json.loads(resources.files(SCHEMA_PACKAGE).joinpath(name).read_text(encoding="utf-8"))


@cache
def _deprecations() -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    text = resources.files(SCHEMA_PACKAGE).joinpath("talos-deprecations.json").read_text(encoding="utf-8")
    return json.loads(text)


def schema_version(contract: Version) -> Version:
    """The shipped schema used for ``contract``: its own, else the nearest one."""
    shipped = shipped_contracts()
    if contract in shipped:
        return contract
    older = [v for v in shipped if v < contract]
    return older[-1] if older else shipped[0]


def model_note(contract: Version) -> str | None:
    """Why the model of ``contract`` is not built from its own schema (``None`` when it is)."""
    used = schema_version(contract)
    if used == contract:
        return None
    return (
        f"no Talos {contract[0]}.{contract[1]} schema is shipped; configs are checked with the "
        f"{used[0]}.{used[1]} type model"
    )


def schema_path(contract: Version) -> str:
    """The packaged schema file of ``contract`` (for tests and tools)."""
    used = schema_version(contract)
    return str(resources.files(SCHEMA_PACKAGE).joinpath(f"talos-config.schema.v{used[0]}.{used[1]}.json"))


@dataclass
class Model:
    """The decoding types of one contract: a root :class:`Type` per document kind."""

    contract: Version
    kinds: dict[str, Type]
    api_versions: dict[str, tuple[str, ...]]
    v1alpha1: Type


@cache
def model(contract: Version) -> Model:
    return _Builder(contract).build()


class _Builder:
    def __init__(self, contract: Version) -> None:
        self.contract = contract
        self.version = schema_version(contract)
        chain = [v for v in shipped_contracts() if v <= self.version]
        self.schemas = [_schema(v)["$defs"] for v in reversed(chain)]  # own schema first
        deps = _deprecations()
        key = f"{self.version[0]}.{self.version[1]}"
        self.deprecated = deps.get(key, {})
        self.types: dict[str, Type] = {}

    def build(self) -> Model:
        top = _schema(self.version)
        kinds: dict[str, Type] = {}
        api_versions: dict[str, tuple[str, ...]] = {}
        v1alpha1 = self.definition("v1alpha1.Config")
        for ref in top.get("oneOf", []):
            name = ref["$ref"].rsplit("/", 1)[-1]
            props = self.properties(name)
            kind_enum = (props.get("kind") or {}).get("enum")
            if name == "v1alpha1.Config" or not kind_enum:
                continue
            kind = corrections.KIND_NAMES.get(name, kind_enum[0])
            root = self.definition(name)
            for key in ("apiVersion", "kind"):  # checked per document, with a clearer message
                if key in root.fields:
                    root.fields[key] = Type("string")
            kinds[kind] = root
            api_versions[kind] = tuple((props.get("apiVersion") or {}).get("enum") or ("v1alpha1",))
        for kind, (first, fragment) in corrections.EXTRA_KINDS.items():
            if self.contract >= first and kind not in kinds:
                kinds[kind] = self.compile(fragment)
                api_versions[kind] = ("v1alpha1",)
        return Model(self.contract, kinds, api_versions, v1alpha1)

    # ---- definitions --------------------------------------------------------------------

    def raw_definition(self, name: str) -> dict[str, Any] | None:
        return next((defs[name] for defs in self.schemas if name in defs), None)

    def properties(self, name: str) -> dict[str, Any]:
        """Properties of ``name``: this contract's schema first, then older ones fill in."""
        merged: dict[str, Any] = {}
        for defs in self.schemas:
            for key, value in ((defs.get(name) or {}).get("properties") or {}).items():
                merged.setdefault(key, value)
        for (definition, key), fragment in corrections.EXTRA_FIELDS.items():
            if definition == name:
                merged.setdefault(key, fragment)
        for (definition, key), first in corrections.REMOVED_FIELDS.items():
            if definition == name and self.contract >= first:
                merged.pop(key, None)
        return merged

    def definition(self, name: str) -> Type:
        if name in self.types:
            return self.types[name]
        if name in corrections.CUSTOM_TYPES:
            t = self.compile(corrections.CUSTOM_TYPES[name])
            self.types[name] = t
            return t
        raw = self.raw_definition(name) or {}
        if "properties" not in raw and raw.get("type") != "object":
            t = self.compile(raw)
            self.types[name] = t
            return t
        t = Type("struct", name=name)
        self.types[name] = t  # before the fields: definitions may refer to themselves
        for key, fragment in self.properties(name).items():
            t.fields[key] = self.compile(fragment)
            extra = corrections.ENUM_EXTRA.get((name, key))
            if extra and t.fields[key].enum is not None:
                f = t.fields[key]
                t.fields[key] = Type(f.kind, enum=(*f.enum, *extra), pattern=f.pattern)
        for key, info in (self.deprecated.get(name) or {}).items():
            if (name, key) in corrections.QUIET_DEPRECATIONS:
                continue
            extra = corrections.EXTRA_REPLACEMENTS.get((name, key), ())
            replacements = tuple(dict.fromkeys((*extra, *info.get("replacements", ()))))
            t.deprecated[key] = Deprecation(replacements, info.get("note"))
        for pattern, fragment in (raw.get("patternProperties") or {}).items():
            t.patterns.append((re.compile(pattern), self.compile(fragment)))
        return t

    def compile(self, s: dict[str, Any]) -> Type:
        ref = s.get("$ref")
        if ref:
            return self.definition(ref.rsplit("/", 1)[-1])
        if "oneOf" in s or "anyOf" in s:
            return Type("oneof", options=[self.compile(o) for o in s.get("oneOf") or s.get("anyOf")])
        kind = s.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            if len(kinds) != 1:
                return Type("oneof", options=[self.compile({**s, "type": k}) for k in kinds])
            kind = kinds[0]
        pattern = None
        if "pattern" in s:
            # hex digits (addresses, MACs) in any case, as Go's parsers take them
            flags = re.IGNORECASE if "0-9a-f" in s["pattern"] else 0
            pattern = re.compile(s["pattern"], flags)
        enum = tuple(s["enum"]) if "enum" in s else None
        if kind == "object" or "properties" in s or "patternProperties" in s:
            if "properties" in s:
                t = Type("struct", name=s.get("title", ""))
                for key, fragment in s["properties"].items():
                    t.fields[key] = self.compile(fragment)
                for pat, fragment in (s.get("patternProperties") or {}).items():
                    t.patterns.append((re.compile(pat), self.compile(fragment)))
                return t
            values = list((s.get("patternProperties") or {}).values())
            additional = s.get("additionalProperties")
            if values:
                return Type("map", item=self.compile(values[0]))
            if isinstance(additional, dict):
                return Type("map", item=self.compile(additional))
            return ANY  # free-form (meta.Unstructured)
        if kind == "array":
            return Type("list", item=self.compile(s.get("items") or {}))
        if kind in ("string", "integer", "number", "boolean"):
            name = {"integer": "int", "boolean": "bool"}.get(kind, kind)
            return Type(name, enum=enum, pattern=pattern)
        if enum is not None:
            return Type("string", enum=enum, pattern=pattern)
        return ANY
