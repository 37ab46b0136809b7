#!/usr/bin/env python3
"""Refresh the Talos data shipped in ``taltasks/machineconfig/schemas/`` from a Talos checkout.

    python3 tools/talos_schema_data.py [--repo PATH_TO_TALOS_GIT_DIR]

For every version contract in :data:`TAGS` it writes, from the newest tag of that minor:

* ``talos-config.schema.v1.X.json`` — the official JSON schema, byte for byte
  (``website/content/v1.X/schemas/config.schema.json``);
* ``talos-deprecations.json`` — per contract, the config fields Talos's Go types mark
  ``Deprecated:`` and what replaces them (document kinds or sibling fields named in the
  marker), read from ``pkg/machinery/config/types/**.go``;
* ``SOURCES.md`` — where each file came from.

The data is upstream fact (MPL-2.0 data of siderolabs/talos); only this script is ours. It
uses nothing but ``git`` and the standard library, and is run by a maintainer when a new
Talos minor ships — never at runtime.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "taltasks" / "machineconfig" / "schemas"
DEFAULT_REPO = Path("/work/.mirror/siderolabs+talos/repo")

# contract -> the tag the data is taken from (the newest of that minor in the mirror)
TAGS = {
    "1.8": "v1.8.4",
    "1.9": "v1.9.6",
    "1.10": "v1.10.9",
    "1.11": "v1.11.6",
    "1.12": "v1.12.11",
    "1.13": "v1.13.9",
    "1.14": "v1.14.0-rc.1",
}
TYPES_DIR = "pkg/machinery/config/types/"

_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
_FIELD = re.compile(r"^(\w+)\s+(\S.*?)\s+`([^`]*)`")
_YAML_TAG = re.compile(r'yaml:"([^"]*)"')


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def deprecations(repo: Path, tag: str) -> dict[str, dict[str, dict[str, list[str] | str]]]:
    """``{definition: {yaml field: {"replacements": [...]} | {"note": "..."}}}`` at ``tag``."""
    files = [
        f
        for f in git(repo, "ls-tree", "-r", "--name-only", tag, "--", TYPES_DIR).split()
        if f.endswith(".go") and not f.endswith("_test.go") and "zz_generated" not in f
    ]
    out: dict[str, dict[str, dict[str, list[str] | str]]] = {}
    for path in files:
        package = path[len(TYPES_DIR) :].split("/")[0]
        source = git(repo, "show", f"{tag}:{path}")
        for struct in _STRUCT.finditer(source):
            fields: dict[str, str] = {}  # Go field name -> yaml name
            marked: list[tuple[str, str]] = []  # (yaml name, deprecation text)
            pending: str | None = None
            for line in struct[2].splitlines():
                text = line.strip()
                if text.startswith("//"):
                    if "Deprecated:" in text:
                        pending = text.split("Deprecated:", 1)[1].strip()
                    continue
                m = _FIELD.match(text)
                tag_match = _YAML_TAG.search(m[3]) if m else None
                if m and tag_match:
                    name = tag_match[1].split(",")[0]
                    if name:
                        fields[m[1]] = name
                        if pending is not None:
                            marked.append((name, pending))
                pending = None
            for name, text in marked:
                out.setdefault(f"{package}.{struct[1]}", {})[name] = _replacement(text, fields)
    return out


def _replacement(text: str, fields: dict[str, str]) -> dict[str, list[str] | str]:
    """The document kinds or sibling fields a deprecation marker names, else a short note."""
    names: list[str] = []
    for token in re.findall(r"[`'\"]([^`'\"]+)[`'\"]|\b([A-Z][A-Za-z0-9]+)\b", text):
        word = (token[0] or token[1]).strip()
        sibling = [word] if word in fields else []
        if not sibling and not word.endswith("Config"):
            sibling = difflib.get_close_matches(word, list(fields), n=1, cutoff=0.9)
        if sibling:  # a sibling field, by its Go name (markers have typos: EtcdAdvertistedSubnets)
            word = fields[sibling[0]]
        elif not re.fullmatch(r"[A-Z][A-Za-z0-9*]+(Config|Document)?", word) or word in {
            "Use",
            "Not",
            "It",
            "All",
            "Image",
            "Factory",
        }:
            continue
        if word not in names:
            names.append(word)
    if names:
        return {"replacements": names}
    lowered = text.lower()
    if "image factory" in lowered:
        return {"note": "build the installer with the Image Factory (a schematic) instead"}
    if "multi-doc network config" in lowered:
        return {
            "note": "write the multi-document network configuration instead (LinkConfig, BondConfig, VLANConfig, …)"
        }
    if "never worked" in lowered or "not supported" in lowered:
        return {"note": "Talos ignores it"}
    if "locked to true" in lowered:
        return {"note": "it is always on with multi-document config"}
    if "removed in multi-doc" in lowered:
        return {"note": "it has no effect with multi-document config"}
    return {"note": "see the Talos configuration reference for the replacement"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO, help="a siderolabs/talos git dir")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    deprecated: dict[str, dict] = {}
    for contract, tag in TAGS.items():
        upstream = f"website/content/v{contract}/schemas/config.schema.json"
        data = subprocess.run(
            ["git", "-C", str(args.repo), "show", f"{tag}:{upstream}"], check=True, capture_output=True
        ).stdout
        name = f"talos-config.schema.v{contract}.json"
        (OUT / name).write_bytes(data)
        rows.append((name, upstream, tag, hashlib.sha256(data).hexdigest()[:16], len(data)))
        deprecated[contract] = deprecations(args.repo, tag)
    text = json.dumps(deprecated, indent=1, sort_keys=True) + "\n"
    (OUT / "talos-deprecations.json").write_text(text, encoding="utf-8")
    lines = [
        "# Talos data shipped with taltasks",
        "",
        "Data files from the public Talos repository (github.com/siderolabs/talos, MPL-2.0),",
        "written by `tools/talos_schema_data.py`. They are data, not code of this project.",
        "",
        "| file | upstream path | tag | sha256 (first 16) | bytes |",
        "|---|---|---|---|---|",
        *(f"| {n} | {u} | {t} | {h} | {b} |" for n, u, t, h, b in rows),
        f"| talos-deprecations.json | `Deprecated:` markers of the config structs in {TYPES_DIR} | "
        + ", ".join(f"{c}: {t}" for c, t in TAGS.items())
        + " | | |",
        "",
        "v1.14.0-rc.1 is the newest 1.14 tag in the stored copy of the repository; its schema",
        "omits UnattendedInstallConfig, which the 1.14 generator emits.",
        "",
    ]
    (OUT / "SOURCES.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {len(rows)} schemas, talos-deprecations.json and SOURCES.md to {OUT}")


if __name__ == "__main__":
    main()
