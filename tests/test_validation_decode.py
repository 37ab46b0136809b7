"""Decoding as Talos's loader decodes: coercion, unknown keys, kinds, deprecations, type model.

These tests call the engine on hand-written documents; test_validation_configure.py runs
the same rules through `configure` with patches and file:line locations.
"""

from __future__ import annotations

import copy

import pytest

from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.patches import parse_patch
from taltasks.machineconfig.validate import decode_patch, validate_documents
from taltasks.machineconfig.validate.engine import decode_findings
from taltasks.machineconfig.validate.typemodel import model, shipped_contracts

C11, C12, C13 = VersionContract(1, 11), VersionContract(1, 12), VersionContract(1, 13)


def decoded(text: str, contract: VersionContract = C11):
    patch = parse_patch(text, "p.yaml")
    out, findings = decode_patch(patch, contract)
    return out.documents, findings


def test_schemas_for_every_contract_from_1_8_ship_with_the_package():
    assert shipped_contracts() == tuple((1, m) for m in range(8, 15))


def test_scalars_in_string_fields_become_their_text_as_written():
    docs, findings = decoded(
        "machine:\n"
        "  sysctls:\n"
        "    vm.max_map_count: 262144\n"
        "    net.ipv4.ip_forward: 0x1\n"
        "    kernel.x: 1.50\n"
        "  kubelet:\n"
        "    extraArgs:\n"
        "      rotate-server-certificates: true\n"
        "  nodeLabels:\n"
        "    1: yes\n"  # a key that YAML reads as a number: Go reads it as text
        "cluster:\n"
        "  apiServer:\n"
        "    extraArgs:\n"
        "      enable-aggregator-routing: True\n"
    )
    assert findings == []
    machine = docs[0]["machine"]
    assert machine["sysctls"] == {
        "vm.max_map_count": "262144",
        "net.ipv4.ip_forward": "0x1",
        "kernel.x": "1.50",
    }
    assert machine["kubelet"]["extraArgs"] == {"rotate-server-certificates": "true"}
    assert machine["nodeLabels"] == {"1": "yes"}
    assert docs[0]["cluster"]["apiServer"]["extraArgs"] == {"enable-aggregator-routing": "True"}


def test_extra_args_take_a_list_from_1_13():
    text = "machine:\n  kubelet:\n    extraArgs:\n      feature-gates: [A=true, B=false]\n"
    docs, findings = decoded(text, C13)
    assert findings == [] and docs[0]["machine"]["kubelet"]["extraArgs"]["feature-gates"] == [
        "A=true",
        "B=false",
    ]
    _, findings = decoded(text, C11)
    assert [f.message for f in findings] == ["expected a string, got a list"]


def test_booleans_take_yaml_1_1_words_and_nothing_else():
    docs, findings = decoded("machine:\n  install:\n    wipe: yes\n    legacyBIOSSupport: off\n")
    assert findings == [] and docs[0]["machine"]["install"] == {"wipe": True, "legacyBIOSSupport": False}
    _, findings = decoded("machine:\n  install:\n    wipe: maybe\n")
    [f] = findings
    assert (f.path, f.message, f.hint) == (
        ("machine", "install", "wipe"),
        "expected true or false, got maybe",
        "write true or false",
    )


def test_a_leading_zero_is_octal_as_go_yaml_reads_it():
    docs, findings = decoded(
        "machine:\n  files:\n    - content: x\n      path: /var/etc/x\n      op: create\n"
        "      permissions: 0644\n  sysctls:\n    a.b: 0644\n"
    )
    assert findings == []
    assert docs[0]["machine"]["files"][0]["permissions"] == 0o644  # a YAML 1.2 reader says 644
    assert docs[0]["machine"]["sysctls"]["a.b"] == "0644"


def test_a_string_is_not_a_number_and_values_print_as_yaml():
    _, findings = decoded(
        "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        mtu: '9000'\n"
        "        dhcp: 'true'\n"
    )
    assert [(f.path[-1], f.message) for f in findings] == [
        ("mtu", 'expected an integer, got "9000"'),
        ("dhcp", 'expected true or false, got "true"'),
    ]
    _, findings = decoded(
        "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        mtu: true\n"
    )
    assert findings[0].message == "expected an integer, got true"  # YAML, not Python's True


def test_shape_mismatches_and_unknown_keys_are_errors():
    _, findings = decoded("machine:\n  certSANs: example.com\n  kubelet:\n    imagee: x\n  sysctls: [a]\n")
    assert [(f.path, f.message) for f in findings] == [
        (("machine", "certSANs"), "expected a list, got example.com"),
        (("machine", "kubelet", "imagee"), "unknown key 'imagee' (did you mean 'image'?)"),
        (("machine", "sysctls"), "expected a mapping, got a list"),
    ]
    assert all(f.severity == "error" for f in findings)


def test_unknown_kind_and_wrong_api_version():
    _, findings = decoded("apiVersion: v1alpha1\nkind: HostnameConfg\nhostname: x\n", C12)
    assert findings[0].message.startswith(
        "unknown document kind HostnameConfg (did you mean 'HostnameConfig'?)"
    )
    _, findings = decoded("apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n", C11)  # 1.12 kind
    assert findings[0].message.startswith("unknown document kind HostnameConfig")
    _, findings = decoded("apiVersion: v1\nkind: HostnameConfig\nhostname: x\n", C12)
    assert [(f.path, f.message) for f in findings] == [
        (("apiVersion",), "HostnameConfig needs apiVersion: v1alpha1, not v1")
    ]


