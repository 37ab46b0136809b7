"""The 1.14 document map: where each v1alpha1 setting lives on contract 1.14.

Talos 1.14 moved most ``.machine.*`` and ``.cluster.*`` settings into separate documents
(upstream ``hack/release.toml``, ``Deprecated:`` markers in ``v1alpha1_types.go``). It still
*reads* the old fields, with two rules that matter to anyone patching a 1.14 config:

* **exclusive** sections: when the document that took a section over is in the config,
  Talos refuses the old section too (each document's ``V1Alpha1ConflictValidate``). The
  1.14 generator writes those documents, so an old-form patch of such a section is refused;
* **both accepted**: sysctls, sysfs, kernel modules, udev rules, static pods, files,
  environment, manifests — Talos reads both forms and the document wins on conflicts.

:data:`MOVES` holds one :class:`Moved` entry per v1alpha1 section, and :meth:`Moved.translate`
turns the value an old-form patch wrote into the documents to write instead — exactly what
a user pastes into the patch file. The validation rule of contract 1.14
(:mod:`.validate.rules.contract_1_14`), ``talos.diff-config`` (moved vs changed) and the
docs table all read this one table.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from taltasks.machineconfig.diff import SECRET_KEYS  # values never printed in a hint (terminals, CI logs)
from taltasks.machineconfig.generate import (
    CONTROL_PLANE_ROLE,
    DISCOVERY_ENDPOINT,
    disk_path_expression,
    go_quote,
)

Path = tuple[str, ...]
DELETE = {"$patch": "delete"}
REDACTED = "<the value from your patch>"


@dataclass
class Translation:
    """The documents replacing one v1alpha1 section, and what has no place in them."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[tuple[Path, str]] = field(default_factory=list)  # (sub-path, why)

    def doc(self, kind: str, name: str | None = None) -> dict[str, Any]:
        """The replacement document ``kind``/``name`` (created on first use)."""
        for d in self.documents:
            if d["kind"] == kind and d.get("name") == name:
                return d
        doc: dict[str, Any] = {"apiVersion": "v1alpha1", "kind": kind}
        if name is not None:
            doc["name"] = name
        self.documents.append(doc)
        return doc

    def delete(self, kind: str, name: str | None = None) -> None:
        self.doc(kind, name)[DELETE_KEY] = "delete"


DELETE_KEY = "$patch"


@dataclass(frozen=True)
class Moved:
    """One v1alpha1 section and the 1.14 documents that took it over.

    ``exclusive`` lists the kinds whose presence makes Talos refuse the old section (empty:
    Talos accepts both forms, the document winning on conflicts). ``fields`` maps keys of
    the section to (kind, path in that document); ``special`` handles the rest."""

    old: Path
    kinds: tuple[str, ...]
    exclusive: tuple[str, ...] = ()
    fields: dict[str, tuple[str, Path]] = field(default_factory=dict)
    special: Callable[[Any, Translation], None] | None = None
    name: str | None = None  # the name of the (single) target document, when named
    note: str = ""

    @property
    def label(self) -> str:
        return ".".join(self.old)

    def translate(self, value: Any) -> Translation:
        """The documents to write instead of ``value`` found at :attr:`old`."""
        out = Translation()
        if self.special is not None:
            self.special(value, out)
            return out
        if "" in self.fields:  # the whole section is one field of the document
            kind, path = self.fields[""]
            _put(out.doc(kind, self.name), path, value)
            return out
        for key, sub in (value if isinstance(value, dict) else {}).items():
            target = self.fields.get(key)
            if target is None:
                out.dropped.append(((key,), f"has no field in {'/'.join(self.kinds)}"))
                continue
            kind, path = target
            if not path:
                out.dropped.append(((key,), kind))  # kind holds the reason
                continue
            _put(out.doc(kind, self.name), path, sub)
        return out


