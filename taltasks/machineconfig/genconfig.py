"""``talosctl gen config`` in Python: controlplane.yaml, worker.yaml and talosconfig.

For users who do not keep a talconfig.yaml, and as the reference point against Talos's own
golden files: with the upstream stability secrets, ``gen_config`` reproduces the
``base``/``overrides`` configs of every supported contract, 1.8 to 1.14 (compared as parsed
documents). Defaults are talosctl's (talos-config-gen.md §2.1): install disk ``/dev/sda``,
the stock installer image (from 1.14 the Image Factory's installer of the empty schematic,
as ``ghcr.io/siderolabs/installer`` is no longer published), DNS domain ``cluster.local``,
the contract's default Kubernetes version; additional SANs go to both the machine and the
API server certificate. The options talosctl's library has beyond its command line (sysctls,
a custom CNI URL, the local API server port, scheduling on control planes, extra kernel
args) are here too, so every option of upstream's stability test can be given.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.encode import dump_documents
from taltasks.machineconfig.generate import GenInput, base_documents
from taltasks.machineconfig.keyorder import canonical_order
from taltasks.machineconfig.patches import Patch, apply_patch, parse_patch
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.machineconfig.talosconfig import build_talosconfig
from taltasks.machineconfig.validate import Finding, Mode, Origins, checked_documents, checked_patch
from taltasks.model.schematic import installer_image
from taltasks.model.syntax import endpoint_problem
from taltasks.model.versions import DEFAULT_KUBERNETES, LATEST_CONTRACT, Version
from taltasks.talos.config import TalosConfig

DEFAULT_INSTALL_DISK = "/dev/sda"


@dataclass
class GenConfigOptions:
    cluster_name: str
    endpoint: str
    secrets: SecretsBundle | None = None
    talos_version: str | None = None  # "v1.12.3" or "1.12"; default: the newest contract
    kubernetes_version: str | None = None
    install_disk: str = DEFAULT_INSTALL_DISK  # "" leaves it out
    install_image: str | None = None  # None: the stock installer; "" leaves it out
    additional_sans: list[str] = field(default_factory=list)
    dns_domain: str = "cluster.local"
    registry_mirrors: dict[str, list[str]] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    custom_cni_url: str | None = None
    local_api_server_port: int | None = None
    allow_scheduling_on_control_planes: bool = False
    install_extra_kernel_args: list[str] = field(default_factory=list)
    config_patches: list[str] = field(default_factory=list)
    control_plane_patches: list[str] = field(default_factory=list)
    worker_patches: list[str] = field(default_factory=list)
    mode: Mode = "metal"
    validate: bool = True


@dataclass
class GeneratedConfig:
    controlplane: list[dict[str, Any]]
    worker: list[dict[str, Any]]
    talosconfig: TalosConfig
    secrets: SecretsBundle
    contract: VersionContract
    warnings: list[Finding] = field(default_factory=list)

    def files(self, *, indent: int = 4) -> dict[str, bytes]:
        return {
            "controlplane.yaml": dump_documents(self.controlplane, indent=indent),
            "worker.yaml": dump_documents(self.worker, indent=indent),
            "talosconfig": self.talosconfig.to_yaml().encode(),
        }


def load_patch_arguments(values: list[str], flag: str, base: Path | None = None) -> list[Patch]:
    """Patches as talosctl reads them: ``@file``, a bare file name (no spaces, newlines, not
    starting with ``[``/``{``) or inline YAML/JSON."""
    out: list[Patch] = []
    for value in values:
        text, source = value, f"{flag} {value[:40]!r}"
        name = value[1:] if value.startswith("@") else None
        if name is None and value and not any(c in value for c in " \n") and value[0] not in "[{":
            name = value
        if name is not None:
            path = Path(name) if base is None or Path(name).is_absolute() else base / name
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(
                    f"cannot read patch file: {exc.strerror}", where=str(path), hint=f"given to {flag}"
                ) from None
            source = str(path)
        patch = parse_patch(text, source)
        if patch is not None:
            out.append(patch)
    return out


def _version_for_image(talos_version: str | None, contract: VersionContract) -> str:
    if talos_version:
        try:
            v = Version.parse(talos_version)
            if talos_version.count(".") >= 2:
                return str(v)
        except ValueError:
            pass
    return f"v{contract.major}.{contract.minor}.0"


def default_installer(talos_version: str | None, contract: VersionContract) -> str:
    """talosctl's default ``--install-image`` for the version generated for (the Image
    Factory's installer of the empty schematic from 1.14)."""
    return installer_image(_version_for_image(talos_version, contract))


def gen_config(opts: GenConfigOptions, *, patch_base: Path | None = None) -> GeneratedConfig:
    problem = endpoint_problem(opts.endpoint, require_https=True)
    if problem:
        raise InputError(
            problem, where="ENDPOINT", hint="give the Kubernetes API URL, like https://192.0.2.10:6443"
        )
    contract = (
        VersionContract.parse(opts.talos_version, where="--talos-version")
        if opts.talos_version
        else VersionContract(*LATEST_CONTRACT)
    )
    secrets = opts.secrets or SecretsBundle.generate(contract)
    k8s = opts.kubernetes_version or DEFAULT_KUBERNETES[contract.key]
    try:
        Version.parse(k8s)
    except ValueError as exc:
        raise InputError(str(exc), where="--kubernetes-version") from None
    image = (
        default_installer(opts.talos_version, contract) if opts.install_image is None else opts.install_image
    )
    cni = {"name": "custom", "urls": [opts.custom_cni_url]} if opts.custom_cni_url else None
    warnings: list[Finding] = []
    if opts.install_extra_kernel_args and contract.unattended_install_config:
        warnings.append(
            Finding(
                "warning",
                f"contract {contract} has no place for install extra kernel args (UnattendedInstallConfig "
                "has none): not written",
                document="UnattendedInstallConfig",
                location="--install-extra-kernel-args",
                hint="put kernel arguments in the Image Factory schematic of the installer",
            )
        )
    inp = GenInput(
        cluster_name=opts.cluster_name,
        endpoint=opts.endpoint,
        contract=contract,
        secrets=secrets,
        kubernetes_version=k8s,
        install_disk=opts.install_disk or None,
        install_image=image or None,
        machine_cert_sans=list(opts.additional_sans),
        api_server_cert_sans=list(opts.additional_sans),
        dns_domain=opts.dns_domain,
        registry_mirrors=dict(opts.registry_mirrors),
        sysctls=dict(opts.sysctls),
        cni=cni,
        local_api_server_port=opts.local_api_server_port,
        allow_scheduling_on_control_planes=opts.allow_scheduling_on_control_planes,
        install_extra_kernel_args=list(opts.install_extra_kernel_args),
    )
    common = load_patch_arguments(opts.config_patches, "--config-patch", patch_base)
    cp_patches = load_patch_arguments(opts.control_plane_patches, "--config-patch-control-plane", patch_base)
    worker_patches = load_patch_arguments(opts.worker_patches, "--config-patch-worker", patch_base)
    result: dict[str, list[dict[str, Any]]] = {}
    for role, extra in (("controlplane", cp_patches), ("worker", worker_patches)):
        docs = copy.deepcopy(base_documents(inp, role))  # type: ignore[arg-type]
        origins = Origins()
        for patch in (*common, *extra):
            if opts.validate:
                patch = checked_patch(patch, contract)
            docs = apply_patch(docs, patch, origins=origins)
        canonical_order(docs)
        if opts.validate:
            title = f"the generated {role} config is not valid for Talos {contract} ({opts.mode} mode)"
            warnings += checked_documents(docs, contract, title=title, mode=opts.mode, origins=origins)
        result[role] = docs
    talosconfig = build_talosconfig(opts.cluster_name, secrets)
    return GeneratedConfig(
        result["controlplane"], result["worker"], talosconfig, secrets, contract, warnings=warnings
    )
