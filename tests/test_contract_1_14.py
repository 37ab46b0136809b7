"""Contract 1.14: the document map, old and new form of one setting, control-plane-only
documents, multi-document patches — pure logic, no server.

Documents are built by hand in the shape the 1.14 generator writes; old-form patches are
applied with the real patch code, so every error names the patch's own file:line.
"""

from __future__ import annotations

import pytest
import yaml

from taltasks.errors import InputError
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.docmap import (
    MOVES,
    disk_path_expression,
    disk_selector_expression,
    moved_at,
    parse_size,
    replacement_yaml,
)
from taltasks.machineconfig.patches import apply_patch, parse_patch
from taltasks.machineconfig.validate import Origins, RuleContext, rules_for
from taltasks.machineconfig.validate.engine import decode_findings

C14 = VersionContract(1, 14)
C13 = VersionContract(1, 13)
IMAGE = "ghcr.io/siderolabs/kubelet:v1.36.0"


def _docs(role: str = "worker") -> list[dict]:
    """A minimal 1.14 config: v1alpha1 plus the documents every node gets."""
    v1 = {
        "version": "v1alpha1",
        "debug": False,
        "persist": True,
        "machine": {"type": role, "token": "t0ken.abcdefabcdefabcd", "ca": {"crt": "Y3J0", "key": ""}},
        "cluster": {"token": "abcdef.0123456789abcdef"},
    }
    return [
        v1,
        {"apiVersion": "v1alpha1", "kind": "KubeClusterConfig", "clusterName": "demo", "endpoint": "https://192.0.2.10:6443"},
        {"apiVersion": "v1alpha1", "kind": "KubeNodeConfig", "nodeIP": {}},
        {"apiVersion": "v1alpha1", "kind": "KubeletConfig", "image": IMAGE, "config": {}},
        {"apiVersion": "v1alpha1", "kind": "KubeNetworkConfig", "dnsDomain": "cluster.local",
         "podSubnets": ["10.244.0.0/16"], "serviceSubnets": ["10.96.0.0/12"]},
        {"apiVersion": "v1alpha1", "kind": "ResolverConfig", "hostDNS": {"enabled": True, "forwardKubeDNSToHost": True}},
    ]  # fmt: skip


def _patched(text: str, source: str = "talos/patches/global/kubelet.yaml", role: str = "worker"):
    origins = Origins(default="talos/talconfig.yaml:40")
    docs = apply_patch(_docs(role), parse_patch(text, source), node="w1", origins=origins)
    return docs, origins


MINE = ("v1alpha1-and-document-exclusive", "control-plane-only-documents", "documents-unique")


def _errors(docs, origins, contract=C14):
    """Errors of decoding and of this module's rules (the v1alpha1 rules need a complete
    config, which these hand-made documents are not)."""
    found = [f for f in decode_findings(docs, contract, node="w1", origins=origins) if f.is_error]
    if found:
        return found
    ctx = RuleContext(docs, contract, mode="container", node="w1", origins=origins)
    for r in rules_for(contract):
        if r.name in MINE:
            r.check(ctx)
    return [f for f in ctx.findings if f.is_error]


# ---- the document map ------------------------------------------------------------------------


def test_every_moved_section_names_documents_of_the_1_14_schema():
    from taltasks.machineconfig.validate.typemodel import model

    kinds = model((1, 14)).kinds
    for m in MOVES:
        assert set(m.exclusive) <= set(m.kinds) <= set(kinds), m
        for key, (kind, path) in m.fields.items():
            assert path and path[0] in kinds[kind].fields, (m.label, key, kind, path)


def test_kubelet_section_splits_into_kubelet_and_node_documents():
    t = moved_at(("machine", "kubelet", "extraArgs")).translate(
        {
            "extraArgs": {"rotate-server-certificates": "true"},
            "extraConfig": {"serializeImagePulls": False},
            "nodeIP": {"validSubnets": ["192.0.2.0/24"]},
            "disableManifestsDirectory": True,
            "extraMounts": [{"destination": "/var/lib/x"}],
        }
    )
    by_kind = {d["kind"]: d for d in t.documents}
    assert by_kind["KubeletConfig"] == {
        "apiVersion": "v1alpha1",
        "kind": "KubeletConfig",
        "extraArgs": {"rotate-server-certificates": "true"},
        "config": {"serializeImagePulls": False},
    }
    assert by_kind["KubeNodeConfig"]["nodeIP"] == {"validSubnets": ["192.0.2.0/24"]}
    assert [p for p, _ in t.dropped] == [("disableManifestsDirectory",), ("extraMounts",)]