def _put(doc: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    doc[path[-1]] = value


def _pem(value: Any) -> Any:
    """v1alpha1 holds PEM base64-encoded; the 1.14 documents hold the PEM itself."""
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


# ---- special translations -------------------------------------------------------------------


def _kubelet(value: Any, out: Translation) -> None:
    simple = {
        "image": ("KubeletConfig", ("image",)),
        "clusterDNS": ("KubeletConfig", ("clusterDNS",)),
        "extraArgs": ("KubeletConfig", ("extraArgs",)),
        "extraConfig": ("KubeletConfig", ("config",)),
        "defaultRuntimeSeccompProfileEnabled": ("KubeletConfig", ("defaultRuntimeSeccompProfileEnabled",)),
        "credentialProviderConfig": ("KubeCredentialProviderConfig", ("configuration",)),
        "registerWithFQDN": ("KubeNodeConfig", ("registerWithFQDN",)),
        "nodeIP": ("KubeNodeConfig", ("nodeIP",)),
        "skipNodeRegistration": ("KubeNodeConfig", ("skipNodeRegistration",)),
    }
    for key, sub in (value or {}).items():
        if key in simple:
            kind, path = simple[key]
            _put(out.doc(kind), path, sub)
        elif key == "disableManifestsDirectory":
            out.dropped.append(((key,), "always on with KubeletConfig (nothing to write)"))
        elif key == "extraMounts":
            out.dropped.append(
                ((key,), "removed in the 1.14 documents: use a CSI driver or a UserVolumeConfig instead")
            )
        else:
            out.dropped.append(((key,), "has no field in KubeletConfig"))


def _schedule_on_control_planes(value: Any, out: Translation) -> None:
    if value is True:
        out.doc("KubeNodeConfig").setdefault("taints", {})[CONTROL_PLANE_ROLE] = dict(DELETE)
    else:
        out.dropped.append(((), "false is the default: drop it"))


def _kube_prism(value: Any, out: Translation) -> None:
    value = value or {}
    if value.get("enabled") is False:
        out.delete("KubePrismConfig")
        return
    if value.get("port"):
        out.doc("KubePrismConfig")["port"] = value["port"]


def _talos_api_access(value: Any, out: Translation) -> None:
    value = value or {}
    if not value.get("enabled"):
        out.dropped.append((("enabled",), "disabled is the default: drop it"))
        return
    doc = out.doc("KubeTalosAPIAccessConfig")
    for key in ("allowedRoles", "allowedKubernetesNamespaces"):
        if key in value:
            doc[key] = value[key]


def _install(value: Any, out: Translation) -> None:
    value = value or {}
    doc = out.doc("UnattendedInstallConfig")
    if value.get("image"):
        doc["installer"] = {"image": value["image"]}
    provisioning: dict[str, Any] = {}
    if value.get("disk"):
        provisioning["diskSelector"] = {"match": disk_path_expression(str(value["disk"]))}
    elif value.get("diskSelector"):
        try:
            provisioning["diskSelector"] = {"match": disk_selector_expression(value["diskSelector"])}
        except ValueError as exc:
            out.dropped.append((("diskSelector",), str(exc)))
    if "wipe" in value:
        provisioning["wipe"] = value["wipe"]
    if provisioning:
        doc["provisioning"] = provisioning
    for key in value:
        if key in ("image", "disk", "diskSelector", "wipe"):
            continue
        why = {
            "extraKernelArgs": "UnattendedInstallConfig has none: put them in the Image Factory schematic "
            "(customization.extraKernelArgs)",
            "grubUseUKICmdline": "always on with UnattendedInstallConfig",
            "extensions": "removed: build the installer with the extensions (Image Factory schematic)",
        }.get(key, "has no field in UnattendedInstallConfig")
        out.dropped.append(((key,), why))


def _resolver(field_name: str) -> Callable[[Any, Translation], None]:
    def translate(value: Any, out: Translation) -> None:
        doc = out.doc("ResolverConfig")
        if field_name == "nameservers":
            doc["nameservers"] = [{"address": ns} for ns in value or []]
        elif field_name == "searchDomains":
            doc.setdefault("searchDomains", {})["domains"] = list(value or [])
        elif field_name == "disableSearchDomain":
            doc.setdefault("searchDomains", {})["disableDefault"] = bool(value)
        else:
            doc["hostDNS"] = value

    return translate


def _discovery(value: Any, out: Translation) -> None:
    value = value or {}
    if value.get("enabled") is False:
        out.delete("DiscoveryServiceConfig", "default")
        return
    service = (value.get("registries") or {}).get("service") or {}
    if service.get("disabled"):
        out.delete("DiscoveryServiceConfig", "default")
    elif service.get("endpoint"):
        out.doc("DiscoveryServiceConfig", "default")["endpoint"] = service["endpoint"]
    else:
        out.doc("DiscoveryServiceConfig", "default")["endpoint"] = DISCOVERY_ENDPOINT
    if ((value.get("registries") or {}).get("kubernetes") or {}).get("disabled") is False:
        out.dropped.append((("registries", "kubernetes"), "the Kubernetes registry has no 1.14 document"))


def _cluster_control_plane(value: Any, out: Translation) -> None:
    for key, sub in (value or {}).items():
        if key == "endpoint":
            out.doc("KubeClusterConfig")["endpoint"] = sub
        elif key == "localAPIServerPort":
            out.doc("KubeAPIServerConfig")["apiPort"] = sub
        else:
            out.dropped.append(((key,), "has no field in KubeClusterConfig"))


def _component(kind: str, extra: dict[str, str] | None = None) -> Callable[[Any, Translation], None]:
    """kube-apiserver / controller-manager / scheduler / proxy / CoreDNS sections."""
    renames = {"image": "image", "extraArgs": "extraArgs", "env": "env", "resources": "resources"}
    renames.update(extra or {})

    def translate(value: Any, out: Translation) -> None:
        for key, sub in (value or {}).items():
            if key == "disabled":
                out.doc(kind)["enabled"] = not sub
            elif key in renames:
                out.doc(kind)[renames[key]] = sub
            elif kind == "KubeAPIServerConfig" and key == "admissionControl":
                for plugin in sub or []:
                    name = plugin.get("name") if isinstance(plugin, dict) else None
                    doc = out.doc("KubeAdmissionControlConfig", name)
                    doc["configuration"] = (plugin or {}).get("configuration", {})
            elif kind == "KubeAPIServerConfig" and key == "auditPolicy":
                out.doc("KubeAuditPolicyConfig")["configuration"] = sub
            elif kind == "KubeAPIServerConfig" and key == "authorizationConfig":
                for auth in sub or []:
                    auth = auth if isinstance(auth, dict) else {}
                    doc = out.doc("KubeAuthorizerConfig", auth.get("name"))
                    doc["type"] = auth.get("type")
                    if auth.get("webhook"):
                        doc["webhook"] = auth["webhook"]
            elif key == "disablePodSecurityPolicy":
                out.dropped.append(((key,), "no effect since Kubernetes 1.25: drop it"))
            else:
                out.dropped.append(((key,), f"has no field in {kind}"))

    return translate


def _cluster_network(value: Any, out: Translation) -> None:
    for key, sub in (value or {}).items():
        if key in ("dnsDomain", "podSubnets", "serviceSubnets"):
            out.doc("KubeNetworkConfig")[key] = sub
        elif key == "cni":
            sub = sub or {}
            name = sub.get("name") or "flannel"
            if name in ("none", "custom"):
                out.delete("KubeFlannelCNIConfig")
            for i, url in enumerate(sub.get("urls") or []):
                out.doc("KubeExternalManifestConfig", "custom-cni" + (f"-{i + 1}" if i else ""))["url"] = url
            flannel = sub.get("flannel") or {}
            if flannel.get("extraArgs"):
                out.doc("KubeFlannelCNIConfig")["extraArgs"] = flannel["extraArgs"]
            if "kubeNetworkPoliciesEnabled" in flannel:
                out.doc("KubeFlannelCNIConfig")["kubeNetworkPoliciesEnabled"] = flannel[
                    "kubeNetworkPoliciesEnabled"
                ]
        else:
            out.dropped.append(((key,), "has no field in KubeNetworkConfig"))


def _issuing_ca(kind: str) -> Callable[[Any, Translation], None]:
    def translate(value: Any, out: Translation) -> None:
        value = value or {}
        if not value.get("key") and kind == "KubeAPIServerCAConfig":
            # a worker holds the certificate only: it accepts the CA, it does not issue
            out.doc(kind)["acceptedCAs"] = [_pem(value.get("crt"))]
            return
        ca = {"cert": _pem(value.get("crt"))}
        if value.get("key"):
            ca["key"] = _pem(value["key"])
        out.doc(kind)["issuingCA"] = ca

    return translate


def _accepted_cas(value: Any, out: Translation) -> None:
    out.doc("KubeAPIServerCAConfig")["acceptedCAs"] = [
        _pem(ca.get("crt")) if isinstance(ca, dict) else ca for ca in value or []
    ]


def _service_account(value: Any, out: Translation) -> None:
    out.doc("KubeServiceAccountConfig")["issuer"] = {"privateKey": _pem((value or {}).get("key"))}


def _etcd_encryption(provider: str) -> Callable[[Any, Translation], None]:
    # key names as Talos renders a v1alpha1 secret: secretbox "key2", aescbc "key1"
    name = "key2" if provider == "secretbox" else "key1"

    def translate(value: Any, out: Translation) -> None:
        keys = [{"name": name, "secret": value}]
        out.doc("KubeEtcdEncryptionConfig")["config"] = {
            "resources": [{"providers": [{provider: {"keys": keys}}], "resources": ["secrets"]}]
        }

    return translate


def _named_list(kind: str, key: str, name_of: Callable[[Any, int], str], body: Callable[[Any], dict]):
    def translate(value: Any, out: Translation) -> None:
        for i, item in enumerate(value or []):
            out.doc(kind, name_of(item, i)).update(body(item))

    return translate


def _control_plane_component(kind: str) -> Callable[[Any, Translation], None]:
    def translate(value: Any, out: Translation) -> None:
        if (value or {}).get("disabled"):
            out.doc(kind)["enabled"] = False
        else:
            out.dropped.append(((), "enabled is the default: drop it"))

    return translate


def _manifest_name(url: Any, i: int) -> str:
    tail = str(url).rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9-]+", "-", tail.lower()).strip("-") or f"manifest-{i + 1}"


