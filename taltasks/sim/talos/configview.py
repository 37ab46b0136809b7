"""What a simulated node reads from the machine config it was given.

A node takes its identity from the applied config, as a real one does: its role
(``machine.type``), the OS CA it trusts and signs with (``machine.ca``), its hostname, its
installer image (whose tag is the version an install boots into), Kubernetes component
images and the Kubernetes CA. Only what the simulator needs is extracted; the bytes as
applied are kept verbatim for the MachineConfig resource and for diffs.

Each setting is read where the config holds it: a contract-1.14 config keeps the kubelet,
API server, controller manager, scheduler, proxy, cluster name/endpoint, Kubernetes CA and
installer in their own documents (``KubeletConfig``, ``KubeAPIServerConfig``, …,
``UnattendedInstallConfig``), an older one in the v1alpha1 document. A node refuses
documents of a kind its Talos version does not know (a 1.13 node given a 1.14 config),
as Talos's loader does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from taltasks.model.images import image_tag  # noqa: F401 - re-exported for the simulator


class ConfigRejected(ValueError):
    """The config cannot be applied (InvalidArgument on the wire)."""


def _b64pem(value: Any) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value))
    except ValueError:
        return None


def _dig(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


@dataclass
class ConfigView:
    raw: bytes
    documents: list[dict[str, Any]]
    v1alpha1: dict[str, Any]
    machine_type: str
    hostname: str | None
    os_ca_crt: bytes | None
    os_ca_key: bytes | None
    k8s_ca_crt: bytes | None
    k8s_ca_key: bytes | None
    install_image: str | None
    kubelet_image: str | None
    cluster_name: str | None
    cluster_endpoint: str | None
    cert_sans: list[str] = field(default_factory=list)

    @property
    def control_plane(self) -> bool:
        return self.machine_type in ("controlplane", "init")

    def document(self, kind: str) -> dict[str, Any] | None:
        return next((d for d in self.documents if d.get("kind") == kind), None)

    def image(self, component: str) -> str | None:
        """``apiServer``, ``controllerManager``, ``scheduler`` or ``proxy`` image."""
        doc = self.document(COMPONENT_DOCUMENTS[component])
        if doc is not None:
            return doc.get("image")
        return _dig(self.v1alpha1, "cluster", component, "image")

    @property
    def proxy_disabled(self) -> bool:
        doc = self.document("KubeProxyConfig")
        if doc is not None:
            return doc.get("enabled") is False
        return bool(_dig(self.v1alpha1, "cluster", "proxy", "disabled"))


# Where a contract-1.14 config keeps each control-plane component (v1alpha1 key → document).
COMPONENT_DOCUMENTS = {
    "apiServer": "KubeAPIServerConfig",
    "controllerManager": "KubeControllerManagerConfig",
    "scheduler": "KubeSchedulerConfig",
    "proxy": "KubeProxyConfig",
}


def _first(docs: list[dict[str, Any]], kind: str, *keys: str) -> Any:
    doc = next((d for d in docs if d.get("kind") == kind), None)
    return _dig(doc, *keys) if doc is not None else None


def _pem(value: Any) -> bytes | None:
    return str(value).encode() if value else None


def unknown_kinds(docs: list[dict[str, Any]], version: str | None) -> list[str]:
    """Document kinds a node running Talos ``version`` does not know (from the official
    schema of that minor, shipped in the package); [] when the version has no schema."""
    from taltasks.model.versions import Version

    if not version:
        return []
    try:
        key = Version.parse(version).minor_key
    except ValueError:
        return []
    known = _known_kinds(key)
    if known is None:
        return []
    return [str(d["kind"]) for d in docs if d.get("kind") and d["kind"] not in known]


@cache
def _known_kinds(key: tuple[int, int]) -> frozenset[str] | None:
    from taltasks.machineconfig.validate.typemodel import model, shipped_contracts

    if key not in shipped_contracts():
        return None
    return frozenset(model(key).kinds)


def parse(raw: bytes, version: str | None = None) -> ConfigView:
    """Parse config bytes as machined running Talos ``version`` would before applying them."""
    try:
        docs = [d for d in yaml.safe_load_all(raw.decode("utf-8")) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigRejected(f"failed to parse config: {exc}") from None
    if not all(isinstance(d, dict) for d in docs):
        raise ConfigRejected("failed to parse config: every document must be a mapping")
    unknown = unknown_kinds(docs, version)
    if unknown:
        raise ConfigRejected(
            f"failed to parse config: unknown document kind {unknown[0]!r} (Talos {version} does not know it)"
        )
    main = next((d for d in docs if d.get("version") == "v1alpha1"), None)
    if main is None:
        raise ConfigRejected(
            "the config doesn't contain v1alpha1 config, did you mean to patch the machine config instead?"
        )
    machine_type = _dig(main, "machine", "type")
    if machine_type not in ("controlplane", "init", "worker"):
        raise ConfigRejected(f"unknown machine type {machine_type!r}")
    hostname = _dig(main, "machine", "network", "hostname")
    for d in docs:
        if d.get("kind") == "HostnameConfig" and d.get("hostname"):
            hostname = d["hostname"]
    return ConfigView(
        raw=raw,
        documents=docs,
        v1alpha1=main,
        machine_type=machine_type,
        hostname=hostname,
        os_ca_crt=_b64pem(_dig(main, "machine", "ca", "crt")),
        os_ca_key=_b64pem(_dig(main, "machine", "ca", "key")),
        k8s_ca_crt=_b64pem(_dig(main, "cluster", "ca", "crt"))
        or _pem(_first(docs, "KubeAPIServerCAConfig", "issuingCA", "cert"))
        or _pem((_first(docs, "KubeAPIServerCAConfig", "acceptedCAs") or [None])[0]),
        k8s_ca_key=_b64pem(_dig(main, "cluster", "ca", "key"))
        or _pem(_first(docs, "KubeAPIServerCAConfig", "issuingCA", "key")),
        install_image=_dig(main, "machine", "install", "image")
        or _first(docs, "UnattendedInstallConfig", "installer", "image"),
        kubelet_image=_dig(main, "machine", "kubelet", "image") or _first(docs, "KubeletConfig", "image"),
        cluster_name=_dig(main, "cluster", "clusterName") or _first(docs, "KubeClusterConfig", "clusterName"),
        cluster_endpoint=_dig(main, "cluster", "controlPlane", "endpoint")
        or _first(docs, "KubeClusterConfig", "endpoint"),
        cert_sans=[str(s) for s in _dig(main, "machine", "certSANs") or []],
    )


def applies_live(version: str | None) -> bool:
    """Whether a node running ``version`` takes every apply without a reboot (1.14: AUTO
    applies live, REBOOT is refused; settings read at boot wait for the next one) — the
    node's row in :mod:`taltasks.sim.talos.versions` decides."""
    from taltasks.sim.talos import versions

    return version is not None and not versions.minor(version).auto_may_reboot


