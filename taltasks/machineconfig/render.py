"""From the cluster definition to the bytes each node receives.

For every node, following talhelper's order (talos-config-gen.md §3.6) so that a repository
migrated from talhelper renders the same configs:

1. the base config of the node's role for its version contract (:mod:`.generate`), with the
   cluster-wide inputs (endpoint, versions, SANs, subnets, CNI, install image);
2. node overrides on the v1alpha1 document: install disk, labels/annotations/taints (which
   *replace* the default map, as talhelper does), extra cert SANs, kernel modules; up to
   contract 1.11 also hostname, nameservers and interfaces; schematic kernel args copied
   to ``install.extraKernelArgs`` only before 1.12 and without UKI;
3. from contract 1.12 the node's multi-doc settings as one strategic patch:
   ``HostnameConfig{hostname, auto: off}`` and a ``ResolverConfig`` for nameservers;
4. group patches, node patches, node patch-folder files, then global patches last;
5. validation as Talos loads and validates the config (:mod:`.validate`); every finding
   names the node and the file:line that wrote the value (provenance recorded while
   applying the steps above).

:class:`Renderer` caches what all nodes share (base documents per role and contract,
parsed and decoded patches, parsed extra manifests), which keeps 300 nodes fast.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from taltasks.errors import InputError
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.docmap import disk_selector_expression, lookup
from taltasks.machineconfig.encode import dump_documents
from taltasks.machineconfig.generate import CONTROL_PLANE_ROLE, GenInput, base_documents, unattended_install
from taltasks.machineconfig.keyorder import V1ALPHA1, canonical_order, insert_document, reorder
from taltasks.machineconfig.merge import doc_id
from taltasks.machineconfig.nodedocs import (
    node_patch,
    parse_extra_manifest,
    render_label_templates,
    rendered_patch_ref,
)
from taltasks.machineconfig.patches import Patch, apply_patch, parse_patch
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.machineconfig.talosconfig import build_talosconfig
from taltasks.machineconfig.validate import (
    Findings,
    FindingsError,
    InPatch,
    Mode,
    Origins,
    Written,
    checked_documents,
    checked_patch,
)
from taltasks.model.cluster import Cluster, Node, PatchRef
from taltasks.talos.config import TalosConfig


def cluster_gen_input(cluster: Cluster, contract: VersionContract, secrets: SecretsBundle) -> GenInput:
    return GenInput(
        cluster_name=cluster.name,
        endpoint=cluster.endpoint,
        contract=contract,
        secrets=secrets,
        kubernetes_version=cluster.kubernetes_version,
        machine_cert_sans=list(cluster.additional_machine_cert_sans),
        api_server_cert_sans=list(cluster.additional_api_server_cert_sans),
        dns_domain=cluster.domain,
        pod_subnets=list(cluster.pod_subnets),
        service_subnets=list(cluster.service_subnets),
        allow_scheduling_on_control_planes=cluster.allow_scheduling_on_control_planes,
        cni=cluster.cni_config,
    )


@dataclass
class Renderer:
    """Renders many nodes of one cluster with one secrets bundle, sharing work."""

    cluster: Cluster
    secrets: SecretsBundle
    mode: Mode = "metal"
    validate: bool = True
    _bases: dict[tuple[str, VersionContract], list[dict[str, Any]]] = field(default_factory=dict)
    _patches: dict[PatchRef, Patch | None] = field(default_factory=dict)
    _decoded: dict[tuple[PatchRef, VersionContract], Patch | None] = field(default_factory=dict)
    _manifests: dict[PatchRef, Patch | None] = field(default_factory=dict)
    _elsewhere: dict[tuple[str, VersionContract], frozenset[tuple[str, str, str]]] = field(
        default_factory=dict
    )
    findings: Findings = field(default_factory=Findings)  # warnings of every node rendered so far

    def base(self, role: str, contract: VersionContract) -> list[dict[str, Any]]:
        key = (role, contract)
        if key not in self._bases:
            inp = cluster_gen_input(self.cluster, contract, self.secrets)
            self._bases[key] = base_documents(inp, role)  # type: ignore[arg-type]
        return copy.deepcopy(self._bases[key])

    def other_role_documents(self, role: str, contract: VersionContract) -> frozenset[tuple[str, str, str]]:
        """Identities of the documents only the other role's base config holds (from 1.14 the
        control planes hold Kubernetes documents workers do not)."""
        key = (role, contract)
        if key not in self._elsewhere:
            other = "worker" if role == "controlplane" else "controlplane"
            mine = {doc_id(d) for d in self.base(role, contract)}
            self._elsewhere[key] = frozenset(doc_id(d) for d in self.base(other, contract)) - mine
        return self._elsewhere[key]

    def patch(self, ref: PatchRef, contract: VersionContract) -> Patch | None:
        """The patch parsed once, then decoded once per contract as Talos loads a patch
        (its values coerced; a wrong key or type refuses at the patch's own line)."""
        if ref not in self._patches:
            self._patches[ref] = parse_patch(ref.text, ref.source, line_offset=ref.line_offset)
        key = (ref, contract)
        if key not in self._decoded:
            parsed = self._patches[ref]
            if parsed is not None and self.validate:
                parsed = checked_patch(parsed, contract)
            self._decoded[key] = parsed
        return self._decoded[key]

    def manifest(self, rendered: PatchRef) -> Patch | None:
        """An ``extraManifests`` file as rendered for a node, parsed once for all the nodes
        it renders the same for (a group's manifest: every node of the group)."""
        if rendered not in self._manifests:
            self._manifests[rendered] = parse_extra_manifest(rendered)
        return self._manifests[rendered]

    # ---- one node -----------------------------------------------------------------------

    def documents(self, node: Node) -> list[dict[str, Any]]:
        """The node's config documents (validated)."""
        origins = Origins(default=node.where or None) if self.validate else None
        try:
            contract = VersionContract.parse(node.talos_version, where=node.where)
            docs = self.base(node.role, contract)
            _node_overrides(docs, node, contract)
            if origins is not None:
                _record_node_fields(origins, docs, node)
            if self.cluster.inline_manifests:
                docs[0]["cluster"]["inlineManifests"] = [dict(m) for m in self.cluster.inline_manifests]
            env = self.cluster.env
            render_label_templates(docs, node, env)
            extra = node_patch(node, contract)
            if extra is not None:
                docs = apply_patch(docs, extra, node=node.hostname, origins=origins)
            # talhelper renders every template of a patch list against the config as it
            # stands before that list: node patches, then global patches
            for refs in (node.patches, self.cluster.patches):
                for ref in [rendered_patch_ref(ref, docs, env) for ref in refs]:
                    parsed = self.patch(ref, contract)
                    if parsed is not None:
                        docs = apply_patch(
                            docs,
                            parsed,
                            node=node.hostname,
                            origins=origins,
                            elsewhere=self.other_role_documents(node.role, contract),
                        )
            for ref in node.extra_manifests:  # rendered against the config, appended whole
                manifest = self.manifest(rendered_patch_ref(ref, docs, env))
                for i, doc in enumerate(manifest.documents if manifest else ()):
                    docs.append(copy.deepcopy(doc))
                    if origins is not None and manifest is not None:
                        origins.record(doc_id(doc), (), InPatch(manifest, manifest.raw_index(i), ()))
            canonical_order(docs)
        except FindingsError:
            raise  # located and complete already (a patch's own problems are not the node's)
        except InputError as exc:
            if node.hostname in exc.message:
                raise
            raise InputError(f"node {node.hostname}: {exc.message}", where=exc.where, hint=exc.hint) from None
        if self.validate:
            self.check(node, docs, contract, origins)
        return docs

    def check(
        self,
        node: Node,
        docs: list[dict[str, Any]],
        contract: VersionContract,
        origins: Origins | None = None,
    ) -> None:
        """Validate the node's documents; errors raise :class:`FindingsError`, warnings are kept."""
        title = f"the generated config is not valid for Talos {contract}"
        warnings = checked_documents(
            docs, contract, title=title, mode=self.mode, node=node.hostname, origins=origins
        )
        self.findings.extend(warnings)

    def render(self, node: Node) -> bytes:
        return dump_documents(self.documents(node))

    def talosconfig(self, previous: TalosConfig | None = None) -> TalosConfig:
        return build_talosconfig(
            self.cluster.name,
            self.secrets,
            endpoints=[n.ip for n in self.cluster.control_planes],
            nodes=[n.ip for n in self.cluster.nodes],
            previous=previous,
        )


def _node_overrides(docs: list[dict[str, Any]], node: Node, contract: VersionContract) -> None:
    machine = docs[0]["machine"]
    _install_overrides(docs, node, contract)
    if node.cert_sans:
        machine["certSANs"] = list(machine.get("certSANs") or []) + [
            s for s in node.cert_sans if s not in (machine.get("certSANs") or [])
        ]
    if not contract.multi_document:
        network = machine.setdefault("network", {})
        if not node.ignore_hostname:
            network["hostname"] = node.hostname
        if node.nameservers:
            network["nameservers"] = list(node.nameservers)
        if node.disable_search_domain:
            network["disableSearchDomain"] = True
    if node.network_interfaces and not contract.multi_document:
        # from 1.12 they are network documents (nodedocs.node_patch), as talhelper 3.1+ writes
        machine.setdefault("network", {})["interfaces"] = copy.deepcopy(list(node.network_interfaces))
    if node.machine_disks:
        machine["disks"] = copy.deepcopy(list(node.machine_disks))
    if node.machine_files:
        machine["files"] = copy.deepcopy(list(node.machine_files))
    if node.kernel_modules and contract.multidoc_kernel_module_config:
        for module in node.kernel_modules:  # one KernelModuleConfig per module (1.14)
            doc = {"apiVersion": "v1alpha1", "kind": "KernelModuleConfig", "name": str(module["name"])}
            if module.get("parameters"):
                doc["parameters"] = list(module["parameters"])
            insert_document(docs, doc)
    elif node.kernel_modules:
        machine.setdefault("kernel", {})["modules"] = copy.deepcopy(list(node.kernel_modules))
    if contract.multidoc_kubernetes_config:
        _kube_node_overrides(docs, node)
    else:
        for key, value in (
            ("nodeLabels", node.labels),
            ("nodeAnnotations", node.annotations),
            ("nodeTaints", node.taints),
        ):
            if value:
                machine[key] = dict(value)  # replaces the whole map, as talhelper does
    reorder(machine, V1ALPHA1[("machine",)])


def _install_overrides(docs: list[dict[str, Any]], node: Node, contract: VersionContract) -> None:
    """Install disk, selector and image. From contract 1.14 both become an
    UnattendedInstallConfig, as upstream's generator writes one: an install disk as
    ``disk.dev_path == "…"``, a disk selector as the CEL expression Talos 1.14 evaluates for
    the legacy selector (:func:`~taltasks.machineconfig.docmap.disk_selector_expression`)."""
    machine = docs[0]["machine"]
    if contract.unattended_install_config and node.install_disk:
        insert_document(docs, unattended_install(node.install_disk, node.installer_image))
        return
    if contract.unattended_install_config and node.install_disk_selector:
        try:
            match = disk_selector_expression(node.install_disk_selector)
        except ValueError as exc:
            raise InputError(
                f"node {node.hostname}: installDiskSelector: {exc}",
                where=node.where or None,
                hint="select the disk by model, serial, size, type, wwid, uuid or busPath, or set installDisk",
            ) from None
        insert_document(docs, unattended_install(None, node.installer_image, selector=match))
        return
    install = machine.setdefault("install", {})
    if node.install_disk_selector:  # talhelper writes both when both are set (the disk wins)
        _put_first(install, "diskSelector", copy.deepcopy(node.install_disk_selector))
    if node.install_disk:
        _put_first(install, "disk", node.install_disk)
    if node.installer_image:
        install["image"] = node.installer_image
    kargs = ((node.schematic or {}).get("customization") or {}).get("extraKernelArgs") or []
    if kargs and not node.machine_spec.use_uki and not contract.multi_document:
        install["extraKernelArgs"] = list(install.get("extraKernelArgs") or []) + list(kargs)
    if contract.unattended_install_config:
        install.setdefault("wipe", False)
    reorder(install, V1ALPHA1[("machine", "install")])


def _kube_node_overrides(docs: list[dict[str, Any]], node: Node) -> None:
    """Labels, annotations and taints into KubeNodeConfig (contract 1.14).

    talhelper's node labels replace the generated label map; before 1.14 that map held only
    the exclude-from-external-load-balancers label, while Talos added the control-plane role
    label and NoSchedule taint itself. From 1.14 those two are written in KubeNodeConfig, so
    they are kept: the node ends up with the same labels and taints as on 1.13."""
    kube_node = next(d for d in docs if d.get("kind") == "KubeNodeConfig")
    if node.labels:
        kept = {CONTROL_PLANE_ROLE: ""} if node.control_plane else {}
        kube_node["labels"] = {**kept, **node.labels}
    if node.annotations:
        kube_node["annotations"] = dict(node.annotations)
    if node.taints:
        kube_node["taints"] = {**(kube_node.get("taints") or {}), **node.taints}


# talconfig field -> the (document kind, keys) it sets; "" is the v1alpha1 document
# (provenance: findings about those keys name the talconfig line the field was read from;
# keys a contract does not write are skipped)
NODE_FIELD_PATHS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "installDisk": (("", ("machine", "install", "disk")), ("UnattendedInstallConfig", ())),
    "installDiskSelector": (("", ("machine", "install", "diskSelector")),),
    "talosImageURL": (("", ("machine", "install", "image")),),
    "schematic": (("", ("machine", "install", "image")), ("", ("machine", "install", "extraKernelArgs"))),
    "certSANs": (("", ("machine", "certSANs")),),
    "nameservers": (("", ("machine", "network", "nameservers")),),
    "disableSearchDomain": (("", ("machine", "network", "disableSearchDomain")),),
    "networkInterfaces": (("", ("machine", "network", "interfaces")),),
    "kernelModules": (("", ("machine", "kernel", "modules")),),
    "nodeLabels": (("", ("machine", "nodeLabels")), ("KubeNodeConfig", ("labels",))),
    "nodeAnnotations": (("", ("machine", "nodeAnnotations")), ("KubeNodeConfig", ("annotations",))),
    "nodeTaints": (("", ("machine", "nodeTaints")), ("KubeNodeConfig", ("taints",))),
}


