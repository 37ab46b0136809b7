"""Strategic merge, $patch: delete and JSON patches behave like Talos's (pure logic, tables)."""

from __future__ import annotations

import copy

import pytest

from taltasks.errors import InputError
from taltasks.machineconfig.merge import MergeError, merge_document, merge_documents
from taltasks.machineconfig.patches import apply_patch, parse_patch

BASE = {
    "version": "v1alpha1",
    "machine": {
        "type": "worker",
        "install": {"disk": "/dev/sda", "wipe": False},
        "certSANs": ["a"],
        "nodeLabels": {"node.kubernetes.io/exclude-from-external-load-balancers": ""},
        "network": {"interfaces": [{"interface": "eth0", "mtu": 1500, "addresses": ["10.0.0.2/24"]}]},
        "kubelet": {"extraArgs": {"a": "1"}},
    },
    "cluster": {
        "network": {"podSubnets": ["10.244.0.0/16"], "serviceSubnets": ["10.96.0.0/12"]},
        "apiServer": {
            "admissionControl": [
                {"name": "PodSecurity", "configuration": {"exemptions": {"namespaces": ["kube-system"]}}}
            ],
            "auditPolicy": {"rules": [{"level": "Metadata"}]},
        },
    },
}
HOSTNAME = {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}


def merged(patch):
    left = copy.deepcopy(BASE)
    merge_document(left, patch)
    return left


@pytest.mark.parametrize(
    ("patch", "path", "expected"),
    [
        ({"machine": {"install": {"disk": "/dev/vda"}}}, ("machine", "install", "disk"), "/dev/vda"),
        (
            {"machine": {"install": {"disk": ""}}},
            ("machine", "install", "disk"),
            "/dev/sda",
        ),  # zero does not override
        ({"machine": {"install": {"wipe": True}}}, ("machine", "install", "wipe"), True),
        (
            {"machine": {"install": {"wipe": False}}},
            ("machine", "install", "wipe"),
            False,
        ),  # false always merges
        ({"machine": {"certSANs": ["b"]}}, ("machine", "certSANs"), ["a", "b"]),  # lists append
        (
            {"cluster": {"network": {"podSubnets": ["10.1.0.0/16"]}}},
            ("cluster", "network", "podSubnets"),
            ["10.1.0.0/16"],
        ),
        (
            {"cluster": {"apiServer": {"auditPolicy": {"rules": [{"level": "None"}]}}}},
            ("cluster", "apiServer", "auditPolicy"),
            {"rules": [{"level": "None"}]},
        ),
        (
            {"machine": {"kubelet": {"extraArgs": {"b": "2"}}}},
            ("machine", "kubelet", "extraArgs"),
            {"a": "1", "b": "2"},
        ),
        (
            {"machine": {"nodeLabels": {"zone": ""}}},
            ("machine", "nodeLabels", "zone"),
            "",
        ),  # free-form maps keep ""
        (
            {"machine": {"install": {"image": ""}}},
            ("machine", "install"),
            {"disk": "/dev/sda", "wipe": False},
        ),  # struct: "" omitted
        (
            {
                "machine": {
                    "network": {
                        "interfaces": [{"interface": "eth0", "mtu": 9000, "addresses": ["10.0.0.3/24"]}]
                    }
                }
            },
            ("machine", "network", "interfaces"),
            [{"interface": "eth0", "mtu": 9000, "addresses": ["10.0.0.2/24", "10.0.0.3/24"]}],
        ),
        (
            {"machine": {"network": {"interfaces": [{"interface": "eth1", "dhcp": True}]}}},
            ("machine", "network", "interfaces", 1),
            {"interface": "eth1", "dhcp": True},
        ),
        (
            {
                "cluster": {
                    "apiServer": {
                        "admissionControl": [
                            {
                                "name": "PodSecurity",
                                "configuration": {"exemptions": {"namespaces": ["rook-ceph"]}},
                            }
                        ]
                    }
                }
            },
            ("cluster", "apiServer", "admissionControl"),
            [
                {
                    "name": "PodSecurity",
                    "configuration": {"exemptions": {"namespaces": ["kube-system", "rook-ceph"]}},
                }
            ],
        ),
    ],
)
def test_merge_rules(patch, path, expected):
    node = merged(patch)
    for key in path:
        node = node[key]
    assert node == expected


def test_type_mismatch_is_an_error_with_the_path():
    with pytest.raises(MergeError) as info:
        merged({"machine": {"certSANs": {"a": 1}}})
    assert info.value.path == ("machine", "certSANs")


