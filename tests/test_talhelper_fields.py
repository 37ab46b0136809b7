"""Every talhelper field, with talhelper's semantics; SOPS by content; templates per node.

The repositories here are small talconfig.yaml files written for one field each; the
corpus (test_corpus.py) shows the same on real repositories. Cases that go through
``configure`` use real sops and a fresh age key, and check that refused input writes
nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from talconfig_support import documents, kinds, line_of, write_repo

from configure_support import snapshot
from taltasks.errors import InputError
from taltasks.machineconfig.render import Renderer
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.model import load_cluster
from taltasks.secrets import age, sops
from taltasks.workflows.apply import node_config
from taltasks.workflows.configure import configure


@pytest.fixture(scope="module")
def secrets() -> SecretsBundle:
    return SecretsBundle.generate("1.13")


@pytest.fixture
def keyed(tmp_path, monkeypatch) -> Path:
    """A checkout with its own age key and .sops.yaml (real sops decrypts and encrypts)."""
    root = tmp_path / "repo"
    root.mkdir()
    key, public = age.generate()
    (tmp_path / "key.txt").write_text(key)
    (root / ".sops.yaml").write_text(f"creation_rules:\n  - age: {public}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "key.txt"))
    return root


def encrypt_in_place(root: Path, rel: str) -> bytes:
    path = root / rel
    plain = path.read_bytes()
    encrypted = sops.encrypt(plain, rel, root=root)
    path.write_bytes(encrypted)
    return plain


def refused(root: Path) -> InputError:
    before = snapshot(root)
    with pytest.raises(InputError) as info:
        configure(root, confirm_new_secrets=lambda _path: True)
    assert snapshot(root) == before, "configure wrote something although the input was bad"
    return info.value


# ---- v1alpha1 content: machineDisks, machineFiles, inlineManifests ----------------------------


def test_machine_disks_and_files_land_in_the_machine_section(tmp_path, secrets):
    root = write_repo(
        tmp_path,
        talos="v1.11.5",
        extra="""
        worker:
          machineFiles:
            - path: /var/etc/group.conf
              op: create
              permissions: 0o644
              content: from the group
        """,
        nodes="""
        - hostname: w-1
          ipAddress: 192.0.2.21
          installDisk: /dev/sda
          machineDisks:
            - device: /dev/sdb
              partitions:
                - mountpoint: /var/mnt/data
          machineFiles:
            - path: /etc/cri/conf.d/20-customization.part
              op: create
              permissions: 0o644
              content: "@./files/cri.toml"
            - path: /var/etc/raw.conf
              op: overwrite
              content: "@./files/raw.conf"
              skipEnvsubst: true
        - hostname: w-2
          ipAddress: 192.0.2.22
          installDisk: /dev/sda
        """,
        files={
            "talenv.yaml": "REGISTRY: mirror.example.org\n",
            "files/cri.toml": '[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${REGISTRY}"\n',
            "files/raw.conf": "keep ${LITERAL} as written\n",
        },
    )
    machine = documents(root, secrets, "w-1")[0]["machine"]
    assert machine["disks"] == [{"device": "/dev/sdb", "partitions": [{"mountpoint": "/var/mnt/data"}]}]
    files = {f["path"]: f for f in machine["files"]}
    assert set(files) == {"/etc/cri/conf.d/20-customization.part", "/var/etc/raw.conf"}  # node's list wins
    assert files["/etc/cri/conf.d/20-customization.part"] == {
        "content": '[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "mirror.example.org"\n',
        "permissions": 0o644,
        "path": "/etc/cri/conf.d/20-customization.part",
        "op": "create",
    }
    assert files["/var/etc/raw.conf"]["content"] == "keep ${LITERAL} as written\n"  # skipEnvsubst
    group_files = documents(root, secrets, "w-2")[0]["machine"]["files"]
    assert group_files == [
        {"content": "from the group", "permissions": 0o644, "path": "/var/etc/group.conf", "op": "create"}
    ]
    line = line_of(root / "talos" / "talconfig.yaml", "machineDisks:")
    warnings = load_cluster(root).warnings
    assert any("`machineDisks` is deprecated" in w and f"talconfig.yaml:{line}" in w for w in warnings), (
        warnings
    )


def test_inline_manifests_go_to_every_node(tmp_path, secrets):
    root = write_repo(
        tmp_path,
        extra="""
        inlineManifests:
          - name: namespace-ci
            contents: |-
              apiVersion: v1
              kind: Namespace
              metadata:
                name: ci
          - name: from-file
            contents: "@./manifests/cm.yaml"
        """,
        nodes="""
        - hostname: w-1
          ipAddress: 192.0.2.21
          installDisk: /dev/sda
        """,
        files={
            "talenv.yaml": "NS: apps\n",
            "manifests/cm.yaml": "kind: ConfigMap\nmetadata: {namespace: ${NS}}\n",
        },
    )
    for host in ("cp-1", "w-1"):
        manifests = documents(root, secrets, host)[0]["cluster"]["inlineManifests"]
        assert [m["name"] for m in manifests] == ["namespace-ci", "from-file"]
        assert manifests[1]["contents"] == "kind: ConfigMap\nmetadata: {namespace: apps}\n"


# ---- their own documents ----------------------------------------------------------------------


FIELDS = """
- hostname: w-1
  ipAddress: 192.0.2.21
  installDisk: /dev/sda
  nameservers: [192.0.2.53]
  ingressFirewall:
    defaultAction: block
    rules:
      - name: kubelet-ingress
        portSelector:
          ports: [10250]
          protocol: tcp
        ingress:
          - subnet: 192.0.2.0/24
  extensionServices:
    - name: nut-client
      configFiles:
        - content: MONITOR ups@192.0.2.50 1 monuser pass secondary
          mountPath: /usr/local/etc/nut/upsmon.conf
      environment:
        - NUT_MODE=netclient
  volumes:
    - name: EPHEMERAL
      provisioning:
        maxSize: 40GiB
  userVolumes:
    - name: data
      volumeType: partition
      provisioning:
        diskSelector:
          match: disk.transport == "nvme"
        minSize: 100GiB
      filesystem:
        type: xfs
  networkInterfaces:
    - interface: eth0
      addresses: [192.0.2.21/24]
