"""talhelper's ``networkInterfaces`` as Talos 1.12+ network documents.

From contract 1.12 Talos configures links with documents of their own, and talhelper 3.1+
writes a node's ``networkInterfaces`` (v1alpha1 ``Device`` entries) as those documents
instead of the deprecated ``machine.network.interfaces``. This module does the same
conversion, in the same order and with the same names, so a repository generates the
documents it generated with talhelper (``pkg/talos/networkconfig.go`` in talhelper):

1. ``LinkAliasConfig`` for each device found by ``deviceSelector`` (named after its
   ``interface`` or ``ethSel0``, ``bond0``, ``br0``, ``wg0`` …, skipping names in use),
   with the selector as a CEL match on the link;
2. ``LinkAliasConfig`` ``<bond>-m<i>`` for each bond member selector;
3. ``BondConfig`` (links, mode and options, addresses, routes, MTU);
4. ``DHCPv4Config``/``DHCPv6Config`` for ``dhcp: true`` (``dhcpOptions`` pick the family
   and route metric);
5. ``Layer2VIPConfig`` named after the shared IP, on the device;
6. ``LinkConfig`` for a plain device with addresses, routes or an MTU;
7. ``VLANConfig`` ``<link>.<vlanId>`` per VLAN (+ its DHCP and VIP documents);
8. ``WireguardConfig`` and ``BridgeConfig``.

Addresses without a prefix get /32 (/128); a default route (``0.0.0.0/0``, ``::/0``) is
written without ``destination`` so Talos infers the family from the gateway. Unlike
talhelper, which silently drops a bond option it cannot parse, an unknown bond mode or
option value is an error at the interface's talconfig line.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from taltasks.errors import InputError
from taltasks.machineconfig.keyorder import reorder

API = "v1alpha1"

# Bond options: v1alpha1 Device.bond key → (BondConfig key, kind). Kinds: "enum" values are
# checked against the names Talos's nethelpers know; "int" are written only when > 0.
BOND_ENUMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mode": ("bondMode", ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb")),
    "xmitHashPolicy": ("xmitHashPolicy", ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4")),
    "lacpRate": ("lacpRate", ("slow", "fast")),
    "arpValidate": ("arpValidate", ("none", "active", "backup", "all", "filter", "filter-active", "filter-backup")),
    "arpAllTargets": ("arpAllTargets", ("any", "all")),
    "primaryReselect": ("primaryReselect", ("always", "better", "failure")),
    "failOverMac": ("failOverMac", ("none", "active", "follow")),
    "adSelect": ("adSelect", ("stable", "bandwidth", "count")),
}  # fmt: skip
BOND_INTS: tuple[tuple[str, str], ...] = (
    ("miimon", "miimon"),
    ("updelay", "updelay"),
    ("downdelay", "downdelay"),
    ("arpInterval", "arpInterval"),
    ("resendIgmp", "resendIGMP"),
    ("minLinks", "minLinks"),
    ("lpInterval", "lpInterval"),
    ("packetsPerSlave", "packetsPerSlave"),
    ("numPeerNotif", "numPeerNotif"),
    ("tlbDynamicLb", "tlbLogicalLb"),
    ("allSlavesActive", "allSlavesActive"),
    ("adActorSysPrio", "adActorSysPrio"),
    ("adUserPortKey", "adUserPortKey"),
    ("peerNotifyDelay", "peerNotifDelay"),
)
# BondConfig's field order (Talos's struct), so documents read like talhelper's.
BOND_ORDER = (
    "apiVersion", "kind", "name", "hardwareAddr", "links", "bondMode", "miimon", "updelay", "downdelay",
    "useCarrier", "xmitHashPolicy", "arpInterval", "arpIpTargets", "nsIp6Targets", "arpValidate",
    "arpAllTargets", "lacpRate", "failOverMac", "adSelect", "adActorSysPrio", "adUserPortKey",
    "adLACPActive", "primaryReselect", "resendIGMP", "minLinks", "lpInterval", "packetsPerSlave",
    "numPeerNotif", "tlbLogicalLb", "allSlavesActive", "peerNotifDelay", "missedMax",
    "up", "mtu", "addresses", "routes", "multicast",
)  # fmt: skip
# Device selector key → CEL condition, in talhelper's order.
SELECTOR_CEL: tuple[tuple[str, str], ...] = (
    ("hardwareAddr", 'glob("{}", mac(link.hardware_addr))'),
    ("permanentAddr", 'glob("{}", mac(link.permanent_addr))'),
    ("busPath", 'glob("{}", link.bus_path)'),
    ("driver", 'glob("{}", link.driver)'),
    ("pciID", 'glob("{}", link.pciid)'),
)


class NetworkDocError(InputError):
    """A networkInterfaces entry that cannot become a document (index says which)."""

    def __init__(self, index: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.index = index


def selector_cel(selector: dict[str, Any] | None) -> str:
    """A v1alpha1 ``deviceSelector`` as the CEL expression a LinkAliasConfig matches with."""
    if not selector:
        return ""
    conditions = [tmpl.format(selector[key]) for key, tmpl in SELECTOR_CEL if selector.get(key)]
    if selector.get("physical") is not None:
        conditions.append("link.type == 1" if selector["physical"] else "link.type != 1")
    return " && ".join(conditions)


def _doc(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": kind,
        "name": name,
        **{k: v for k, v in fields.items() if v not in (None, [], {})},
    }


def _prefix(address: str, index: int) -> str:
    """An address as a prefix (a bare address gets /32 or /128)."""
    try:
        if "/" in address:
            iface = ipaddress.ip_interface(address)
            return f"{iface.ip}/{iface.network.prefixlen}"
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise NetworkDocError(index, f"{address!r} is not an address or CIDR") from None
    return f"{ip}/{32 if ip.version == 4 else 128}"


def _address(value: Any, what: str, index: int) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise NetworkDocError(index, f"{what} {value!r} is not an address") from None


def _routes(routes: list[dict[str, Any]] | None, index: int) -> list[dict[str, Any]]:
    out = []
    for route in routes or []:
        entry: dict[str, Any] = {}
        network = route.get("network")
        if network:
            try:
                net = ipaddress.ip_network(str(network), strict=False)
            except ValueError:
                raise NetworkDocError(index, f"route network {network!r} is not a CIDR") from None
            if net.prefixlen != 0:
                entry["destination"] = str(net)
        for key in ("gateway", "source"):
            if route.get(key):
                entry[key] = _address(route[key], f"route {key}", index)
        if route.get("metric"):
            entry["metric"] = route["metric"]
        if route.get("mtu"):
            entry["mtu"] = route["mtu"]
        out.append(entry)
    return out


def _common(device: dict[str, Any], index: int) -> dict[str, Any]:
    """The link fields every link document shares (CommonLinkConfig)."""
    fields: dict[str, Any] = {}
    if device.get("mtu"):
        fields["mtu"] = device["mtu"]
    addresses = [{"address": _prefix(str(a), index)} for a in device.get("addresses") or []]
    if addresses:
        fields["addresses"] = addresses
    routes = _routes(device.get("routes"), index)
    if routes:
        fields["routes"] = routes
    return fields


def _dhcp(name: str, options: dict[str, Any] | None) -> list[dict[str, Any]]:
    options = options or {}
    metric = options.get("routeMetric") or None
    docs = []
    if options.get("ipv4", True) is not False:
        docs.append(_doc("DHCPv4Config", name, routeMetric=metric))
    if options.get("ipv6"):
        docs.append(_doc("DHCPv6Config", name, routeMetric=metric))
    return docs


def _alias_names(devices: list[dict[str, Any]]) -> list[str]:
    """Each device's link name; devices found by selector without an ``interface`` get
    talhelper's generated alias (bondN, brN, wgN, ethSelN — skipping names in use)."""
    used = {str(d["interface"]) for d in devices if d.get("interface")}
    counters = {"bond": 0, "br": 0, "wg": 0, "ethSel": 0}
    names = []
    for device in devices:
        if device.get("interface") or not device.get("deviceSelector"):
            names.append(str(device.get("interface") or ""))
            continue
        prefix = (
            "bond" if device.get("bond") is not None
            else "br" if device.get("bridge") is not None
            else "wg" if device.get("wireguard") is not None
            else "ethSel"
        )  # fmt: skip
        while True:
            candidate = f"{prefix}{counters[prefix]}"
            counters[prefix] += 1
            if candidate not in used:
                break
        used.add(candidate)
        names.append(candidate)
    return names


