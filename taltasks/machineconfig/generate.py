"""Base machine configs, as ``talosctl gen config`` would produce them, as plain data.

:func:`base_documents` returns the documents of one machine type (``controlplane`` or
``worker``) for a :class:`GenInput`, in the order upstream's generator writes them: the
v1alpha1 document, then (from contract 1.12) the registry and ``HostnameConfig`` documents,
and on contract 1.14 the discovery, install, resolver, sysctl, volume, trim, security
profile and ``Kube*Config`` documents. Every default of talos-config-gen.md §2 is set here,
switched only by the properties of :class:`~.contract.VersionContract`, with keys in Talos's
struct order so the output reads like Talos's own. Nothing here depends on time or
randomness: the same input and secrets always give the same documents.
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
DISCOVERY_ENDPOINT = "https://discovery.talos.dev/"
TRIM_INTERVAL = "168h0m0s"  # a week, as Go prints time.Duration
FLANNEL_BACKEND = {"backendType": "vxlan", "backendPort": 4789}
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"
EXCLUDE_FROM_LB = "node.kubernetes.io/exclude-from-external-load-balancers"

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
# kube-apiserver's AuthenticationConfiguration Talos writes from contract 1.14: anonymous
# access only to the health endpoints.
AUTHENTICATION = {
    "anonymous": {
        "conditions": [{"path": "/livez"}, {"path": "/readyz"}, {"path": "/healthz"}],
        "enabled": True,
    },
    "jwt": [],
}
AUTHORIZERS = (("node", "Node"), ("rbac", "RBAC"))


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
    c = inp.contract
    cp = machine_type == "controlplane"
    docs = [_v1alpha1(inp, machine_type)]
    if c.discovery_multidoc_config:
        if inp.discovery:
            docs.append(_doc("DiscoveryServiceConfig", name="default", endpoint=DISCOVERY_ENDPOINT))
        docs.append(
            _doc(
                "DiscoveryIdentityConfig",
                clusterID=inp.secrets.cluster_id,
                clusterSecret=inp.secrets.cluster_secret,
            )
        )
    if c.unattended_install_config and inp.install_disk:
        # its disk selector comes from the install disk, so upstream writes it only with one
        docs.append(unattended_install(inp.install_disk, inp.install_image))
    if c.host_dns_multidoc_config:
        docs.append(_doc("ResolverConfig", hostDNS=_host_dns(c)))
    if c.multidoc_sysctl_config and inp.sysctls:
        docs.append(_doc("SysctlConfig", params=dict(inp.sysctls)))
    if c.filesystem_trim_by_default:
        docs.append(_doc("VolumeConfig", name="EPHEMERAL", mount={"secure": True}))
        docs.append(_doc("FilesystemTrimConfig", interval=TRIM_INTERVAL))
    if c.workload_isolation_by_default:
        docs.append(_doc("SecurityProfileConfig", workloadIsolation=True))
    if c.multidoc_network_config:
        for registry in sorted(inp.registry_mirrors):
            endpoints = [{"url": u} for u in inp.registry_mirrors[registry]]
            docs.append(_doc("RegistryMirrorConfig", name=registry, endpoints=endpoints))
        docs.append(_doc("HostnameConfig", auto="stable"))
    if c.multidoc_kubernetes_config:
        docs += _kubernetes_node_documents(inp, cp)
        if cp:
            docs += _kubernetes_control_plane_documents(inp)
    return docs


def _doc(kind: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1alpha1", "kind": kind, **fields}


def unattended_install(disk: str | None, image: str | None, *, selector: str | None = None) -> dict[str, Any]:
    """The UnattendedInstallConfig of contract 1.14: the installer image and the install
    disk as a CEL disk selector (``disk.dev_path == "/dev/sda"``, as upstream writes it)."""
    match = selector if selector is not None else disk_path_expression(disk or "")
    return _doc(
        "UnattendedInstallConfig",
        installer={"image": image} if image else {},
        provisioning={"diskSelector": {"match": match}, "wipe": False},
    )


def go_quote(text: str) -> str:
    """Go's ``%q`` for the plain strings a device path holds."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def disk_path_expression(disk: str) -> str:
    """An install disk as the CEL selector upstream's generator writes for it."""
    return f"disk.dev_path == {go_quote(disk)}"


def _host_dns(c: VersionContract) -> dict[str, Any]:
    dns: dict[str, Any] = {"enabled": True}
    if c.host_dns_forward_kube_dns_to_host:
        dns["forwardKubeDNSToHost"] = True
    return dns


