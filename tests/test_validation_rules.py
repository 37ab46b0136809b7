"""Talos's Validate rules, case by case, on configs `configure` generated for the demo."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from configure_support import copy_demo
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.encode import load_documents
from taltasks.machineconfig.validate import validate_documents
from taltasks.workflows.configure import OUTPUT_DIR, configure

C11, C13 = VersionContract(1, 11), VersionContract(1, 13)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, list[dict]]:
    demo = copy_demo(tmp_path_factory.mktemp("rules") / "repo")
    configure(demo)
    return {
        role: load_documents((demo / OUTPUT_DIR / f"demo-{node}.yaml").read_bytes())
        for role, node in (("controlplane", "cp-1"), ("worker", "worker-1"))
    }


def _set(path: str, value) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return change


CASES = [
    # (role, contract, change, severity, dotted path, message fragment)
    ("worker", C11, _set("machine.type", "join"), "warning", "machine.type", "use worker instead of join"),
    ("worker", C11, _set("machine.type", "master"), "error", "machine.type", "master is not one of"),
    (
        "controlplane",
        C11,
        _set("cluster.network.cni", {"name": "custom"}),
        "warning",
        "cluster.network.cni.urls",
        "a custom CNI without urls",
    ),
    (
        "controlplane",
        C11,
        _set("cluster.network.cni", {"name": "none", "urls": ["https://192.0.2.1/cni.yaml"]}),
        "error",
        "cluster.network.cni.urls",
        "only allowed with name: custom, not none",
    ),
    (
        "controlplane",
        C11,
        _set(
            "cluster.network.cni",
            {"name": "custom", "urls": ["https://192.0.2.1/c.yaml"], "flannel": {"extraArgs": ["--x"]}},
        ),
        "error",
        "cluster.network.cni.flannel.extraArgs",
        "only allowed with name: flannel",
    ),
    (
        "worker",
        C11,
        _set("machine.features.hostDNS", {"enabled": False, "forwardKubeDNSToHost": True}),
        "error",
        "machine.features.hostDNS.forwardKubeDNSToHost",
        "needs hostDNS enabled",
    ),
    (
        "worker",
        C11,
        _set("machine.features.kubernetesTalosAPIAccess", {"enabled": True, "allowedRoles": ["os:reader"]}),
        "error",
        "machine.features.kubernetesTalosAPIAccess",
        "only be enabled on control planes",
    ),
    (
        "controlplane",
        C11,
        _set(
            "machine.features.kubernetesTalosAPIAccess", {"enabled": True, "allowedRoles": ["os:meta:writer"]}
        ),
        "error",
        "machine.features.kubernetesTalosAPIAccess.allowedRoles[0]",
        "os:meta:writer is not a Talos role",
    ),
    (
        "worker",
        C11,
        _set("machine.network.kubespan", {"enabled": True, "mtu": 1000, "filters": {"endpoints": ["!nope"]}}),
        "error",
        "machine.network.kubespan.mtu",
        "at least 1280",
    ),
    (
        "worker",
        C11,
        _set(
            "machine.logging",
            {"destinations": [{"endpoint": "http://192.0.2.7:80/", "format": "json_lines"}]},
        ),
        "error",
        "machine.logging.destinations[0].endpoint",
        "scheme http is not tcp or udp",
    ),
    (
        "worker",
        C11,
        _set("machine.registries", {"mirrors": {"docker.io": None}}),
        "error",
        "machine.registries.mirrors.docker.io",
        "is empty",
    ),
    (
        "controlplane",
        C11,
        _set("cluster.inlineManifests", [{"name": " ", "contents": "x"}]),
        "error",
        "cluster.inlineManifests[0].name",
        "needs a name",
    ),
    (
        "controlplane",
        C11,
        _set(
            "cluster.externalCloudProvider", {"enabled": False, "manifests": ["https://192.0.2.1/ccm.yaml"]}
        ),
        "error",
        "cluster.externalCloudProvider.manifests",
        "disabled, but manifests are given",
    ),
    (
        "worker",
        C11,
        _set(
            "machine.systemDiskEncryption",
            {"state": {"provider": "luks2", "keys": [{"slot": 0}, {"slot": 0, "tpm": {}}]}},
        ),
        "error",
        "machine.systemDiskEncryption.state.keys[0]",
        "has no configuration",
    ),
    (
        "worker",
        C11,
        _set(
            "machine.systemDiskEncryption",
            {"state": {"provider": "luks2", "keys": [{"slot": 1, "tpm": {}}, {"slot": 1, "tpm": {}}]}},
        ),
        "error",
        "machine.systemDiskEncryption.state.keys[1].slot",
        "key slot 1 is used twice",
    ),
    (
        "worker",
        C11,
        _set("machine.ca.key", "LS0tLS1CRUdJTg=="),
        "error",
        "machine.ca.key",
        "a worker must not hold the Talos CA key",
    ),
    (
        "controlplane",
        C11,
        _set("cluster.network.dnsDomain", "-bad-"),
        "error",
        "cluster.network.dnsDomain",
        "",
    ),
]


@pytest.mark.parametrize(("role", "contract", "change", "severity", "path", "fragment"), CASES)
def test_talos_rule(generated, role, contract, change, severity, path, fragment):
    docs = copy.deepcopy(generated[role])
    change(docs[0])
    findings = validate_documents(docs, contract)
    matching = [f for f in findings if f.subject == f"v1alpha1 {path}" and fragment in f.message]
    assert matching, [f.line() for f in findings]
    assert matching[0].severity == severity


def test_generated_configs_have_no_findings(generated):
    for docs in generated.values():
        assert validate_documents(copy.deepcopy(docs), C11) == []


def test_roles_follow_the_contract(generated):
    docs = copy.deepcopy(generated["controlplane"])
    _set("machine.features.kubernetesTalosAPIAccess", {"enabled": True, "allowedRoles": ["os:meta:writer"]})(
        docs[0]
    )
    docs[0]["machine"]["features"].pop("rbac", None)  # locked on from 1.12
    assert not [f for f in validate_documents(docs, C13) if f.is_error]


def test_a_document_twice_in_the_final_config_is_refused(generated):
    docs = copy.deepcopy(generated["worker"])
    docs.append(copy.deepcopy(docs[0]))
    [twice] = [f for f in validate_documents(docs, C11) if "appears twice" in f.message]
    assert twice.is_error and twice.document == "v1alpha1"
