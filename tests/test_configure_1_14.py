"""`invoke configure` on the shipped Talos 1.14 repository: what lands where, and bad input
specific to the 1.14 contract — each refused with its file:line or node, nothing written.

Every case starts from a copy of the shipped ``talos/`` (Talos v1.14.7, patches as 1.14
documents), breaks one thing, runs configure with permission to create files, and checks
the error and that the tree is byte-for-byte and mtime-for-mtime unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from configure_support import copy_demo, edit, line_of, refused
from taltasks.errors import InputError
from taltasks.model.schematic import VANILLA_ID
from taltasks.workflows.configure import configure

TALCONFIG = Path("talos/talconfig.yaml")
KUBELET = Path("talos/patches/global/machine-kubelet.yaml")
CLUSTER = Path("talos/patches/controller/cluster.yaml")


@pytest.fixture
def repo(tmp_path):
    return copy_demo(tmp_path / "repo", shipped=True)


def text_of(err: InputError) -> str:
    return err.render()


def test_shipped_repository_generates_1_14_documents(repo):
    configure(repo, confirm_new_secrets=lambda _path: True)
    out = repo / "talos" / "clusterconfig"
    cp = list(yaml.safe_load_all((out / "demo-cp-1.yaml").read_text()))
    worker = list(yaml.safe_load_all((out / "demo-worker-1.yaml").read_text()))
    kinds = {d.get("kind") for d in cp}
    assert {
        "KubeletConfig",
        "KubeNodeConfig",
        "KubeProxyConfig",
        "UnattendedInstallConfig",
        "SysctlConfig",
    } <= kinds
    by = {(d.get("kind"), d.get("name")): d for d in cp}
    assert by[("KubeletConfig", None)]["extraArgs"] == {"rotate-server-certificates": "true"}
    assert by[("KubeProxyConfig", None)]["enabled"] is False
    assert by[("KubeControllerManagerConfig", None)]["extraArgs"] == {"bind-address": "0.0.0.0"}
    assert by[("KubeTalosAPIAccessConfig", None)]["allowedKubernetesNamespaces"] == ["system-upgrade"]
    assert by[("SysctlConfig", None)]["params"]["fs.inotify.max_user_watches"] == "1048576"
    assert cp[0]["cluster"]["etcd"]["advertisedSubnets"] == ["127.0.10.0/24"]
    # nothing of the old form is left in the v1alpha1 document
    assert "kubelet" not in cp[0]["machine"] and "proxy" not in cp[0]["cluster"]
    assert "sysctls" not in cp[0]["machine"] and "install" not in cp[0]["machine"]
    # install disk and Factory installer (the empty schematic's ID on control planes)
    install = by[("UnattendedInstallConfig", None)]
    assert install["provisioning"]["diskSelector"]["match"] == 'disk.dev_path == "/dev/sda"'
    assert install["installer"]["image"] == f"factory.talos.dev/metal-installer/{VANILLA_ID}:v1.14.7"
    wby = {(d.get("kind"), d.get("name")): d for d in worker}
    assert ("KernelModuleConfig", "rbd") in wby and ("KernelModuleConfig", "nbd") in wby
    assert wby[("KubeNodeConfig", None)]["labels"] == {"topology.kubernetes.io/zone": "zone-a"}
    assert "ghcr.io/siderolabs/installer" not in wby[("UnattendedInstallConfig", None)]["installer"]["image"]
    assert not any(d.get("kind") in ("KubeProxyConfig", "KubeAPIServerConfig") for d in worker)


def test_install_disk_selector_becomes_a_cel_selector(repo):
    edit(
        repo / TALCONFIG,
        "    ipAddress: 127.0.10.22\n    controlPlane: false\n    installDisk: /dev/sda\n",
        "    ipAddress: 127.0.10.22\n    controlPlane: false\n    installDiskSelector:\n"
        "      size: '>= 100GB'\n      type: ssd\n",
    )
    configure(repo, confirm_new_secrets=lambda _path: True)
    docs = list(yaml.safe_load_all((repo / "talos/clusterconfig/demo-worker-2.yaml").read_text()))
    [install] = [d for d in docs if d.get("kind") == "UnattendedInstallConfig"]
    assert install["provisioning"]["diskSelector"]["match"] == (
        'disk.size >= 100000000000u && disk.transport != "" && !disk.rotational && !disk.readonly && !disk.cdrom'
    )
    assert "install" not in docs[0]["machine"]


# ---- bad input specific to 1.14 ---------------------------------------------------------------


def test_1_old_form_patch_refused_with_the_documents_to_write(repo):
    (repo / KUBELET).write_text(
        "machine:\n  kubelet:\n    extraArgs:\n      rotate-server-certificates: 'true'\n"
    )
    err = refused(repo)
    text = text_of(err)
    assert "talos/patches/global/machine-kubelet.yaml:2" in text
    assert "machine.kubelet is the v1alpha1 form of what the KubeletConfig document" in text
    assert "kind: KubeletConfig\n" in text and "rotate-server-certificates" in text


def test_2_old_and_new_form_together_in_one_patch(repo):
    with (repo / KUBELET).open("a") as fh:
        fh.write("---\nmachine:\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.37.2\n")
    err = refused(repo)
    line = line_of(repo / KUBELET, "  kubelet:")
    assert f"talos/patches/global/machine-kubelet.yaml:{line}" in text_of(err)
    assert "Talos refuses both together" in text_of(err)


def test_3_unknown_document_kind(repo):
    edit(repo / KUBELET, "kind: KubeletConfig", "kind: KubeletConfg")
    err = refused(repo)
    assert f"talos/patches/global/machine-kubelet.yaml:{line_of(repo / KUBELET, 'KubeletConfg')}" in text_of(
        err
    )
    assert "KubeletConfg" in text_of(err) and "KubeletConfig" in text_of(err)  # did you mean


def test_4_duplicate_named_document_in_one_patch(repo):
    kernel = repo / "talos/patches/worker/machine-kernel.yaml"
    edit(kernel, "name: nbd", "name: rbd")
    err = refused(repo)
    assert "appears twice in one patch" in err.message
    assert err.where == f"talos/patches/worker/machine-kernel.yaml:{line_of(kernel, 'apiVersion', 2)}"


def test_5_delete_of_a_document_no_node_has(repo):
    with (repo / KUBELET).open("a") as fh:
        fh.write("---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMRAL\n$$patch: delete\n")
    err = refused(repo)
    assert (
        """no such document in the config (did you mean "v1alpha1/VolumeConfig 'EPHEMERAL'"?)"""
        in err.message
    )
    assert (
        err.where == f"talos/patches/global/machine-kubelet.yaml:{line_of(repo / KUBELET, 'patch: delete')}"
    )


def test_6_control_plane_document_in_a_global_patch_reaches_workers(repo):
    with (repo / KUBELET).open("a") as fh:
        fh.write("---\napiVersion: v1alpha1\nkind: KubeSchedulerConfig\nextraArgs:\n  v: '2'\n")
    err = refused(repo)
    text = text_of(err)
    assert (
        "nodes worker-1, worker-2, worker-3:" in text
        and "KubeSchedulerConfig is a control-plane document" in text
    )
    assert "controlPlane.patches" in text


def test_7_json_patch_on_a_multi_document_config(repo):
    (repo / KUBELET).write_text("- op: add\n  path: /machine/certSANs/-\n  value: 192.0.2.10\n")
    err = refused(repo)
    assert "JSON6902 patches are not supported for multi-document machine configuration" in err.message
    assert err.where == "talos/patches/global/machine-kubelet.yaml:1"


def test_8_stock_installer_repository_on_1_14(repo):
    edit(
        repo / TALCONFIG,
        "    installDisk: /dev/sda\n",
        "    installDisk: /dev/sda\n    talosImageURL: ghcr.io/siderolabs/installer\n",
    )
    err = refused(repo)
    assert "ghcr.io/siderolabs/installer is not published for Talos v1.14.7" in text_of(err)
    assert f"talos/talconfig.yaml:{line_of(repo / TALCONFIG, 'talosImageURL')}" in text_of(err)


def test_9_install_disk_selector_on_name(repo):
    edit(
        repo / TALCONFIG,
        "    ipAddress: 127.0.10.22\n    controlPlane: false\n    installDisk: /dev/sda\n",
        "    ipAddress: 127.0.10.22\n    controlPlane: false\n    installDiskSelector:\n      name: sda\n",
    )
    err = refused(repo)
    assert "node worker-2: installDiskSelector" in err.message and "`name` has no 1.14 form" in err.message
    assert err.where == f"talos/talconfig.yaml:{line_of(repo / TALCONFIG, 'hostname: worker-2')}"


def test_10_old_form_control_plane_section(repo):
    with (repo / CLUSTER).open("a") as fh:
        fh.write("  proxy:\n    disabled: true\n")
    err = refused(repo)
    text = text_of(err)
    assert f"talos/patches/controller/cluster.yaml:{line_of(repo / CLUSTER, '  proxy:')}" in text
    assert (
        "nodes cp-1, cp-2, cp-3:" in text
        and "cluster.proxy" in text
        and "kind: KubeProxyConfig\nenabled: false" in text.replace("  ", "")
    )


def test_11_delete_of_a_moved_v1alpha1_key_names_its_document(repo):
    (repo / KUBELET).write_text("machine:\n  kubelet:\n    extraArgs:\n      $$patch: delete\n")
    err = refused(repo)
    assert err.where == "talos/patches/global/machine-kubelet.yaml:4"
    assert "holds machine.kubelet as the KubeletConfig" in err.hint


def test_12_kubernetes_outside_the_1_14_range(repo):
    edit(repo / "talos" / "talenv.yaml", "kubernetesVersion: v1.37.2", "kubernetesVersion: v1.38.0")
    err = refused(repo)
    assert "Kubernetes v1.38.0 is not supported by Talos v1.14.7 (supported: 1.32–1.37)" in err.message
    assert f"talos/talconfig.yaml:{line_of(repo / TALCONFIG, 'kubernetesVersion:')}" in str(err)


def test_13_old_form_install_section(repo):
    with (repo / KUBELET).open("a") as fh:
        fh.write("---\nmachine:\n  install:\n    wipe: true\n")
    err = refused(repo)
    text = text_of(err)
    assert "machine.install" in text and "UnattendedInstallConfig" in text
    assert "wipe: true" in text