def _cni_urls(inp: GenInput) -> list[str] | None:
    """The custom CNI's manifest URLs; None when Flannel (the default) is the CNI, [] for none."""
    cni = inp.cni or {}
    name = cni.get("name") or "flannel"
    if name == "flannel":
        return None
    return list(cni.get("urls") or []) if name == "custom" else []


def _kubernetes_node_documents(inp: GenInput, cp: bool) -> list[dict[str, Any]]:
    """The Kubernetes documents every node of contract 1.14 has (upstream's
    ``generateKubernetesUniversalConfigs``)."""
    c = inp.contract
    s = inp.secrets
    k8s = _k8s_tag(inp)
    node: dict[str, Any] = {"nodeIP": {}}
    if cp:
        node["labels"] = {CONTROL_PLANE_ROLE: ""}
        if c.exclude_from_external_load_balancers:
            node["labels"][EXCLUDE_FROM_LB] = ""
        if not inp.allow_scheduling_on_control_planes:
            node["taints"] = {CONTROL_PLANE_ROLE: "NoSchedule"}
    kubelet: dict[str, Any] = {}
    if k8s:
        kubelet["image"] = f"{KUBELET_IMAGE}:v{k8s}"
    kubelet["config"] = {}
    kubelet["defaultRuntimeSeccompProfileEnabled"] = True
    ca: dict[str, Any] = (
        {"issuingCA": {"cert": s.k8s.crt.decode(), "key": s.k8s.key.decode()}}
        if cp
        else {"acceptedCAs": [s.k8s.crt.decode()]}
    )
    return [
        _doc("KubeClusterConfig", clusterName=inp.cluster_name, endpoint=inp.endpoint),
        _doc("KubeNodeConfig", **node),
        _doc("KubeletConfig", **kubelet),
        _doc(
            "KubeNetworkConfig",
            dnsDomain=inp.dns_domain,
            podSubnets=list(inp.pod_subnets),
            serviceSubnets=list(inp.service_subnets),
        ),
        _doc("KubeAPIServerCAConfig", **ca),
        _doc("KubePrismConfig", port=KUBEPRISM_PORT),
    ]


def _kubernetes_control_plane_documents(inp: GenInput) -> list[dict[str, Any]]:
    """The control plane's Kubernetes documents of contract 1.14 (upstream's
    ``generateKubernetesControlplaneConfigs``), API server first, CNI and CoreDNS last."""
    s = inp.secrets
    k8s = _k8s_tag(inp)

    def image(name: str) -> dict[str, Any]:
        return {"image": f"{K8S_REGISTRY}/{name}:v{k8s}"} if k8s else {}

    # Provider names and order match what Talos renders for an older contract's secrets, so
    # regenerating a cluster's config on 1.14 keeps its etcd secrets readable. (Upstream's
    # generator writes an old aescbc secret as a secretbox provider; taltasks keeps aescbc.)
    providers: list[dict[str, Any]] = []
    if s.secretbox_secret:
        providers.append({"secretbox": {"keys": [{"name": "key2", "secret": s.secretbox_secret}]}})
    if s.aescbc_secret:
        providers.append({"aescbc": {"keys": [{"name": "key1", "secret": s.aescbc_secret}]}})
    api: dict[str, Any] = image("kube-apiserver")
    if inp.local_api_server_port:
        api["apiPort"] = inp.local_api_server_port
    if inp.api_server_cert_sans:
        api["certExtraSANs"] = list(inp.api_server_cert_sans)
    docs = [
        _doc(
            "KubeAggregatorCAConfig",
            issuingCA={"cert": s.k8s_aggregator.crt.decode(), "key": s.k8s_aggregator.key.decode()},
        ),
        _doc(
            "KubeAdmissionControlConfig",
            name="PodSecurity",
            configuration=copy.deepcopy(POD_SECURITY_CONFIGURATION),
        ),
        _doc("KubeAuditPolicyConfig", configuration=copy.deepcopy(AUDIT_POLICY)),
        _doc("KubeAuthenticationConfig", configuration=copy.deepcopy(AUTHENTICATION)),
        *(_doc("KubeAuthorizerConfig", name=name, type=kind) for name, kind in AUTHORIZERS),
        _doc(
            "KubeEtcdEncryptionConfig",
            config={"resources": [{"providers": providers, "resources": ["secrets"]}]},
        ),
        _doc(
            "KubeServiceAccountConfig",
            issuer={"privateKey": s.service_account_key.decode(), "issuerURL": inp.endpoint},
        ),
        _doc("KubeAPIServerConfig", **api),
        _doc("KubeControllerManagerConfig", **image("kube-controller-manager")),
        _doc("KubeSchedulerConfig", **image("kube-scheduler"), config={}),
        _doc("KubeProxyConfig", **image("kube-proxy"), config={}),
    ]
    urls = _cni_urls(inp)
    if urls is None:
        docs.append(_doc("KubeFlannelCNIConfig", **FLANNEL_BACKEND))
    docs.append(_doc("KubeCoreDNSConfig", enabled=True))
    for i, url in enumerate(urls or []):
        docs.append(
            _doc("KubeExternalManifestConfig", name="custom-cni" + (f"-{i + 1}" if i else ""), url=url)
        )
    return docs


