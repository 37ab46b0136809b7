"""Version contracts 1.8–1.14: what each one switches, and `configure` on contract 1.14.

The stability files (tests/test_genconfig.py) prove the generator equals upstream's for
every contract; here `configure` on 1.14 is shown to write the generator's documents plus
the node's own settings, and the switches are checked against upstream's contract.go.
"""

from __future__ import annotations

import textwrap

import pytest

from configure_support import copy_demo
from taltasks.errors import InputError
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.encode import load_documents
from taltasks.machineconfig.genconfig import GenConfigOptions, gen_config
from taltasks.machineconfig.generate import GenInput, base_documents
from taltasks.machineconfig.render import Renderer
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.model import load_cluster
from taltasks.model.versions import (
    DEFAULT_KUBERNETES,
    KUBERNETES_SUPPORT,
    SUPPORTED_CONTRACTS,
    Version,
    upgrade_path,
)
from taltasks.secrets.store import SecretStore
from taltasks.workflows.configure import OUTPUT_DIR, configure

TALCONFIG_114 = """\
clusterName: demo
endpoint: https://127.0.10.10:6443
talosVersion: v1.14.7
kubernetesVersion: v1.37.0
domain: example.com
additionalApiServerCertSans: [k8s.demo.internal]
additionalMachineCertSans: [k8s.demo.internal]
cniConfig:
  name: custom
  urls: [https://example.com/cni.yaml]
nodes:
  - hostname: cp-1
    ipAddress: 127.0.10.11
    controlPlane: true
    installDisk: /dev/sda
  - hostname: worker-1
    ipAddress: 127.0.10.21
    installDisk: /dev/sda
{extra}
"""


@pytest.fixture(scope="module")
def secrets() -> SecretsBundle:
    return SecretsBundle.generate("1.14")


def kinds(docs: list[dict]) -> list[str]:
    return [d.get("kind") or "v1alpha1" for d in docs]


def test_configure_on_1_14_writes_what_the_generator_writes(tmp_path):
    """`invoke configure` with talosVersion v1.14.7 writes, per node, exactly upstream's
    generator output (as reproduced by talos.gen-config) for the same inputs, with the
    node's hostname in HostnameConfig as the only difference."""
    repo = copy_demo(tmp_path / "repo")
    (repo / "talos" / "talconfig.yaml").write_text(TALCONFIG_114.format(extra=""))
    configure(repo)
    cluster = load_cluster(repo)
    bundle = SecretStore(repo).load()
    for node in cluster.nodes:
        written = load_documents((repo / OUTPUT_DIR / f"demo-{node.hostname}.yaml").read_bytes())
        generated = gen_config(
            GenConfigOptions(
                "demo",
                "https://127.0.10.10:6443",
                secrets=bundle,
                talos_version="v1.14.7",
                kubernetes_version="1.37.0",
                install_disk="/dev/sda",
                install_image=node.installer_image,
                additional_sans=["k8s.demo.internal"],
                dns_domain="example.com",
                custom_cni_url="https://example.com/cni.yaml",
            )
        )
        expected = generated.controlplane if node.control_plane else generated.worker
        for doc in expected:
            if doc.get("kind") == "HostnameConfig":
                doc.update(auto="off", hostname=node.hostname)
        assert kinds(written) == kinds(expected), node.hostname
        assert written == expected, node.hostname
        assert "KubeExternalManifestConfig" in kinds(written) if node.control_plane else True
        assert "KubeFlannelCNIConfig" not in kinds(written)


def write_repo(tmp_path, extra: str = ""):
    (tmp_path / "talos").mkdir(parents=True, exist_ok=True)
    (tmp_path / "talos" / "talconfig.yaml").write_text(
        TALCONFIG_114.format(extra=textwrap.indent(extra, "  "))
    )
    return load_cluster(tmp_path)


def test_labels_annotations_and_taints_go_to_kube_node_config_on_1_14(tmp_path, secrets):
    cluster = write_repo(
        tmp_path,
        "- hostname: cp-2\n  ipAddress: 127.0.10.12\n  controlPlane: true\n  installDisk: /dev/sda\n"
        "  nodeLabels: {rack: r1}\n  nodeAnnotations: {owner: ops}\n"
        "  nodeTaints: {dedicated: 'etcd:NoSchedule'}\n",
    )
    docs = Renderer(cluster, secrets).documents(cluster.node("cp-2"))
    node = next(d for d in docs if d.get("kind") == "KubeNodeConfig")
    # talhelper's labels replace the generated map; the role label Talos used to add by
    # itself stays, so the node carries the same labels as on 1.13
    assert node["labels"] == {"node-role.kubernetes.io/control-plane": "", "rack": "r1"}
    assert node["annotations"] == {"owner": "ops"}
    assert node["taints"] == {
        "node-role.kubernetes.io/control-plane": "NoSchedule",
        "dedicated": "etcd:NoSchedule",
    }
    machine = docs[0]["machine"]
    assert not {"nodeLabels", "nodeAnnotations", "nodeTaints", "install", "kubelet"} & set(machine)


