"""Regenerate ``taltasks/machineconfig/templating/v1alpha1_fields.json`` from Talos's Go types.

talhelper renders Go templates against Talos's ``v1alpha1.Config`` struct, so a template
names Go fields (``.MachineConfig.MachineInstall.InstallImage``), not YAML keys. The table
maps each struct type's Go field names to their YAML keys and types; it is data read from
upstream's ``pkg/machinery/config/types/v1alpha1/v1alpha1_types.go`` at the tag below.

Usage: python tools/gen_template_fields.py [TAG] (needs the siderolabs/talos mirror).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

MIRROR = "/work/.mirror/siderolabs+talos/repo"
PATH = "pkg/machinery/config/types/v1alpha1/v1alpha1_types.go"
OUT = Path(__file__).resolve().parent.parent / "taltasks/machineconfig/templating/v1alpha1_fields.json"

_STRUCT = re.compile(r"^type (\w+) struct\s*\{\s*(\})?\s*$")
_ALIAS = re.compile(r"^type (\w+) =?\s*([^\s{][^/]*?)\s*(//.*)?$")
_FIELD = re.compile(r"^\s+(\w+)?\s*([^\s`]+)\s+`[^`]*yaml:\"([^\"]*)\"")
_EMBED = re.compile(r"^\s+(\w+)\s+`[^`]*yaml:\",inline\"")


def simplify(t: str, aliases: dict[str, str], structs: set[str]) -> str:
    """A Go type as one of: string bool int float any, T (struct), *T, []X, map[string]X."""
    t = t.strip()
    if t.startswith("*"):
        inner = simplify(t[1:], aliases, structs)
        return "*" + inner if inner in structs else inner
    if t.startswith("[]"):
        if t == "[]byte":
            return "string"
        return "[]" + simplify(t[2:], aliases, structs)
    if t.startswith("map["):
        value = t[t.index("]") + 1 :]
        return "map[string]" + simplify(value, aliases, structs)
    if t in structs:
        return t
    if t in aliases:
        return simplify(aliases[t], aliases, structs)
    base = t.split(".")[-1]
    if t in ("string", "Base64Bytes") or base in ("Duration", "Prefix", "Addr", "URL", "Expression"):
        return "string"
    if t == "bool":
        return "bool"
    if re.fullmatch(r"u?int(8|16|32|64)?|DiskSize|FileMode", base):
        return "int"
    if t.startswith("float"):
        return "float"
    return "any"


def main() -> None:
    tag = sys.argv[1] if len(sys.argv) > 1 else "v1.14.0-rc.1"
    text = subprocess.run(
        ["git", "-C", MIRROR, "show", f"{tag}:{PATH}"], check=True, capture_output=True, text=True
    ).stdout
    lines = text.splitlines()
    structs: dict[str, list[tuple[str, str, str]]] = {}
    aliases: dict[str, str] = {}
    current: str | None = None
    for line in lines:
        m = _STRUCT.match(line)
        if m:
            current = m[1]
            structs[current] = []
            if m[2]:
                current = None
            continue
        if current is None:
            a = _ALIAS.match(line)
            if a and not a[2].startswith("struct"):
                aliases[a[1]] = a[2]
            continue
        if line.startswith("}"):
            current = None
            continue
        e = _EMBED.match(line)
        if e:
            structs[current].append((e[1], "", e[1]))
            continue
        f = _FIELD.match(line)
        if f and f[1]:
            key = f[3].split(",")[0]
            if key and key != "-":
                structs[current].append((f[1], key, f[2]))
    names = set(structs)
    table = {
        name: [[go, key, simplify(t, aliases, names)] for go, key, t in fields]
        for name, fields in structs.items()
    }
    OUT.write_text(json.dumps({"source": f"siderolabs/talos {tag} {PATH}", "types": table}, indent=1) + "\n")
    print(f"{len(table)} types -> {OUT}")


if __name__ == "__main__":
    main()
