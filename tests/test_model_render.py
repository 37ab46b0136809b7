"""The cluster model and per-node rendering follow talhelper's rules (pure, no sops)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from taltasks.errors import InputError
from taltasks.machineconfig.render import Renderer, render_node_config, render_talosconfig
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.model import load_cluster
from taltasks.model.schematic import schematic_id

BASE = """\
clusterName: lab
endpoint: https://127.0.30.10:6443
talosVersion: v1.11.5
kubernetesVersion: v1.34.1
{extra}
nodes:
  - hostname: cp-1
    ipAddress: 127.0.30.11
    controlPlane: true
    installDisk: /dev/sda
{nodes}
"""


@pytest.fixture(scope="module")
def secrets() -> SecretsBundle:
    return SecretsBundle.generate("1.11")


def repo(tmp_path: Path, *, extra: str = "", nodes: str = "", files: dict[str, str] | None = None) -> Path:
    (tmp_path / "talos").mkdir(exist_ok=True)
    (tmp_path / "talos" / "talconfig.yaml").write_text(
        BASE.format(
            extra=textwrap.dedent(extra).strip(), nodes=textwrap.indent(textwrap.dedent(nodes).strip(), "  ")
        )
    )
    for name, text in (files or {}).items():
        path = tmp_path / "talos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def docs_of(root: Path, secrets: SecretsBundle, hostname: str) -> list[dict]:
    cluster = load_cluster(root)
    return Renderer(cluster, secrets).documents(cluster.node(hostname))


WORKER = """\
- hostname: w-1
  ipAddress: 127.0.30.21, 127.0.30.121
  installDisk: /dev/sdb
"""


def test_per_node_talos_version_pin(tmp_path, secrets):
    root = repo(tmp_path, nodes=WORKER + "  talosVersion: v1.12.4\n")
    cluster = load_cluster(root)
    w = cluster.node("127.0.30.121")
    assert (w.hostname, w.ip, w.ips) == ("w-1", "127.0.30.21", ("127.0.30.21", "127.0.30.121"))
    assert w.talos_version == "v1.12.4" and w.talos_version_pinned
    assert w.installer_image == "ghcr.io/siderolabs/installer:v1.12.4"
    assert cluster.node("cp-1").talos_version == "v1.11.5"
    kinds = [d.get("kind") for d in docs_of(root, secrets, "w-1")]
    assert kinds == [None, "HostnameConfig"]
    assert [d.get("kind") for d in docs_of(root, secrets, "cp-1")] == [None]


PATCH_ORDER = """\
patches:
  - |
    machine:
      sysctls:
        order: global
controlPlane:
  patches:
    - "@./patches/group.yaml"
"""


def test_patch_order_global_last(tmp_path, secrets):
    """Global patches are applied after group and node patches, so they win."""
    root = repo(
        tmp_path,
        extra=PATCH_ORDER,
        files={"patches/group.yaml": "machine:\n  sysctls:\n    order: group\n    group: seen\n"},
    )
    v1 = docs_of(root, secrets, "cp-1")[0]
    assert v1["machine"]["sysctls"] == {"order": "global", "group": "seen"}


def test_group_then_node_patches_and_override(tmp_path, secrets):
    nodes = """\
    - hostname: cp-2
      ipAddress: 127.0.30.12
      controlPlane: true
      installDisk: /dev/sda
      patches:
        - |
          machine:
            sysctls:
              order: node
    - hostname: cp-3
      ipAddress: 127.0.30.13
      controlPlane: true
      installDisk: /dev/sda
      overridePatches: true
      patches:
        - |
          machine:
            sysctls:
              order: node-only
    """
    root = repo(
        tmp_path,
        extra='controlPlane:\n  patches:\n    - "@./patches/group.yaml"\n',
        nodes=nodes,
        files={"patches/group.yaml": "machine:\n  sysctls:\n    order: group\n    group: seen\n"},
    )
    assert docs_of(root, secrets, "cp-1")[0]["machine"]["sysctls"] == {"order": "group", "group": "seen"}
    assert docs_of(root, secrets, "cp-2")[0]["machine"]["sysctls"] == {"order": "node", "group": "seen"}
    assert docs_of(root, secrets, "cp-3")[0]["machine"]["sysctls"] == {"order": "node-only"}


def test_group_values_fill_in_and_node_values_win(tmp_path, secrets):
    extra = """\
    worker:
      nodeLabels:
        tier: group
      certSANs: [group.san]
      talosImageURL: registry.lan/talos/installer
    """
    nodes = (
        WORKER
        + "  certSANs: [node.san]\n- hostname: w-2\n  ipAddress: 127.0.30.22\n  installDisk: /dev/sdb\n  nodeLabels:\n    tier: node\n"
    )
    root = repo(tmp_path, extra=extra, nodes=nodes)
    cluster = load_cluster(root)
    w1, w2 = cluster.node("w-1"), cluster.node("w-2")
    assert (w1.labels, w2.labels) == ({"tier": "group"}, {"tier": "node"})
    assert w1.cert_sans == ("node.san", "group.san")
    assert w1.installer_image == "registry.lan/talos/installer:v1.11.5"
    assert docs_of(root, secrets, "w-1")[0]["machine"]["certSANs"] == ["node.san", "group.san"]


def test_node_labels_replace_the_default_control_plane_label(tmp_path, secrets):
    nodes = "- hostname: cp-2\n  ipAddress: 127.0.30.12\n  controlPlane: true\n  installDisk: /dev/sda\n  nodeLabels:\n    role: infra\n"
    root = repo(tmp_path, nodes=nodes)
    assert docs_of(root, secrets, "cp-1")[0]["machine"]["nodeLabels"] == {
        "node.kubernetes.io/exclude-from-external-load-balancers": ""
    }
    assert docs_of(root, secrets, "cp-2")[0]["machine"]["nodeLabels"] == {"role": "infra"}


def test_dollar_dollar_patch_delete_in_an_inline_patch(tmp_path, secrets):
    extra = """\
    controlPlane:
      patches:
        - |
          machine:
            nodeLabels:
              node.kubernetes.io/exclude-from-external-load-balancers:
                $$patch: delete
    """
    root = repo(tmp_path, extra=extra)
    assert docs_of(root, secrets, "cp-1")[0]["machine"].get("nodeLabels") == {}


SCHEMATIC = """\
  schematic:
    customization:
      extraKernelArgs: [net.ifnames=0]
      systemExtensions:
        officialExtensions: [siderolabs/intel-ucode]
