"""Talos's checks of the v1alpha1 document (``v1alpha1_validation.go``; talos-config-gen.md §6).

Restated for what a taltasks config can hold: required sections, endpoint and DNS domain
syntax, the install section in metal mode, the extraKernelArgs vs grubUseUKICmdline
conflict, control-plane/worker key rules, CNI names, label/annotation/taint syntax,
network device basics and duplicate inline manifests.
"""

from __future__ import annotations

from typing import Any

from taltasks.machineconfig.merge import doc_id
from taltasks.machineconfig.validate.findings import yaml_value
from taltasks.machineconfig.validate.registry import RuleContext, rule
from taltasks.model.syntax import (
    dns_name_problem,
    endpoint_problem,
    is_cidr,
    label_key_problem,
    label_value_problem,
    taint_problem,
)

CNI_NAMES = ("flannel", "custom", "none")


@rule("documents-unique")
def _documents_unique(ctx: RuleContext) -> None:
    seen: set[tuple[str, str, str]] = set()
    for doc in ctx.docs:
        ident = doc_id(doc)
        if ident in seen:
            ctx.error(doc, (), "document appears twice", hint="merge the two documents into one")
        seen.add(ident)


@rule("v1alpha1-present")
def _v1alpha1_present(ctx: RuleContext) -> None:
    if ctx.v1alpha1 is None:
        ctx.error(None, (), "the config has no v1alpha1 document", document="v1alpha1")


@rule("v1alpha1-sections")
def _sections(ctx: RuleContext) -> None:
    doc = ctx.v1alpha1
    if doc is None:
        return
    if doc.get("persist") is False:
        ctx.error(doc, ("persist",), "persist must not be false")
    if not isinstance(doc.get("machine"), dict):
        ctx.error(doc, ("machine",), "the machine section is required")
    elif not isinstance(doc.get("cluster"), dict):
        ctx.error(doc, ("cluster",), "the cluster section is required")


def _complete(ctx: RuleContext) -> dict[str, Any] | None:
    """The v1alpha1 document when it has both sections (other rules report when not)."""
    doc = ctx.v1alpha1
    if doc is None or not isinstance(doc.get("machine"), dict) or not isinstance(doc.get("cluster"), dict):
        return None
    return doc


@rule("v1alpha1-machine")
def _machine(ctx: RuleContext) -> None:
    doc = _complete(ctx)
    if doc is None:
        return
    machine, cluster = ctx.machine, ctx.cluster
    mtype = machine.get("type")
    if mtype not in ("controlplane", "worker", "init", "join", "", None):
        ctx.error(doc, ("machine", "type"), f"machine type {yaml_value(mtype)} is not controlplane or worker")
    elif mtype in ("join", "", None):
        ctx.warning(
            doc, ("machine", "type"), f"use worker instead of {yaml_value(mtype or '')} for machine type"
        )

    install = machine.get("install")
    # from contract 1.14 the install lives in an UnattendedInstallConfig document instead
    unattended = any(
        ((d.get("provisioning") or {}).get("diskSelector") or {}).get("match")
        for d in ctx.documents("UnattendedInstallConfig")
    )
    if ctx.mode == "metal" and not (install is None and unattended):
        if not isinstance(install, dict):
            ctx.error(
                doc,
                ("machine", "install"),
                "an install section (from contract 1.14: an UnattendedInstallConfig) is required in metal mode",
            )
        elif not install.get("disk") and not install.get("diskSelector"):
            ctx.error(
                doc, ("machine", "install"), "install.disk or install.diskSelector is required in metal mode"
            )
    if isinstance(install, dict) and install.get("extraKernelArgs") and install.get("grubUseUKICmdline"):
        ctx.error(
            doc,
            ("machine", "install", "extraKernelArgs"),
            "install.extraKernelArgs and install.grubUseUKICmdline can't be used together",
            hint="put kernel arguments in the schematic instead",
        )
    if ctx.mode == "container":
        dns = (machine.get("features") or {}).get("hostDNS") or {}
        if not dns.get("enabled") or not dns.get("forwardKubeDNSToHost"):
            ctx.error(
                doc, ("machine", "features", "hostDNS"), "container mode needs hostDNS enabled and forwarded"
            )

    mca = machine.get("ca") or {}
    if not mca.get("crt") and not machine.get("acceptedCAs"):
        ctx.error(doc, ("machine", "ca"), "a trusted Talos CA (machine.ca.crt or acceptedCAs) is required")
    if ctx.control_plane:
        if not mca.get("key"):
            ctx.error(doc, ("machine", "ca", "key"), "a control plane needs the Talos CA key")
    else:
        if mca.get("key"):
            ctx.error(doc, ("machine", "ca", "key"), "a worker must not hold the Talos CA key")
        if (cluster.get("ca") or {}).get("key"):
            ctx.error(doc, ("cluster", "ca", "key"), "a worker must not hold the Kubernetes CA key")
        for path in _vip_paths(machine):
            ctx.error(doc, ("machine", *path), "a worker must not have a shared VIP")

    for key, values in (("nodeLabels", True), ("nodeAnnotations", False)):
        labels = machine.get(key)
        for name, value in (labels or {}).items() if isinstance(labels, dict) else ():
            for problem in (label_key_problem(name), label_value_problem(value) if values else None):
                if problem:
                    ctx.error(doc, ("machine", key, name), problem)
    taints = machine.get("nodeTaints")
    for name, value in (taints or {}).items() if isinstance(taints, dict) else ():
        problem = taint_problem(name, value)
        if problem:
            ctx.error(doc, ("machine", "nodeTaints", name), problem)
    _devices(ctx, doc, ((machine.get("network") or {}).get("interfaces")) or [])


