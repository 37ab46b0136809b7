"""Image Factory schematics, offline: the schematic ID and the installer image URL.

The factory's ID is ``sha256`` of the schematic re-encoded by go-yaml with its own struct
field order, 4-space indentation and omit-empty rules (talos-config-gen.md §5). We encode
the same canonical text ourselves instead of asking factory.talos.dev, so ``configure`` works
offline and never sends anything over the network. Extensions are hashed in the order
given — the factory does not sort them, and neither do we.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

VANILLA_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
FACTORY = "factory.talos.dev"
GHCR_INSTALLER = "ghcr.io/siderolabs/installer"
# From this Talos minor on, ghcr.io/siderolabs/installer is no longer published: every
# installer comes from the Image Factory (release notes of 1.14, "Default Installer Image").
FACTORY_ONLY_FROM = (1, 14)

# Every key the factory accepts, with the nesting it expects (its decoder is strict).
SCHEMA: dict[str, Any] = {
    "overlay": {"image": str, "name": str, "options": dict},
    "customization": {
        "embeddedMachineConfiguration": str,
        "extraKernelArgs": list,
        "meta": list,
        "systemExtensions": {"officialExtensions": list},
        "bootloader": str,
        "secureboot": {"enrollKeys": str, "includeWellKnownCertificates": bool},
        "diskImage": {"sectorSize": int},
    },
}
BOOTLOADERS = ("dual-boot", "sd-boot", "grub")


# ---- a tiny go-yaml compatible emitter ------------------------------------------------------

# Strings go-yaml quotes because they would read back as something else.
_RESOLVES = re.compile(
    r"^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
    r"|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|[-+]?[0-9]+(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$"
)
_PLAIN_START_BAD = set("-?:,[]{}#&*!|>'\"%@`")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if "\n" in text:
        return None  # type: ignore[return-value]  # handled by the block emitter
    if text == "" or _RESOLVES.match(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if (
        text[0] in _PLAIN_START_BAD
        or text[0].isspace()
        or text[-1].isspace()
        or ": " in text
        or " #" in text
        or text.endswith(":")
        or any(ord(c) < 0x20 for c in text)
    ):
        if text[0] in "-?:" and len(text) > 1 and not text[1].isspace() and _plain_ok_rest(text):
            return text
        return "'" + text.replace("'", "''") + "'"
    return text


def _plain_ok_rest(text: str) -> bool:
    return not (": " in text or " #" in text or text.endswith(":") or text[-1].isspace())


def _emit(value: Any, indent: int, out: list[str], key: str | None, in_seq: bool = False) -> None:
    pad = " " * indent
    prefix = f"{pad}{key}:" if key is not None else pad
    if isinstance(value, dict):
        if not value:
            out.append(f"{prefix} {{}}")
            return
        if key is not None:
            out.append(prefix)
            indent += 4
        for k, v in value.items():
            _emit(v, indent, out, k)
        return
    if isinstance(value, list):
        out.append(prefix)
        for item in value:
            if isinstance(item, dict):
                first = True
                for k, v in item.items():
                    lines: list[str] = []
                    _emit(v, indent + 6, lines, k)
                    head = lines[0].lstrip()
                    out.append(f"{pad}    {'- ' if first else '  '}{head}")
                    out.extend(lines[1:])
                    first = False
            else:
                text = _scalar(item)
                out.append(f"{pad}    - {text}")
        return
    text = _scalar(value)
    if text is None:
        body = str(value)
        chomp = "" if body.endswith("\n") else "-"
        out.append(f"{prefix} |{chomp}")
        for line in body.rstrip("\n").split("\n"):
            out.append(f"{pad}    {line}" if line else "")
        return
    out.append(f"{prefix} {text}")


def canonical_yaml(schematic: Mapping[str, Any]) -> str:
    """The bytes the factory hashes: struct order, omit-empty, ``customization: {}`` always."""
    doc: dict[str, Any] = {}
    overlay = schematic.get("overlay") or {}
    if overlay:
        ov: dict[str, Any] = {"image": overlay.get("image", ""), "name": overlay.get("name", "")}
        if overlay.get("options"):
            ov["options"] = {k: overlay["options"][k] for k in sorted(overlay["options"])}
        doc["overlay"] = ov
    cust_in = schematic.get("customization") or {}
    cust: dict[str, Any] = {}
    if cust_in.get("embeddedMachineConfiguration"):
        cust["embeddedMachineConfiguration"] = cust_in["embeddedMachineConfiguration"]
    if cust_in.get("extraKernelArgs"):
        cust["extraKernelArgs"] = list(cust_in["extraKernelArgs"])
    if cust_in.get("meta"):
        cust["meta"] = [{"key": int(m["key"]), "value": m.get("value", "")} for m in cust_in["meta"]]
    exts = (cust_in.get("systemExtensions") or {}).get("officialExtensions") or []
    if exts:
        cust["systemExtensions"] = {"officialExtensions": list(exts)}
    if cust_in.get("bootloader"):
        cust["bootloader"] = cust_in["bootloader"]
    sb_in = cust_in.get("secureboot") or {}
    sb = {k: sb_in[k] for k in ("enrollKeys", "includeWellKnownCertificates") if sb_in.get(k)}
    if sb:
        cust["secureboot"] = sb
    sector = (cust_in.get("diskImage") or {}).get("sectorSize")
    if sector:
        cust["diskImage"] = {"sectorSize": int(sector)}
    doc["customization"] = cust
    lines: list[str] = []
    for k, v in doc.items():
        _emit(v, 0, lines, k)
    return "\n".join(lines) + "\n"


def schematic_id(schematic: Mapping[str, Any] | None) -> str:
    """The Image Factory ID of ``schematic`` (the vanilla ID for none)."""
    return hashlib.sha256(canonical_yaml(schematic or {}).encode()).hexdigest()


def schematic_problems(schematic: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Structural problems as (key path, message): unknown keys, wrong types, duplicate
    extensions, meta keys out of range. Empty when the factory would accept it."""
    problems: list[tuple[tuple[str | int, ...], str]] = []

    def walk(value: Any, shape: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(shape, dict):
            if not isinstance(value, dict):
                problems.append((path, "must be a mapping"))
                return
            for key, sub in value.items():
                if key not in shape:
                    from taltasks.model.suggest import did_you_mean

                    problems.append(
                        ((*path, key), f"unknown schematic key {key!r}{did_you_mean(key, shape)}")
                    )
                    continue
                walk(sub, shape[key], (*path, key))
        elif shape is list and not isinstance(value, list):
            problems.append((path, "must be a list"))
        elif shape is dict and not isinstance(value, dict):
            problems.append((path, "must be a mapping"))
        elif shape is bool and not isinstance(value, bool):
            problems.append((path, "must be true or false"))
        elif shape is int and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append((path, "must be an integer"))
        elif shape is str and not isinstance(value, str):
            problems.append((path, "must be a string"))

    walk(schematic, SCHEMA, ())
    cust = schematic.get("customization") if isinstance(schematic, dict) else None
    if isinstance(cust, dict):
        exts = (cust.get("systemExtensions") or {}).get("officialExtensions") or []
        seen: dict[str, int] = {}
        for i, ext in enumerate(exts if isinstance(exts, list) else []):
            if ext in seen:
                problems.append(
                    (
                        ("customization", "systemExtensions", "officialExtensions", i),
                        f"extension {ext!r} is listed twice (first at item {seen[ext] + 1})",
                    )
                )
            else:
                seen[ext] = i
        for i, meta in enumerate(cust.get("meta") or []):
            if (
                not isinstance(meta, dict)
                or not isinstance(meta.get("key"), int)
                or not 0 <= meta["key"] <= 255
            ):
                problems.append((("customization", "meta", i), "meta entries need an integer `key` 0..255"))
        if cust.get("bootloader") and cust["bootloader"] not in BOOTLOADERS:
            problems.append(
                (("customization", "bootloader"), f"bootloader must be one of {', '.join(BOOTLOADERS)}")
            )
    return problems


def factory_only(version: str) -> bool:
    """True when Talos ``version`` has no stock ``ghcr.io/siderolabs/installer`` image."""
    from taltasks.model.versions import Version

    try:
        return Version.parse(version).minor_key >= FACTORY_ONLY_FROM
    except ValueError:
        return False


def installer_image(
    version: str,
    *,
    schematic: Mapping[str, Any] | None = None,
    image_url: str | None = None,
    platform: str = "metal",
    secureboot: bool = False,
    registry: str = FACTORY,
) -> str:
    """The installer image a node installs and upgrades from.

    ``talosImageURL`` (a repository without tag) wins; then a schematic gives the factory's
    unified installer ``<registry>/<platform>-installer[-secureboot]/<id>:<version>``; a node
    with neither uses the stock ``ghcr.io/siderolabs/installer:<version>`` up to Talos 1.13
    and, from 1.14 (where that image is no longer published), the factory's installer of
    the empty schematic (:data:`VANILLA_ID`)."""
    if image_url:
        return f"{image_url}:{version}"
    suffix = "-secureboot" if secureboot else ""
    if schematic is not None:
        return f"{registry}/{platform}-installer{suffix}/{schematic_id(schematic)}:{version}"
    if secureboot or factory_only(version):
        return f"{registry}/{platform}-installer{suffix}/{VANILLA_ID}:{version}"
    return f"{GHCR_INSTALLER}:{version}"


def stock_installer_problem(image_url: str, version: str) -> str | None:
    """Why ``talosImageURL`` cannot serve Talos ``version`` (the stock repository is gone
    from 1.14), or None."""
    repo = image_url.split("@", 1)[0].rstrip("/")
    if repo == GHCR_INSTALLER and factory_only(version):
        return (
            f"{GHCR_INSTALLER} is not published for Talos {version} (from "
            f"{FACTORY_ONLY_FROM[0]}.{FACTORY_ONLY_FROM[1]} installers come from the Image Factory)"
        )
    return None
