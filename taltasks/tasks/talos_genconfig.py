"""``invoke talos.gen-config NAME ENDPOINT``: the ``talosctl gen config`` equivalent."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Context

from taltasks.errors import InputError
from taltasks.tasks._cli import Whole, command, split_list

COLLECTION = "talos"


@command(
    numbers={"local_api_server_port": Whole(1, 65535)},
    name="gen-config",
    auto_shortflags=False,
    iterable=[
        "config_patch",
        "config_patch_control_plane",
        "config_patch_worker",
        "additional_sans",
        "registry_mirror",
        "sysctl",
        "install_extra_kernel_args",
    ],
    help={
        "with-secrets": "use this secrets bundle (talosctl gen secrets / talsecret format); default: new secrets",
        "config-patch": "patch for all machine types: @file or inline YAML/JSON (repeatable)",
        "config-patch-control-plane": "patch for control planes only (repeatable)",
        "config-patch-worker": "patch for workers only (repeatable)",
        "talos-version": "version contract to generate for, e.g. v1.12.3 (default: the newest supported)",
        "kubernetes-version": "Kubernetes version (default: the contract's default)",
        "install-disk": "install disk (default /dev/sda; '' leaves it out)",
        "install-image": "installer image (default ghcr.io/siderolabs/installer:<talos version>; '' leaves it out)",
        "additional-sans": "extra certificate SANs, for the machine and the API server (comma list or repeat)",
        "dns-domain": "cluster DNS domain (default cluster.local)",
        "registry-mirror": "registry mirror as host=url (repeatable)",
        "sysctl": "kernel parameter as key=value (repeatable)",
        "custom-cni-url": "use a custom CNI from this manifest URL instead of Flannel",
        "local-api-server-port": "port the API server listens on, on control planes",
        "allow-scheduling-on-control-planes": "let workloads run on control planes (no NoSchedule taint)",
        "install-extra-kernel-args": "extra kernel args for the installer (comma list or repeat; up to 1.13)",
        "output": "output directory (default: current directory)",
        "force": "overwrite existing output files",
        "mode": "validation mode: metal (default), cloud or container",
        "validate": "check the generated configs with Talos's rules and the JSON schema (default on)",
    },
)
def gen_config(
    c: Context,
    name: str,
    endpoint: str,
    with_secrets: str | None = None,
    config_patch=None,
    config_patch_control_plane=None,
    config_patch_worker=None,
    talos_version: str | None = None,
    kubernetes_version: str | None = None,
    install_disk: str = "/dev/sda",
    install_image: str | None = None,
    additional_sans=None,
    dns_domain: str = "cluster.local",
    registry_mirror=None,
    sysctl=None,
    custom_cni_url: str | None = None,
    local_api_server_port: int | None = None,
    allow_scheduling_on_control_planes: bool = False,
    install_extra_kernel_args=None,
    output: str = ".",
    force: bool = False,
    mode: str = "metal",
    validate: bool = True,
):
    """Generate controlplane.yaml, worker.yaml and talosconfig for cluster NAME at ENDPOINT."""
    from taltasks.machineconfig.genconfig import GenConfigOptions
    from taltasks.machineconfig.genconfig import gen_config as generate
    from taltasks.machineconfig.secrets import SecretsBundle
    from taltasks.workflows.configure import write_private

    if mode not in ("metal", "cloud", "container"):
        raise InputError(f"--mode must be metal, cloud or container, not {mode!r}")
    secrets = None
    if with_secrets:
        path = Path(with_secrets)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read secrets: {exc.strerror}", where=str(path)) from None
        secrets = SecretsBundle.from_yaml(text, where=str(path))
    mirrors: dict[str, list[str]] = {}
    for item in split_list(registry_mirror):
        host, sep, url = item.partition("=")
        if not sep or not host or not url:
            raise InputError(f"--registry-mirror {item!r} is not host=url")
        mirrors.setdefault(host, []).append(url)
    sysctls: dict[str, str] = {}
    for item in [sysctl] if isinstance(sysctl, str) else list(sysctl or []):  # values may hold commas
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(
                f"--sysctl {item!r} is not key=value", hint="e.g. --sysctl vm.max_map_count=262144"
            )
        sysctls[key] = value
    result = generate(
        GenConfigOptions(
            cluster_name=name,
            endpoint=endpoint,
            secrets=secrets,
            talos_version=talos_version,
            kubernetes_version=kubernetes_version,
            install_disk=install_disk,
            install_image=install_image,
            additional_sans=split_list(additional_sans),
            dns_domain=dns_domain,
            registry_mirrors=mirrors,
            sysctls=sysctls,
            custom_cni_url=custom_cni_url or None,
            local_api_server_port=local_api_server_port,  # 1-65535, checked as the command line is read
            allow_scheduling_on_control_planes=allow_scheduling_on_control_planes,
            install_extra_kernel_args=split_list(install_extra_kernel_args),
            config_patches=list(config_patch or []),
            control_plane_patches=list(config_patch_control_plane or []),
            worker_patches=list(config_patch_worker or []),
            mode=mode,  # type: ignore[arg-type]
            validate=validate,
        ),
        patch_base=Path.cwd(),
    )
    for warning in result.warnings:
        print(f"warning: {warning.render()}", file=sys.stderr)
    out = Path(output)
    files = result.files()
    existing = [n for n in files if (out / n).exists()]
    if existing and not force:
        raise InputError(
            f"{', '.join(existing)} already exist in {out}", hint="pass --force to overwrite, or --output DIR"
        )
    for filename, data in files.items():
        write_private(out / filename, data)
        print(f"wrote {out / filename}", file=sys.stderr)
