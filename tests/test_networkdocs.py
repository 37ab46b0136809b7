"""networkInterfaces → the Talos 1.12+ network documents, as talhelper 3.1+ generates them."""

from __future__ import annotations

import pytest
import yaml
from talconfig_support import kinds, line_of, write_repo

from taltasks.errors import InputError
from taltasks.machineconfig.networkdocs import network_documents, selector_cel
from taltasks.machineconfig.render import Renderer
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.model import load_cluster

DEVICES = yaml.safe_load(
    """
- interface: bond0
  bond:
    deviceSelectors:
      - {driver: igc, hardwareAddr: "38:05:25:33:bb:*"}
      - {busPath: "0000:01:00.*"}
    mode: 802.3ad
    lacpRate: fast
    xmitHashPolicy: layer3+4
    miimon: 100
    updelay: 0
  addresses: [192.0.2.10/24, 2001:db8::10]
  routes:
    - {network: 0.0.0.0/0, gateway: 192.0.2.1}
    - {network: 198.51.100.0/24, gateway: 192.0.2.254, metric: 100}
  mtu: 9000
  vip: {ip: 192.0.2.20}
  vlans:
    - vlanId: 90
      addresses: [198.51.100.10/24]
      mtu: 1500
      vip: {ip: 198.51.100.20}
    - {vlanId: 91, dhcp: true, dhcpOptions: {ipv6: true, routeMetric: 512}}
- deviceSelector: {hardwareAddr: "aa:bb:*", physical: true}
  dhcp: true
- deviceSelector: {driver: e1000e}
  addresses: [203.0.113.5]
- interface: br0
  bridge: {interfaces: [eth3], stp: {enabled: true}, vlan: {vlanFiltering: true}}
  addresses: [203.0.113.9/24]
- interface: eth4
  ignore: true
"""
)


def test_documents_names_and_order_follow_talhelper():
    docs = network_documents(DEVICES)
    assert [(i, d["kind"], d["name"]) for i, d in docs] == [
        (1, "LinkAliasConfig", "ethSel0"),
        (2, "LinkAliasConfig", "ethSel1"),
        (0, "LinkAliasConfig", "bond0-m0"),
        (0, "LinkAliasConfig", "bond0-m1"),
        (0, "BondConfig", "bond0"),
        (1, "DHCPv4Config", "ethSel0"),
        (0, "Layer2VIPConfig", "192.0.2.20"),
        (2, "LinkConfig", "ethSel1"),
        (0, "VLANConfig", "bond0.90"),
        (0, "Layer2VIPConfig", "198.51.100.20"),
        (0, "VLANConfig", "bond0.91"),
        (0, "DHCPv4Config", "bond0.91"),
        (0, "DHCPv6Config", "bond0.91"),
        (3, "BridgeConfig", "br0"),
    ]
    by = {(d["kind"], d["name"]): d for _, d in docs}
    assert by[("BondConfig", "bond0")] == {
        "apiVersion": "v1alpha1",
        "kind": "BondConfig",
        "name": "bond0",
        "links": ["bond0-m0", "bond0-m1"],
        "bondMode": "802.3ad",
        "miimon": 100,
        "xmitHashPolicy": "layer3+4",
        "lacpRate": "fast",
        "mtu": 9000,
        "addresses": [{"address": "192.0.2.10/24"}, {"address": "2001:db8::10/128"}],
        "routes": [
            {"gateway": "192.0.2.1"},  # a default route leaves the family to the gateway
            {"destination": "198.51.100.0/24", "gateway": "192.0.2.254", "metric": 100},
        ],
    }
    assert list(by[("BondConfig", "bond0")]) == [
        "apiVersion", "kind", "name", "links", "bondMode", "miimon", "xmitHashPolicy", "lacpRate",
        "mtu", "addresses", "routes",
    ]  # fmt: skip
    assert by[("LinkAliasConfig", "bond0-m0")]["selector"] == {
        "match": 'glob("38:05:25:33:bb:*", mac(link.hardware_addr)) && glob("igc", link.driver)'
    }
    assert by[("LinkAliasConfig", "bond0-m1")]["selector"]["match"] == 'glob("0000:01:00.*", link.bus_path)'
    assert by[("LinkAliasConfig", "ethSel0")]["selector"]["match"] == (
        'glob("aa:bb:*", mac(link.hardware_addr)) && link.type == 1'
    )
    assert by[("LinkConfig", "ethSel1")]["addresses"] == [{"address": "203.0.113.5/32"}]
    assert by[("VLANConfig", "bond0.90")] == {
        "apiVersion": "v1alpha1",
        "kind": "VLANConfig",
        "name": "bond0.90",
        "vlanID": 90,
        "parent": "bond0",
        "mtu": 1500,
        "addresses": [{"address": "198.51.100.10/24"}],
    }
    assert by[("Layer2VIPConfig", "198.51.100.20")]["link"] == "bond0.90"
    assert by[("DHCPv6Config", "bond0.91")]["routeMetric"] == 512
    assert "routeMetric" not in by[("DHCPv4Config", "ethSel0")]
    assert by[("BridgeConfig", "br0")] == {
        "apiVersion": "v1alpha1",
        "kind": "BridgeConfig",
        "name": "br0",
        "links": ["eth3"],
        "stp": {"enabled": True},
        "vlan": {"filtering": True},
        "addresses": [{"address": "203.0.113.9/24"}],
    }


