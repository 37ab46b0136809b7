"""talhelper's node fields that become machine-config content beyond the basics.

``machineDisks`` and ``machineFiles`` go into the v1alpha1 document; ``volumes``,
``userVolumes``, ``extensionServices`` and ``ingressFirewall`` become their own documents
(VolumeConfig, UserVolumeConfig, ExtensionServiceConfig, NetworkDefaultActionConfig +
NetworkRuleConfig); ``extraManifests`` (deprecated in talhelper) are whole documents
appended to the node's config; the cluster's ``inlineManifests`` go to every node.

This module checks their shape the way talhelper does before generating anything (with
``file:line``), and reads ``@file`` contents — SOPS-decrypted by content and ``${VAR}``
substituted unless ``skipEnvsubst`` — exactly once. What Talos itself checks in the
resulting documents is left to the config validation, which reports the same lines.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.model.cluster import PatchRef
from taltasks.model.envsubst import substitute_file
from taltasks.yamlpos import KeyPath

FILE_OPS = ("create", "append", "overwrite")
PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6")
DEFAULT_ACTIONS = ("accept", "block")
VOLUME_TYPES = ("partition", "directory", "disk")
MACHINE_FILE_KEYS = frozenset({"content", "permissions", "path", "op", "skipEnvsubst"})
INLINE_MANIFEST_KEYS = frozenset({"name", "contents", "skipEnvsubst"})
FIREWALL_KEYS = frozenset({"defaultAction", "rules"})
RULE_KEYS = frozenset({"name", "portSelector", "ingress"})
SERVICE_KEYS = frozenset({"name", "configFiles", "environment"})
VOLUME_KEYS = frozenset({"name", "provisioning", "encryption"})
USER_VOLUME_KEYS = frozenset({"name", "volumeType", "provisioning", "filesystem", "encryption"})
DISK_KEYS = frozenset({"device", "partitions"})
PARTITION_KEYS = frozenset({"mountpoint", "size"})


class NodeFields:
    """Mixed into the talconfig builder: needs ``err``, ``warn``, ``get``, ``plain``,
    ``check_keys``, ``doc``, ``talos_dir``, ``env`` and ``display``."""

    # provided by the builder
    talos_dir: Path
    env: Any

    def err(self, keys: KeyPath, message: str, hint: str | None = None) -> None: ...
    def warn(self, keys: KeyPath, message: str) -> None: ...
    def get(self, keys: KeyPath, default: Any = None) -> Any: ...
    def plain(self, keys: KeyPath, default: Any = None) -> Any: ...
    def check_keys(self, value: Any, keys: KeyPath, allowed: frozenset[str], what: str) -> None: ...
    def display(self, path: Path) -> str: ...
    def read_repo_file(self, path: Path, shown: str) -> str: ...

    def _list_of_maps(self, keys: KeyPath, what: str, allowed: frozenset[str]) -> list[dict[str, Any]]:
        value = self.get(keys)
        if value is None:
            return []
        if not isinstance(value, list) or any(not isinstance(v, dict) for v in value):
            self.err(keys, f"`{keys[-1]}` must be a list of mappings ({what})")
            return []
        for i, item in enumerate(value):
            self.check_keys(item, (*keys, i), allowed, what)
        return list(self.plain(keys))

    def file_content(self, keys: KeyPath, value: Any, *, envsubst: bool) -> str | None:
        """An ``@file`` reference's content (decrypted, substituted), or the value itself."""
        if not isinstance(value, str):
            self.err(keys, f"`{keys[-1]}` must be text or an @file reference")
            return None
        if not value.startswith("@"):
            return value
        path = (self.talos_dir / value[1:].strip()).resolve()
        shown = self.display(path)
        if not path.is_file():
            self.err(keys, f"file {shown} does not exist", hint="paths are relative to the talos/ folder")
            return None
        try:
            text = self.read_repo_file(path, shown)
            return substitute_file(text, self.env, shown) if envsubst else text
        except InputError as exc:
            self.problems.append(exc)  # type: ignore[attr-defined]
            return None

    # ---- v1alpha1 content ---------------------------------------------------------------------

    def machine_files(self, keys: KeyPath) -> list[dict[str, Any]]:
        out = []
        for i, item in enumerate(self._list_of_maps(keys, "machineFiles entries", MACHINE_FILE_KEYS)):
            at = (*keys, i)
            op = item.get("op")
            if op is None:
                self.err(at, f"a machine file needs `op` ({', '.join(FILE_OPS)})")
            elif op not in FILE_OPS:
                self.err((*at, "op"), f"{op!r} is not a valid operation name ({', '.join(FILE_OPS)})")
            path = item.get("path")
            if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
                self.err((*at, "path"), f"{path!r} is not a valid Unix file path")
            content = self.file_content(
                (*at, "content"), item.get("content", ""), envsubst=not item.get("skipEnvsubst")
            )
            entry = {k: v for k, v in item.items() if k != "skipEnvsubst"}
            if content is not None:
                entry["content"] = content
            out.append({k: entry[k] for k in ("content", "permissions", "path", "op") if k in entry})
        return out

    def machine_disks(self, keys: KeyPath) -> list[dict[str, Any]]:
        disks = self._list_of_maps(keys, "machineDisks entries", DISK_KEYS)
        if disks:
            self.warn(keys, "`machineDisks` is deprecated (talhelper and Talos): use `userVolumes` instead")
        for i, disk in enumerate(disks):
            parts = disk.get("partitions") or []
            if not isinstance(parts, list):
                self.err((*keys, i, "partitions"), "`partitions` must be a list")
                continue
            for j, part in enumerate(parts):
                self.check_keys(
                    self.get((*keys, i, "partitions", j)),
                    (*keys, i, "partitions", j),
                    PARTITION_KEYS,
                    "a partition",
                )
                if isinstance(part, dict) and not part.get("size") and j != len(parts) - 1:
                    self.err(
                        (*keys, i, "partitions", j),
                        f"partition {part.get('mountpoint')!r} of {disk.get('device')!r} takes the whole disk "
                        "but is not the last partition",
                    )
        return disks

    def extra_manifests(self, keys: KeyPath) -> list[PatchRef]:
        value = self.get(keys)
        if value is None:
            return []
        if not isinstance(value, list) or any(isinstance(v, dict | list) for v in value):
            self.err(keys, "`extraManifests` must be a list of file paths")
            return []
        self.warn(keys, "`extraManifests` is deprecated in talhelper: use `patches` instead")
        refs = []
        for i, item in enumerate(value):
            path = (self.talos_dir / str(item).removeprefix("@").strip()).resolve()
            shown = self.display(path)
            if not path.is_file():
                self.err((*keys, i), f"extraManifests file {shown} does not exist")
                continue
            try:
                text = self.read_repo_file(path, shown)
            except InputError as exc:
                self.problems.append(exc)  # type: ignore[attr-defined]
                continue
            refs.append(PatchRef(shown, text, 0, "extraManifests", templated=True))
        return refs

    # ---- documents of their own -------------------------------------------------------------

    def ingress_firewall(self, keys: KeyPath) -> dict[str, Any] | None:
        value = self.get(keys)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.err(keys, "`ingressFirewall` must be a mapping with defaultAction and rules")
            return None
        self.check_keys(value, keys, FIREWALL_KEYS, "ingressFirewall")
        fw = self.plain(keys)
        action = fw.get("defaultAction", "block")
        if action not in DEFAULT_ACTIONS:
            self.err((*keys, "defaultAction"), f"{action!r} is not a valid default action (accept or block)")
        rules = fw.get("rules") or []
        if not isinstance(rules, list):
            self.err((*keys, "rules"), "`rules` must be a list")
            rules = []
        names: set[str] = set()
        for i, rule in enumerate(rules):
            at = (*keys, "rules", i)
            if not isinstance(rule, dict):
                self.err(at, "each rule must be a mapping with name, portSelector and ingress")
                continue
            self.check_keys(self.get(at), at, RULE_KEYS, "a firewall rule")
            if not rule.get("name"):
                self.err(at, f"rules[{i}]: name is required")
            elif rule["name"] in names:
                self.err((*at, "name"), f"duplicate firewall rule name {rule['name']!r}")
            names.add(str(rule.get("name")))
            selector = rule.get("portSelector") or {}
            if selector.get("protocol") not in PROTOCOLS:
                self.err(
                    (*at, "portSelector"),
                    f"{selector.get('protocol')!r} is not a valid protocol ({', '.join(PROTOCOLS)})",
                )
            if not selector.get("ports"):
                self.err((*at, "portSelector"), f"rules[{i}]: portSelector.ports is required")
            for j, port in enumerate(selector.get("ports") or []):
                if not _port_range_ok(port):
                    self.err(
                        (*at, "portSelector", "ports", j),
                        f"{port!r} is not a port or port range (like 443 or 8000-9000)",
                    )
            for j, ingress in enumerate(rule.get("ingress") or []):
                for field in ("subnet", "except"):
                    net = (ingress or {}).get(field) if isinstance(ingress, dict) else None
                    if net is None and field == "except":
                        continue
                    try:
                        ipaddress.ip_network(str(net), strict=False)
                        if "/" not in str(net):
                            raise ValueError
                    except ValueError:
                        self.err((*at, "ingress", j), f"invalid {field}: {net}")
        return {"defaultAction": action, "rules": rules}

    def extension_services(self, keys: KeyPath) -> list[dict[str, Any]]:
        services = self._list_of_maps(keys, "extensionServices entries", SERVICE_KEYS)
        for i, svc in enumerate(services):
            if not svc.get("name"):
                self.err((*keys, i), "an extension service needs a `name`")
            for j, cf in enumerate(svc.get("configFiles") or []):
                if not isinstance(cf, dict) or not str(cf.get("mountPath", "")).startswith("/"):
                    self.err(
                        (*keys, i, "configFiles", j),
                        "a config file needs `content` and an absolute `mountPath`",
                    )
            for j, env in enumerate(svc.get("environment") or []):
                if not isinstance(env, str) or "=" not in env:
                    self.err((*keys, i, "environment", j), f"{env!r} is not NAME=value")
        return services

    def volumes(self, keys: KeyPath, *, user: bool) -> list[dict[str, Any]]:
        field_name = "userVolumes" if user else "volumes"
        items = self._list_of_maps(keys, f"{field_name} entries", USER_VOLUME_KEYS if user else VOLUME_KEYS)
        seen: dict[str, int] = {}
        for i, vol in enumerate(items):
            name = vol.get("name")
            if not name:
                self.err((*keys, i), f"each of `{field_name}` needs a `name`")
            elif name in seen:
                self.err(
                    (*keys, i, "name"),
                    f"duplicated {'user ' if user else ''}volume config name found: {name}",
                )
            else:
                seen[str(name)] = i
            if user and vol.get("volumeType") is not None and vol["volumeType"] not in VOLUME_TYPES:
                self.err((*keys, i, "volumeType"), f"volumeType must be one of {', '.join(VOLUME_TYPES)}")
        return items


def _port_range_ok(port: Any) -> bool:
    if isinstance(port, int) and not isinstance(port, bool):
        return 0 <= port <= 65535
    text = str(port)
    low, _, high = text.partition("-")
    try:
        a, b = int(low), int(high or low)
    except ValueError:
        return False
    return 0 <= a <= b <= 65535


def inline_manifests(builder: Any, keys: KeyPath) -> list[dict[str, str]]:
    """The cluster's ``inlineManifests``: unique names, contents (or ``@file``) read."""
    items = builder._list_of_maps(keys, "inlineManifests entries", INLINE_MANIFEST_KEYS)
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = item.get("name")
        if not name:
            builder.err((*keys, i), "an inline manifest needs a `name`")
            continue
        if name in seen:
            builder.err((*keys, i, "name"), f"inline manifest name {name!r} is duplicated")
        seen.add(name)
        contents = builder.file_content(
            (*keys, i, "contents"), item.get("contents", ""), envsubst=not item.get("skipEnvsubst")
        )
        out.append({"name": str(name), "contents": contents or ""})
    return out
