"""The cluster definition as values: :class:`Cluster` and :class:`Node`.

These are what every workflow works from — the desired Talos version and installer image of
each node, its role, address and failure-domain zone — so they are plain frozen values,
built once by :func:`taltasks.model.load_cluster` after the whole definition validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.model.versions import Version

ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class PatchRef:
    """One patch as the definition lists it, already read (and substituted, for files).

    ``source`` names it in errors (``talos/patches/global.yaml`` or ``talos/talconfig.yaml``);
    ``line_offset`` is added to lines inside ``text`` (non-zero for inline patches)."""

    source: str
    text: str
    line_offset: int = 0
    scope: str = "node"  # global | controlPlane | worker | node | node-dir
    # a Go template, rendered per node against its config before use; for a file the
    # ${VAR} substitution follows the rendering (talhelper's order)
    templated: bool = False
    envsubst: bool = False


@dataclass(frozen=True)
class TemplatedValue:
    """A node label/annotation value holding a Go template, rendered against the node's
    config (talhelper renders them after the install image is set)."""

    key: str
    text: str
    where: str  # talconfig.yaml:line of the value


@dataclass(frozen=True)
class MachineSpec:
    mode: str = "metal"
    arch: str = "amd64"
    secureboot: bool = False
    use_uki: bool = False
    boot_method: str = "iso"
    image_suffix: str = ""


@dataclass(frozen=True, eq=False)
class Node:
    """One machine of the cluster, with group defaults already folded in."""

    hostname: str
    ip: str
    control_plane: bool
    talos_version: str  # effective: the node's pin, else the cluster's
    installer_image: str
    schematic_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    taints: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    install_disk: str | None = None
    install_disk_selector: dict[str, Any] | None = None
    nameservers: tuple[str, ...] = ()
    network_interfaces: tuple[dict[str, Any], ...] = ()
    kernel_modules: tuple[dict[str, Any], ...] = ()
    cert_sans: tuple[str, ...] = ()
    schematic: dict[str, Any] | None = None
    machine_spec: MachineSpec = MachineSpec()
    ignore_hostname: bool = False
    disable_search_domain: bool = False
    patches: tuple[PatchRef, ...] = ()
    talos_version_pinned: bool = False
    where: str = ""  # talconfig.yaml:line of the node entry
    # talconfig field -> file:line it was read from (the node's own key or its group's), so
    # validation findings about the config keys a field sets can point at that line
    origins: Mapping[str, str] = field(default_factory=dict)  # + "userVolumes[0]"-style items
    # talhelper's other node fields, as written (files already read and substituted)
    label_templates: tuple[TemplatedValue, ...] = ()
    annotation_templates: tuple[TemplatedValue, ...] = ()
    machine_disks: tuple[dict[str, Any], ...] = ()
    machine_files: tuple[dict[str, Any], ...] = ()
    extra_manifests: tuple[PatchRef, ...] = ()
    ingress_firewall: dict[str, Any] | None = None
    extension_services: tuple[dict[str, Any], ...] = ()
    volumes: tuple[dict[str, Any], ...] = ()
    user_volumes: tuple[dict[str, Any], ...] = ()
    output_file: str = ""  # file name under clusterconfig/ (filenameTmpl)

    @property
    def role(self) -> str:
        return "controlplane" if self.control_plane else "worker"

    @property
    def zone(self) -> str | None:
        return self.labels.get(ZONE_LABEL)

    @property
    def version(self) -> Version:
        return Version.parse(self.talos_version)

    def __repr__(self) -> str:
        return f"Node({self.hostname!r}, {self.ip}, {self.role}, {self.talos_version})"


@dataclass(frozen=True, eq=False)
class Cluster:
    """The whole definition. ``source_dir`` is the ``talos/`` folder it was read from."""

    name: str
    endpoint: str
    talos_version: str
    kubernetes_version: str
    domain: str
    nodes: list[Node]
    source_dir: Path
    allow_scheduling_on_control_planes: bool = False
    additional_api_server_cert_sans: tuple[str, ...] = ()
    additional_machine_cert_sans: tuple[str, ...] = ()
    pod_subnets: tuple[str, ...] = ("10.244.0.0/16",)
    service_subnets: tuple[str, ...] = ("10.96.0.0/12",)
    cni_config: dict[str, Any] | None = None
    patches: tuple[PatchRef, ...] = ()  # global patches, applied last
    where: str = ""
    inline_manifests: tuple[dict[str, str], ...] = ()  # cluster.inlineManifests (contents read)
    kubernetes_version_default: bool = False  # kubernetesVersion absent: the contract's default
    env: dict[str, str] = field(default_factory=dict, repr=False)  # talenv + environment (sprig's `env`)
    warnings: tuple[str, ...] = ()  # "file:line: message" for deprecated or defaulted fields

    @property
    def control_planes(self) -> list[Node]:
        return [n for n in self.nodes if n.control_plane]

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if not n.control_plane]

    @property
    def root(self) -> Path:
        """The checkout holding ``talos/``."""
        return self.source_dir.parent

    def node(self, name_or_ip: str) -> Node:
        """The node with this hostname or IP; an :class:`InputError` listing the known
        nodes otherwise."""
        wanted = str(name_or_ip).strip()
        for n in self.nodes:
            if wanted == n.hostname or wanted in n.ips or wanted == n.ip:
                return n
        from taltasks.model.suggest import did_you_mean

        known = ", ".join(f"{n.hostname} ({n.ip})" for n in self.nodes)
        raise InputError(
            f"unknown node {wanted!r}{did_you_mean(wanted, [n.hostname for n in self.nodes])}",
            where=self.where or None,
            hint=f"known nodes: {known}",
        )