def test_documents_are_matched_by_identity_or_appended():
    docs = [copy.deepcopy(BASE), dict(HOSTNAME)]
    merge_documents(
        docs,
        [
            {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "cp-1", "auto": "off"},
            {"apiVersion": "v1alpha1", "kind": "ResolverConfig", "nameservers": [{"address": "1.1.1.1"}]},
        ],
    )
    assert docs[1] == {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "off", "hostname": "cp-1"}
    assert [d.get("kind") for d in docs] == [None, "HostnameConfig", "ResolverConfig"]


def apply_text(text, docs=None, source="p.yaml"):
    patch = parse_patch(text, source)
    return apply_patch(docs if docs is not None else [copy.deepcopy(BASE)], patch)


def test_delete_a_key():
    docs = apply_text(
        "machine:\n  nodeLabels:\n    node.kubernetes.io/exclude-from-external-load-balancers:\n      $patch: delete\n"
    )
    assert docs[0]["machine"]["nodeLabels"] == {}


def test_delete_a_list_item_by_its_first_key():
    docs = apply_text(
        "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        $patch: delete\n"
    )
    assert docs[0]["machine"]["network"]["interfaces"] == []


def test_delete_then_replace_a_list_across_two_patches():
    docs = apply_text("cluster:\n  network:\n    serviceSubnets:\n      $patch: delete\n")
    assert "serviceSubnets" not in docs[0]["cluster"]["network"]
    docs = apply_text("cluster:\n  network:\n    serviceSubnets: [10.50.0.0/16]\n", docs)
    assert docs[0]["cluster"]["network"]["serviceSubnets"] == ["10.50.0.0/16"]


def test_delete_a_document_and_never_the_v1alpha1_one():
    docs = apply_text(
        "apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n", [copy.deepcopy(BASE), dict(HOSTNAME)]
    )
    assert len(docs) == 1
    with pytest.raises(InputError, match="cannot be deleted"):
        parse_patch("version: v1alpha1\n$patch: delete\n", "p.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "machine:\n  kubelet:\n    extraConfig:\n      maxPods:\n        $patch: delete\n",  # parent missing
        "machine:\n  nodeLabels:\n    missing-label:\n      $patch: delete\n",  # key of a free-form map
        "machine:\n  network:\n    interfaces:\n      - interface: eth9\n        $patch: delete\n",  # no such item
        "apiVersion: v1alpha1\nkind: ResolverConfig\n$patch: delete\n",  # no such document
    ],
)
def test_delete_of_something_missing_is_an_error_at_its_line(text):
    with pytest.raises(InputError) as info:
        apply_text(text, [copy.deepcopy(BASE), dict(HOSTNAME)])
    assert "$patch: delete" in info.value.message
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "$patch" in ln)
    assert info.value.where == f"p.yaml:{line}"


def test_json_patch_on_single_document():
    docs = apply_text(
        "- op: add\n  path: /machine/kubelet/extraArgs/b\n  value: '2'\n- op: remove\n  path: /machine/certSANs/0\n"
    )
    assert docs[0]["machine"]["kubelet"]["extraArgs"] == {"a": "1", "b": "2"}
    assert docs[0]["machine"]["certSANs"] == []


def test_json_patch_is_refused_on_multi_document_configs():
    with pytest.raises(InputError) as info:
        apply_text('[{"op": "remove", "path": "/machine/certSANs"}]', [copy.deepcopy(BASE), dict(HOSTNAME)])
    assert "not supported for multi-document" in info.value.message
    assert info.value.where == "p.yaml:1"
    assert "$$patch: delete" in info.value.hint


def test_json_patch_failure_names_the_operation_line():
    with pytest.raises(InputError) as info:
        apply_text("- op: add\n  path: /machine/x\n  value: 1\n- op: remove\n  path: /machine/nope\n")
    assert "operation 2" in info.value.message
    assert info.value.where == "p.yaml:4"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("machine:\n  install: [\n", 3),
        ("- op: frobnicate\n  path: /x\n", 1),
        ("machine: {}\n---\nmachine: {}\n", 3),  # the same document twice
        ("just a string\n", 1),
    ],
)
def test_malformed_patches_are_located(text, line):
    with pytest.raises(InputError) as info:
        parse_patch(text, "talos/patches/p.yaml")
    assert "malformed patch" in info.value.message
    assert info.value.where == f"talos/patches/p.yaml:{line}"


def test_empty_patch_is_skipped_like_talhelper():
    assert parse_patch("  \n", "p.yaml") is None
    assert parse_patch("# only a comment\n", "p.yaml") is None
