"""Base machine configs, as ``talosctl gen config`` would produce them, as plain data.

:func:`base_documents` returns the documents of one machine type (``controlplane`` or
``worker``) for a :class:`GenInput`: the v1alpha1 document and, from contract 1.12, the
registry and ``HostnameConfig`` documents. Every default of talos-config-gen.md §2 is set
here, switched by the version contract, with keys in Talos's struct order so the output
reads like Talos's own. Nothing here depends on time or randomness: the same input and
secrets always give the same documents.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.secrets import SecretsBundle

MachineType = Literal["controlplane", "worker"]

DEFAULT_POD_SUBNETS = ("10.244.0.0/16",)
DEFAULT_SERVICE_SUBNETS = ("10.96.0.0/12",)
DEFAULT_DNS_DOMAIN = "cluster.local"
KUBELET_IMAGE = "ghcr.io/siderolabs/kubelet"
K8S_REGISTRY = "registry.k8s.io"
KUBEPRISM_PORT = 7445

POD_SECURITY_CONFIGURATION = {
    "apiVersion": "pod-security.admission.config.k8s.io/v1alpha1",
    "defaults": {
        "audit": "restricted",
        "audit-version": "latest",
        "enforce": "baseline",
        "enforce-version": "latest",
        "warn": "restricted",
        "warn-version": "latest",
    },
    "exemptions": {"namespaces": ["kube-system"], "runtimeClasses": [], "usernames": []},
    "kind": "PodSecurityConfiguration",
}
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}


@dataclass
class GenInput:
    """What ``gen config`` needs; everything optional defaults like talosctl's library."""

    cluster_name: str
    endpoint: str
    contract: VersionContract
    secrets: SecretsBundle
    kubernetes_version: str | None = None  # "1.34.3" or "v1.34.3"; None omits the images
    install_disk: str | None = None
    install_image: str | None = None
    install_extra_kernel_args: list[str] = field(default_factory=list)
    machine_cert_sans: list[str] = field(default_factory=list)
    api_server_cert_sans: list[str] = field(default_factory=list)
    dns_domain: str = DEFAULT_DNS_DOMAIN
    pod_subnets: list[str] = field(default_factory=lambda: list(DEFAULT_POD_SUBNETS))
    service_subnets: list[str] = field(default_factory=lambda: list(DEFAULT_SERVICE_SUBNETS))
    allow_scheduling_on_control_planes: bool = False
    cni: dict[str, Any] | None = None
    local_api_server_port: int | None = None
    sysctls: dict[str, str] = field(default_factory=dict)
    registry_mirrors: dict[str, list[str]] = field(default_factory=dict)
    discovery: bool = True


def _b64(pem: bytes) -> str:
    return base64.b64encode(pem).decode()


def endpoint_host(endpoint: str) -> str:
    return urlsplit(endpoint).hostname or ""