def _bond(device: dict[str, Any], name: str, index: int) -> dict[str, Any]:
    bond = device.get("bond") or {}
    doc: dict[str, Any] = {"apiVersion": API, "kind": "BondConfig", "name": name}
    links = [str(x) for x in bond.get("interfaces") or []]
    links += [f"{name}-m{i}" for i in range(len(bond.get("deviceSelectors") or []))]
    if links:
        doc["links"] = links
    for key, (out_key, allowed) in BOND_ENUMS.items():
        value = bond.get(key)
        if value in (None, ""):
            continue
        if str(value) not in allowed:
            raise NetworkDocError(
                index, f"bond {key} {value!r} is not one Talos knows", hint=f"use one of {', '.join(allowed)}"
            )
        doc[out_key] = str(value)
    for key, out_key in BOND_INTS:
        value = bond.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            doc[out_key] = value
    if bond.get("useCarrier") is not None:
        doc["useCarrier"] = bool(bond["useCarrier"])
    if bond.get("arpIPTarget"):
        doc["arpIpTargets"] = [_address(t, "bond arpIPTarget", index) for t in bond["arpIPTarget"]]
    doc.update(_common(device, index))
    reorder(doc, BOND_ORDER)
    return doc


def _vlan(parent: str, vlan: dict[str, Any], index: int) -> list[dict[str, Any]]:
    vid = vlan.get("vlanId")
    if not isinstance(vid, int) or isinstance(vid, bool) or vid <= 0:
        return []
    name = f"{parent}.{vid}"
    doc: dict[str, Any] = {
        "apiVersion": API,
        "kind": "VLANConfig",
        "name": name,
        "vlanID": vid,
        "parent": parent,
    }
    if vlan.get("mtu"):
        doc["mtu"] = vlan["mtu"]
    addresses = []
    for a in vlan.get("addresses") or []:
        try:
            addresses.append({"address": _prefix(str(a), index)})
        except NetworkDocError:
            continue  # talhelper skips an unparsable VLAN address
    if addresses:
        doc["addresses"] = addresses
    routes = []
    for route in vlan.get("routes") or []:
        try:
            routes.extend(_routes([route], index))
        except NetworkDocError:
            continue
    if routes:
        doc["routes"] = routes
    docs = [doc]
    if vlan.get("dhcp"):
        docs += _dhcp(name, vlan.get("dhcpOptions"))
    vip = (vlan.get("vip") or {}).get("ip")
    if vip:
        docs.append(_doc("Layer2VIPConfig", str(vip), link=name))
    return docs


