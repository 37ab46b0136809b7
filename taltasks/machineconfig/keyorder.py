"""Talos's struct field order for the keys of generated documents.

Talos decodes a config into Go structs and writes it back in their field order, so a key a
patch adds (``clusterDNS`` in a KubeletConfig, ``sysctls`` in the machine section) appears
where Talos would put it, not at the end. The generator already builds keys in this order;
:func:`canonical_order` restores it after patches and node overrides, so the files
``configure`` and ``talos.gen-config`` write read like Talos's own and diff cleanly.

Data only: ``(document, path) → field order`` for the structs generated documents and common
patches touch (upstream ``v1alpha1_types.go`` and the ``types/k8s``, ``network``,
``runtime``, ``block`` and ``cri`` documents at v1.14). Keys not listed keep their place
after the listed ones; free-form maps (labels, sysctls, extraArgs) are never reordered.
"""

from __future__ import annotations

from typing import Any

_META = ("apiVersion", "kind")

# v1alpha1: the legacy document, by path below its root.
V1ALPHA1: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("version", "debug", "persist", "machine", "cluster"),
    ("machine",): (
        "type", "token", "ca", "acceptedCAs", "certSANs", "controlPlane", "kubelet", "pods", "network",
        "disks", "install", "files", "env", "time", "sysctls", "sysfs", "registries",
        "systemDiskEncryption", "features", "udev", "logging", "kernel", "seccompProfiles",
        "baseRuntimeSpecOverrides", "nodeLabels", "nodeAnnotations", "nodeTaints",
    ),
    ("cluster",): (
        "id", "secret", "controlPlane", "clusterName", "network", "token", "aescbcEncryptionSecret",
        "secretboxEncryptionSecret", "ca", "acceptedCAs", "aggregatorCA", "serviceAccount", "apiServer",
        "controllerManager", "proxy", "scheduler", "discovery", "etcd", "coreDNS", "externalCloudProvider",
        "extraManifests", "extraManifestHeaders", "inlineManifests", "adminKubeconfig",
        "allowSchedulingOnControlPlanes",
    ),
    ("machine", "kubelet"): (
        "image", "clusterDNS", "extraArgs", "extraMounts", "extraConfig", "credentialProviderConfig",
        "defaultRuntimeSeccompProfileEnabled", "registerWithFQDN", "nodeIP", "skipNodeRegistration",
        "disableManifestsDirectory",
    ),
    ("machine", "install"): (
        "disk", "diskSelector", "extraKernelArgs", "image", "extensions", "bootloader", "wipe",
        "legacyBIOSSupport", "grubUseUKICmdline",
    ),
    ("machine", "features"): (
        "rbac", "stableHostname", "kubernetesTalosAPIAccess", "apidCheckExtKeyUsage", "diskQuotaSupport",
        "kubePrism", "hostDNS", "imageCache", "nodeAddressSortAlgorithm",
    ),
    ("cluster", "controlPlane"): ("endpoint", "localAPIServerPort"),
    ("cluster", "network"): ("cni", "dnsDomain", "podSubnets", "serviceSubnets"),
    ("cluster", "apiServer"): (
        "image", "extraArgs", "extraVolumes", "env", "certSANs", "disablePodSecurityPolicy",
        "admissionControl", "auditPolicy", "resources", "authorizationConfig",
    ),
}  # fmt: skip

