"""The validation engine's parts: findings, the rule registry, provenance through patches."""

from __future__ import annotations

import copy

import pytest

from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.merge import doc_id
from taltasks.machineconfig.patches import apply_patch, parse_patch
from taltasks.machineconfig.validate import (
    Finding,
    Findings,
    FindingsError,
    Origins,
    RuleContext,
    rule,
    rules_for,
    yaml_value,
)
from taltasks.machineconfig.validate.registry import _RULES

V1 = ("", "v1alpha1", "")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (1, "1"),
        ("1", '"1"'),
        ("true", '"true"'),
        ("eth0", "eth0"),
        ("a: b", '"a: b"'),
        ({"a": True, "b": [1, "x"]}, "{a: true, b: [1, x]}"),
    ],
)
def test_values_are_printed_as_yaml(value, text):
    assert yaml_value(value) == text


def test_finding_renders_location_node_document_path_and_hint():
    f = Finding(
        "error",
        "must be a string",
        node="cp-1",
        document="v1alpha1",
        path=("machine", "network", "interfaces", 0, "vip"),
        location="talos/patches/vip.yaml:5",
        hint="quote it",
    )
    assert f.render() == (
        "talos/patches/vip.yaml:5: node cp-1: v1alpha1 machine.network.interfaces[0].vip: must be a string"
        "\n  hint: quote it"
    )


def test_warnings_for_several_nodes_are_shown_once_naming_them():
    found = Findings()
    for node in ("cp-1", "cp-2"):
        found.add(Finding("warning", "deprecated", node=node, path=("cluster", "x"), location="p.yaml:3"))
    found.add(Finding("error", "bad", node="cp-1"))
    assert found.warning_lines() == ["p.yaml:3: v1alpha1 cluster.x: deprecated (nodes cp-1, cp-2)"]
    with pytest.raises(FindingsError) as info:
        found.raise_errors("not valid")
    assert info.value.message == "node cp-1: not valid: v1alpha1: bad"
    assert info.value.findings == found.errors


def test_rules_apply_to_their_contract_range():
    calls = []

    @rule("test-only-1.12-1.13", first="1.12", last="1.13")
    def _check(ctx: RuleContext) -> None:
        calls.append(ctx.contract)
        ctx.error(ctx.v1alpha1, ("machine",), "seen")

    try:
        names = {c: {r.name for r in rules_for(VersionContract(*c))} for c in ((1, 11), (1, 12), (1, 13))}
        assert "test-only-1.12-1.13" not in names[(1, 11)]
        assert "test-only-1.12-1.13" in names[(1, 12)] and "test-only-1.12-1.13" in names[(1, 13)]
        assert "v1alpha1-machine" in names[(1, 11)]  # the moved Talos checks are registered
        with pytest.raises(ValueError, match="registered twice"):
            rule("test-only-1.12-1.13")(lambda ctx: None)
    finally:
        _RULES.pop("test-only-1.12-1.13")


def test_origins_last_writer_wins_deletes_forget_and_list_items_shift():
    o = Origins(default="talconfig.yaml:10")
    o.record(V1, ("machine", "network"), "a.yaml:1")
    o.record(V1, ("machine", "network", "interfaces", 0), "b.yaml:2")
    o.record(V1, ("machine", "network", "interfaces", 1), "b.yaml:7")
    assert o.locate(V1, ("machine", "network", "interfaces", 1, "vip", "ip")) == "b.yaml:7"
    assert o.locate(V1, ("machine", "network", "hostname")) == "a.yaml:1"
    assert o.locate(V1, ("cluster", "id")) == "talconfig.yaml:10"
    o.remove(V1, ("machine", "network", "interfaces", 0))
    assert o.locate(V1, ("machine", "network", "interfaces", 0, "vip")) == "b.yaml:7"
    o.record(V1, ("machine",), "c.yaml:1")  # a later writer of the whole section
    assert o.locate(V1, ("machine", "network", "interfaces", 0)) == "c.yaml:1"
    assert o.recorded(V1, ("machine", "x")) and not o.recorded(V1, ("cluster",))


BASE = {
    "version": "v1alpha1",
    "machine": {"type": "worker", "network": {"interfaces": [{"interface": "eth0", "mtu": 1500}]}},
    "cluster": {"network": {"podSubnets": ["10.244.0.0/16"]}},
}


def _provenance(text: str, source: str, docs=None) -> tuple[list, Origins]:
    origins = Origins(default="talconfig.yaml:4")
    patch = parse_patch(text, source)
    out = apply_patch(docs or [copy.deepcopy(BASE)], patch, origins=origins)
    return out, origins


def test_strategic_patch_values_trace_to_their_own_lines():
    text = (
        "machine:\n"  # 1
        "  network:\n"  # 2
        "    interfaces:\n"  # 3
        "      - interface: eth0\n"  # 4
        "        mtu: 9000\n"  # 5
        "      - interface: eth1\n"  # 6
        "        vip:\n"  # 7
        "          ip: 192.0.2.5\n"  # 8
        "cluster:\n"  # 9
        "  network:\n"  # 10
        "    podSubnets: [10.0.0.0/16]\n"  # 11
    )
    docs, o = _provenance(text, "talos/patches/net.yaml")
    assert docs[0]["machine"]["network"]["interfaces"][1]["vip"] == {"ip": "192.0.2.5"}
    net = ("machine", "network", "interfaces")
    assert o.locate(V1, (*net, 0, "mtu")) == "talos/patches/net.yaml:5"
    assert o.locate(V1, (*net, 0, "interface")) == "talos/patches/net.yaml:4"  # the patch wrote it again
    assert o.locate(V1, ("machine", "type")) == "talconfig.yaml:4"  # untouched: generated for the node
    assert o.locate(V1, (*net, 1, "vip", "ip")) == "talos/patches/net.yaml:8"
    assert o.locate(V1, ("cluster", "network", "podSubnets", 0)) == "talos/patches/net.yaml:11"


def test_a_second_patch_overrides_and_a_delete_forgets():
    docs, o = _provenance("machine:\n  network:\n    hostname: a\n", "one.yaml")
    patch = parse_patch("machine:\n  network:\n    hostname:\n      $patch: delete\n", "two.yaml")
    apply_patch(docs, patch, origins=o)
    assert o.locate(V1, ("machine", "network", "hostname")) == "talconfig.yaml:4"


def test_json_patch_values_trace_to_the_operation():
    text = (
        "- op: add\n"  # 1
        "  path: /machine/network/interfaces/-\n"  # 2
        "  value:\n"  # 3
        "    interface: eth1\n"  # 4
        "    vip:\n"  # 5
        "      ip: 192.0.2.5\n"  # 6
        "- op: replace\n"  # 7
        "  path: /machine/type\n"  # 8
        "  value: controlplane\n"  # 9
    )
    docs, o = _provenance(text, "talos/patches/json.yaml")
    assert docs[0]["machine"]["network"]["interfaces"][1]["interface"] == "eth1"
    assert o.locate(V1, ("machine", "network", "interfaces", 1, "vip", "ip")) == "talos/patches/json.yaml:6"
    assert o.locate(V1, ("machine", "type")) == "talos/patches/json.yaml:9"


def test_appended_document_traces_to_its_patch():
    docs, o = _provenance(
        "machine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n", "m.yaml"
    )
    hostname = docs[-1]
    assert o.locate(doc_id(hostname), ("hostname",)) == "m.yaml:6"
