"""The documents talhelper adds to a node's config, and its Go templates.

talhelper builds one strategic patch of extra documents per node and applies it before the
repository's patches (``AddMultiDocs``): on contract 1.12+ a ``ResolverConfig`` (nameservers,
search domain) and the ``HostnameConfig``; then ``NetworkDefaultActionConfig`` +
``NetworkRuleConfig`` (``ingressFirewall``), ``ExtensionServiceConfig``
(``extensionServices``), ``VolumeConfig`` (``volumes``), ``UserVolumeConfig``
(``userVolumes``); and on 1.12+ the network documents of ``networkInterfaces``
(:mod:`.networkdocs`). :func:`node_patch` builds that patch with each document's talconfig
line, so a problem in it is reported where it was written.

Templates: node labels/annotations holding ``{{ … }}`` are rendered against the v1alpha1
config once the node's overrides and installer are in (:func:`render_label_templates`);
templated patches and ``extraManifests`` are rendered against the config as it stands
when they are applied (:func:`rendered_patch_ref`, :func:`parse_extra_manifest`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from taltasks.errors import InputError
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.networkdocs import NetworkDocError, network_documents
from taltasks.machineconfig.patches import Patch
from taltasks.model.cluster import Node, PatchRef

API = "v1alpha1"


def _split(where: str) -> tuple[str, int | None]:
    m = re.match(r"^(.*):(\d+)$", where or "")
    return (m[1], int(m[2])) if m else (where, None)


def node_patch(node: Node, contract: VersionContract) -> Patch | None:
    """talhelper's extra documents for ``node`` as one strategic patch (None when empty)."""
    source, node_line = _split(node.where)
    docs: list[tuple[dict[str, Any], str]] = []  # (document, node.origins key for its line)
    if contract.multi_document:
        if node.nameservers or node.disable_search_domain:
            resolver: dict[str, Any] = {"apiVersion": API, "kind": "ResolverConfig"}
            if node.nameservers:
                resolver["nameservers"] = [{"address": ns} for ns in node.nameservers]
            if node.disable_search_domain:
                resolver["searchDomains"] = {"disableDefault": True}
            docs.append((resolver, ""))
        if node.ignore_hostname:
            docs.append(({"apiVersion": API, "kind": "HostnameConfig", "auto": "stable"}, ""))
        else:
            hostname = {"apiVersion": API, "kind": "HostnameConfig", "hostname": node.hostname, "auto": "off"}
            docs.append((hostname, ""))
    if node.ingress_firewall is not None:
        fw = node.ingress_firewall
        docs.append(
            (
                {"apiVersion": API, "kind": "NetworkDefaultActionConfig", "ingress": fw["defaultAction"]},
                "ingressFirewall",
            )
        )
        for rule in fw.get("rules") or []:
            doc = {"apiVersion": API, "kind": "NetworkRuleConfig", "name": rule.get("name")}
            doc.update({k: rule[k] for k in ("portSelector", "ingress") if k in rule})
            docs.append((doc, "ingressFirewall"))
    for i, svc in enumerate(node.extension_services):
        doc = {"apiVersion": API, "kind": "ExtensionServiceConfig", "name": svc.get("name")}
        doc.update({k: svc[k] for k in ("configFiles", "environment") if svc.get(k)})
        docs.append((doc, f"extensionServices[{i}]"))
    for i, vol in enumerate(node.volumes):
        doc = {"apiVersion": API, "kind": "VolumeConfig", "name": vol.get("name")}
        doc.update({k: vol[k] for k in ("provisioning", "encryption") if vol.get(k)})
        docs.append((doc, f"volumes[{i}]"))
    for i, vol in enumerate(node.user_volumes):
        doc = {"apiVersion": API, "kind": "UserVolumeConfig", "name": vol.get("name")}
        doc.update(
            {k: vol[k] for k in ("volumeType", "provisioning", "filesystem", "encryption") if vol.get(k)}
        )
        docs.append((doc, f"userVolumes[{i}]"))
    if contract.multi_document and node.network_interfaces:
        try:
            for index, doc in network_documents([dict(d) for d in node.network_interfaces]):
                docs.append((doc, f"networkInterfaces[{index}]"))
        except NetworkDocError as exc:
            where = node.origins.get(f"networkInterfaces[{exc.index}]", node.where)
            raise InputError(
                f"node {node.hostname}: networkInterfaces: {exc.message}", where=where, hint=exc.hint
            ) from None
    if not docs:
        return None
    patch = Patch(source=source)
    for i, (doc, key) in enumerate(docs):
        patch.documents.append(doc)
        patch.doc_indexes.append(i)
        _, line = _split(node.origins.get(key, "")) if key else (None, None)
        if line is None:
            line = node_line
        if line is not None:
            patch.lines[(i, ())] = line
    patch.first_line = node_line
    return patch