@pytest.mark.parametrize(
    ("old", "value", "expected"),
    [
        (("cluster", "proxy"), {"disabled": True}, [{"kind": "KubeProxyConfig", "enabled": False}]),
        (("cluster", "coreDNS"), {"disabled": True}, [{"kind": "KubeCoreDNSConfig", "enabled": False}]),
        (("cluster", "network"), {"cni": {"name": "none"}}, [{"kind": "KubeFlannelCNIConfig", "$patch": "delete"}]),
        (("cluster", "allowSchedulingOnControlPlanes"), True,
         [{"kind": "KubeNodeConfig", "taints": {"node-role.kubernetes.io/control-plane": {"$patch": "delete"}}}]),
        (("machine", "features", "kubePrism"), {"enabled": False}, [{"kind": "KubePrismConfig", "$patch": "delete"}]),
        (("machine", "features", "kubernetesTalosAPIAccess"),
         {"enabled": True, "allowedRoles": ["os:reader"], "allowedKubernetesNamespaces": ["system-upgrade"]},
         [{"kind": "KubeTalosAPIAccessConfig", "allowedRoles": ["os:reader"],
           "allowedKubernetesNamespaces": ["system-upgrade"]}]),
        (("machine", "kernel", "modules"), [{"name": "rbd"}],
         [{"kind": "KernelModuleConfig", "name": "rbd"}]),
        (("machine", "sysctls"), {"vm.nr_hugepages": "64"}, [{"kind": "SysctlConfig", "params": {"vm.nr_hugepages": "64"}}]),
        (("cluster", "controllerManager"), {"extraArgs": {"bind-address": "0.0.0.0"}},
         [{"kind": "KubeControllerManagerConfig", "extraArgs": {"bind-address": "0.0.0.0"}}]),
        (("cluster", "apiServer"), {"certSANs": ["k8s.example"]},
         [{"kind": "KubeAPIServerConfig", "certExtraSANs": ["k8s.example"]}]),
        (("machine", "install"), {"disk": "/dev/nvme0n1", "wipe": False},
         [{"kind": "UnattendedInstallConfig",
           "provisioning": {"diskSelector": {"match": 'disk.dev_path == "/dev/nvme0n1"'}, "wipe": False}}]),
        (("cluster", "discovery"), {"enabled": False},
         [{"kind": "DiscoveryServiceConfig", "name": "default", "$patch": "delete"}]),
    ],
)  # fmt: skip
def test_translation_of_a_section(old, value, expected):
    docs = moved_at(old).translate(value).documents
    assert [{k: v for k, v in d.items() if k != "apiVersion"} for d in docs] == expected
    assert all(d["apiVersion"] == "v1alpha1" for d in docs)


def test_hint_yaml_never_prints_secret_values():
    t = moved_at(("cluster", "secretboxEncryptionSecret")).translate("c2VjcmV0IHZhbHVlIQ==")
    text = replacement_yaml(t)
    assert "c2VjcmV0IHZhbHVlIQ==" not in text and "<the value from your patch>" in text
    assert yaml.safe_load(text)["kind"] == "KubeEtcdEncryptionConfig"


def test_install_disk_selector_as_talos_cel():
    assert disk_path_expression("/dev/sda") == 'disk.dev_path == "/dev/sda"'
    assert disk_selector_expression({"size": ">= 500GB", "model": "Samsung*", "type": "ssd"}) == (
        'disk.size >= 500000000000u && glob("Samsung*", disk.model) && disk.transport != "" '
        "&& !disk.rotational && !disk.readonly && !disk.cdrom"
    )
    assert disk_selector_expression({"serial": "S3Z*", "busPath": "/pci0000:00/*"}) == (
        'glob("S3Z*", disk.serial) && disk.transport != "" && glob("/pci0000:00/*", disk.bus_path) '
        "&& !disk.readonly && !disk.cdrom"
    )
    assert disk_selector_expression({"size": "1TiB"}).startswith(f"disk.size == {2**40}u")
    assert parse_size("1.5GB") == 1_500_000_000
    with pytest.raises(ValueError, match=r"`name` has no 1\.14 form"):
        disk_selector_expression({"name": "sda"})
    with pytest.raises(ValueError, match="unsupported install disk type"):
        disk_selector_expression({"type": "floppy"})


# ---- old and new form together ---------------------------------------------------------------

KUBELET_PATCH = """\
# every node's kubelet
machine:
  kubelet:
    extraArgs:
      rotate-server-certificates: "true"
    nodeIP:
      validSubnets:
        - 192.0.2.0/24
"""