# ---- the map ----------------------------------------------------------------------------------

MOVES: tuple[Moved, ...] = (
    # machine
    Moved(("machine", "kubelet"), ("KubeletConfig", "KubeNodeConfig", "KubeCredentialProviderConfig"),
          exclusive=("KubeletConfig", "KubeCredentialProviderConfig"), special=_kubelet),
    Moved(("machine", "nodeLabels"), ("KubeNodeConfig",), ("KubeNodeConfig",),
          {"": ("KubeNodeConfig", ("labels",))}),
    Moved(("machine", "nodeAnnotations"), ("KubeNodeConfig",), ("KubeNodeConfig",),
          {"": ("KubeNodeConfig", ("annotations",))}),
    Moved(("machine", "nodeTaints"), ("KubeNodeConfig",), ("KubeNodeConfig",),
          {"": ("KubeNodeConfig", ("taints",))}),
    Moved(("machine", "features", "kubePrism"), ("KubePrismConfig",), ("KubePrismConfig",),
          special=_kube_prism),
    Moved(("machine", "features", "kubernetesTalosAPIAccess"), ("KubeTalosAPIAccessConfig",),
          ("KubeTalosAPIAccessConfig",), special=_talos_api_access),
    Moved(("machine", "features", "hostDNS"), ("ResolverConfig",), ("ResolverConfig",),
          special=_resolver("hostDNS")),
    Moved(("machine", "features", "imageCache"), ("ImageCacheConfig",), ("ImageCacheConfig",),
          {"localEnabled": ("ImageCacheConfig", ("local", "enabled"))}),
    Moved(("machine", "network", "searchDomains"), ("ResolverConfig",), ("ResolverConfig",),
          special=_resolver("searchDomains")),
    Moved(("machine", "network", "disableSearchDomain"), ("ResolverConfig",), ("ResolverConfig",),
          special=_resolver("disableSearchDomain")),
    Moved(("machine", "install"), ("UnattendedInstallConfig",), ("UnattendedInstallConfig",),
          special=_install),
    Moved(("machine", "baseRuntimeSpecOverrides"), ("CRIBaseRuntimeSpecConfig",),
          ("CRIBaseRuntimeSpecConfig",), {"": ("CRIBaseRuntimeSpecConfig", ("overrides",))}),
    Moved(("machine", "controlPlane", "controllerManager"), ("KubeControllerManagerConfig",),
          ("KubeControllerManagerConfig",), special=_control_plane_component("KubeControllerManagerConfig")),
    Moved(("machine", "controlPlane", "scheduler"), ("KubeSchedulerConfig",), ("KubeSchedulerConfig",),
          special=_control_plane_component("KubeSchedulerConfig")),
    Moved(("machine", "sysctls"), ("SysctlConfig",), fields={"": ("SysctlConfig", ("params",))}),
    Moved(("machine", "sysfs"), ("SysfsConfig",), fields={"": ("SysfsConfig", ("params",))}),
    Moved(("machine", "kernel", "modules"), ("KernelModuleConfig",),
          special=_named_list("KernelModuleConfig", "modules", lambda m, i: str((m or {}).get("name")),
                              lambda m: {k: v for k, v in (m or {}).items() if k == "parameters"})),
    Moved(("machine", "udev", "rules"), ("UdevRulesConfig",), fields={"": ("UdevRulesConfig", ("rules",))}),
    Moved(("machine", "env"), ("EnvironmentConfig",), fields={"": ("EnvironmentConfig", ("variables",))}),
    Moved(("machine", "pods"), ("KubeStaticPodConfig",),
          special=_named_list("KubeStaticPodConfig", "pods",
                              lambda p, i: str(((p or {}).get("metadata") or {}).get("name") or f"pod-{i + 1}"),
                              lambda p: {"pod": p})),
    # cluster
    Moved(("cluster", "id"), ("DiscoveryIdentityConfig",), ("DiscoveryIdentityConfig",),
          {"": ("DiscoveryIdentityConfig", ("clusterID",))}),
    Moved(("cluster", "secret"), ("DiscoveryIdentityConfig",), ("DiscoveryIdentityConfig",),
          {"": ("DiscoveryIdentityConfig", ("clusterSecret",))}),
    Moved(("cluster", "discovery"), ("DiscoveryServiceConfig",), ("DiscoveryServiceConfig",),
          special=_discovery),
    Moved(("cluster", "clusterName"), ("KubeClusterConfig",), ("KubeClusterConfig",),
          {"": ("KubeClusterConfig", ("clusterName",))}),
    Moved(("cluster", "controlPlane"), ("KubeClusterConfig", "KubeAPIServerConfig"),
          ("KubeClusterConfig", "KubeAPIServerConfig"), special=_cluster_control_plane),
    Moved(("cluster", "allowSchedulingOnControlPlanes"), ("KubeNodeConfig",), ("KubeNodeConfig",),
          special=_schedule_on_control_planes),
    Moved(("cluster", "allowSchedulingOnMasters"), ("KubeNodeConfig",), ("KubeNodeConfig",),
          special=_schedule_on_control_planes),
    Moved(("cluster", "network"), ("KubeNetworkConfig", "KubeFlannelCNIConfig", "KubeExternalManifestConfig"),
          ("KubeNetworkConfig", "KubeFlannelCNIConfig"), special=_cluster_network),
    Moved(("cluster", "ca"), ("KubeAPIServerCAConfig",), ("KubeAPIServerCAConfig",),
          special=_issuing_ca("KubeAPIServerCAConfig")),
    Moved(("cluster", "acceptedCAs"), ("KubeAPIServerCAConfig",), special=_accepted_cas),
    Moved(("cluster", "aggregatorCA"), ("KubeAggregatorCAConfig",), ("KubeAggregatorCAConfig",),
          special=_issuing_ca("KubeAggregatorCAConfig")),
    Moved(("cluster", "serviceAccount"), ("KubeServiceAccountConfig",), ("KubeServiceAccountConfig",),
          special=_service_account),
    Moved(("cluster", "secretboxEncryptionSecret"), ("KubeEtcdEncryptionConfig",), ("KubeEtcdEncryptionConfig",),
          special=_etcd_encryption("secretbox")),
    Moved(("cluster", "aescbcEncryptionSecret"), ("KubeEtcdEncryptionConfig",), ("KubeEtcdEncryptionConfig",),
          special=_etcd_encryption("aescbc")),
    Moved(("cluster", "apiServer"),
          ("KubeAPIServerConfig", "KubeAdmissionControlConfig", "KubeAuditPolicyConfig", "KubeAuthorizerConfig"),
          ("KubeAPIServerConfig",), special=_component("KubeAPIServerConfig", {"certSANs": "certExtraSANs"})),
    Moved(("cluster", "controllerManager"), ("KubeControllerManagerConfig",), ("KubeControllerManagerConfig",),
          special=_component("KubeControllerManagerConfig")),
    Moved(("cluster", "scheduler"), ("KubeSchedulerConfig",), ("KubeSchedulerConfig",),
          special=_component("KubeSchedulerConfig", {"config": "config"})),
    Moved(("cluster", "proxy"), ("KubeProxyConfig",), ("KubeProxyConfig",),
          special=_component("KubeProxyConfig", {"mode": "mode"})),
    Moved(("cluster", "coreDNS"), ("KubeCoreDNSConfig",), ("KubeCoreDNSConfig",),
          special=_component("KubeCoreDNSConfig")),
    Moved(("cluster", "extraManifests"), ("KubeExternalManifestConfig",),
          special=_named_list("KubeExternalManifestConfig", "extraManifests", _manifest_name,
                              lambda url: {"url": url})),
    Moved(("cluster", "inlineManifests"), ("KubeInlineManifestConfig",),
          special=_named_list("KubeInlineManifestConfig", "inlineManifests",
                              lambda m, i: str((m or {}).get("name") or f"manifest-{i + 1}"),
                              lambda m: {"manifest": (m or {}).get("contents", "")})),
)  # fmt: skip