def base_documents(inp: GenInput, machine_type: MachineType) -> list[dict[str, Any]]:
    """The documents of ``machine_type``'s config, in the order Talos writes them."""
    docs = [_v1alpha1(inp, machine_type)]
    c = inp.contract
    if c.multi_document:
        for registry in sorted(inp.registry_mirrors):
            docs.append(
                {
                    "apiVersion": "v1alpha1",
                    "kind": "RegistryMirrorConfig",
                    "name": registry,
                    "endpoints": [{"url": u} for u in inp.registry_mirrors[registry]],
                }
            )
        docs.append({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"})
    return docs


def _v1alpha1(inp: GenInput, machine_type: MachineType) -> dict[str, Any]:
    c = inp.contract
    s = inp.secrets
    cp = machine_type == "controlplane"
    k8s = inp.kubernetes_version.lstrip("v") if inp.kubernetes_version else None

    machine: dict[str, Any] = {
        "type": machine_type,
        "token": s.trustd_token,
        "ca": {"crt": _b64(s.os.crt), "key": _b64(s.os.key) if cp else ""},
        "certSANs": list(inp.machine_cert_sans),
    }
    kubelet: dict[str, Any] = {}
    if k8s:
        kubelet["image"] = f"{KUBELET_IMAGE}:v{k8s}"
    kubelet["defaultRuntimeSeccompProfileEnabled"] = True
    kubelet["disableManifestsDirectory"] = True
    machine["kubelet"] = kubelet
    if c.machine_network_section:
        machine["network"] = {}
    install: dict[str, Any] = {}
    if inp.install_disk:
        install["disk"] = inp.install_disk
    if inp.install_extra_kernel_args:
        install["extraKernelArgs"] = list(inp.install_extra_kernel_args)
    if inp.install_image:
        install["image"] = inp.install_image
    install["wipe"] = False
    if c.multi_document:
        install["grubUseUKICmdline"] = True
    machine["install"] = install
    if inp.sysctls:
        machine["sysctls"] = dict(inp.sysctls)
    if inp.registry_mirrors and not c.multi_document:
        machine["registries"] = {
            "mirrors": {r: {"endpoints": list(inp.registry_mirrors[r])} for r in inp.registry_mirrors}
        }
    features: dict[str, Any] = {}
    if c.legacy_rbac_and_keyusage:
        features["rbac"] = True
    if c.stable_hostname_feature:
        features["stableHostname"] = True
    if c.legacy_rbac_and_keyusage:
        features["apidCheckExtKeyUsage"] = True
    features["diskQuotaSupport"] = True
    features["kubePrism"] = {"enabled": True, "port": KUBEPRISM_PORT}
    features["hostDNS"] = {"enabled": True, "forwardKubeDNSToHost": True}
    machine["features"] = features
    if cp:
        machine["nodeLabels"] = {"node.kubernetes.io/exclude-from-external-load-balancers": ""}

    control_plane: dict[str, Any] = {"endpoint": inp.endpoint}
    if cp and inp.local_api_server_port:
        control_plane["localAPIServerPort"] = inp.local_api_server_port
    network: dict[str, Any] = {}
    if inp.cni:
        network["cni"] = copy.deepcopy(inp.cni)
    network["dnsDomain"] = inp.dns_domain
    network["podSubnets"] = list(inp.pod_subnets)
    network["serviceSubnets"] = list(inp.service_subnets)
    cluster: dict[str, Any] = {
        "id": s.cluster_id,
        "secret": s.cluster_secret,
        "controlPlane": control_plane,
        "clusterName": inp.cluster_name,
        "network": network,
        "token": s.bootstrap_token,
    }
    if cp:
        if s.aescbc_secret:
            cluster["aescbcEncryptionSecret"] = s.aescbc_secret
        if s.secretbox_secret:
            cluster["secretboxEncryptionSecret"] = s.secretbox_secret
    cluster["ca"] = {"crt": _b64(s.k8s.crt), "key": _b64(s.k8s.key) if cp else ""}
    if cp:
        cluster["aggregatorCA"] = {"crt": _b64(s.k8s_aggregator.crt), "key": _b64(s.k8s_aggregator.key)}
        cluster["serviceAccount"] = {"key": _b64(s.service_account_key)}
        api: dict[str, Any] = {}
        if k8s:
            api["image"] = f"{K8S_REGISTRY}/kube-apiserver:v{k8s}"
        sans = ([endpoint_host(inp.endpoint)] if c.endpoint_in_apiserver_sans else []) + list(
            inp.api_server_cert_sans
        )
        if sans:
            api["certSANs"] = sans
        if c.disable_pod_security_policy:
            api["disablePodSecurityPolicy"] = True
        api["admissionControl"] = [
            {"name": "PodSecurity", "configuration": copy.deepcopy(POD_SECURITY_CONFIGURATION)}
        ]
        api["auditPolicy"] = copy.deepcopy(AUDIT_POLICY)
        cluster["apiServer"] = api
        for key, image in (
            ("controllerManager", "kube-controller-manager"),
            ("proxy", "kube-proxy"),
            ("scheduler", "kube-scheduler"),
        ):
            cluster[key] = {"image": f"{K8S_REGISTRY}/{image}:v{k8s}"} if k8s else {}
    cluster["discovery"] = {
        "enabled": inp.discovery,
        "registries": {"kubernetes": {"disabled": True}, "service": {}},
    }
    if cp:
        cluster["etcd"] = {"ca": {"crt": _b64(s.etcd.crt), "key": _b64(s.etcd.key)}}
        if inp.allow_scheduling_on_control_planes:
            cluster["allowSchedulingOnControlPlanes"] = True
    return {"version": "v1alpha1", "debug": False, "persist": True, "machine": machine, "cluster": cluster}