def test_old_form_kubelet_patch_is_refused_at_its_line_with_the_documents_to_write():
    docs, origins = _patched(KUBELET_PATCH)
    errors = _errors(docs, origins)
    assert len(errors) == 1, [e.render() for e in errors]
    e = errors[0]
    assert e.location == "talos/patches/global/kubelet.yaml:3"
    assert e.node == "w1" and e.subject == "v1alpha1 machine.kubelet"
    assert "KubeletConfig document of contract 1.14" in e.message and "refuses both" in e.message
    written = list(yaml.safe_load_all(e.hint.split("\n", 1)[1]))
    assert written == [
        {
            "apiVersion": "v1alpha1",
            "kind": "KubeletConfig",
            "extraArgs": {"rotate-server-certificates": "true"},
        },
        {"apiVersion": "v1alpha1", "kind": "KubeNodeConfig", "nodeIP": {"validSubnets": ["192.0.2.0/24"]}},
    ]


def test_the_replacement_documents_are_accepted_on_1_14():
    """What the hint says to write, written as a patch, gives a config with no error."""
    docs, origins = _patched(KUBELET_PATCH)
    hint = _errors(docs, origins)[0].hint.split("\n", 1)[1]
    docs, origins = _patched(hint)
    assert _errors(docs, origins) == []
    kubelet = next(d for d in docs if d.get("kind") == "KubeletConfig")
    assert kubelet["extraArgs"] == {"rotate-server-certificates": "true"} and kubelet["image"] == IMAGE
    assert "kubelet" not in docs[0]["machine"]


def test_old_form_accepted_when_the_document_was_deleted():
    """Talos reads machine.kubelet when no KubeletConfig is in the config: so do we."""
    patch = "apiVersion: v1alpha1\nkind: KubeletConfig\n$patch: delete\n---\n" + KUBELET_PATCH.replace(
        "    nodeIP:\n      validSubnets:\n        - 192.0.2.0/24\n", ""
    )
    docs, origins = _patched(patch)
    assert not any(d.get("kind") == "KubeletConfig" for d in docs)
    assert _errors(docs, origins) == []


def test_both_forms_accepted_for_sysctls_and_kernel_modules():
    docs, origins = _patched(
        'machine:\n  sysctls:\n    vm.nr_hugepages: "64"\n  kernel:\n    modules:\n      - name: rbd\n'
    )
    docs.append({"apiVersion": "v1alpha1", "kind": "SysctlConfig", "params": {"net.core.somaxconn": "65535"}})
    assert _errors(docs, origins) == []


def test_control_plane_section_on_a_control_plane_is_refused():
    docs, origins = _patched(
        "cluster:\n  proxy:\n    disabled: true\n",
        source="talos/patches/controller/cluster.yaml",
        role="controlplane",
    )
    docs.append(
        {"apiVersion": "v1alpha1", "kind": "KubeProxyConfig", "image": "registry.k8s.io/kube-proxy:v1.36.0"}
    )
    errors = _errors(docs, origins)
    assert [(e.location, e.subject) for e in errors] == [
        ("talos/patches/controller/cluster.yaml:2", "v1alpha1 cluster.proxy")
    ]
    assert "kind: KubeProxyConfig\nenabled: false" in errors[0].hint


def test_the_rule_belongs_to_1_14_only():
    docs, origins = _patched(KUBELET_PATCH)
    assert not any("refuses both" in e.message for e in _errors(docs, origins, C13))


def test_control_plane_document_on_a_worker_is_refused_at_the_patch():
    docs, origins = _patched(
        "apiVersion: v1alpha1\nkind: KubeAPIServerConfig\nimage: registry.k8s.io/kube-apiserver:v1.36.0\n",
        source="talos/patches/global/apiserver.yaml",
    )
    errors = _errors(docs, origins)
    assert [(e.location, e.document) for e in errors] == [
        ("talos/patches/global/apiserver.yaml:1", "KubeAPIServerConfig")
    ]
    assert "control-plane document" in errors[0].message and "controlPlane.patches" in errors[0].hint


# ---- multi-document patches ------------------------------------------------------------------

MULTI = """\
apiVersion: v1alpha1
kind: KubeletConfig
extraArgs:
  rotate-server-certificates: "true"
---
apiVersion: v1alpha1
kind: KubeNodeConfig
labels:
  topology.kubernetes.io/zone: zone-a
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: local-data
provisioning:
  diskSelector:
    match: disk.transport == "nvme"
  maxSize: 50GiB
"""