def _record_node_fields(origins: Origins, docs: list[dict[str, Any]], node: Node) -> None:
    by_kind = {str(d.get("kind") or ""): d for d in docs}
    for name, places in NODE_FIELD_PATHS.items():
        where = node.origins.get(name)
        if not where:
            continue
        for kind, path in places:
            doc = by_kind.get(kind)
            if doc is not None and lookup(doc, path) is not None:
                origins.record(doc_id(doc), path, Written(where, derived=True))


def _put_first(mapping: dict[str, Any], key: str, value: Any) -> None:
    rest = {k: v for k, v in mapping.items() if k != key}
    mapping.clear()
    mapping[key] = value
    mapping.update(rest)


# ---- the public one-shot API ---------------------------------------------------------------------


def render_node_config(cluster: Cluster, node: Node, secrets: SecretsBundle) -> bytes:
    """The node's machine config (multi-document YAML) exactly as ``configure`` writes it."""
    return Renderer(cluster, secrets).render(node)


def render_talosconfig(
    cluster: Cluster, secrets: SecretsBundle, *, previous: TalosConfig | None = None
) -> TalosConfig:
    """A talosconfig for the cluster: endpoints = control-plane IPs, nodes = all IPs."""
    return Renderer(cluster, secrets).talosconfig(previous)
