"""Decoding documents the way Talos loads them (interim: the official JSON schema check).

This module is the engine's *decode* step. For now it holds the previous schema check,
moved unchanged: each document is checked against the official JSON schema of its
version, with the legacy fields Talos still accepts tolerated (:data:`LEGACY`); schemas are
read from ``$TALTASKS_SCHEMA_DIR`` or ``../shared/reference/upstream``. It is being replaced
by a decoder that follows Talos's own loader with schemas shipped in the package.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.merge import doc_id

# Accepted by Talos, missing from its schema: names per parent path, and whole subtrees.
LEGACY: dict[tuple[str, ...], frozenset[str]] = {
    (): frozenset({"persist"}),
    ("machine",): frozenset({"network", "registries", "time", "env", "disks"}),
    ("machine", "features"): frozenset({"rbac", "stableHostname", "apidCheckExtKeyUsage"}),
    ("machine", "install"): frozenset({"extraKernelArgs", "extensions"}),
    ("cluster", "apiServer"): frozenset({"disablePodSecurityPolicy"}),
}
LEGACY_SUBTREES: tuple[tuple[str, ...], ...] = (
    ("machine", "network"),
    ("machine", "registries"),
    ("machine", "time"),
    ("machine", "disks"),
)


def schema_dirs() -> tuple[Path, ...]:
    """``$TALTASKS_SCHEMA_DIR`` when set, else the shared reference folder beside the checkout."""
    env = os.environ.get("TALTASKS_SCHEMA_DIR")
    if env:
        return (Path(env),)
    repo = Path(__file__).resolve().parents[3]
    return (repo.parent / "shared" / "reference" / "upstream",)


@cache
def _schema_files(dirs: tuple[Path, ...]) -> dict[tuple[int, int], Path]:
    found: dict[tuple[int, int], Path] = {}
    for d in dirs:
        for f in sorted(d.glob("talos-config.schema.v*.json")) if d.is_dir() else []:
            m = re.match(r"talos-config\.schema\.v(\d+)\.(\d+)\.json$", f.name)
            if m:
                found.setdefault((int(m[1]), int(m[2])), f)
    return found


def schema_for(contract: VersionContract) -> tuple[Path | None, str | None]:
    """The schema file used for ``contract`` and a note when it is not the exact one."""
    files = _schema_files(schema_dirs())
    if contract.key in files:
        return files[contract.key], None
    newer = sorted(k for k in files if k > contract.key)
    if newer:
        k = newer[0]
        return files[k], (
            f"no Talos {contract} JSON schema found; checked against the {k[0]}.{k[1]} schema "
            "with the legacy fields Talos still accepts tolerated"
        )
    return None, (
        f"no Talos JSON schema found (looked in {', '.join(map(str, schema_dirs()))}); "
        "schema validation skipped, Talos's rules still checked"
    )


def schema_note(contract: VersionContract) -> str | None:
    return schema_for(contract)[1]


@cache
def _load_schema(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    schema = json.loads(path.read_text(encoding="utf-8"))
    by_kind: dict[str, str] = {}
    for ref in schema.get("oneOf", []):
        name = ref["$ref"].rsplit("/", 1)[-1]
        kind = (((schema["$defs"][name].get("properties") or {}).get("kind") or {}).get("enum") or [None])[0]
        if kind:
            by_kind[kind] = name
    return schema, by_kind


@cache
def _validator(path: Path, definition: str):
    from jsonschema import Draft202012Validator

    schema, _ = _load_schema(path)
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})


def _under(path: tuple[str, ...], roots: Iterable[tuple[str, ...]]) -> bool:
    return any(path[: len(r)] == r for r in roots)


SchemaProblem = tuple[int, tuple[str, ...], str]  # (document index, key path, message)


def check_schema(
    docs: list[dict[str, Any]], contract: VersionContract, *, only_unknown_keys: bool = False
) -> list[SchemaProblem]:
    """Schema problems of ``docs`` (empty when no schema is available). With
    ``only_unknown_keys`` only unknown keys are reported (for partial documents: patches)."""
    path, _ = schema_for(contract)
    if path is None:
        return []
    from taltasks.model.suggest import did_you_mean

    _, by_kind = _load_schema(path)
    out: list[SchemaProblem] = []
    for index, doc in enumerate(docs):
        ident = doc_id(doc)
        legacy = ident[1] == "v1alpha1" and not ident[0]
        definition = "v1alpha1.Config" if legacy else by_kind.get(ident[1])
        if definition is None:
            out.append(
                (index, ("kind",), f"unknown document kind {ident[1]!r}{did_you_mean(ident[1], by_kind)}")
            )
            continue
        for err in _validator(path, definition).iter_errors(doc):
            where = tuple(str(p) for p in err.absolute_path)
            if legacy and _under(where, LEGACY_SUBTREES):
                continue
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                known = (err.schema.get("properties") or {}).keys()
                patterns = [re.compile(p) for p in err.schema.get("patternProperties") or {}]
                tolerated = LEGACY.get(where, frozenset()) if legacy else frozenset()
                for key in err.instance:
                    if key in known or key in tolerated or any(p.search(key) for p in patterns):
                        continue
                    out.append((index, (*where, key), f"unknown key {key!r}{did_you_mean(key, known)}"))
                continue
            if only_unknown_keys:
                continue
            out.append((index, where, err.message))
    return out
