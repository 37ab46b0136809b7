"""``invoke talos.gen-config NAME ENDPOINT``: the ``talosctl gen config`` equivalent."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Context

from taltasks.errors import InputError
from taltasks.tasks._cli import command, split_list

COLLECTION = "talos"


@command(
    name="gen-config",
    auto_shortflags=False,
    iterable=[
        "config_patch",
        "config_patch_control_plane",
        "config_patch_worker",
        "additional_sans",
        "registry_mirror",
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