def _vip_paths(machine: dict[str, Any]) -> list[tuple[str | int, ...]]:
    out: list[tuple[str | int, ...]] = []
    for i, dev in enumerate(((machine.get("network") or {}).get("interfaces")) or []):
        if not isinstance(dev, dict):
            continue
        if dev.get("vip"):
            out.append(("network", "interfaces", i, "vip"))
        for j, vlan in enumerate(dev.get("vlans") or []):
            if isinstance(vlan, dict) and vlan.get("vip"):
                out.append(("network", "interfaces", i, "vlans", j, "vip"))
    return out


def _devices(ctx: RuleContext, doc: dict[str, Any], devices: list[Any]) -> None:
    for i, dev in enumerate(devices):
        where = ("machine", "network", "interfaces", i)
        if not isinstance(dev, dict):
            ctx.error(doc, where, "must be a mapping")
            continue
        if bool(dev.get("interface")) == bool(dev.get("deviceSelector")):
            ctx.error(doc, where, "set exactly one of interface or deviceSelector")
        addresses = [((*where, "addresses", k), a) for k, a in enumerate(dev.get("addresses") or [])]
        for j, vlan in enumerate(dev.get("vlans") or []):
            if isinstance(vlan, dict):
                addresses += [
                    ((*where, "vlans", j, "addresses", k), a)
                    for k, a in enumerate(vlan.get("addresses") or [])
                ]
        for path, address in addresses:
            if not is_cidr(address):
                ctx.error(
                    doc,
                    path,
                    f"{yaml_value(address)} is not an address in CIDR form",
                    hint="write it like 192.0.2.10/24",
                )


@rule("v1alpha1-cluster")
def _cluster(ctx: RuleContext) -> None:
    doc = _complete(ctx)
    if doc is None:
        return
    cluster = ctx.cluster
    where: tuple[dict[str, Any], tuple[str, ...]] = (doc, ("cluster", "controlPlane", "endpoint"))
    kube_cluster = ctx.documents("KubeClusterConfig")
    if "controlPlane" not in cluster and kube_cluster:  # contract 1.14
        where = (kube_cluster[0], ("endpoint",))
    endpoint = (cluster.get("controlPlane") or {}).get("endpoint") or where[0].get("endpoint")
    if not endpoint:
        ctx.error(*where, "the control plane endpoint is required")
    else:
        problem = endpoint_problem(str(endpoint))
        if problem:
            ctx.error(*where, problem)
    network = cluster.get("network") or {}
    domain = network.get("dnsDomain")
    if domain and dns_name_problem(domain):
        ctx.error(doc, ("cluster", "network", "dnsDomain"), dns_name_problem(domain) or "")
    for key in ("podSubnets", "serviceSubnets"):
        for i, cidr in enumerate(network.get(key) or []):
            if not is_cidr(cidr):
                ctx.error(doc, ("cluster", "network", key, i), f"{yaml_value(cidr)} is not a CIDR")
    if ctx.control_plane:
        if not ((cluster.get("etcd") or {}).get("ca") or {}).get("crt"):
            ctx.error(doc, ("cluster", "etcd", "ca"), "a control plane needs the etcd CA")
        _cni(ctx, doc, network.get("cni"))
    elif cluster.get("etcd"):
        ctx.error(doc, ("cluster", "etcd"), "a worker must not have an etcd section")
    manifests = cluster.get("inlineManifests") or []
    names = [m.get("name") for m in manifests if isinstance(m, dict)]
    for i, name in enumerate(names):
        if name in names[:i]:
            ctx.error(
                doc,
                ("cluster", "inlineManifests", i, "name"),
                f"inline manifest {yaml_value(name)} is defined twice",
            )


def _cni(ctx: RuleContext, doc: dict[str, Any], cni: Any) -> None:
    """Talos's ValidateCNI (control planes): known name; urls only for custom (and a warning
    when custom has none); flannel's extra args only for flannel."""
    if not isinstance(cni, dict):
        return
    where = ("cluster", "network", "cni")
    name = cni.get("name")
    if name not in CNI_NAMES:
        ctx.error(doc, (*where, "name"), f"CNI {yaml_value(name)} is not one of {', '.join(CNI_NAMES)}")
        return
    if cni.get("urls") and name != "custom":
        ctx.error(doc, (*where, "urls"), f"CNI urls are only allowed with name: custom, not {name}")
    if name == "custom" and not cni.get("urls"):
        ctx.warning(doc, (*where, "urls"), "a custom CNI without urls installs no CNI")
    if name != "flannel" and ((cni.get("flannel") or {}).get("extraArgs")):
        ctx.error(
            doc,
            (*where, "flannel", "extraArgs"),
            f"flannel extraArgs are only allowed with name: flannel, not {name}",
        )
    for i, url in enumerate(cni.get("urls") or []):
        problem = endpoint_problem(str(url))
        if problem:
            ctx.error(doc, (*where, "urls", i), problem)