_DEV_PATH = re.compile(r'^disk\.dev_path == "([^"]+)"$')


def template_data(docs: list[dict[str, Any]]) -> Any:
    """talhelper's template data: the v1alpha1 Config as Go structs.

    From contract 1.14 some settings moved out of the v1alpha1 document; a template written
    against the older layout (``.MachineConfig.MachineInstall.InstallImage``,
    ``.MachineConfig.MachineNodeLabels``) still finds them, read back from the
    UnattendedInstallConfig and KubeNodeConfig documents."""
    import copy

    from taltasks.machineconfig.templating import config_value

    v1 = copy.deepcopy(docs[0])
    machine = v1.setdefault("machine", {})
    by_kind = {d.get("kind"): d for d in docs[1:]}
    install = by_kind.get("UnattendedInstallConfig")
    if install is not None and not machine.get("install"):
        view: dict[str, Any] = {}
        m = _DEV_PATH.match(
            str(((install.get("provisioning") or {}).get("diskSelector") or {}).get("match", ""))
        )
        if m:
            view["disk"] = m[1]
        if (install.get("installer") or {}).get("image"):
            view["image"] = install["installer"]["image"]
        machine["install"] = view
    kube_node = by_kind.get("KubeNodeConfig")
    if kube_node is not None:
        for key, field in (
            ("labels", "nodeLabels"),
            ("annotations", "nodeAnnotations"),
            ("taints", "nodeTaints"),
        ):
            if kube_node.get(key) and not machine.get(field):
                machine[field] = dict(kube_node[key])
    return config_value(v1)


def render_label_templates(docs: list[dict[str, Any]], node: Node, env: dict[str, str]) -> None:
    """Render templated label/annotation values against the v1alpha1 config and add them
    to the node's maps (talhelper renders each from the same unrendered config)."""
    if not node.label_templates and not node.annotation_templates:
        return
    from taltasks.machineconfig.templating import render
    from taltasks.model.syntax import label_key_problem, label_value_problem

    data = template_data(docs)
    # from contract 1.14 labels and annotations live in KubeNodeConfig
    kube_node = next((d for d in docs if d.get("kind") == "KubeNodeConfig"), None)
    for field, templates in (
        ("nodeLabels", node.label_templates),
        ("nodeAnnotations", node.annotation_templates),
    ):
        for t in templates:
            source, line = _split(t.where)
            value = render(t.text, data, where=source, line_offset=(line or 1) - 1, env=env)
            if field == "nodeLabels":
                problem = label_value_problem(value) or label_key_problem(t.key)
                if problem:
                    raise InputError(
                        f"node {node.hostname}: label {t.key} renders to {value!r}: {problem}", where=t.where
                    )
            if kube_node is not None:
                kube_node.setdefault("labels" if field == "nodeLabels" else "annotations", {})[t.key] = value
            else:
                docs[0]["machine"].setdefault(field, {})[t.key] = value


def rendered_patch_ref(ref: PatchRef, docs: list[dict[str, Any]], env: dict[str, str]) -> PatchRef:
    """A templated patch rendered against the config as it stands (then ``${VAR}``
    substituted for a file, as talhelper does); other patches unchanged."""
    if not ref.templated:
        return ref
    from taltasks.machineconfig.templating import render
    from taltasks.model.envsubst import substitute_file

    text = render(ref.text, template_data(docs), where=ref.source, line_offset=ref.line_offset, env=env)
    if ref.envsubst:
        text = substitute_file(text, env, ref.source)
    return replace(ref, text=text, templated=False, envsubst=False)


def parse_extra_manifest(rendered: PatchRef) -> Patch | None:
    """One ``extraManifests`` file (already rendered, :func:`rendered_patch_ref`) parsed
    with its lines. Its documents are appended to the node's config as they are (not merged)."""
    from taltasks.machineconfig.patches import parse_patch

    patch = parse_patch(rendered.text, rendered.source)
    if patch is not None and (patch.is_json or patch.deletes):
        raise InputError(
            "an extra manifest holds whole documents (no JSON patch operations or $patch directives)",
            where=patch.where(),
            hint="move patch-like content to `patches`",
        )
    return patch