# Sections the 1.12+ network rules already check against HostnameConfig / ResolverConfig.
CHECKED_ELSEWHERE: frozenset[Path] = frozenset(
    {("machine", "network", "hostname"), ("machine", "features", "stableHostname"),
     ("machine", "network", "nameservers")}
)  # fmt: skip


def lookup(doc: dict[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path`` in ``doc`` (None when any step is missing)."""
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def moved_at(path: Sequence[str]) -> Moved | None:
    """The entry whose section holds ``path`` (``machine.kubelet.extraArgs`` → the kubelet entry)."""
    for m in MOVES:
        if tuple(path[: len(m.old)]) == m.old:
            return m
    return None


# ---- CEL install disk selectors (Talos's ``InstallConfig.DiskMatchExpression``) ----------------

_SIZE = re.compile(r"^\s*(>=|<=|>|<|==)?\s*(.+?)\s*$")
_UNITS = {
    "": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12, "p": 10**15, "pb": 10**15, "ki": 2**10, "kib": 2**10, "mi": 2**20,
    "mib": 2**20, "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40, "pi": 2**50, "pib": 2**50,
}  # fmt: skip


def parse_size(text: str) -> int:
    """``500GB``/``1.5TiB``/``1000000`` → bytes (go-humanize's ParseBytes units)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", text.strip().replace(",", ""))
    if not m or m[2].lower() not in _UNITS:
        raise ValueError(f"cannot read disk size {text!r} (like 500GB or 1TiB)")
    return int(float(m[1]) * _UNITS[m[2].lower()])


def disk_selector_expression(selector: dict[str, Any]) -> str:
    """A v1alpha1 ``installDiskSelector`` as the CEL expression Talos 1.14 evaluates for it
    (same conditions in the same order: size, uuid, wwid, model, serial, modalias, a
    transport, type, bus path, not read-only, not a CD-ROM). ``name`` has no CEL form."""
    exprs: list[str] = []
    if selector.get("size") not in (None, ""):
        m = _SIZE.match(str(selector["size"]))
        op = (m[1] if m else None) or "=="
        exprs.append(f"disk.size {op} {parse_size(m[2] if m else '')}u")
    for key, attr in (("uuid", "uuid"), ("wwid", "wwid"), ("model", "model")):
        if selector.get(key):
            exprs.append(f"glob({go_quote(str(selector[key]))}, disk.{attr})")
    if selector.get("name"):
        raise ValueError("an install disk selector on `name` has no 1.14 form (Talos: not supported)")
    for key, attr in (("serial", "serial"), ("modalias", "modalias")):
        if selector.get(key):
            exprs.append(f"glob({go_quote(str(selector[key]))}, disk.{attr})")
    exprs.append('disk.transport != ""')
    kind = selector.get("type")
    if kind:
        forms = {
            "nvme": 'disk.transport == "nvme"',
            "sd": 'disk.transport == "mmc"',
            "hdd": "disk.rotational",
            "ssd": "!disk.rotational",
        }
        if kind not in forms:
            raise ValueError(f"unsupported install disk type {kind!r} (nvme, sd, hdd or ssd)")
        exprs.append(forms[kind])
    if selector.get("busPath"):
        exprs.append(f"glob({go_quote(str(selector['busPath']))}, disk.bus_path)")
    exprs += ["!disk.readonly", "!disk.cdrom"]
    return " && ".join(exprs)


# ---- hints ----------------------------------------------------------------------------------


def redacted(value: Any, key: str = "") -> Any:
    """``value`` with secret values replaced (hints are printed)."""
    if isinstance(value, dict):
        return {k: redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if key in SECRET_KEYS and isinstance(value, str) and value:
        return REDACTED
    return value


def replacement_yaml(translation: Translation) -> str:
    """The replacement documents as YAML (secret values redacted), ready to paste."""
    import yaml

    docs = [redacted(d) for d in translation.documents]
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True, width=100).rstrip()
