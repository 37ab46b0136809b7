"""`invoke talos.gen-config` reproduces Talos's own golden files (stability tests upstream).

Upstream generates, per version contract, cluster `base` at `https://base:6443` with
Kubernetes 1.28.0 and a fixed secrets bundle, once with no options (`base`) and once with
SANs, DNS domain, install disk, kernel args, local API port, sysctl, custom CNI, a registry
mirror and `patch.yaml` (`overrides`); see shared/reference/upstream/SOURCES.md. The files
are compared as parsed YAML documents.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from configure_support import run_invoke
from taltasks.errors import InputError
from taltasks.machineconfig.encode import load_documents
from taltasks.machineconfig.genconfig import GenConfigOptions, gen_config
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.talos.config import TalosConfig

OVERRIDES = """\
machine:
  install:
    extraKernelArgs: [foo=bar, bar=baz]
  sysctls:
    foo: bar
cluster:
  network:
    cni:
      name: custom
      urls: [https://example.com/cni.yaml]
"""
CONTROL_PLANE = (
    "cluster:\n  allowSchedulingOnControlPlanes: true\n  controlPlane:\n    localAPIServerPort: 5443\n"
)


def stability_args(upstream: Path, version: str, flavor: str, tmp: Path) -> list[str]:
    stability = upstream / "talos-stability"
    args = [
        "talos.gen-config", "base", "https://base:6443",
        "--with-secrets", str(stability / "secrets.yaml"),
        "--talos-version", version, "--kubernetes-version", "1.28.0",
        "--install-image", "", "--output", str(tmp),
    ]  # fmt: skip
    if flavor == "base":
        return [*args, "--install-disk", "", "--mode", "cloud"]
    (tmp / "overrides.yaml").write_text(OVERRIDES)
    (tmp / "cp.yaml").write_text(CONTROL_PLANE)
    return [
        *args,
        "--additional-sans", "foo,bar", "--dns-domain", "example.com", "--install-disk", "/dev/vda",
        "--registry-mirror", "ghcr.io=https://ghcr.io.my-mirror.com",
        "--config-patch", f"@{tmp / 'overrides.yaml'}", "--config-patch", f"@{stability / 'patch.yaml'}",
        "--config-patch-control-plane", f"@{tmp / 'cp.yaml'}",
        # upstream's 1.12 overrides combine install.extraKernelArgs with grubUseUKICmdline, which
        # Talos's own validator rejects (see the test below); the golden file is not validated.
        "--no-validate",
    ]  # fmt: skip


@pytest.mark.parametrize("flavor", ["base", "overrides"])
@pytest.mark.parametrize("version", ["v1.11", "v1.12"])
def test_reproduces_upstream_stability_files(upstream_data, tmp_path, version, flavor):
    proc = run_invoke(*stability_args(upstream_data, version.lstrip("v"), flavor, tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for role in ("controlplane", "worker"):
        expected = list(
            yaml.safe_load_all(
                (upstream_data / "talos-stability" / version / f"{flavor}-{role}.yaml").read_text()
            )
        )
        got = load_documents((tmp_path / f"{role}.yaml").read_bytes())
        assert got == expected, f"{version} {flavor}-{role} differs"
    talosconfig = TalosConfig.load(tmp_path / "talosconfig")
    assert talosconfig.current == "base" and talosconfig.context().endpoints == []


def test_our_validator_rejects_upstreams_112_overrides_like_talos_does(upstream_data):
    secrets = SecretsBundle.from_yaml((upstream_data / "talos-stability" / "secrets.yaml").read_text())
    with pytest.raises(InputError) as info:
        gen_config(
            GenConfigOptions(
                "base", "https://base:6443", secrets=secrets, talos_version="1.12", config_patches=[OVERRIDES]
            )
        )
    assert (
        "install.extraKernelArgs and install.grubUseUKICmdline can't be used together" in info.value.message
    )


def test_defaults_are_talosctls(tmp_path):
    result = gen_config(GenConfigOptions("lab", "https://127.0.20.10:6443", talos_version="v1.12.4"))
    cp = result.controlplane[0]
    assert cp["machine"]["install"] == {
        "disk": "/dev/sda",
        "image": "ghcr.io/siderolabs/installer:v1.12.4",
        "wipe": False,
        "grubUseUKICmdline": True,
    }
    assert cp["machine"]["kubelet"]["image"] == "ghcr.io/siderolabs/kubelet:v1.35.0"
    assert result.controlplane[-1] == {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}
    assert result.talosconfig.context().crt is not None


def test_refuses_existing_files_and_bad_arguments(tmp_path):
    (tmp_path / "worker.yaml").write_text("keep me\n")
    proc = run_invoke(
        "talos.gen-config",
        "lab",
        "https://127.0.20.10:6443",
        "--talos-version",
        "1.13",
        "--output",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert (
        proc.returncode == 2 and "worker.yaml already exist" in proc.stderr and "Traceback" not in proc.stderr
    )
    assert (tmp_path / "worker.yaml").read_text() == "keep me\n"
    proc = run_invoke(
        "talos.gen-config", "lab", "127.0.20.10:6443", "--output", str(tmp_path / "x"), cwd=tmp_path
    )
    assert proc.returncode == 2 and "https" in proc.stderr
    proc = run_invoke(
        "talos.gen-config",
        "lab",
        "https://127.0.20.10:6443",
        "--talos-version",
        "1.14",
        "--output",
        str(tmp_path / "x"),
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "not a version contract taltasks generates" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_inline_and_file_patches_and_json_patch_restriction(tmp_path):
    (tmp_path / "w.yaml").write_text("machine:\n  nodeLabels:\n    role: storage\n")
    result = gen_config(
        GenConfigOptions(
            "lab",
            "https://127.0.20.10:6443",
            talos_version="1.11",
            config_patches=[
                '[{"op": "add", "path": "/machine/sysctls", "value": {"vm.max_map_count": "262144"}}]'
            ],
            worker_patches=["@w.yaml"],
        ),
        patch_base=tmp_path,
    )
    assert result.worker[0]["machine"]["nodeLabels"] == {"role": "storage"}
    assert result.controlplane[0]["machine"]["sysctls"] == {"vm.max_map_count": "262144"}
    with pytest.raises(InputError, match="not supported for multi-document"):
        gen_config(
            GenConfigOptions("lab", "https://127.0.20.10:6443", talos_version="1.12", config_patches=["[]"])
        )