def test_one_patch_file_targets_several_documents_by_kind_and_name():
    docs, origins = _patched(MULTI, source="talos/patches/global/docs.yaml")
    kubelet = next(d for d in docs if d.get("kind") == "KubeletConfig")
    assert kubelet["image"] == IMAGE and kubelet["extraArgs"] == {"rotate-server-certificates": "true"}
    assert next(d for d in docs if d.get("kind") == "KubeNodeConfig")["labels"] == {
        "topology.kubernetes.io/zone": "zone-a"
    }
    volume = docs[-1]
    assert (volume["kind"], volume["name"]) == ("UserVolumeConfig", "local-data")
    # provenance: each value points at its own document's line in the file
    ids = {
        ("v1alpha1", "KubeletConfig", ""): ("extraArgs",),
        ("v1alpha1", "UserVolumeConfig", "local-data"): ("provisioning", "maxSize"),
    }
    where = {k: origins.locate(k, p) for k, p in ids.items()}
    assert where == {
        ("v1alpha1", "KubeletConfig", ""): "talos/patches/global/docs.yaml:3",
        ("v1alpha1", "UserVolumeConfig", "local-data"): "talos/patches/global/docs.yaml:17",
    }
    assert _errors(docs, origins) == []


def test_delete_a_whole_document_and_a_key_of_another():
    docs, _ = _patched(
        "apiVersion: v1alpha1\nkind: ResolverConfig\n$patch: delete\n---\n"
        "apiVersion: v1alpha1\nkind: KubeletConfig\nconfig:\n  $patch: delete\n"
    )
    assert not any(d.get("kind") == "ResolverConfig" for d in docs)
    assert "config" not in next(d for d in docs if d.get("kind") == "KubeletConfig")


def test_delete_of_a_document_no_node_has_names_the_line_and_the_documents_there():
    with pytest.raises(InputError) as err:
        _patched(
            "apiVersion: v1alpha1\nkind: KubeletConfg\n$patch: delete\n", source="talos/patches/global/x.yaml"
        )
    e = err.value
    assert e.where == "talos/patches/global/x.yaml:3"
    assert "no such document in the config (did you mean 'v1alpha1/KubeletConfig'?)" in e.message
    assert "node w1" in e.message and "KubeNodeConfig" in e.hint


def test_delete_of_a_control_plane_document_is_skipped_on_workers():
    """One global patch may delete a document only control planes have (Talos skips a delete
    of a document the config does not hold)."""
    patch = parse_patch("apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n", "p.yaml")
    flannel = ("v1alpha1", "KubeFlannelCNIConfig", "")
    docs = apply_patch(_docs(), patch, node="w1", elsewhere={flannel})
    assert [d.get("kind") for d in docs] == [d.get("kind") for d in _docs()]
    cp = [
        *_docs("controlplane"),
        {"apiVersion": "v1alpha1", "kind": "KubeFlannelCNIConfig", "backendType": "vxlan"},
    ]
    assert not any(
        d.get("kind") == "KubeFlannelCNIConfig" for d in apply_patch(cp, patch, elsewhere={flannel})
    )


def test_delete_of_a_moved_v1alpha1_key_points_at_the_document():
    with pytest.raises(InputError) as err:
        _patched(
            "machine:\n  kubelet:\n    extraArgs:\n      $patch: delete\n",
            source="talos/patches/global/k.yaml",
        )
    assert err.value.where == "talos/patches/global/k.yaml:4"
    assert "lookup failed at 'kubelet'" in err.value.message
    assert "holds machine.kubelet as the KubeletConfig" in err.value.hint


def test_one_patch_may_not_hold_the_same_named_document_twice():
    text = "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n---\napiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"
    with pytest.raises(InputError) as err:
        parse_patch(text, "talos/patches/global/vol.yaml")
    assert err.value.where == "talos/patches/global/vol.yaml:5"
    assert "appears twice in one patch" in err.value.message


def test_json_patch_refused_on_a_1_14_config_with_talos_message():
    patch = parse_patch(
        "- op: add\n  path: /machine/certSANs/-\n  value: 192.0.2.10\n", "talos/patches/global/j.yaml"
    )
    with pytest.raises(InputError) as err:
        apply_patch(_docs(), patch, node="w1")
    assert (
        "JSON6902 patches are not supported for multi-document machine configuration (node w1)"
        in err.value.message
    )
    assert err.value.where == "talos/patches/global/j.yaml:1"
    assert "strategic merge patch" in err.value.hint


def test_docs_list_every_moved_section():
    """docs/configure.md's document map is this table, row for row."""
    from testpaths import REPO_ROOT

    text = (REPO_ROOT / "docs" / "configure.md").read_text()
    section = text[text.index("### The document map") : text.index("### talconfig.yaml on 1.14")]
    for m in MOVES:
        row = next((line for line in section.splitlines() if line.startswith(f"| `{m.label}` |")), None)
        assert row is not None, f"docs/configure.md has no row for {m.label}"
        assert all(f"`{k}`" in row for k in m.kinds), row
        assert ("refused together" in row) == bool(m.exclusive), row


