"""Reading and validating ``talos/talconfig.yaml`` (talhelper's format) into a :class:`Cluster`.

The file is read as talhelper reads it — comments stripped, ``${VAR}`` substituted from
the talenv files and the environment (:mod:`taltasks.model.envsubst`; any file that is
SOPS-encrypted is decrypted by content) — then checked field by field. Every problem is
collected with its ``file:line`` and all of them are reported together
(:class:`DefinitionError`), so one run shows everything to fix. Every field of talhelper's
``talconfig.yaml`` is understood (:mod:`.nodefields` for files, disks, volumes, firewall,
extension services and manifests); an unknown key is an error with a "did you mean"
rather than silently ignored, as talhelper's own JSON schema would flag it.

Go templates are kept as written here and rendered per node when its config is built
(labels, annotations, patches, extra manifests); ``filenameTmpl`` and the image factory's
``installerURLTmpl`` are rendered here.

Beyond talhelper, two conveniences: a per-node ``talosVersion`` pin (a node may run a
different Talos release during a rolling upgrade), and node patch folders:
``talos/patches/nodes/<hostname>.yaml`` or ``talos/patches/nodes/<hostname>/*.yaml`` are
applied to that node after its talconfig patches; a file there for a hostname that is not
in the cluster is an error (it would silently apply to nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.model import schematic as schematics
from taltasks.model.cluster import Cluster, MachineSpec, Node, PatchRef, TemplatedValue
from taltasks.model.envsubst import Environment, substitute_file
from taltasks.model.nodefields import NodeFields, inline_manifests
from taltasks.model.suggest import did_you_mean
from taltasks.model.syntax import (
    cidr_problem,
    dns_name_problem,
    endpoint_problem,
    ip_problem,
    label_key_problem,
    label_value_problem,
    taint_problem,
)
from taltasks.model.versions import (
    DEFAULT_KUBERNETES,
    SUPPORTED_CONTRACTS,
    Version,
    kubernetes_supported,
    support_range,
    supported_contracts_text,
)
from taltasks.secrets.bycontent import is_encrypted
from taltasks.yamlpos import KeyPath, YamlDoc

TALCONFIG = "talconfig.yaml"

TOP_KEYS = frozenset(
    {
        "clusterName",
        "endpoint",
        "talosVersion",
        "kubernetesVersion",
        "domain",
        "allowSchedulingOnMasters",
        "allowSchedulingOnControlPlanes",
        "additionalApiServerCertSans",
        "additionalMachineCertSans",
        "clusterPodNets",
        "clusterSvcNets",
        "cniConfig",
        "patches",
        "controlPlane",
        "worker",
        "nodes",
        "imageFactory",
        "inlineManifests",
    }
)
NODE_ONLY_KEYS = frozenset(
    {
        "hostname",
        "ipAddress",
        "controlPlane",
        "installDisk",
        "installDiskSelector",
        "ignoreHostname",
        "overridePatches",
        "overrideExtraManifests",
        "overrideMachineCertSANs",
        "talosVersion",
    }
)
NODE_CONFIG_KEYS = frozenset(
    {
        "nodeLabels",
        "nodeAnnotations",
        "nodeTaints",
        "nameservers",
        "networkInterfaces",
        "kernelModules",
        "certSANs",
        "patches",
        "talosImageURL",
        "schematic",
        "machineSpec",
        "disableSearchDomain",
        "noSchematicValidate",
        "imageSchematic",
        "machineDisks",
        "machineFiles",
        "extraManifests",
        "ingressFirewall",
        "extensionServices",
        "volumes",
        "userVolumes",
        "filenameTmpl",
    }
)
# Keys of talhelper v1 (2022), gone since: refused with what replaced them.
LEGACY_KEYS = {
    "configPatches": "talhelper v2+ reads `patches` (a list of @files or inline patches; JSON 6902 ops still work)",
    "inlinePatch": "talhelper v2+ reads `patches`: move this mapping into an inline strategic patch",
}
DEFAULT_FILENAME_TMPL = "{{ .ClusterName }}-{{ .Hostname }}.yaml"
BOOT_METHODS = ("iso", "disk-image", "pxe")
DISK_IMAGE_SUFFIXES = ("raw.zst", "raw.xz", "raw.tar.gz", "vhd.xz", "raw.gz", "ova", "qcow2")
MACHINE_SPEC_KEYS = frozenset({"mode", "arch", "secureboot", "useUKI", "bootMethod", "imageSuffix"})
DISK_SELECTOR_KEYS = frozenset(
    {"size", "name", "model", "serial", "modalias", "uuid", "wwid", "type", "busPath"}
)
IMAGE_FACTORY_KEYS = frozenset(
    {"registryURL", "schematicEndpoint", "protocol", "installerURLTmpl", "ISOURLTmpl"}
)
CNI_KEYS = frozenset({"name", "urls", "flannel"})
NODE_PATCH_DIR = Path("patches") / "nodes"


class DefinitionError(InputError):
    """Several problems in the cluster definition, each with its own location."""

    def __init__(self, problems: list[InputError]) -> None:
        self.problems = problems
        if len(problems) == 1:
            p = problems[0]
            super().__init__(p.message, where=p.where, hint=p.hint)
            return
        lines = "\n".join(f"  {p}" + (f"\n    hint: {p.hint}" if p.hint else "") for p in problems)
        super().__init__(f"{len(problems)} problems in the cluster definition:\n{lines}")


def load_cluster(root: Path | str, *, env: Mapping[str, str] | None = None) -> Cluster:
    """Read ``root/talos/talconfig.yaml`` (+ ``talenv.yaml``) into a validated :class:`Cluster`.

    ``env`` adds/overrides variables (tests); by default they come from talenv and the
    process environment. Raises :class:`DefinitionError` listing every problem found."""
    talos_dir = Path(root) / "talos"
    path = talos_dir / TALCONFIG
    display = f"talos/{TALCONFIG}"
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            "cluster definition not found",
            where=display,
            hint=f"run from the checkout holding talos/{TALCONFIG}, or pass --root",
        ) from None
    read = _reader(Path(root))
    environment = Environment.load(talos_dir, read=read)
    if env:
        environment.values.update(env)
    if is_encrypted(raw):
        raw = read(path, display)
    text = substitute_file(raw, environment.values, display)
    doc = YamlDoc.load(path, text=text, display=display)
    return _Builder(doc, talos_dir, environment.values, read).build()


def _reader(root: Path):
    """Reads repository files, decrypting SOPS-encrypted ones by content (sops is only
    started for a file that carries SOPS metadata)."""

    def read(path: Path, shown: str) -> str:
        from taltasks.secrets import bycontent

        return bycontent.read_text(path, root=root, display=shown)

    return read


class _Builder(NodeFields):
    def __init__(
        self,
        doc: YamlDoc,
        talos_dir: Path,
        env: Mapping[str, str],
        read: Any = None,
    ) -> None:
        self.doc = doc
        self.talos_dir = talos_dir
        self.env = env
        self.read = read
        self.problems: list[InputError] = []
        self.warnings: list[str] = []
        self._patch_cache: dict[Path, PatchRef | None] = {}
        self._files: dict[Path, str | InputError] = {}  # read_repo_file's results
        self._outputs: dict[str, str] = {}  # config file name under clusterconfig/ -> hostname

    # ---- reporting ------------------------------------------------------------------------

    def err(self, keys: KeyPath, message: str, hint: str | None = None) -> None:
        self.problems.append(self.doc.error(keys, message, hint=hint))

    def warn(self, keys: KeyPath, message: str) -> None:
        line = f"{self.doc.where(keys)}: {message}"
        if line not in self.warnings:
            self.warnings.append(line)

    def read_repo_file(self, path: Path, shown: str) -> str:
        """A repository file's text, SOPS-decrypted when it is encrypted (by content).

        Read (and decrypted) once per run: a group's ``machineFiles`` and ``extraManifests``
        are read for every node of the group, and each decryption starts sops."""
        if path not in self._files:
            try:
                text = self.read(path, shown) if self.read is not None else path.read_text(encoding="utf-8")
            except InputError as exc:
                self._files[path] = exc
            else:
                self._files[path] = text
        found = self._files[path]
        if isinstance(found, InputError):
            raise found
        return found

    def check_keys(self, value: Any, keys: KeyPath, allowed: frozenset[str], what: str) -> None:
        if not isinstance(value, dict):
            return
        for key in value:
            if key in allowed:
                continue
            if key in LEGACY_KEYS:
                self.err((*keys, key), f"`{key}` is a talhelper v1 key", hint=LEGACY_KEYS[key])
            else:
                self.err((*keys, key), f"unknown key {key!r} in {what}{did_you_mean(str(key), allowed)}")

    def get(self, keys: KeyPath, default: Any = None) -> Any:
        return self.doc.get(keys, default)

    def plain(self, keys: KeyPath, default: Any = None) -> Any:
        from taltasks.yamlpos import to_plain

        return to_plain(self.get(keys, default))

    def string(self, keys: KeyPath, *, required: bool = False, what: str = "") -> str | None:
        value = self.get(keys)
        if value is None or value == "":
            if required:
                self.err(keys, f"`{keys[-1]}` is required" + (f" ({what})" if what else ""))
            return None
        if isinstance(value, dict | list):
            self.err(keys, f"`{keys[-1]}` must be a single value")
            return None
        return str(value)

    def string_list(self, keys: KeyPath) -> list[str]:
        value = self.get(keys)
        if value is None:
            return []
        if not isinstance(value, list) or any(isinstance(v, dict | list) for v in value):
            self.err(keys, f"`{keys[-1]}` must be a list of strings")
            return []
        return [str(v) for v in value]

    def boolean(self, keys: KeyPath) -> bool:
        value = self.get(keys)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.err(keys, f"`{keys[-1]}` must be true or false")
            return False
        return value

    def mapping(self, keys: KeyPath) -> dict[str, Any]:
        value = self.get(keys)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(keys, f"`{keys[-1]}` must be a mapping")
            return {}
        return self.plain(keys)

    # ---- the whole file -------------------------------------------------------------------

    def build(self) -> Cluster:
        data = self.doc.data
        if not isinstance(data, dict):
            raise self.doc.error((), "talconfig.yaml must be a mapping with clusterName, endpoint, nodes, …")
        self.check_keys(data, (), TOP_KEYS, "talconfig.yaml")

        name = self.string(("clusterName",), required=True) or ""
        endpoint = self.string(("endpoint",), required=True) or ""
        if endpoint:
            problem = endpoint_problem(endpoint, require_https=True)
            if problem:
                self.err(("endpoint",), problem, hint="like https://192.0.2.10:6443")
        talos = self.version(("talosVersion",), "Talos", required=True)
        if talos and talos.minor_key not in SUPPORTED_CONTRACTS:
            self.err(
                ("talosVersion",),
                f"Talos {talos} is not a version contract taltasks generates ({supported_contracts_text()})",
            )
        k8s = self.version(("kubernetesVersion",), "Kubernetes")
        k8s_default = k8s is None and self.get(("kubernetesVersion",)) in (None, "")
        if k8s_default and talos and talos.minor_key in DEFAULT_KUBERNETES:
            k8s = Version.parse(DEFAULT_KUBERNETES[talos.minor_key])
            self.warn(
                ("talosVersion",),
                f"kubernetesVersion is not set: using v{k8s.bare}, the default of Talos "
                f"{talos.major}.{talos.minor} (talhelper ≥ 3.1.11 requires the field; pin it so that "
                "a taltasks update never changes your Kubernetes version)",
            )
        if talos and k8s and talos.minor_key in SUPPORTED_CONTRACTS and not kubernetes_supported(talos, k8s):
            self.err(
                ("kubernetesVersion",),
                f"Kubernetes {k8s} is not supported by Talos {talos} (supported: {support_range(talos)})",
                hint="see the Talos support matrix; upgrade Talos first or pick a supported Kubernetes",
            )
        domain = self.string(("domain",)) or "cluster.local"
        if self.get(("domain",)) is not None and dns_name_problem(domain):
            self.err(("domain",), dns_name_problem(domain) or "")
        allow = self.boolean(("allowSchedulingOnControlPlanes",)) or self.boolean(
            ("allowSchedulingOnMasters",)
        )
        pods = self.cidrs(("clusterPodNets",))
        services = self.cidrs(("clusterSvcNets",))
        cni = self.cni(("cniConfig",))
        factory = self.mapping(("imageFactory",))
        self.check_keys(self.get(("imageFactory",)), ("imageFactory",), IMAGE_FACTORY_KEYS, "imageFactory")
        registry = str(factory.get("registryURL") or schematics.FACTORY)
        installer_tmpl = factory.get("installerURLTmpl")
        if installer_tmpl is not None and not isinstance(installer_tmpl, str):
            self.err(("imageFactory", "installerURLTmpl"), "`installerURLTmpl` must be a template string")
            installer_tmpl = None
        self.factory = (registry, installer_tmpl)
        manifests = inline_manifests(self, ("inlineManifests",))
        for group in ("controlPlane", "worker"):
            if self.get((group,)) is not None:
                if not isinstance(self.get((group,)), dict):
                    self.err((group,), f"`{group}` must be a mapping of node settings")
                self.check_keys(self.get((group,)), (group,), NODE_CONFIG_KEYS, f"the {group} group")
        global_patches = self.patches(("patches",), "global")

        nodes_raw = self.get(("nodes",))
        nodes: list[Node] = []
        if not isinstance(nodes_raw, list) or not nodes_raw:
            self.err(("nodes",), "`nodes` is required: a list with at least one node")
        else:
            for i in range(len(nodes_raw)):
                node = self.node(i, talos, k8s, name)
                if node is not None:
                    nodes.append(node)
            self.duplicates(nodes_raw)
            if nodes and not any(n.control_plane for n in nodes):
                self.err(
                    ("nodes",), "the cluster has no control-plane node (set `controlPlane: true` on one)"
                )
        nodes = self.node_patch_dirs(nodes)
        if self.problems:
            raise DefinitionError(self.problems)
        return Cluster(
            name=name,
            endpoint=endpoint,
            talos_version=str(talos),
            kubernetes_version=str(k8s),
            kubernetes_version_default=k8s_default,
            inline_manifests=tuple(manifests),
            warnings=tuple(self.warnings),
            env=dict(self.env),
            domain=domain,
            nodes=nodes,
            source_dir=self.talos_dir,
            allow_scheduling_on_control_planes=allow,
            additional_api_server_cert_sans=tuple(self.string_list(("additionalApiServerCertSans",))),
            additional_machine_cert_sans=tuple(self.string_list(("additionalMachineCertSans",))),
            pod_subnets=tuple(pods or ("10.244.0.0/16",)),
            service_subnets=tuple(services or ("10.96.0.0/12",)),
            cni_config=cni,
            patches=tuple(global_patches),
            where=self.doc.where(()),
        )

    # ---- fields -----------------------------------------------------------------------------

    def version(self, keys: KeyPath, what: str, *, required: bool = False) -> Version | None:
        text = self.string(keys, required=required)
        if text is None:
            return None
        try:
            return Version.parse(text)
        except ValueError:
            self.err(keys, f"{what} version {text!r} is not a version like v1.11.5")
            return None

    def cidrs(self, keys: KeyPath) -> list[str]:
        values = self.string_list(keys)
        for i, v in enumerate(values):
            problem = cidr_problem(v)
            if problem:
                self.err((*keys, i), problem)
        return values

    def cni(self, keys: KeyPath) -> dict[str, Any] | None:
        value = self.mapping(keys)
        if not value:
            return None
        self.check_keys(self.get(keys), keys, CNI_KEYS, "cniConfig")
        name = value.get("name")
        if name not in ("flannel", "custom", "none"):
            self.err((*keys, "name"), f"CNI name {name!r} is not one of flannel, custom, none")
        if value.get("urls") and name != "custom":
            self.err((*keys, "urls"), "CNI urls are only used with name: custom")
        return value

    def duplicates(self, nodes_raw: list[Any]) -> None:
        seen_names: dict[str, int] = {}
        seen_ips: dict[str, int] = {}
        for i, raw in enumerate(nodes_raw):
            if not isinstance(raw, dict):
                continue
            hostname = raw.get("hostname")
            if hostname:
                if hostname in seen_names:
                    self.err(
                        ("nodes", i, "hostname"),
                        f"duplicate hostname {hostname!r} (also at {self.doc.where(('nodes', seen_names[hostname], 'hostname'))})",
                    )
                else:
                    seen_names[hostname] = i
            for ip in str(raw.get("ipAddress") or "").split(","):
                ip = ip.strip()
                if not ip:
                    continue
                if ip in seen_ips and seen_ips[ip] != i:
                    self.err(
                        ("nodes", i, "ipAddress"),
                        f"duplicate IP address {ip} (also at {self.doc.where(('nodes', seen_ips[ip], 'ipAddress'))})",
                    )
                else:
                    seen_ips.setdefault(ip, i)

    def node(self, i: int, talos: Version | None, k8s: Version | None, cluster_name: str) -> Node | None:
        keys: tuple[str | int, ...] = ("nodes", i)
        raw = self.get(keys)
        if not isinstance(raw, dict):
            self.err(keys, "each node must be a mapping with hostname, ipAddress, …")
            return None
        self.check_keys(raw, keys, NODE_ONLY_KEYS | NODE_CONFIG_KEYS, "a node")
        hostname = self.string((*keys, "hostname"), required=True) or f"nodes[{i}]"
        if self.get((*keys, "hostname")) and dns_name_problem(hostname):
            self.err((*keys, "hostname"), f"hostname {dns_name_problem(hostname)}")
        ips: list[str] = []
        ip_text = self.string((*keys, "ipAddress"), required=True, what=f"node {hostname}")
        for ip in (ip_text or "").split(","):
            ip = ip.strip()
            problem = ip_problem(ip) if ip else "empty address in the list"
            if problem:
                self.err((*keys, "ipAddress"), f"node {hostname}: {problem}")
            else:
                ips.append(ip)
        control_plane = self.boolean((*keys, "controlPlane"))
        group = ("controlPlane",) if control_plane else ("worker",)

        origins: dict[str, str] = {}

        def pick(key: str) -> tuple[Any, tuple[str | int, ...]]:
            """talhelper's group merge: the node's value unless zero, else the group's."""
            value = raw.get(key)
            if value not in (None, "", [], {}, False):
                origins[key] = self.doc.where((*keys, key))
                return value, (*keys, key)
            group_value = self.get((*group, key)) if isinstance(self.get(group), dict) else None
            if group_value is not None:
                origins[key] = self.doc.where((*group, key))
            return group_value, (*group, key)

        # install disk
        for key in ("installDisk", "installDiskSelector", "certSANs"):
            if key in raw:
                origins[key] = self.doc.where((*keys, key))
        disk = self.string((*keys, "installDisk"))
        selector = self.mapping((*keys, "installDiskSelector")) or None
        if selector is not None:
            self.check_keys(
                self.get((*keys, "installDiskSelector")),
                (*keys, "installDiskSelector"),
                DISK_SELECTOR_KEYS,
                "installDiskSelector",
            )
        if not disk and not selector:
            self.err(
                keys,
                f"node {hostname} has no install disk",
                hint="set `installDisk: /dev/sda` (or an `installDiskSelector`) on the node",
            )
        elif disk and selector:
            self.warn(
                (*keys, "installDiskSelector"),
                f"node {hostname}: installDisk is set, so Talos installs to {disk} and ignores installDiskSelector",
            )

        # versions
        node_talos = talos
        pinned = self.get((*keys, "talosVersion")) is not None
        if pinned:
            node_talos = self.version((*keys, "talosVersion"), "Talos")
            if node_talos and node_talos.minor_key not in SUPPORTED_CONTRACTS:
                self.err(
                    (*keys, "talosVersion"),
                    f"Talos {node_talos} is not a version contract taltasks generates "
                    f"({supported_contracts_text()})",
                )
            elif node_talos and k8s and not kubernetes_supported(node_talos, k8s):
                self.err(
                    (*keys, "talosVersion"),
                    f"node {hostname} pins Talos {node_talos}, which does not support Kubernetes {k8s} "
                    f"(supported: {support_range(node_talos)})",
                )

        labels, label_templates = self.templated_map(*pick("nodeLabels"), check="label")
        annotations, annotation_templates = self.templated_map(*pick("nodeAnnotations"), check="annotation")
        taints = self.string_map(*pick("nodeTaints"), check="taint")
        nameservers_v, ns_keys = pick("nameservers")
        nameservers = self.string_list(ns_keys) if nameservers_v is not None else []
        for j, ns in enumerate(nameservers):
            if ip_problem(ns):
                self.err((*ns_keys, j), f"nameserver {ip_problem(ns)}")
        interfaces_v, if_keys = pick("networkInterfaces")
        interfaces = self.interfaces(interfaces_v, if_keys)
        modules_v, mod_keys = pick("kernelModules")
        modules = self.plain(mod_keys) if modules_v is not None else []
        if not isinstance(modules, list) or any(
            not isinstance(m, dict) or not m.get("name") for m in modules
        ):
            self.err(mod_keys, "`kernelModules` must be a list of {name: ...} entries")
            modules = []
        spec_v, spec_keys = pick("machineSpec")
        spec = self.machine_spec(spec_v, spec_keys)
        schematic_v, sch_keys = pick("schematic")
        schematic = None
        if schematic_v is not None:
            schematic = self.plain(sch_keys)
            for path, message in schematics.schematic_problems(schematic):
                self.err((*sch_keys, *path), f"node {hostname}: {message}")
        image_url_v, url_keys = pick("talosImageURL")
        if image_url_v and node_talos:
            problem = schematics.stock_installer_problem(str(image_url_v), str(node_talos))
            if problem:
                self.err(
                    url_keys,
                    f"node {hostname}: {problem}",
                    hint="remove talosImageURL (the Factory installer of the node's schematic is used) "
                    "or point it at your own installer repository",
                )
        if image_url_v and (":" in str(image_url_v).rsplit("/", 1)[-1] or "@" in str(image_url_v)):
            self.err(
                url_keys,
                "talosImageURL should not contain a version or digest (the node's Talos version is appended)",
            )
        sans = self.string_list((*keys, "certSANs"))
        if not raw.get("overrideMachineCertSANs") and isinstance(self.get(group), dict):
            sans += [s for s in self.string_list((*group, "certSANs")) if s not in sans]
        patches: list[PatchRef] = []
        if not raw.get("overridePatches") and isinstance(self.get(group), dict):
            patches += self.patches((*group, "patches"), group[0])
        patches += self.patches((*keys, "patches"), "node")
        extra_manifests = self.extra_manifests((*keys, "extraManifests"))
        if not raw.get("overrideExtraManifests") and isinstance(self.get(group), dict):
            extra_manifests += self.extra_manifests((*group, "extraManifests"))
        disks_v, disks_keys = pick("machineDisks")
        files_v, files_keys = pick("machineFiles")
        firewall_v, firewall_keys = pick("ingressFirewall")
        services_v, services_keys = pick("extensionServices")
        volumes_v, volumes_keys = pick("volumes")
        user_volumes_v, user_volumes_keys = pick("userVolumes")
        role = "controlplane" if control_plane else "worker"
        filename = pick("filenameTmpl")
        output_file = self.output_file(filename, cluster_name, hostname, ip_text or "", role)
        owner = self._outputs.setdefault(output_file, hostname)
        if owner != hostname:  # (a hostname given twice is reported as such)
            self.err(
                filename[1] if filename[0] else keys,
                f"node {hostname}: its config file {output_file} is node {owner}'s too, "
                "so one would overwrite the other",
                hint="make filenameTmpl name each node, e.g. with {{ .Hostname }}",
            )

        version_text = str(node_talos) if node_talos else "v0.0.0"
        sid = schematics.schematic_id(schematic) if schematic is not None else None
        image = self.installer_image(version_text, schematic, image_url_v, spec)
        return Node(
            hostname=hostname,
            ip=ips[0] if ips else "",
            ips=tuple(ips),
            control_plane=control_plane,
            talos_version=version_text,
            talos_version_pinned=pinned,
            installer_image=image,
            schematic_id=sid,
            schematic=schematic,
            labels=labels,
            taints=taints,
            annotations=annotations,
            install_disk=disk,
            install_disk_selector=selector,
            nameservers=tuple(nameservers),
            network_interfaces=tuple(interfaces),
            kernel_modules=tuple(modules),
            cert_sans=tuple(sans),
            machine_spec=spec,
            ignore_hostname=self.boolean((*keys, "ignoreHostname")),
            disable_search_domain=bool(pick("disableSearchDomain")[0]),
            patches=tuple(patches),
            where=self.doc.where(keys),
            label_templates=tuple(label_templates),
            annotation_templates=tuple(annotation_templates),
            machine_disks=tuple(self.machine_disks(disks_keys) if disks_v is not None else ()),
            machine_files=tuple(self.machine_files(files_keys) if files_v is not None else ()),
            extra_manifests=tuple(extra_manifests),
            ingress_firewall=self.ingress_firewall(firewall_keys) if firewall_v is not None else None,
            extension_services=tuple(
                self.extension_services(services_keys) if services_v is not None else ()
            ),
            volumes=tuple(self.volumes(volumes_keys, user=False) if volumes_v is not None else ()),
            user_volumes=tuple(
                self.volumes(user_volumes_keys, user=True) if user_volumes_v is not None else ()
            ),
            output_file=output_file,
            origins={
                **origins,
                **self.item_lines(
                    (if_keys, "networkInterfaces"),
                    (firewall_keys, "ingressFirewall"),
                    (services_keys, "extensionServices"),
                    (volumes_keys, "volumes"),
                    (user_volumes_keys, "userVolumes"),
                ),
            },
        )

    def item_lines(self, *fields: tuple[KeyPath, str]) -> dict[str, str]:
        """``name`` / ``name[i]`` → talconfig.yaml:line, for errors in generated documents."""
        out: dict[str, str] = {}
        for keys, name in fields:
            value = self.get(keys)
            if value is None:
                continue
            out[name] = self.doc.where(keys)
            if isinstance(value, list):
                for i in range(len(value)):
                    out[f"{name}[{i}]"] = self.doc.where((*keys, i))
        return out

    def output_file(
        self, picked: tuple[Any, KeyPath], cluster: str, hostname: str, ip: str, role: str
    ) -> str:
        """The node's file name under clusterconfig/: talhelper's ``filenameTmpl`` rendered
        with ClusterName, Hostname, IPAddress and Role."""
        value, keys = picked
        template = str(value) if value else DEFAULT_FILENAME_TMPL
        data = {"ClusterName": cluster, "Hostname": hostname, "IPAddress": ip, "Role": role}
        name = self.render_template(template, data, keys)
        if name is None:
            return f"{cluster}-{hostname}.yaml"
        if not name or "/" in name or name in (".", "..", "talosconfig"):
            self.err(keys, f"filenameTmpl gives {name!r}, which is not a file name in clusterconfig/")
            return f"{cluster}-{hostname}.yaml"
        return name

    def render_template(self, template: str, data: dict[str, Any], keys: KeyPath) -> str | None:
        """``template`` (written at ``keys``) rendered with ``data``; None after recording a
        template error at its line."""
        from taltasks.machineconfig.templating import TemplateError, render

        try:
            return render(
                template, data, where=str(self.doc.path), line_offset=(self.doc.line_of(keys) or 1) - 1
            )
        except TemplateError as exc:
            self.problems.append(exc)
            return None

    def installer_image(self, version: str, schematic: Any, image_url: Any, spec: MachineSpec) -> str:
        """talosImageURL wins; else the image factory's installer (its ``installerURLTmpl``
        when the repository sets one)."""
        registry, template = self.factory
        if template and not image_url and (schematic is not None or spec.secureboot):
            data = {
                "RegistryURL": registry,
                "ID": schematics.schematic_id(schematic) if schematic is not None else schematics.VANILLA_ID,
                "Version": version,
                "Mode": spec.mode,
                "Secureboot": spec.secureboot,
            }
            image = self.render_template(template, data, ("imageFactory", "installerURLTmpl"))
            if image is not None:
                return image
        return schematics.installer_image(
            version,
            schematic=schematic,
            image_url=str(image_url) if image_url else None,
            platform=spec.mode,
            secureboot=spec.secureboot,
            registry=registry,
        )

    def templated_map(
        self, value: Any, keys: KeyPath, *, check: str
    ) -> tuple[dict[str, str], list[TemplatedValue]]:
        """talhelper's split: values holding a Go template are rendered later against the
        node's config (and checked then); the others are checked now."""
        from taltasks.machineconfig.templating import is_template

        plain = self.string_map(value, keys, check=check, skip=is_template)
        templates = [
            TemplatedValue(str(k), str(v), self.doc.where((*keys, k)))
            for k, v in (value.items() if isinstance(value, dict) else ())
            if isinstance(v, str) and is_template(v)
        ]
        return plain, templates

    def string_map(self, value: Any, keys: KeyPath, *, check: str | None, skip: Any = None) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(keys, f"`{keys[-1]}` must be a mapping of key: value")
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, dict | list):
                self.err((*keys, k), f"`{keys[-1]}.{k}` must be a single value")
                continue
            text = "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
            problem = None
            if skip is not None and skip(text):
                continue  # the caller takes it (a template, checked once rendered)
            if check == "label":
                problem = label_key_problem(k) or label_value_problem(text)
            elif check == "annotation":
                problem = label_key_problem(k)
            elif check == "taint":
                problem = taint_problem(k, text)
            if problem:
                self.err((*keys, k), problem)
            out[str(k)] = text
        return out

    def interfaces(self, value: Any, keys: KeyPath) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(keys, "`networkInterfaces` must be a list")
            return []
        out = []
        for j, dev in enumerate(self.plain(keys)):
            if not isinstance(dev, dict):
                self.err((*keys, j), "each network interface must be a mapping")
                continue
            if bool(dev.get("interface")) == bool(dev.get("deviceSelector")):
                self.err((*keys, j), "set exactly one of `interface` or `deviceSelector`")
            for a, address in enumerate(dev.get("addresses") or []):
                # Talos takes an address with or without its prefix length (/32, /128 then)
                problem = cidr_problem(address, "192.168.1.10/24") and ip_problem(address)
                if problem:
                    self.err((*keys, j, "addresses", a), f"address {problem}")
            for r, route in enumerate(dev.get("routes") or []):
                net = (route or {}).get("network") if isinstance(route, dict) else None
                if net and cidr_problem(net, "0.0.0.0/0"):
                    self.err(
                        (*keys, j, "routes", r, "network"), f"route network {cidr_problem(net, '0.0.0.0/0')}"
                    )
            out.append(dev)
        return out

    def machine_spec(self, value: Any, keys: KeyPath) -> MachineSpec:
        if value is None:
            return MachineSpec()
        if not isinstance(value, dict):
            self.err(keys, "`machineSpec` must be a mapping")
            return MachineSpec()
        self.check_keys(value, keys, MACHINE_SPEC_KEYS, "machineSpec")
        method = str(value.get("bootMethod") or "iso")
        suffix = str(value.get("imageSuffix") or "")
        if method not in BOOT_METHODS:
            self.err((*keys, "bootMethod"), f"`bootMethod` should be one of {', '.join(BOOT_METHODS)}")
        elif suffix and method == "iso" and suffix != "iso":
            self.err((*keys, "imageSuffix"), "`imageSuffix` for iso (default) should be iso")
        elif suffix and method == "disk-image" and suffix not in DISK_IMAGE_SUFFIXES:
            self.err(
                (*keys, "imageSuffix"),
                f"`imageSuffix` for disk-image should be one of {', '.join(DISK_IMAGE_SUFFIXES)}",
            )
        elif suffix and method == "pxe":
            self.err((*keys, "imageSuffix"), '`imageSuffix` for pxe should be ""')
        return MachineSpec(
            mode=str(value.get("mode") or "metal"),
            arch=str(value.get("arch") or "amd64"),
            secureboot=bool(value.get("secureboot")),
            use_uki=bool(value.get("useUKI")),
            boot_method=method,
            image_suffix=suffix,
        )

    # ---- patches ----------------------------------------------------------------------------

    def patches(self, keys: KeyPath, scope: str) -> list[PatchRef]:
        value = self.get(keys)
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(keys, "`patches` must be a list of `@file` references or inline patches")
            return []
        refs: list[PatchRef] = []
        for j, item in enumerate(value):
            ref = self.patch((*keys, j), item, scope)
            if ref is not None:
                refs.append(ref)
        return refs

    def patch(self, keys: KeyPath, item: Any, scope: str) -> PatchRef | None:
        line = self.doc.line_of(keys) or 1
        if isinstance(item, dict | list):
            import yaml

            text = yaml.safe_dump(self.plain(keys), sort_keys=False)
            return PatchRef(str(self.doc.path), text, line_offset=line - 1, scope=scope)
        text = str(item)
        if text.startswith("@"):
            target = (self.talos_dir / text[1:]).resolve()
            ref = self.patch_file(target, keys, scope)
            return ref
        # inline content: for a block scalar the text starts on the next line
        source_line = (self.doc.text or "").splitlines()[line - 1] if self.doc.text else ""
        block = source_line.rstrip().endswith(("|", "|-", "|+", ">", ">-", ">+"))
        from taltasks.machineconfig.templating import is_template

        return PatchRef(
            str(self.doc.path),
            text,
            line_offset=line if block else line - 1,
            scope=scope,
            templated=is_template(text),
        )

    def patch_file(self, target: Path, keys: KeyPath | None, scope: str) -> PatchRef | None:
        if target in self._patch_cache:
            ref = self._patch_cache[target]
            return replace(ref, scope=scope) if ref else None
        display = self.display(target)
        if not target.is_file():
            if keys is not None:
                self.err(keys, f"patch file {display} does not exist")
            self._patch_cache[target] = None
            return None
        ref: PatchRef | None = None
        try:
            raw = self.read_repo_file(target, display)
        except InputError as exc:
            self.problems.append(exc)
            raw = ""
        if raw.strip():
            from taltasks.machineconfig.templating import is_template

            if is_template(raw):
                # talhelper renders the template first (per node), then substitutes ${VARS}
                ref = PatchRef(display, raw, 0, scope, templated=True, envsubst=True)
            else:
                try:
                    ref = PatchRef(display, substitute_file(raw, self.env, display), 0, scope)
                except InputError as exc:
                    self.problems.append(exc)
        self._patch_cache[target] = ref
        return ref

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.talos_dir.parent.resolve()))
        except ValueError:
            try:
                return str(path.relative_to(self.talos_dir.parent))
            except ValueError:
                return str(path)

    def node_patch_dirs(self, nodes: list[Node]) -> list[Node]:
        folder = self.talos_dir / NODE_PATCH_DIR
        if not folder.is_dir():
            return nodes
        by_name = {n.hostname: n for n in nodes}
        extra: dict[str, list[PatchRef]] = {}
        for entry in sorted(folder.iterdir()):
            name = entry.stem if entry.is_file() else entry.name
            if entry.is_file() and entry.suffix not in (".yaml", ".yml"):
                continue
            if name not in by_name:
                self.problems.append(
                    InputError(
                        f"patch for an unknown node {name!r}{did_you_mean(name, by_name)}",
                        where=self.display(entry.resolve()),
                        hint=f"known nodes: {', '.join(by_name) or 'none'}; rename or remove it",
                    )
                )
                continue
            files = (
                [entry]
                if entry.is_file()
                else sorted(p for p in entry.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            )
            for f in files:
                ref = self.patch_file(f.resolve(), None, "node-dir")
                if ref is not None:
                    extra.setdefault(name, []).append(ref)
        if not extra:
            return nodes

        return [replace(n, patches=n.patches + tuple(extra.get(n.hostname, ()))) for n in nodes]