def _k8s_tag(inp: GenInput) -> str | None:
    return inp.kubernetes_version.lstrip("v") if inp.kubernetes_version else None


def _v1alpha1(inp: GenInput, machine_type: MachineType) -> dict[str, Any]:
    c = inp.contract
    s = inp.secrets
    cp = machine_type == "controlplane"
    k8s = _k8s_tag(inp)
    kube_docs = c.multidoc_kubernetes_config  # most of the cluster section moved to documents

    machine: dict[str, Any] = {
        "type": machine_type,
        "token": s.trustd_token,
        "ca": {"crt": _b64(s.os.crt), "key": _b64(s.os.key) if cp else ""},
        "certSANs": list(inp.machine_cert_sans),
    }
    if not kube_docs:
        kubelet: dict[str, Any] = {}
        if k8s:
            kubelet["image"] = f"{KUBELET_IMAGE}:v{k8s}"
        kubelet["defaultRuntimeSeccompProfileEnabled"] = True
        kubelet["disableManifestsDirectory"] = True
        machine["kubelet"] = kubelet
    if c.machine_network_section:
        machine["network"] = {}
    if not c.unattended_install_config:
        install: dict[str, Any] = {}
        if inp.install_disk:
            install["disk"] = inp.install_disk
        if inp.install_extra_kernel_args:
            install["extraKernelArgs"] = list(inp.install_extra_kernel_args)
        if inp.install_image:
            install["image"] = inp.install_image
        install["wipe"] = False
        if c.grub_use_uki_cmdline:
            install["grubUseUKICmdline"] = True
        machine["install"] = install
    if inp.sysctls and not c.multidoc_sysctl_config:
        machine["sysctls"] = dict(inp.sysctls)
    if inp.registry_mirrors and not c.multidoc_network_config:
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
    if not kube_docs:
        features["kubePrism"] = {"enabled": True, "port": KUBEPRISM_PORT}
    if not c.host_dns_multidoc_config:
        features["hostDNS"] = _host_dns(c)
    machine["features"] = features
    if cp and c.exclude_from_external_load_balancers and not kube_docs:
        machine["nodeLabels"] = {EXCLUDE_FROM_LB: ""}

    cluster: dict[str, Any] = {}
    if not c.discovery_multidoc_config:
        cluster["id"] = s.cluster_id
        cluster["secret"] = s.cluster_secret
    if not kube_docs:
        control_plane: dict[str, Any] = {"endpoint": inp.endpoint}
        if cp and inp.local_api_server_port:
            control_plane["localAPIServerPort"] = inp.local_api_server_port
        cluster["controlPlane"] = control_plane
        if cp or c.cluster_name_for_workers:
            cluster["clusterName"] = inp.cluster_name
        network: dict[str, Any] = {}
        if inp.cni:
            network["cni"] = copy.deepcopy(inp.cni)
        network["dnsDomain"] = inp.dns_domain
        network["podSubnets"] = list(inp.pod_subnets)
        network["serviceSubnets"] = list(inp.service_subnets)
        cluster["network"] = network
    cluster["token"] = s.bootstrap_token
    if cp and not kube_docs:
        if s.aescbc_secret:
            cluster["aescbcEncryptionSecret"] = s.aescbc_secret
        if s.secretbox_secret:
            cluster["secretboxEncryptionSecret"] = s.secretbox_secret
    if not kube_docs:
        cluster["ca"] = {"crt": _b64(s.k8s.crt), "key": _b64(s.k8s.key) if cp else ""}
    if cp and not kube_docs:
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
    if not c.discovery_multidoc_config:
        cluster["discovery"] = {
            "enabled": inp.discovery,
            "registries": {"kubernetes": {"disabled": True}, "service": {}},
        }
    if cp:
        cluster["etcd"] = {"ca": {"crt": _b64(s.etcd.crt), "key": _b64(s.etcd.key)}}
        if inp.allow_scheduling_on_control_planes and not kube_docs:
            cluster["allowSchedulingOnControlPlanes"] = True
    return {"version": "v1alpha1", "debug": False, "persist": True, "machine": machine, "cluster": cluster}