def test_install_disk_selector_on_1_14_stays_in_one_form(tmp_path, secrets):
    """A disk selector becomes UnattendedInstallConfig's CEL selector (the expression Talos
    evaluates for the legacy selector); nothing stays in machine.install."""
    cluster = write_repo(
        tmp_path,
        "- hostname: worker-2\n  ipAddress: 127.0.10.22\n  installDiskSelector: {size: '>= 100GB'}\n",
    )
    docs = Renderer(cluster, secrets).documents(cluster.node("worker-2"))
    assert "install" not in docs[0]["machine"]
    selected = next(d for d in docs if d.get("kind") == "UnattendedInstallConfig")
    assert selected["provisioning"] == {
        "diskSelector": {
            "match": 'disk.size >= 100000000000u && disk.transport != "" && !disk.readonly && !disk.cdrom'
        },
        "wipe": False,
    }
    with_disk = Renderer(cluster, secrets).documents(cluster.node("worker-1"))
    assert "install" not in with_disk[0]["machine"]
    unattended = next(d for d in with_disk if d.get("kind") == "UnattendedInstallConfig")
    assert unattended["provisioning"]["diskSelector"] == {"match": 'disk.dev_path == "/dev/sda"'}
    # placed where the generator writes it: after discovery, before the resolver
    assert kinds(with_disk).index("UnattendedInstallConfig") == kinds(with_disk).index("ResolverConfig") - 1


# Upstream's generator, by contract (contract.go): the documents of a control plane with no
# options, and the v1alpha1 flags that come and go.
EXPECTED_KINDS = {
    (1, 8): ["v1alpha1"],
    (1, 11): ["v1alpha1"],
    (1, 12): ["v1alpha1", "HostnameConfig"],
    (1, 13): ["v1alpha1", "HostnameConfig"],
    (1, 14): [
        "v1alpha1", "DiscoveryServiceConfig", "DiscoveryIdentityConfig", "ResolverConfig", "VolumeConfig",
        "FilesystemTrimConfig", "SecurityProfileConfig", "HostnameConfig", "KubeClusterConfig",
        "KubeNodeConfig", "KubeletConfig", "KubeNetworkConfig", "KubeAPIServerCAConfig", "KubePrismConfig",
        "KubeAggregatorCAConfig", "KubeAdmissionControlConfig", "KubeAuditPolicyConfig",
        "KubeAuthenticationConfig", "KubeAuthorizerConfig", "KubeAuthorizerConfig", "KubeEtcdEncryptionConfig",
        "KubeServiceAccountConfig", "KubeAPIServerConfig", "KubeControllerManagerConfig", "KubeSchedulerConfig",
        "KubeProxyConfig", "KubeFlannelCNIConfig", "KubeCoreDNSConfig",
    ],
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(EXPECTED_KINDS))
def test_each_contract_writes_upstreams_documents(secrets, key):
    contract = VersionContract(*key)
    docs = base_documents(GenInput("lab", "https://127.0.30.10:6443", contract, secrets), "controlplane")
    assert kinds(docs) == EXPECTED_KINDS[key]
    machine, cluster = docs[0]["machine"], docs[0]["cluster"]
    assert ("rbac" in machine["features"]) == (key <= (1, 11))
    assert ("stableHostname" in machine["features"]) == (key <= (1, 11))
    assert ("network" in machine) == (key <= (1, 12))
    assert ("controlPlane" in cluster) == (key <= (1, 13))
    assert ("install" in machine) == (key <= (1, 13))
    assert cluster["clusterName" if key <= (1, 13) else "token"]  # workers too, from 1.8


def test_supported_contracts_have_their_data():
    """Every supported contract has a Kubernetes range and a default inside it."""
    for key in SUPPORTED_CONTRACTS:
        low, high = KUBERNETES_SUPPORT[key]
        default = tuple(int(p) for p in DEFAULT_KUBERNETES[key].split(".")[:2])
        assert low <= default <= high, key
    with pytest.raises(InputError) as info:
        VersionContract.parse("v1.7.6")
    assert "1.8, 1.9, 1.10, 1.11, 1.12, 1.13, 1.14" in info.value.message
    assert "1.13 or 1.14" in (info.value.hint or "")


@pytest.mark.parametrize("running", ["v1.8.0", "v1.10.3"])
def test_configs_are_generated_for_every_step_of_the_path(tmp_path, secrets, running):
    """Each hop of a multi-minor path is a contract configure generates: pinning talosVersion
    to the hop (with a Kubernetes version that hop supports) gives valid configs."""
    for hop in upgrade_path(Version.parse(running), Version.parse("v1.14.7")):
        root = tmp_path / str(hop.version)
        (root / "talos").mkdir(parents=True)
        k8s = DEFAULT_KUBERNETES[hop.version.minor_key]
        (root / "talos" / "talconfig.yaml").write_text(
            TALCONFIG_114.format(extra="")
            .replace("talosVersion: v1.14.7", f"talosVersion: {hop.version}")
            .replace("kubernetesVersion: v1.37.0", f"kubernetesVersion: v{k8s}")
        )
        cluster = load_cluster(root)
        renderer = Renderer(cluster, secrets)
        for node in cluster.nodes:
            docs = renderer.documents(node)  # validated for the hop's contract
            assert docs[0]["machine"]["type"] == node.role
        assert str(VersionContract.parse(hop.version)) == hop.contract