"""


@pytest.mark.parametrize(
    ("talos", "uki", "expected"),
    [("v1.11.5", False, ["net.ifnames=0"]), ("v1.11.5", True, None), ("v1.12.4", False, None)],
)
def test_schematic_kernel_args_copied_only_before_112_without_uki(tmp_path, secrets, talos, uki, expected):
    nodes = (
        WORKER
        + f"  talosVersion: {talos}\n"
        + SCHEMATIC
        + ("  machineSpec:\n    useUKI: true\n" if uki else "")
    )
    root = repo(tmp_path, nodes=nodes)
    w = load_cluster(root).node("w-1")
    assert w.schematic_id == "9e8cc193609699825d61c039c7738d81cf29c7b20f2a91d8f5c540511b9ea0b4"
    assert w.installer_image == f"factory.talos.dev/metal-installer/{w.schematic_id}:{talos}"
    assert docs_of(root, secrets, "w-1")[0]["machine"]["install"].get("extraKernelArgs") == expected


@pytest.mark.parametrize("talos", ["v1.11.5", "v1.12.4"])
def test_hostname_and_nameservers_follow_the_contract(tmp_path, secrets, talos):
    nodes = WORKER + f"  talosVersion: {talos}\n  nameservers: [127.0.30.53]\n"
    docs = docs_of(repo(tmp_path, nodes=nodes), secrets, "w-1")
    network = docs[0]["machine"].get("network", {})
    if talos == "v1.11.5":
        assert network == {"hostname": "w-1", "nameservers": ["127.0.30.53"]}
        assert len(docs) == 1
    else:
        assert "hostname" not in network and "nameservers" not in network
        assert docs[1:] == [
            {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "off", "hostname": "w-1"},
            {"apiVersion": "v1alpha1", "kind": "ResolverConfig", "nameservers": [{"address": "127.0.30.53"}]},
        ]


def test_ignore_hostname_keeps_stable_hostnames(tmp_path, secrets):
    nodes = WORKER + "  talosVersion: v1.12.4\n  ignoreHostname: true\n"
    docs = docs_of(repo(tmp_path, nodes=nodes), secrets, "w-1")
    assert docs[1] == {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}


def test_network_interfaces_and_disk_selector(tmp_path, secrets):
    nodes = """\
    - hostname: w-1
      ipAddress: 127.0.30.21
      installDiskSelector:
        model: Samsung*
      networkInterfaces:
        - interface: eth0
          addresses: [127.0.30.21/24]
          routes:
            - network: 0.0.0.0/0
              gateway: 127.0.30.1
    """
    v1 = docs_of(repo(tmp_path, nodes=nodes), secrets, "w-1")[0]
    assert v1["machine"]["install"]["diskSelector"] == {"model": "Samsung*"}
    assert "disk" not in v1["machine"]["install"]
    assert v1["machine"]["network"]["interfaces"][0]["addresses"] == ["127.0.30.21/24"]


def test_inline_patch_errors_point_into_talconfig(tmp_path, secrets):
    extra = """\
    patches:
      - |
        machine:
          kubelet:
            extraArgs:
              missing:
                $$patch: delete
    """
    root = repo(tmp_path, extra=extra)
    with pytest.raises(InputError) as info:
        docs_of(root, secrets, "cp-1")
    lines = (root / "talos" / "talconfig.yaml").read_text().splitlines()
    expected = next(i for i, line in enumerate(lines, 1) if "$$patch" in line)
    assert info.value.where == f"talos/talconfig.yaml:{expected}"
    assert "node cp-1" in info.value.message


def test_talhelper_v1_keys_are_refused_with_their_replacement(tmp_path):
    root = repo(tmp_path, nodes=WORKER + "  configPatches:\n    - op: add\n      path: /machine/env\n")
    with pytest.raises(InputError) as info:
        load_cluster(root)
    assert "`configPatches` is a talhelper v1 key" in info.value.message
    assert "`patches`" in (info.value.hint or "")
    assert (info.value.where or "").endswith("talconfig.yaml:14")


def test_public_one_shot_api(tmp_path, secrets):
    root = repo(tmp_path, nodes=WORKER)
    cluster = load_cluster(root)
    data = render_node_config(cluster, cluster.node("w-1"), secrets)
    assert data.startswith(b"version: v1alpha1\n") and b"hostname: w-1" in data
    assert render_node_config(cluster, cluster.node("w-1"), secrets) == data  # deterministic
    tc = render_talosconfig(cluster, secrets)
    assert tc.context("lab").endpoints == ["127.0.30.11"]
    assert tc.context("lab").nodes == ["127.0.30.11", "127.0.30.21"]
    assert render_talosconfig(cluster, secrets, previous=tc).context().crt == tc.context().crt  # reused


def test_schematic_id_of_the_node_matches_the_helper(tmp_path):
    root = repo(tmp_path, nodes=WORKER + SCHEMATIC)
    w = load_cluster(root).node("w-1")
    assert w.schematic_id == schematic_id(w.schematic)