"""


def test_documents_in_talhelpers_order(tmp_path, secrets):
    root = write_repo(tmp_path, nodes=FIELDS)
    docs = documents(root, secrets, "w-1")
    assert kinds(docs) == [
        "HostnameConfig",
        "ResolverConfig",
        "NetworkDefaultActionConfig",
        "NetworkRuleConfig/kubelet-ingress",
        "ExtensionServiceConfig/nut-client",
        "VolumeConfig/EPHEMERAL",
        "UserVolumeConfig/data",
        "LinkConfig/eth0",
    ]
    by_kind = {d["kind"]: d for d in docs[1:]}
    assert by_kind["NetworkDefaultActionConfig"]["ingress"] == "block"
    assert by_kind["NetworkRuleConfig"]["portSelector"] == {"ports": [10250], "protocol": "tcp"}
    assert by_kind["NetworkRuleConfig"]["ingress"] == [{"subnet": "192.0.2.0/24"}]
    assert by_kind["ExtensionServiceConfig"]["environment"] == ["NUT_MODE=netclient"]
    assert by_kind["UserVolumeConfig"] == {
        "apiVersion": "v1alpha1",
        "kind": "UserVolumeConfig",
        "name": "data",
        "volumeType": "partition",
        "provisioning": {"diskSelector": {"match": 'disk.transport == "nvme"'}, "minSize": "100GiB"},
        "filesystem": {"type": "xfs"},
    }
    assert by_kind["ResolverConfig"]["nameservers"] == [{"address": "192.0.2.53"}]
    # the control plane has none of them
    assert kinds(documents(root, secrets, "cp-1")) == ["HostnameConfig"]


def test_documents_on_an_old_contract_too(tmp_path, secrets):
    """talhelper adds volumes, firewall and extension documents whatever the contract; only
    the network and hostname documents wait for 1.12."""
    # UserVolumeConfig.volumeType came with Talos 1.12: on 1.11 Talos refuses it, so do we
    root = write_repo(tmp_path, talos="v1.11.5", nodes=FIELDS.replace("      volumeType: partition\n", ""))
    docs = documents(root, SecretsBundle.generate("1.11"), "w-1")
    assert kinds(docs) == [
        "NetworkDefaultActionConfig",
        "NetworkRuleConfig/kubelet-ingress",
        "ExtensionServiceConfig/nut-client",
        "VolumeConfig/EPHEMERAL",
        "UserVolumeConfig/data",
    ]
    network = docs[0]["machine"]["network"]
    assert network["interfaces"] == [{"interface": "eth0", "addresses": ["192.0.2.21/24"]}]
    assert network["nameservers"] == ["192.0.2.53"]


def test_a_problem_in_a_generated_document_names_its_talconfig_line(tmp_path, secrets):
    nodes = FIELDS.replace("        type: xfs", "        type: xfs\n        bogus: 1")
    root = write_repo(tmp_path, nodes=nodes)
    with pytest.raises(InputError) as info:
        documents(root, secrets, "w-1")
    path = root / "talos" / "talconfig.yaml"
    assert f"talconfig.yaml:{line_of(path, '- name: data')}" in str(info.value), str(info.value)


# ---- group merge, extra manifests, file names, installer template, Kubernetes default --------


def test_extra_manifests_are_appended_node_first_then_group(tmp_path, secrets):
    root = write_repo(
        tmp_path,
        extra="""
        worker:
          extraManifests:
            - manifests/group.yaml
        """,
        nodes="""
        - hostname: w-1
          ipAddress: 192.0.2.21
          installDisk: /dev/sda
          extraManifests:
            - "@manifests/node.yaml"
        - hostname: w-2
          ipAddress: 192.0.2.22
          installDisk: /dev/sda
          overrideExtraManifests: true
          extraManifests:
            - manifests/node.yaml
        """,
        files={
            "manifests/node.yaml": """\
                apiVersion: v1alpha1
                kind: RawVolumeConfig
                name: scratch-{{ .MachineConfig.MachineType }}
                provisioning:
                  diskSelector:
                    match: disk.transport == "nvme"
                  maxSize: 10GiB
                """,
            "manifests/group.yaml": """\
                apiVersion: v1alpha1
                kind: UserVolumeConfig
                name: group
                provisioning:
                  diskSelector:
                    match: system_disk
                  maxSize: 5GiB
                """,
        },
    )
    assert kinds(documents(root, secrets, "w-1"))[-2:] == [
        "RawVolumeConfig/scratch-worker",
        "UserVolumeConfig/group",
    ]
    assert kinds(documents(root, secrets, "w-2"))[-1] == "RawVolumeConfig/scratch-worker"
    assert "UserVolumeConfig/group" not in kinds(documents(root, secrets, "w-2"))
    assert any("`extraManifests` is deprecated" in w for w in load_cluster(root).warnings)
    # one renderer parses a manifest once for the nodes it renders the same for, and
    # each node still gets documents of its own
    cluster = load_cluster(root)
    renderer = Renderer(cluster, secrets)
    mine = renderer.documents(cluster.node("w-1"))[-2]
    mine["provisioning"]["maxSize"] = "1GiB"
    theirs = renderer.documents(cluster.node("w-2"))[-1]
    assert theirs["name"] == "scratch-worker" and theirs["provisioning"]["maxSize"] == "10GiB"


def test_filename_template_names_the_output(keyed):
    write_repo(
        keyed,
        extra='controlPlane:\n  filenameTmpl: "{{ .Role }}-{{ .Hostname }}.yaml"',
        nodes='- hostname: w-1\n  ipAddress: 192.0.2.21\n  installDisk: /dev/sda\n  filenameTmpl: "{{ .ClusterName }}_{{ .IPAddress }}.yaml"',
    )
    plan = configure(keyed, confirm_new_secrets=lambda _p: True)
    names = sorted(Path(f.relpath).name for f in plan.node_files)
    assert names == ["controlplane-cp-1.yaml", "lab_192.0.2.21.yaml"]
    assert all((keyed / f.relpath).is_file() for f in plan.node_files)


def test_a_filename_template_two_nodes_share_is_refused(keyed):
    """`{{ .Role }}.yaml` for a group of two: one node's config would overwrite the other's."""
    write_repo(
        keyed,
        extra='worker:\n  filenameTmpl: "{{ .Role }}.yaml"',
        nodes="\n".join(
            f"- {{hostname: w-{i}, ipAddress: 192.0.2.2{i}, installDisk: /dev/sda}}" for i in (1, 2)
        ),
    )
    err = refused(keyed)  # nothing written
    assert err.where == f"talos/talconfig.yaml:{line_of(keyed / 'talos/talconfig.yaml', 'filenameTmpl')}"
    assert "node w-2: its config file worker.yaml is node w-1's too" in err.message


def test_installer_url_template_of_the_image_factory(tmp_path):
    root = write_repo(
        tmp_path,
        extra="""
        imageFactory:
          registryURL: factory.example.org
          installerURLTmpl: "{{ .RegistryURL }}/installer{{ if .Secureboot }}-secureboot{{ end }}/{{ .ID }}:{{ .Version }}"
        controlPlane:
          schematic:
            customization:
              extraKernelArgs: [net.ifnames=0]
        """,
    )
    from taltasks.model.schematic import schematic_id

    sid = schematic_id({"customization": {"extraKernelArgs": ["net.ifnames=0"]}})
    assert load_cluster(root).node("cp-1").installer_image == f"factory.example.org/installer/{sid}:v1.13.9"


def test_kubernetes_version_defaults_to_the_contracts_with_a_warning(tmp_path, secrets):
    root = write_repo(tmp_path)
    path = root / "talos" / "talconfig.yaml"
    path.write_text(path.read_text().replace("kubernetesVersion: v1.36.4\n", ""))
    cluster = load_cluster(root)
    assert cluster.kubernetes_version == "v1.36.0" and cluster.kubernetes_version_default
    assert any("kubernetesVersion is not set: using v1.36.0" in w for w in cluster.warnings)
    kubelet = documents(root, secrets)[0]["machine"]["kubelet"]["image"]
    assert kubelet == "ghcr.io/siderolabs/kubelet:v1.36.0"


# ---- Go templates through configure ------------------------------------------------------------


def test_templated_labels_annotations_and_patches_are_rendered(keyed):
    write_repo(
        keyed,
        extra="""
        patches:
          - "@./patches/role.yaml"
          - |-
            machine:
              env:
                INLINE: "{{ .ClusterConfig.ClusterName }}"
        """,
        nodes="""
        - hostname: w-1
          ipAddress: 192.0.2.21
          installDisk: /dev/sda
          nodeLabels:
            static: "yes"
            role: '{{ .MachineConfig.MachineType }}'
          nodeAnnotations:
            installerImage: '{{ .MachineConfig.MachineInstall.InstallImage }}'
        """,
        files={
            "talenv.yaml": "SUFFIX: from-talenv\n",
            "patches/role.yaml": """\
                machine:
                  sysctls:
                    # rendered first, then ${VARS} substituted (talhelper's order)
                    custom.role: "{{ .MachineConfig.MachineType }}-${SUFFIX}"
                """,
        },
    )
    configure(keyed, confirm_new_secrets=lambda _p: True)
    cp, w = (
        list(yaml.safe_load_all((keyed / "talos/clusterconfig" / f"lab-{h}.yaml").read_text()))
        for h in ("cp-1", "w-1")
    )
    machine = w[0]["machine"]
    assert machine["nodeLabels"] == {"static": "yes", "role": "worker"}
    assert machine["nodeAnnotations"] == {"installerImage": machine["install"]["image"]}
    assert machine["sysctls"]["custom.role"] == "worker-from-talenv"
    assert cp[0]["machine"]["sysctls"]["custom.role"] == "controlplane-from-talenv"
    assert machine["env"] == {"INLINE": "lab"}


def test_templates_see_the_pre_114_layout_on_contract_114(tmp_path):
    """On 1.14 the install image and node labels live in their own documents; templates
    written against the v1alpha1 layout still read them, and the rendered values land in
    KubeNodeConfig."""
    root = write_repo(
        tmp_path,
        talos="v1.14.0",
        nodes="""
        - hostname: w-1
          ipAddress: 192.0.2.21
          installDisk: /dev/sda
          nodeLabels:
            role: '{{ .MachineConfig.MachineType }}'
          nodeAnnotations:
            installer: '{{ .MachineConfig.MachineInstall.InstallImage }}'
            disk: '{{ .MachineConfig.MachineInstall.InstallDisk }}'
        """,
    )
    docs = documents(root, SecretsBundle.generate("1.14"), "w-1")
    by_kind = {d.get("kind"): d for d in docs}
    image = by_kind["UnattendedInstallConfig"]["installer"]["image"]
    assert by_kind["KubeNodeConfig"]["labels"] == {"role": "worker"}
    assert by_kind["KubeNodeConfig"]["annotations"] == {"installer": image, "disk": "/dev/sda"}
    assert "nodeAnnotations" not in docs[0]["machine"]


@pytest.mark.parametrize(
    ("where", "text", "needle", "message"),
    [
        (
            "talconfig",
            "nodeAnnotations:\n    broken: '{{ .MachineConfig.Install.InstallImage }}'",
            "broken:",
            "can't evaluate field Install",
        ),
        (
            "patch",
            "machine:\n  env:\n    X: '{{ .ConfigVersion | nosuchfunc }}'\n",
            "nosuchfunc",
            'function "nosuchfunc"',
        ),
    ],
)
def test_a_bad_template_is_refused_at_its_line_and_nothing_is_written(keyed, where, text, needle, message):
    if where == "talconfig":
        write_repo(
            keyed, nodes=f"- hostname: w-1\n  ipAddress: 192.0.2.21\n  installDisk: /dev/sda\n  {text}"
        )
        path = keyed / "talos" / "talconfig.yaml"
    else:
        write_repo(keyed, extra='patches:\n  - "@./patches/bad.yaml"', files={"patches/bad.yaml": text})
        path = keyed / "talos" / "patches" / "bad.yaml"
    err = refused(keyed)
    assert f"{path.relative_to(keyed)}:{line_of(path, needle)}" in str(err), str(err)
    assert message in err.message
    assert not (keyed / "talos" / "talsecret.sops.yaml").exists()


# ---- SOPS by content -----------------------------------------------------------------------------


def test_an_encrypted_talenv_and_patch_are_decrypted_whatever_their_names(keyed):
    write_repo(
        keyed,
        extra='patches:\n  - "@./patches/registry.yaml"',
        files={
            "talenv.yaml": "MIRROR_PASSWORD: s3cr3t-from-talenv\n",
            "patches/registry.yaml": """\
                machine:
                  registries:
                    config:
                      mirror.example.org:
                        auth:
                          username: corpus
                          password: ${MIRROR_PASSWORD}
                """,
        },
    )
    for rel in ("talos/talenv.yaml", "talos/patches/registry.yaml"):
        plain = encrypt_in_place(keyed, rel)
        assert b"sops:" in (keyed / rel).read_bytes() and plain not in (keyed / rel).read_bytes()
    assert b"s3cr3t" not in (keyed / "talos/talenv.yaml").read_bytes()
    configure(keyed, confirm_new_secrets=lambda _p: True)
    v1 = next(yaml.safe_load_all((keyed / "talos/clusterconfig/lab-cp-1.yaml").read_text()))
    auth = v1["machine"]["registries"]["config"]["mirror.example.org"]["auth"]
    assert auth == {"username": "corpus", "password": "s3cr3t-from-talenv"}
    # the plaintext is only in the generated (git-ignored, 0600) config, never beside the inputs
    assert not any(
        b"s3cr3t" in p.read_bytes()
        for p in (keyed / "talos").rglob("*")
        if p.is_file() and "clusterconfig" not in p.parts
    )


def test_a_group_file_is_decrypted_once_for_all_its_nodes(keyed, monkeypatch):
    """An encrypted @file in a group's machineFiles (and extraManifests) serves every node
    of the group from one sops run."""
    write_repo(
        keyed,
        extra="""
        worker:
          machineFiles:
            - {path: /var/etc/token, op: create, permissions: 0o600, content: "@./files/token"}
          extraManifests:
            - ./files/manifest.yaml
        """,
        nodes="\n".join(
            f"- {{hostname: w-{i}, ipAddress: 192.0.2.2{i}, installDisk: /dev/sda}}" for i in (1, 2, 3)
        ),
        files={
            "files/token": "token: s3cr3t-file\n",
            "files/manifest.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
        },
    )
    for rel in ("talos/files/token", "talos/files/manifest.yaml"):
        encrypt_in_place(keyed, rel)
    runs: list[str] = []
    real = sops.decrypt

    def counted(path, **kw):
        runs.append(Path(path).name)
        return real(path, **kw)

    monkeypatch.setattr(sops, "decrypt", counted)
    cluster = load_cluster(keyed)
    assert sorted(runs) == ["manifest.yaml", "token"]
    assert {n.machine_files[0]["content"] for n in cluster.workers} == {"token: s3cr3t-file\n"}
    assert all(len(n.extra_manifests) == 1 for n in cluster.workers)


def test_a_bad_line_of_an_encrypted_talenv_is_located_but_not_quoted(keyed):
    """A decrypted talenv's lines may be key material (a multi-line value is not dotenv):
    the refusal names the line, it never prints it."""
    write_repo(keyed, files={"talenv.yaml": "A: b\nKEY: |\n  s3cr3t-key-material\n"})
    encrypt_in_place(keyed, "talos/talenv.yaml")
    err = refused(keyed)
    assert err.where is not None and err.where.startswith("talos/talenv.yaml:")
    assert "cannot read this line" in err.message
    assert "s3cr3t" not in f"{err.message} {err.hint} {err.where}"


def test_an_encrypted_file_the_key_cannot_open_is_refused_by_name(keyed, tmp_path, monkeypatch):
    write_repo(keyed, files={"talenv.yaml": "A: b\n"})
    encrypt_in_place(keyed, "talos/talenv.yaml")
    other, _ = age.generate()
    (tmp_path / "other.txt").write_text(other)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "other.txt"))
    err = refused(keyed)
    assert err.where == "talos/talenv.yaml"
    assert "SOPS_AGE_KEY_FILE" in (err.hint or "")


# ---- input that is truly wrong -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "needle", "message"),
    [
        # Nospamas/home-ops at 2fa79d1: talhelper drops the key and installs to any disk
        (
            "installDiskSelector:\n    transport: usb",
            "transport",
            "unknown key 'transport' in installDiskSelector",
        ),
        # Mistikan/hl-cluster at 7124e8c^: a path of the author's dev container
        (
            "installDisk: /dev/sda\n  extraManifests:\n    - /workspaces/hl-cluster/talos/volumeconfig.yaml",
            "/workspaces",
            "does not exist",
        ),
        (
            "installDisk: /dev/sda\n  machineFiles:\n    - path: /var/x\n      op: replace",
            "op: replace",
            "'replace' is not a valid operation",
        ),
        (
            "installDisk: /dev/sda\n  userVolumes:\n    - name: a\n    - name: a",
            "- name: a",
            "duplicated user volume config name",
        ),
        (
            "installDisk: /dev/sda\n  ingressFirewall:\n    rules:\n      - name: r\n        portSelector: {ports: [80], protocol: sctp}",
            "portSelector",
            "'sctp' is not a valid protocol",
        ),
        (
            "installDisk: /dev/sda\n  networkInterfaces:\n    - interface: bond0\n      bond: {interfaces: [eth0], mode: active-passive}",
            "- interface: bond0",
            "bond mode 'active-passive' is not one Talos knows",
        ),
    ],
)
def test_wrong_input_is_refused_at_its_line(keyed, nodes, needle, message):
    write_repo(keyed, nodes=f"- hostname: w-1\n  ipAddress: 192.0.2.21\n  {nodes}")
    err = refused(keyed)
    path = keyed / "talos" / "talconfig.yaml"
    line = line_of(path, needle) if needle != "- name: a" else line_of(path, "userVolumes") + 2
    assert f"talconfig.yaml:{line}" in str(err), str(err)
    assert message in str(err)


def test_secrets_under_talhelpers_other_names(keyed):
    """talsecret.yaml encrypted in place is read by content; one whose every secret is a
    ${VAR} (exported by a password manager) is substituted; clear-text keys are refused."""
    write_repo(keyed)
    bundle = SecretsBundle.generate("1.13")
    (keyed / "talos" / "talsecret.yaml").write_text(bundle.to_yaml())
    encrypt_in_place(keyed, "talos/talsecret.yaml")
    plan = configure(keyed, confirm_new_secrets=lambda _p: pytest.fail("asked to create new secrets"))
    assert plan.new_secrets is None and not (keyed / "talos" / "talsecret.sops.yaml").exists()
    v1 = next(yaml.safe_load_all((keyed / "talos/clusterconfig/lab-cp-1.yaml").read_text()))
    assert v1["cluster"]["secret"] == bundle.cluster_secret

    # placeholders: the secrets come from the environment (talenv here)
    flat: dict[str, str] = {}

    def refs(node, prefix=""):
        if isinstance(node, dict):
            return {k: refs(v, f"{prefix}{k}_") for k, v in node.items()}
        name = prefix.rstrip("_").upper()
        flat[name] = str(node)
        return "${" + name + "}"

    (keyed / "talos" / "talsecret.yaml").write_text(yaml.safe_dump(refs(bundle.to_dict())))
    (keyed / "talos" / "talenv.yaml").write_text("".join(f'{k}: "{v}"\n' for k, v in flat.items()))
    configure(keyed)
    v1 = next(yaml.safe_load_all((keyed / "talos/clusterconfig/lab-cp-1.yaml").read_text()))
    assert v1["cluster"]["secret"] == bundle.cluster_secret
    # what renders a node without configure's output (apply-node, diff-config) reads them too
    (keyed / "talos/clusterconfig/lab-cp-1.yaml").unlink()
    cluster = load_cluster(keyed)
    data, source = node_config(keyed, cluster, cluster.node("cp-1"))
    assert source == "rendered from talos/ (not written)"
    assert next(yaml.safe_load_all(data))["cluster"]["secret"] == bundle.cluster_secret

    (keyed / "talos" / "talsecret.yaml").write_text(bundle.to_yaml())  # key material in clear
    err = refused(keyed)
    assert err.where == "talos/talsecret.yaml" and "unencrypted" in err.message

    # ... also when it is written as the default of a placeholder
    def defaults(node, prefix=""):
        if isinstance(node, dict):
            return {k: defaults(v, f"{prefix}{k}_") for k, v in node.items()}
        return "${" + prefix.rstrip("_").upper() + ":-" + str(node) + "}"

    (keyed / "talos" / "talsecret.yaml").write_text(yaml.safe_dump(defaults(bundle.to_dict())))
    err = refused(keyed)
    assert err.where == "talos/talsecret.yaml" and "unencrypted" in err.message