# ---- the simulator reads 1.14 configs ------------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    """gen config for 1.13 and 1.14 with the same secrets (control plane, worker)."""
    from taltasks.machineconfig.encode import dump_documents
    from taltasks.machineconfig.genconfig import GenConfigOptions, gen_config
    from taltasks.machineconfig.secrets import SecretsBundle

    secrets = SecretsBundle.generate("1.13")
    out = {}
    for version, k8s in (("v1.13.9", "v1.36.4"), ("v1.14.7", "v1.37.2")):
        g = gen_config(
            GenConfigOptions(
                "demo",
                "https://192.0.2.10:6443",
                secrets=secrets,
                talos_version=version,
                kubernetes_version=k8s,
            )
        )
        out[version] = (dump_documents(g.controlplane), dump_documents(g.worker))
    return out


def test_simulator_reads_settings_from_1_14_documents(generated):
    from taltasks.sim.talos import configview

    cp13, _ = generated["v1.13.9"]
    cp14, w14 = generated["v1.14.7"]
    old, new = configview.parse(cp13, "v1.14.7"), configview.parse(cp14, "v1.14.7")
    assert new.kubelet_image == "ghcr.io/siderolabs/kubelet:v1.37.2"
    assert new.image("apiServer") == "registry.k8s.io/kube-apiserver:v1.37.2"
    assert new.image("proxy") == "registry.k8s.io/kube-proxy:v1.37.2" and not new.proxy_disabled
    assert (new.cluster_name, new.cluster_endpoint) == ("demo", "https://192.0.2.10:6443")
    assert (
        new.install_image.endswith(":v1.14.7") and "factory.talos.dev/metal-installer/" in new.install_image
    )
    # the same Kubernetes CA as the 1.13 config held base64-encoded in cluster.ca
    assert new.k8s_ca_crt == old.k8s_ca_crt and new.k8s_ca_key == old.k8s_ca_key and new.k8s_ca_key
    worker = configview.parse(w14, "v1.14.7")
    assert worker.k8s_ca_crt == old.k8s_ca_crt and worker.k8s_ca_key is None


def test_a_1_13_node_refuses_a_1_14_config(generated):
    from taltasks.sim.talos import configview

    cp14, _ = generated["v1.14.7"]
    with pytest.raises(configview.ConfigRejected, match=r"unknown document kind '\w+' \(Talos v1\.13\.9"):
        configview.parse(cp14, "v1.13.9")
    assert configview.applies_live("v1.14.7") and not configview.applies_live("v1.13.9")


def test_changes_between_1_13_and_1_14_configs_are_moves_and_new_defaults(generated):
    from taltasks.machineconfig.changes import config_changes

    cp13, _ = generated["v1.13.9"]
    cp14, _ = generated["v1.14.7"]
    changes = config_changes(cp13, cp14)
    moved = {c.subject.split(" → ")[0]: c for c in changes.moved}
    assert {"machine.kubelet", "cluster.apiServer", "cluster.network", "cluster.ca", "cluster.id"} <= set(
        moved
    )
    assert not moved["cluster.network"].detail and not moved["cluster.ca"].detail  # same values
    assert (
        "image ghcr.io/siderolabs/kubelet:v1.36.4 → ghcr.io/siderolabs/kubelet:v1.37.2"
        in moved["machine.kubelet"].detail
    )
    real = {c.subject: c for c in changes.changes if c.what != "moved"}
    assert (
        real["document SecurityProfileConfig"].reboot
        and "sandboxd" in real["document SecurityProfileConfig"].reboot
    )
    assert real["document VolumeConfig/EPHEMERAL"].reboot
    assert real["document FilesystemTrimConfig"].reboot is None  # applied live
    # secret values never appear, whatever moved
    text = "\n".join(c.line() for c in changes.changes)
    v1 = next(yaml.safe_load_all(cp13))
    assert v1["cluster"]["secretboxEncryptionSecret"] not in text and v1["machine"]["token"] not in text
    assert changes.summary().endswith(f"{len(changes.reboot_only)} only at the next reboot")


def test_no_change_between_identical_configs(generated):
    from taltasks.machineconfig.changes import config_changes

    cp14, _ = generated["v1.14.7"]
    assert config_changes(cp14, cp14).changes == []
    assert config_changes(cp14, cp14).summary() == "no differences"
