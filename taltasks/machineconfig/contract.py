"""Version contracts: which shape of machine config a Talos version expects.

Talos generates configs "for" a version contract (``--talos-version``); a newer Talos keeps
accepting configs of an older contract, so a cluster keeps its original contract until the
operator moves it. Every behaviour that differs between contracts is one property below,
named after what it switches and defined by a comparison with the contract exactly as in
upstream's ``pkg/machinery/config/contract.go`` ("on" when the contract is *greater than*
the version named). The generator (:mod:`.generate`) reads these properties and nothing
else, so the differences between contracts live here as data, not as version checks
scattered through the code.

What each supported contract changes, in short (docs/configure.md has the table):

* 1.8 – 1.11 generate the same documents (1.9–1.11 add no generator switch: their contract
  changes are runtime features such as VolumeConfig encryption);
* 1.12 moves the hostname, registry mirrors and UKI cmdline into documents and hides the
  always-on ``rbac``/``apidCheckExtKeyUsage``/``disablePodSecurityPolicy`` flags;
* 1.13 drops the empty ``machine.network`` section;
* 1.14 moves Kubernetes, discovery, host DNS, sysctls and install settings into ~25
  separate documents and turns on filesystem trim, a secure EPHEMERAL mount and workload
  isolation by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import total_ordering

from taltasks.errors import InputError
from taltasks.model.versions import SUPPORTED_CONTRACTS, Version, supported_contracts_text


@total_ordering
@dataclass(frozen=True)
class VersionContract:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str | Version, *, where: str | None = None) -> VersionContract:
        """``v1.12.3``, ``1.12`` or a :class:`Version` → contract 1.12 (supported ones only)."""
        try:
            version = text if isinstance(text, Version) else Version.parse(str(text))
        except ValueError as exc:
            raise InputError(str(exc), where=where) from None
        contract = cls(version.major, version.minor)
        if contract.key not in SUPPORTED_CONTRACTS:
            raise InputError(
                f"Talos {version} is not a version contract taltasks generates "
                f"(supported: {supported_contracts_text()})",
                where=where,
                hint=f"pin talosVersion to a {supported_contracts_text(' or ')} release",
            )
        return contract

    @property
    def key(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, VersionContract):
            return NotImplemented
        return self.key < other.key

    def after(self, major: int, minor: int) -> bool:
        """True when this contract is *greater than* ``major.minor`` (Talos's ``Greater``)."""
        return self.key > (major, minor)

    # ---- on for every supported contract (> 1.7); kept so the generator reads like upstream --

    @property
    def secretbox(self) -> bool:
        """secretbox etcd encryption instead of aescbc (upstream ``SecretboxEncryptionSupported``)."""
        return self.after(1, 2)

    @property
    def rsa_service_account(self) -> bool:
        """An RSA service-account key (upstream ``UseRSAServiceAccountKey``)."""
        return self.after(1, 6)

    @property
    def cluster_name_for_workers(self) -> bool:
        """Workers carry ``cluster.clusterName`` (upstream ``ClusterNameForWorkers``)."""
        return self.after(1, 7)

    @property
    def host_dns_forward_kube_dns_to_host(self) -> bool:
        """Host DNS also serves CoreDNS's upstream (``HostDNSForwardKubeDNSToHost``)."""
        return self.after(1, 7)

    @property
    def exclude_from_external_load_balancers(self) -> bool:
        """Control planes get ``node.kubernetes.io/exclude-from-external-load-balancers``
        (upstream ``AddExcludeFromExternalLoadBalancer``)."""
        return self.after(1, 7)

    # ---- 1.12: the first multi-document defaults --------------------------------------------

    @property
    def multidoc_network_config(self) -> bool:
        """HostnameConfig ``auto: stable`` and RegistryMirrorConfig documents instead of
        ``features.stableHostname`` and ``machine.registries`` (``MultidocNetworkConfigSupported``)."""
        return self.after(1, 11)

    @property
    def stable_hostname_feature(self) -> bool:
        """``machine.features.stableHostname: true`` (between 1.1 and 1.12)."""
        return self.after(1, 1) and not self.multidoc_network_config

    @property
    def legacy_rbac_and_keyusage(self) -> bool:
        """``features.rbac`` and ``apidCheckExtKeyUsage`` are written only up to 1.11
        (upstream ``HideRBACAndKeyUsage`` is the negation)."""
        return not self.after(1, 11)

    @property
    def disable_pod_security_policy(self) -> bool:
        """``apiServer.disablePodSecurityPolicy: true`` up to 1.11 (``HideDisablePSP``)."""
        return not self.after(1, 11)

    @property
    def endpoint_in_apiserver_sans(self) -> bool:
        """The endpoint's host leads the API server SANs (``PopulateClusterSANsFromEndpoint``)."""
        return not self.after(1, 11)

    @property
    def grub_use_uki_cmdline(self) -> bool:
        """``install.grubUseUKICmdline: true`` by default (``GrubUseUKICmdlineDefault``)."""
        return self.after(1, 11)

    @property
    def multi_document(self) -> bool:
        """The config has more than the v1alpha1 document, so JSON patches are refused and
        node settings (hostname, nameservers) go to documents (from 1.12)."""
        return self.multidoc_network_config

    # ---- 1.13 ------------------------------------------------------------------------------

    @property
    def machine_network_section(self) -> bool:
        """The empty ``machine.network: {}`` is emitted up to 1.12 (upstream writes it unless
        ``KubeSpanMultidocConfig``)."""
        return not self.after(1, 12)

    # ---- 1.14: Kubernetes, discovery, DNS, sysctls and install as documents ----------------

    @property
    def multidoc_kubernetes_config(self) -> bool:
        """Kubelet, API server, controller manager, scheduler, proxy, CNI, CoreDNS, KubePrism,
        cluster CA/endpoint/network, node labels/taints and etcd encryption move from
        v1alpha1 to ``Kube*Config`` documents (``MultidocKubernetesConfigSupported``)."""
        return self.after(1, 13)

    @property
    def discovery_multidoc_config(self) -> bool:
        """DiscoveryServiceConfig + DiscoveryIdentityConfig instead of ``cluster.discovery``,
        ``cluster.id`` and ``cluster.secret`` (``DiscoveryServiceMultidocConfig`` and
        ``DiscoveryIdentityMultidocConfig``)."""
        return self.after(1, 13)

    @property
    def host_dns_multidoc_config(self) -> bool:
        """ResolverConfig ``hostDNS`` instead of ``machine.features.hostDNS``."""
        return self.after(1, 13)

    @property
    def unattended_install_config(self) -> bool:
        """UnattendedInstallConfig (written only with an install disk) instead of
        ``machine.install``; it has no extra kernel args."""
        return self.after(1, 13)

    @property
    def multidoc_sysctl_config(self) -> bool:
        """SysctlConfig instead of ``machine.sysctls``."""
        return self.after(1, 13)

    @property
    def multidoc_kernel_module_config(self) -> bool:
        """KernelModuleConfig instead of ``machine.kernel.modules`` (upstream's stability test
        switches its ``patch.yaml`` on this)."""
        return self.after(1, 13)

    @property
    def filesystem_trim_by_default(self) -> bool:
        """VolumeConfig EPHEMERAL ``mount.secure: true`` and a weekly FilesystemTrimConfig
        (``FilesystemTrimEnabledByDefault``)."""
        return self.after(1, 13)

    @property
    def workload_isolation_by_default(self) -> bool:
        """SecurityProfileConfig ``workloadIsolation: true`` (``WorkloadIsolationEnabledByDefault``)."""
        return self.after(1, 13)
