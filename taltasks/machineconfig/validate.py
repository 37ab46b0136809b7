"""Checks on generated machine configs: Talos's own rules plus the official JSON schema.

Two layers, both run on every generated config before anything is written:

* :func:`check_rules` re-implements the validation Talos runs (``talosctl validate
  --strict``; talos-config-gen.md §6) for what taltasks can produce: required sections,
  endpoint and DNS domain syntax, install disk in metal mode, the extraKernelArgs vs
  grubUseUKICmdline conflict, control-plane/worker key rules, CNI names, label and taint
  syntax, network device basics and the HostnameConfig cross-document conflicts.
* :func:`check_schema` validates each document against the official JSON schema of its
  version. Talos's schema leaves out fields it still accepts (``persist``, the legacy
  ``machine.network``/``registries``/``time`` sections, ``features.rbac``…); those are
  tolerated explicitly (:data:`LEGACY`) and everything else the schema says is enforced —
  notably unknown keys, with a "did you mean". Schemas are read from the shared reference
  folder (``$TALTASKS_SCHEMA_DIR`` or ``../shared/reference/upstream`` beside the checkout);
  when the schema of a version is absent the next newer one is used, and when none is
  present the schema layer is skipped with a note (:func:`schema_note`). The schema files are
  MPL-2.0 data from the Talos repository and are not shipped inside the package.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, Literal

from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.merge import doc_id
from taltasks.model.syntax import (
    dns_name_problem,
    endpoint_problem,
    is_cidr,
    label_key_problem,
    label_value_problem,
    taint_problem,
)

Mode = Literal["metal", "cloud", "container"]
Problem = tuple[str, str]  # (document/path, message)

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

CNI_NAMES = ("flannel", "custom", "none")


# ---- Talos's rules -------------------------------------------------------------------------


def check_rules(docs: list[dict[str, Any]], *, mode: Mode = "metal") -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    v1 = None
    for doc in docs:
        ident = doc_id(doc)
        if ident in seen:
            problems.append((ident[1], "document appears twice"))
        seen.add(ident)
        if ident[1] == "v1alpha1" and not ident[0]:
            v1 = doc
    if v1 is None:
        return [*problems, ("v1alpha1", "the config has no v1alpha1 document")]
    problems += _check_v1alpha1(v1, mode)
    for doc in docs:
        kind = doc.get("kind")
        if kind == "HostnameConfig":
            problems += _check_hostname_config(doc, v1)
        elif kind == "ResolverConfig" and ((v1.get("machine") or {}).get("network") or {}).get("nameservers"):
            problems.append(
                ("ResolverConfig", "nameservers are already set in v1alpha1 machine.network.nameservers")
            )
    return problems


def _check_v1alpha1(doc: dict[str, Any], mode: Mode) -> list[Problem]:
    out: list[Problem] = []
    machine = doc.get("machine")
    cluster = doc.get("cluster")
    if doc.get("persist") is False:
        out.append(("persist", "persist must not be false"))
    if not isinstance(machine, dict):
        return [*out, ("machine", "the machine section is required")]
    if not isinstance(cluster, dict):
        return [*out, ("cluster", "the cluster section is required")]
    mtype = machine.get("type")
    if mtype not in ("controlplane", "worker", "init"):
        out.append(("machine.type", f"machine type {mtype!r} is not controlplane or worker"))
    cp = mtype in ("controlplane", "init")

    endpoint = (cluster.get("controlPlane") or {}).get("endpoint")
    if not endpoint:
        out.append(("cluster.controlPlane.endpoint", "the control plane endpoint is required"))
    else:
        problem = endpoint_problem(str(endpoint))
        if problem:
            out.append(("cluster.controlPlane.endpoint", problem))
    domain = (cluster.get("network") or {}).get("dnsDomain")
    if domain and dns_name_problem(domain):
        out.append(("cluster.network.dnsDomain", dns_name_problem(domain)))
    for key in ("podSubnets", "serviceSubnets"):
        for cidr in (cluster.get("network") or {}).get(key) or []:
            if not is_cidr(cidr):
                out.append((f"cluster.network.{key}", f"{cidr!r} is not a CIDR"))

    install = machine.get("install")
    if mode == "metal":
        if not isinstance(install, dict):
            out.append(("machine.install", "an install section is required in metal mode"))
        elif not install.get("disk") and not install.get("diskSelector"):
            out.append(("machine.install", "install.disk or install.diskSelector is required in metal mode"))
    if isinstance(install, dict) and install.get("extraKernelArgs") and install.get("grubUseUKICmdline"):
        out.append(
            (
                "machine.install",
                "install.extraKernelArgs and install.grubUseUKICmdline can't be used together "
                "(put kernel arguments in the schematic instead)",
            )
        )
    if mode == "container":
        dns = (machine.get("features") or {}).get("hostDNS") or {}
        if not dns.get("enabled") or not dns.get("forwardKubeDNSToHost"):
            out.append(("machine.features.hostDNS", "container mode needs hostDNS enabled and forwarded"))

    mca = machine.get("ca") or {}
    if not mca.get("crt") and not machine.get("acceptedCAs"):
        out.append(("machine.ca", "a trusted Talos CA (machine.ca.crt or acceptedCAs) is required"))
    if cp:
        if not mca.get("key"):
            out.append(("machine.ca.key", "a control plane needs the Talos CA key"))
        if not ((cluster.get("etcd") or {}).get("ca") or {}).get("crt"):
            out.append(("cluster.etcd.ca", "a control plane needs the etcd CA"))
        cni = (cluster.get("network") or {}).get("cni")
        if isinstance(cni, dict):
            name = cni.get("name")
            if name not in CNI_NAMES:
                out.append(("cluster.network.cni.name", f"CNI {name!r} is not one of {', '.join(CNI_NAMES)}"))
            if cni.get("urls") and name != "custom":
                out.append(("cluster.network.cni.urls", "CNI urls are only allowed with name: custom"))
            if name == "custom" and not cni.get("urls"):
                out.append(("cluster.network.cni.urls", "a custom CNI needs urls (strict mode)"))
    else:
        if mca.get("key"):
            out.append(("machine.ca.key", "a worker must not hold the Talos CA key"))
        if (cluster.get("ca") or {}).get("key"):
            out.append(("cluster.ca.key", "a worker must not hold the Kubernetes CA key"))
        if cluster.get("etcd"):
            out.append(("cluster.etcd", "a worker must not have an etcd section"))
        if _has_vip(machine):
            out.append(("machine.network.interfaces", "a worker must not have a shared VIP"))

    out += _check_labels(machine.get("nodeLabels"), "machine.nodeLabels", values=True)
    out += _check_labels(machine.get("nodeAnnotations"), "machine.nodeAnnotations", values=False)
    for key, value in (machine.get("nodeTaints") or {}).items():
        problem = taint_problem(key, value)
        if problem:
            out.append((f"machine.nodeTaints.{key}", problem))
    names = [m.get("name") for m in cluster.get("inlineManifests") or [] if isinstance(m, dict)]
    for dup in {n for n in names if names.count(n) > 1}:
        out.append(("cluster.inlineManifests", f"inline manifest {dup!r} is defined twice"))
    out += _check_devices(((machine.get("network") or {}).get("interfaces")) or [])
    return out


def _has_vip(machine: dict[str, Any]) -> bool:
    for dev in ((machine.get("network") or {}).get("interfaces")) or []:
        if isinstance(dev, dict) and (dev.get("vip") or any(v.get("vip") for v in dev.get("vlans") or [])):
            return True
    return False


def _check_labels(labels: Any, where: str, *, values: bool) -> list[Problem]:
    out: list[Problem] = []
    for key, value in (labels or {}).items():
        for problem in (label_key_problem(key), label_value_problem(value) if values else None):
            if problem:
                out.append((f"{where}.{key}", problem))
    return out


def _check_devices(devices: list[Any]) -> list[Problem]:
    out: list[Problem] = []
    for i, dev in enumerate(devices):
        where = f"machine.network.interfaces[{i}]"
        if not isinstance(dev, dict):
            out.append((where, "must be a mapping"))
            continue
        if bool(dev.get("interface")) == bool(dev.get("deviceSelector")):
            out.append((where, "set exactly one of interface or deviceSelector"))
        for address in [
            *(dev.get("addresses") or []),
            *(a for v in dev.get("vlans") or [] for a in v.get("addresses") or []),
        ]:
            if not is_cidr(address):
                out.append(
                    (
                        f"{where}.addresses",
                        f"{address!r} is not an address in CIDR form (e.g. 192.168.1.10/24)",
                    )
                )
    return out


def _check_hostname_config(doc: dict[str, Any], v1: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    auto, hostname = doc.get("auto"), doc.get("hostname")
    if not auto and not hostname:
        out.append(("HostnameConfig", "set auto or hostname"))
    if hostname and auto not in (None, "off"):
        out.append(("HostnameConfig", f"hostname {hostname!r} conflicts with auto: {auto} (set auto: off)"))
    if auto and auto not in ("stable", "off"):
        out.append(("HostnameConfig.auto", f"auto must be stable or off, not {auto!r}"))
    machine = v1.get("machine") or {}
    if (machine.get("network") or {}).get("hostname"):
        out.append(
            ("HostnameConfig", "static hostname is already set in v1alpha1 config (machine.network.hostname)")
        )
    if (machine.get("features") or {}).get("stableHostname"):
        out.append(
            ("HostnameConfig", "stable hostname is already set in v1alpha1 config (features.stableHostname)")
        )
    return out


# ---- the official schema ---------------------------------------------------------------------


def schema_dirs() -> tuple[Path, ...]:
    """``$TALTASKS_SCHEMA_DIR`` when set, else the shared reference folder beside the checkout."""
    env = os.environ.get("TALTASKS_SCHEMA_DIR")
    if env:
        return (Path(env),)
    repo = Path(__file__).resolve().parents[2]
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
