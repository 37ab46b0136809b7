"""Bad input is refused before anything is written, with the file and line (or node) named.

Each case starts from a copy of the shipped demo repository (secrets present, no generated
configs), breaks one thing, runs configure with permission to create files, and checks
the error's location and that the tree is byte-for-byte and mtime-for-mtime unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from configure_support import copy_demo, edit, line_of, refused
from taltasks.errors import InputError
from taltasks.secrets import age

TALCONFIG = Path("talos/talconfig.yaml")


@pytest.fixture
def demo(tmp_path):
    return copy_demo(tmp_path / "repo")


def located(err: InputError, file: str, line: int | None = None) -> None:
    text = str(err)
    if line is None:
        assert file in text, text
    else:
        assert f"{file}:{line}" in text, text


def test_malformed_yaml(demo):
    edit(demo / TALCONFIG, "  - hostname: cp-2\n", "  - hostname: [cp-2\n")
    err = refused(demo)
    assert "malformed YAML" in err.message
    assert re.search(r"talos/talconfig\.yaml:\d+", str(err))


def test_duplicate_ip(demo):
    edit(demo / TALCONFIG, "ipAddress: 127.0.10.22", "ipAddress: 127.0.10.21")
    err = refused(demo)
    assert "duplicate IP address 127.0.10.21" in err.message
    line = line_of(demo / TALCONFIG, "ipAddress: 127.0.10.21", occurrence=2)
    located(err, "talos/talconfig.yaml", line)
    assert (
        f"also at talos/talconfig.yaml:{line_of(demo / TALCONFIG, 'hostname: worker-1') + 1}" in err.message
    )


def test_duplicate_hostname(demo):
    edit(demo / TALCONFIG, "hostname: worker-2", "hostname: worker-1")
    err = refused(demo)
    assert "duplicate hostname 'worker-1'" in err.message
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "hostname: worker-1", occurrence=2))


def test_bad_cidr(demo):
    edit(demo / TALCONFIG, "  - 10.244.0.0/16", "  - 10.244.0.0/33")
    err = refused(demo)
    assert "'10.244.0.0/33' is not a CIDR" in err.message
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "10.244.0.0/33"))


def test_unknown_key_with_did_you_mean(demo):
    edit(
        demo / TALCONFIG,
        "    installDisk: /dev/sda\n    nodeLabels:\n      topology.kubernetes.io/zone: zone-b",
        "    instalDisk: /dev/sda\n    nodeLabels:\n      topology.kubernetes.io/zone: zone-b",
    )
    err = refused(demo)
    assert "unknown key 'instalDisk' in a node (did you mean 'installDisk'?)" in str(err)
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "instalDisk"))


def test_missing_install_disk(demo):
    edit(
        demo / TALCONFIG,
        "    controlPlane: true\n    installDisk: /dev/sda\n  - hostname: cp-3",
        "    controlPlane: true\n  - hostname: cp-3",
    )
    err = refused(demo)
    assert "node cp-2 has no install disk" in err.message
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "hostname: cp-2"))
    assert "installDisk" in err.hint


def test_kubernetes_version_outside_the_support_matrix(demo):
    edit(demo / "talos" / "talenv.yaml", "kubernetesVersion: v1.34.3", "kubernetesVersion: v1.35.0")
    err = refused(demo)
    assert "Kubernetes v1.35.0 is not supported by Talos v1.11.5 (supported: 1.29–1.34)" in err.message
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "kubernetesVersion:"))


def test_node_talos_pin_that_cannot_run_the_kubernetes_version(demo):
    edit(
        demo / TALCONFIG,
        "    ipAddress: 127.0.10.13\n",
        "    ipAddress: 127.0.10.13\n    talosVersion: v1.10.7\n",
    )
    err = refused(demo)
    # 1.10 is a supported contract (since 1.8–1.10 were added); its Kubernetes range is not
    assert (
        "node cp-3 pins Talos v1.10.7, which does not support Kubernetes v1.34.3 (supported: 1.28–1.33)"
        in (err.message)
    )
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "talosVersion: v1.10.7"))


def test_undecryptable_secret_file(demo, tmp_path, monkeypatch):
    (demo / "talos" / "demo.agekey").unlink()  # a real repository: only the user's own key
    other, _ = age.generate()
    (tmp_path / "other.agekey").write_text(other)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "other.agekey"))
    err = refused(demo)
    assert err.where == "talos/talsecret.sops.yaml"
    assert "cannot decrypt" in err.message


def test_corrupt_secret_file(demo):
    (demo / "talos" / "talsecret.sops.yaml").write_text("cluster: {id: 1}\nnot sops at all\n")
    err = refused(demo)
    assert "talos/talsecret.sops.yaml" in str(err)


def test_missing_variable(demo):
    edit(demo / TALCONFIG, "domain: cluster.local", "domain: ${CLUSTER_DOMAIN}")
    err = refused(demo)
    assert "variable ${CLUSTER_DOMAIN} not set" in err.message
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "CLUSTER_DOMAIN"))


def test_malformed_talenv(demo):
    with (demo / "talos" / "talenv.yaml").open("a") as fh:
        fh.write("versions:\n  - nested\n")
    err = refused(demo)
    located(err, "talos/talenv.yaml", line_of(demo / "talos" / "talenv.yaml", "- nested"))


def test_malformed_patch(demo):
    patch = demo / "talos/patches/worker/machine-kernel.yaml"
    edit(patch, "      - name: nbd\n", "      - name: nbd\n    extra: [unclosed\n")
    err = refused(demo)
    assert "malformed patch" in err.message
    assert re.search(r"talos/patches/worker/machine-kernel\.yaml:\d+", str(err))


def test_unknown_key_in_a_patch(demo):  # Talos decodes with known fields only
    edit(demo / "talos/patches/global/machine-kubelet.yaml", "    nodeIP:", "    nodeIp:")
    err = refused(demo)
    assert "unknown key 'nodeIp' (did you mean 'nodeIP'?)" in err.message
    located(
        err,
        "talos/patches/global/machine-kubelet.yaml",
        line_of(demo / "talos/patches/global/machine-kubelet.yaml", "nodeIp"),
    )


def test_missing_patch_file(demo):
    edit(demo / TALCONFIG, "@./patches/worker/machine-kernel.yaml", "@./patches/worker/kernel.yaml")
    err = refused(demo)
    assert "patch file talos/patches/worker/kernel.yaml does not exist" in err.message
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "patches/worker/kernel.yaml"))


def test_patch_delete_on_a_missing_path(demo):
    patch = demo / "talos/patches/worker/delete.yaml"
    patch.write_text("machine:\n  kubelet:\n    extraArgs:\n      max-pods:\n        $$patch: delete\n")
    edit(
        demo / TALCONFIG,
        '    - "@./patches/worker/machine-kernel.yaml"',
        '    - "@./patches/worker/machine-kernel.yaml"\n    - "@./patches/worker/delete.yaml"',
    )
    err = refused(demo)
    assert "$patch: delete of machine.kubelet.extraArgs.max-pods" in err.message
    assert "node worker-1" in err.message
    located(err, "talos/patches/worker/delete.yaml", 5)


def test_json_patch_against_a_multi_document_config(demo):
    edit(demo / "talos" / "talenv.yaml", "talosVersion: v1.11.5", "talosVersion: v1.12.4")
    (demo / "talos/patches/global/json.yaml").write_text(
        "- op: add\n  path: /machine/kubelet/extraArgs/max-pods\n  value: '150'\n"
    )
    edit(
        demo / TALCONFIG,
        '  - "@./patches/global/machine-sysctls.yaml"',
        '  - "@./patches/global/machine-sysctls.yaml"\n  - "@./patches/global/json.yaml"',
    )
    err = refused(demo)
    assert (
        "JSON6902 patches are not supported for multi-document machine configuration (node cp-1)"
        in err.message
    )
    located(err, "talos/patches/global/json.yaml", 1)


def test_patch_for_an_unknown_node(demo):
    folder = demo / "talos/patches/nodes"
    folder.mkdir()
    (folder / "worker-1.yaml").write_text("machine:\n  sysctls:\n    vm.max_map_count: '262144'\n")
    (folder / "worker-9.yaml").write_text("machine:\n  sysctls:\n    vm.max_map_count: '262144'\n")
    err = refused(demo)
    assert "patch for an unknown node 'worker-9' (did you mean 'worker-" in err.message
    located(err, "talos/patches/nodes/worker-9.yaml")
    assert "known nodes: cp-1, cp-2, cp-3, worker-1, worker-2, worker-3" in err.hint


def test_duplicate_schematic_extension(demo):
    edit(demo / TALCONFIG, "          - siderolabs/util-linux-tools", "          - siderolabs/iscsi-tools")
    err = refused(demo)
    assert "extension 'siderolabs/iscsi-tools' is listed twice" in str(err)
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "- siderolabs/iscsi-tools", occurrence=2))


def test_endpoint_must_be_https(demo):
    edit(demo / TALCONFIG, "endpoint: https://127.0.10.10:6443", "endpoint: 127.0.10.10:6443")
    err = refused(demo)
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "endpoint:"))


def test_invalid_label_and_taint(demo):
    edit(
        demo / TALCONFIG,
        "topology.kubernetes.io/zone: zone-c",
        "topology.kubernetes.io/zone: zone c\n    nodeTaints:\n      dedicated: storage:NoWhere",
    )
    err = refused(demo)
    text = str(err)
    assert "'zone c' is not a valid Kubernetes label value" in text
    assert "needs an effect" in text
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "zone c"))
    located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, "NoWhere"))


def test_all_problems_of_the_file_are_reported_together(demo):
    edit(demo / TALCONFIG, "ipAddress: 127.0.10.22", "ipAddress: 127.0.10.300")
    edit(demo / TALCONFIG, "  - 10.96.0.0/12", "  - 10.96.0.0/99")
    edit(demo / TALCONFIG, "clusterName: demo", "clusterName: demo\nclustername: typo")
    err = refused(demo)
    assert err.message.startswith("3 problems in the cluster definition:")
    for needle in ("127.0.10.300", "10.96.0.0/99", "clustername"):
        located(err, "talos/talconfig.yaml", line_of(demo / TALCONFIG, needle))


def test_generated_config_problem_names_the_node(demo):
    # a patch that leaves a worker holding a shared VIP: only the generated config shows it,
    # and provenance traces it back to the patch
    (demo / "talos/patches/worker/vip.yaml").write_text(
        "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        vip:\n          ip: 127.0.10.99\n"
    )
    edit(
        demo / TALCONFIG,
        '    - "@./patches/worker/machine-kernel.yaml"',
        '    - "@./patches/worker/machine-kernel.yaml"\n    - "@./patches/worker/vip.yaml"',
    )
    err = refused(demo)
    assert err.message.startswith("nodes worker-1, worker-2, worker-3: the generated config is not valid")
    assert "a worker must not have a shared VIP" in err.message
    # the finding points at the patch line that wrote the VIP, not at the node's entry
    located(err, "talos/patches/worker/vip.yaml", 5)


CASES: list[Callable] = [
    v
    for k, v in dict(globals()).items()
    if k.startswith("test_") and k != "test_generated_config_problem_names_the_node"
]


def test_there_are_at_least_twelve_bad_input_cases():
    assert len(CASES) >= 12