# Paths whose change cannot be applied to a running node (the node must reboot). Everything
# else is applied live, as modern Talos does for most of the config.
REBOOT_PATHS = (
    ("machine", "install"),
    ("machine", "kernel"),
    ("machine", "disks"),
    ("machine", "systemDiskEncryption"),
    ("machine", "sysfs"),
)


def changed_paths(
    old: dict[str, Any], new: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Leaf paths whose values differ between two config mappings."""
    out: list[tuple[str, ...]] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        path = (*prefix, str(key))
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_paths(a, b, path)
        elif a != b:
            out.append(path)
    return out


def needs_reboot(old: ConfigView, new: ConfigView) -> str | None:
    """The reason a change needs a reboot, or None when it can be applied live (only the
    v1alpha1 sections of :data:`REBOOT_PATHS`: Talos 1.14 applies its documents live, and
    what they change only at boot waits for the next one)."""
    for path in changed_paths(old.v1alpha1, new.v1alpha1):
        for prefix in REBOOT_PATHS:
            if path[: len(prefix)] == prefix:
                return f"change to {'.'.join(path)} requires a reboot"
    return None


def unified_diff(old: bytes | None, new: bytes) -> str:
    """The diff Talos shows in a dry run: ``--- a`` / ``+++ b`` with hunks, or "No changes."
    (machined shows values as they are; it is the client's job to mask them)."""
    from taltasks.machineconfig.diff import unified

    return unified(old, new, fromfile="a", tofile="b", masked=False) or "No changes."