# Multi-document kinds: top-level order after apiVersion/kind.
KINDS: dict[str, tuple[str, ...]] = {
    "DiscoveryServiceConfig": ("name", "endpoint"),
    "DiscoveryIdentityConfig": ("clusterID", "clusterSecret"),
    "UnattendedInstallConfig": ("reboot", "installer", "provisioning"),
    "ResolverConfig": ("nameservers", "searchDomains", "hostDNS"),
    "HostnameConfig": ("auto", "hostname"),
    "VolumeConfig": ("name", "provisioning", "filesystem", "encryption", "mount", "trim", "scrub"),
    "RegistryMirrorConfig": ("name", "endpoints", "skipFallback"),
    "KubeClusterConfig": ("clusterName", "endpoint"),
    "KubeNodeConfig": (
        "skipNodeRegistration", "registerWithFQDN", "nodeIP", "labels", "annotations", "taints", "validSubnets",
    ),
    "KubeletConfig": ("image", "config", "extraArgs", "clusterDNS", "defaultRuntimeSeccompProfileEnabled"),
    "KubeNetworkConfig": ("dnsDomain", "podSubnets", "serviceSubnets"),
    "KubeAPIServerCAConfig": ("issuingCA", "acceptedCAs"),
    "KubeAggregatorCAConfig": ("issuingCA", "acceptedCAs"),
    "KubePrismConfig": ("port", "tlsServerName"),
    "KubeAdmissionControlConfig": ("name", "configuration"),
    "KubeAuthorizerConfig": ("name", "type", "webhook"),
    "KubeServiceAccountConfig": ("issuer", "accepted"),
    "KubeAPIServerConfig": ("image", "extraArgs", "env", "resources", "apiPort", "certExtraSANs", "startupProbes"),
    "KubeControllerManagerConfig": ("enabled", "image", "extraArgs", "env", "resources"),
    "KubeSchedulerConfig": ("enabled", "image", "config", "extraArgs", "env", "resources"),
    "KubeProxyConfig": ("enabled", "image", "mode", "config", "extraArgs", "resources"),
    "KubeFlannelCNIConfig": (
        "backendType", "backendPort", "backendMTU", "backendExtraConfig", "resources", "extraArgs",
        "kubeNetworkPoliciesEnabled",
    ),
    "KubeCoreDNSConfig": ("enabled", "image"),
    "KubeExternalManifestConfig": ("name", "headers", "url"),
    "KubeInlineManifestConfig": ("name", "manifest"),
}  # fmt: skip


# The order in which upstream's generator writes documents (contract 1.14's full list; older
# contracts write a prefix-compatible subset). A document a node override adds goes where the
# generator would have put it; documents a patch adds stay at the end, as Talos appends them.
DOCUMENTS: tuple[str, ...] = (
    "", "DiscoveryServiceConfig", "DiscoveryIdentityConfig", "UnattendedInstallConfig", "ResolverConfig",
    "SysctlConfig", "VolumeConfig", "FilesystemTrimConfig", "SecurityProfileConfig", "RegistryMirrorConfig",
    "RegistryTLSConfig", "HostnameConfig", "KubeSpanConfig", "KubeClusterConfig", "KubeNodeConfig",
    "KubeletConfig", "KubeNetworkConfig", "KubeAPIServerCAConfig", "KubePrismConfig", "KubeAggregatorCAConfig",
    "KubeAdmissionControlConfig", "KubeAuditPolicyConfig", "KubeAuthenticationConfig", "KubeAuthorizerConfig",
    "KubeEtcdEncryptionConfig", "KubeServiceAccountConfig", "KubeAPIServerConfig", "KubeControllerManagerConfig",
    "KubeSchedulerConfig", "KubeProxyConfig", "KubeFlannelCNIConfig", "KubeCoreDNSConfig",
    "KubeExternalManifestConfig",
)  # fmt: skip


def insert_document(docs: list[dict[str, Any]], doc: dict[str, Any]) -> None:
    """Insert ``doc`` before the first document the generator writes after its kind (in place)."""
    rank = {k: i for i, k in enumerate(DOCUMENTS)}
    mine = rank.get(str(doc.get("kind") or ""), len(DOCUMENTS))
    at = next(
        (i for i, d in enumerate(docs) if rank.get(str(d.get("kind") or ""), len(DOCUMENTS)) > mine),
        len(docs),
    )
    docs.insert(at, doc)


def reorder(mapping: dict[str, Any], order: tuple[str, ...]) -> None:
    """Sort ``mapping``'s keys by ``order`` in place; unlisted keys keep their relative place last."""
    rank = {k: i for i, k in enumerate(order)}
    items = sorted(mapping.items(), key=lambda kv: rank.get(kv[0], len(order)))
    mapping.clear()
    mapping.update(items)


def canonical_order(docs: list[dict[str, Any]]) -> None:
    """Put the keys of every document in Talos's struct order (in place)."""
    for doc in docs:
        kind = doc.get("kind")
        if not kind:
            for path, order in V1ALPHA1.items():
                node: Any = doc
                for key in path:
                    node = node.get(key) if isinstance(node, dict) else None
                if isinstance(node, dict):
                    reorder(node, order)
        elif kind in KINDS:
            reorder(doc, _META + KINDS[kind])