def test_generated_alias_names_skip_names_in_use():
    devices = [{"interface": "ethSel0", "dhcp": True}, {"deviceSelector": {"driver": "x"}, "dhcp": True}]
    names = [d["name"] for _, d in network_documents(devices)]
    assert names == ["ethSel1", "ethSel0", "ethSel1"]


def test_wireguard_device():
    docs = network_documents(
        [
            {
                "interface": "wg0",
                "addresses": ["10.10.0.1/24"],
                "wireguard": {
                    "privateKey": "cHJpdmF0ZQ==",
                    "listenPort": 51820,
                    "peers": [
                        {
                            "publicKey": "cHVibGlj",
                            "endpoint": "192.0.2.1:51820",
                            "allowedIPs": ["10.10.0.0/24"],
                        },
                        {"publicKey": "b3RoZXI=", "endpoint": "peer.example.org:51820"},
                    ],
                },
            }
        ]
    )
    (_, wg), *rest = docs
    assert not rest and wg["kind"] == "WireguardConfig" and wg["listenPort"] == 51820
    assert wg["peers"] == [
        {"publicKey": "cHVibGlj", "endpoint": "192.0.2.1:51820", "allowedIPs": ["10.10.0.0/24"]},
        {"publicKey": "b3RoZXI="},  # talhelper drops an endpoint that is not address:port
    ]
    assert wg["addresses"] == [{"address": "10.10.0.1/24"}]


def test_selector_cel_is_empty_without_conditions():
    assert selector_cel({}) == "" and selector_cel(None) == ""
    assert network_documents([{"deviceSelector": {}}]) == []


NODE = """
- hostname: w-1
  ipAddress: 192.0.2.21
  installDisk: /dev/sda
  networkInterfaces:
    - interface: bond0
      bond: {interfaces: [eth0, eth1], mode: active-backup}
      addresses: [192.0.2.21/24]
      vlans:
        - {vlanId: 10, dhcp: true}
"""


@pytest.mark.parametrize("talos", ["v1.11.5", "v1.12.4", "v1.13.9", "v1.14.0"])
def test_contract_decides_between_v1alpha1_interfaces_and_documents(tmp_path, talos):
    root = write_repo(tmp_path, talos=talos, nodes=NODE)
    cluster = load_cluster(root)
    docs = Renderer(cluster, SecretsBundle.generate(talos[1:5])).documents(cluster.node("w-1"))
    interfaces = (docs[0]["machine"].get("network") or {}).get("interfaces")
    if talos == "v1.11.5":
        assert interfaces and interfaces[0]["bond"]["interfaces"] == ["eth0", "eth1"]
        assert kinds(docs) == []
    else:
        assert interfaces is None
        network = ["BondConfig/bond0", "VLANConfig/bond0.10", "DHCPv4Config/bond0.10"]
        assert kinds(docs)[-3:] == network  # 1.14 generates more documents before them
        if talos != "v1.14.0":
            assert kinds(docs) == ["HostnameConfig", *network]


@pytest.mark.parametrize(
    ("bond", "message"),
    [("lacpRate: medium", "bond lacpRate 'medium'"), ("arpIPTarget: [gw.lan]", "bond arpIPTarget 'gw.lan'")],
)
def test_a_device_that_cannot_become_a_document_is_refused_at_its_line(tmp_path, bond, message):
    root = write_repo(tmp_path, nodes=NODE.replace("mode: active-backup", f"mode: active-backup, {bond}"))
    cluster = load_cluster(root)
    with pytest.raises(InputError) as info:
        Renderer(cluster, SecretsBundle.generate("1.13")).documents(cluster.node("w-1"))
    path = root / "talos" / "talconfig.yaml"
    assert info.value.where == f"talos/talconfig.yaml:{line_of(path, '- interface: bond0')}"
    assert message in info.value.message
    if "lacpRate" in bond:
        assert "slow, fast" in (info.value.hint or "")