def test_enums_and_formats_follow_go_parsers():
    _, findings = decoded("apiVersion: v1alpha1\nkind: HostnameConfig\nauto: sometimes\n", C12)
    assert findings[0].message == "sometimes is not one of stable, off"
    # MAC addresses and IPv6 in upper case parse in Go, though the schema pattern is lower case
    _, findings = decoded(
        "apiVersion: v1alpha1\nkind: WireguardConfig\nname: wg0\npeers:\n"
        "  - publicKey: k\n    endpoint: '[2001:DB8::1]:51820'\n    allowedIPs: [2001:DB8::/32]\n",
        C13,
    )
    assert findings == []


def test_legacy_fields_of_older_schemas_are_decoded():
    # hidden from the 1.13 schema, still in Talos 1.13's Go types
    docs = [
        {
            "version": "v1alpha1",
            "persist": True,
            "machine": {
                "type": "worker",
                "network": {"hostname": "w1", "interfaces": [{"interface": "eth0", "cidr": "192.0.2.2/24"}]},
                "registries": {"mirrors": {"docker.io": {"endpoints": ["https://192.0.2.9"]}}},
                "features": {"rbac": True, "stableHostname": True},
                "install": {"disk": "/dev/sda", "extraKernelArgs": ["a=b"], "bootloader": True},
            },
            "cluster": {"allowSchedulingOnMasters": True, "etcd": {"subnet": "192.0.2.0/24"}},
        }
    ]
    findings = decode_findings(copy.deepcopy(docs), C13)
    assert [f for f in findings if f.is_error] == []
    # a field Talos dropped from its Go struct is unknown again
    existing = "apiVersion: v1alpha1\nkind: ExistingVolumeConfig\nname: d\nmount:\n  readOnly: true\n"
    assert decoded(existing, VersionContract(1, 12))[1] == [] and decoded(existing, C13)[1] == []
    volume = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nmount:\n  readOnly: true\n"
    assert "unknown key 'readOnly'" in decoded(volume, C13)[1][0].message


def test_deprecated_fields_warn_with_their_replacement():
    docs = [{"version": "v1alpha1", "cluster": {"allowSchedulingOnMasters": True}}]
    [w] = decode_findings(copy.deepcopy(docs), C11)
    assert w.severity == "warning" and w.path == ("cluster", "allowSchedulingOnMasters")
    assert "use `allowSchedulingOnControlPlanes` instead" in w.message and "Talos 1.11" in w.message
    sde = [{"version": "v1alpha1", "machine": {"systemDiskEncryption": {"state": {"provider": "luks2"}}}}]
    assert decode_findings(copy.deepcopy(sde), VersionContract(1, 10)) == []  # not deprecated yet
    [w] = decode_findings(copy.deepcopy(sde), C11)
    assert "write a VolumeConfig document instead" in w.message
    # inside a deprecated section only the section warns; patches on their own never warn
    assert decoded("cluster:\n  allowSchedulingOnMasters: true\n")[1] == []


def test_logging_endpoint_is_a_url_string():
    docs, findings = decoded(
        "machine:\n  logging:\n    destinations:\n      - endpoint: tcp://192.0.2.7:5044/\n"
        "        format: json_lines\n"
    )
    assert findings == []
    assert docs[0]["machine"]["logging"]["destinations"][0]["endpoint"] == "tcp://192.0.2.7:5044/"


def test_machine_type_init_and_join_decode():
    for t in ("init", "join", "worker"):
        assert decoded(f"machine:\n  type: {t}\n")[1] == []
    assert decoded("machine:\n  type: master\n")[1][0].message.startswith("master is not one of")


@pytest.mark.parametrize("contract", [(1, m) for m in range(8, 15)])
def test_every_contract_has_a_model_with_the_v1alpha1_document(contract):
    m = model(contract)
    assert {"machine", "cluster", "persist", "version"} <= set(m.v1alpha1.fields)
    assert m.v1alpha1.fields["machine"].fields["sysctls"].kind == "map"


def test_rules_do_not_run_on_a_config_that_does_not_decode():
    docs = [{"version": "v1alpha1", "machine": {"type": "worker", "install": "oops"}, "cluster": {}}]
    findings = validate_documents(docs, C11)
    assert [f.message for f in findings] == ["expected a mapping of keys, got oops"]


def test_json_patch_values_are_read_as_go_yaml_resolves_them():
    # a JSON patch's values pass through JSON in Talos: numbers are numbers there
    from taltasks.machineconfig.patches import apply_patch
    from taltasks.machineconfig.validate import Origins

    base = [{"version": "v1alpha1", "machine": {"type": "worker", "sysctls": {}}, "cluster": {}}]
    patch = parse_patch(
        "- op: add\n  path: /machine/sysctls/a.b\n  value: 0644\n"
        "- op: add\n  path: /machine/files\n  value:\n    - {content: x, path: /var/x, op: create, permissions: 0644}\n",
        "j.yaml",
    )
    origins = Origins("talconfig.yaml:1")
    docs = apply_patch(base, patch, origins=origins)
    assert decode_findings(docs, C11, origins=origins) == []
    assert docs[0]["machine"]["sysctls"]["a.b"] == "420"
    assert docs[0]["machine"]["files"][0]["permissions"] == 0o644