def _wireguard(device: dict[str, Any], name: str, index: int) -> dict[str, Any]:
    wg = device.get("wireguard") or {}
    doc: dict[str, Any] = {"apiVersion": API, "kind": "WireguardConfig", "name": name}
    for key in ("privateKey", "listenPort", "firewallMark"):
        if wg.get(key):
            doc[key] = wg[key]
    peers = []
    for peer in wg.get("peers") or []:
        entry: dict[str, Any] = {}
        if peer.get("publicKey"):
            entry["publicKey"] = peer["publicKey"]
        if peer.get("endpoint") and _is_addr_port(str(peer["endpoint"])):
            entry["endpoint"] = str(peer["endpoint"])  # talhelper drops one it cannot parse
        if peer.get("persistentKeepaliveInterval"):
            entry["persistentKeepaliveInterval"] = peer["persistentKeepaliveInterval"]
        allowed = [str(ip) for ip in peer.get("allowedIPs") or [] if _is_prefix(str(ip))]
        if allowed:
            entry["allowedIPs"] = allowed
        peers.append(entry)
    if peers:
        doc["peers"] = peers
    doc.update(_common(device, index))
    return doc


def _is_addr_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return port.isdigit()


def _is_prefix(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _bridge(device: dict[str, Any], name: str, index: int) -> dict[str, Any]:
    bridge = device.get("bridge") or {}
    doc: dict[str, Any] = {"apiVersion": API, "kind": "BridgeConfig", "name": name}
    if bridge.get("interfaces"):
        doc["links"] = [str(x) for x in bridge["interfaces"]]
    stp = (bridge.get("stp") or {}).get("enabled")
    if stp is not None:
        doc["stp"] = {"enabled": bool(stp)}
    if (bridge.get("vlan") or {}).get("vlanFiltering"):
        doc["vlan"] = {"filtering": True}
    doc.update(_common(device, index))
    return doc


def _special(device: dict[str, Any]) -> bool:
    return any(device.get(k) is not None for k in ("bond", "wireguard", "bridge"))


def network_documents(devices: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The 1.12+ documents for a node's ``networkInterfaces``, each with the index of the
    device it came from (for error locations), in talhelper's order."""
    names = _alias_names(devices)
    out: list[tuple[int, dict[str, Any]]] = []
    for i, device in enumerate(devices):  # 1. aliases of selected devices
        cel = selector_cel(device.get("deviceSelector"))
        if cel:
            out.append((i, _doc("LinkAliasConfig", names[i], selector={"match": cel})))
    for i, device in enumerate(devices):  # 2. bond member aliases
        for m, selector in enumerate((device.get("bond") or {}).get("deviceSelectors") or []):
            cel = selector_cel(selector)
            if cel:
                out.append((i, _doc("LinkAliasConfig", f"{names[i]}-m{m}", selector={"match": cel})))
    for i, device in enumerate(devices):  # 3. bonds
        if device.get("bond") is not None:
            out.append((i, _bond(device, names[i], i)))
    for i, device in enumerate(devices):  # 4. DHCP
        if device.get("dhcp"):
            out += [(i, d) for d in _dhcp(names[i], device.get("dhcpOptions"))]
    for i, device in enumerate(devices):  # 5. VIPs
        vip = (device.get("vip") or {}).get("ip")
        if vip:
            out.append((i, _doc("Layer2VIPConfig", str(vip), link=names[i])))
    for i, device in enumerate(devices):  # 6. plain links
        if not _special(device):
            common = _common(device, i)
            if common:
                out.append((i, {"apiVersion": API, "kind": "LinkConfig", "name": names[i], **common}))
    for i, device in enumerate(devices):  # 7. VLANs
        for vlan in device.get("vlans") or []:
            out += [(i, d) for d in _vlan(names[i], vlan, i)]
    for i, device in enumerate(devices):  # 8. wireguard, bridges
        if device.get("wireguard") is not None:
            out.append((i, _wireguard(device, names[i], i)))
    for i, device in enumerate(devices):
        if device.get("bridge") is not None:
            out.append((i, _bridge(device, names[i], i)))
    return out
