"""Scenario files for ``invoke sim.up --scenario FILE``: the shape of a simulated world.

    cluster:
      name: demo
      subnet: 127.0.10.0/24        # optional; default: a free 127.X.Y.0/24
      controlPlanes: 3
      workers: 3
      talosVersion: v1.11.5
      kubernetesVersion: v1.34.3
      maintenance: false           # true: nodes boot unconfigured, waiting for apply + bootstrap
      etcdDbSize: 4Mi
    timings:                       # seconds
      reboot: 1.0
      boot: 0.2
      shutdown: 0.2
      install: 0.3
      upgradePull: 0.2
      imagePull: 0.05
      kubeletRestart: 0.2        # a new machine.kubelet.image: kubelet down this long
      criStart: 0                # after apid answers, CRI comes up (Bootstrap refused until then)
      timeSync: 0                # after apid answers, the clock syncs (Bootstrap refused until then)
      timeSyncWait: 5            # Bootstrap waits this long for time sync before refusing
      apiLatency: 0              # each node takes this long to answer a call (in parallel)
    nodes:                         # per node, by hostname
      worker-1: {zone: zone-a}      # also: version (mixed clusters), labels, omni: HOST (Omni-managed)
    talosFaults:                   # Talos-side faults, by node
      worker-2: {neverReturns: true}
    ceph: …  cnpg: …  flux: …  workloads: …  faults: …  tuppr: …   # the Kubernetes world (see its docs)

This module owns ``cluster``, ``timings``, ``nodes`` and ``talosFaults``; the Kubernetes
sections are handed to ``taltasks.sim.operators.scenario`` as they are. Errors carry the
file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.sim import addresses
from taltasks.yamlpos import YamlDoc

TOP_KEYS = {
    "cluster",
    "timings",
    "nodes",
    "talosFaults",
    "ceph",
    "cnpg",
    "flux",
    "workloads",
    "faults",
    "kubernetes",
    "tuppr",
}
CLUSTER_KEYS = {
    "name",
    "subnet",
    "controlPlanes",
    "workers",
    "talosVersion",
    "kubernetesVersion",
    "maintenance",
    "etcdDbSize",
}
TIMING_KEYS = {
    "reboot": "reboot",
    "boot": "boot",
    "shutdown": "shutdown",
    "install": "install",
    "upgradePull": "upgrade_pull",
    "imagePull": "image_pull",
    "kubeletRestart": "kubelet_restart",
    "criStart": "cri_start",
    "timeSync": "time_sync",
    "timeSyncWait": "time_sync_wait",
    "apiLatency": "api_latency",
}
NODE_KEYS = {"zone", "labels", "version", "omni"}
TALOS_FAULTS = {
    "neverReturns": "never_returns",
    "keepsOldVersion": "keeps_old_version",
    "etcdUnhealthy": "etcd_unhealthy",
    "unreachable": "unreachable",
    "drainStuck": "drain_stuck",
    "upgradeHangs": "upgrade_hangs",
    "criStalled": "cri_stalled",
    "timeUnsynced": "time_unsynced",
    "vanished": "vanished",
}
VERSION = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
SIZE = re.compile(r"^(\d+)(Ki|Mi|Gi)?$")


@dataclass
class Scenario:
    name: str = "sim"
    subnet: str | None = None
    control_planes: int = 3
    workers: int = 3
    talos_version: str = "v1.12.0"
    kubernetes_version: str = "v1.34.3"
    maintenance: bool = False
    etcd_db_size: int = 4 * 1024 * 1024
    timings: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    talos_faults: dict[str, dict[str, bool]] = field(default_factory=dict)
    kube: dict[str, Any] = field(default_factory=dict)  # ceph/cnpg/flux/workloads/faults, raw
    doc: YamlDoc | None = None

    def node_names(self) -> list[str]:
        return [f"cp-{i + 1}" for i in range(self.control_planes)] + [
            f"worker-{i + 1}" for i in range(self.workers)
        ]


def _fail(doc: YamlDoc, keys: list[Any], message: str, hint: str | None = None) -> InputError:
    return doc.error(keys, message, hint=hint)


def _unknown(
    doc: YamlDoc, keys: list[Any], mapping: Any, allowed: set[str] | dict[str, Any], what: str
) -> None:
    import difflib

    if not isinstance(mapping, dict):
        raise _fail(doc, keys, f"{what} must be a mapping")
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(allowed))}"
            raise _fail(doc, [*keys, key], f"unknown key {key!r} in {what}", hint)


def parse_size(text: Any) -> int | None:
    m = SIZE.match(str(text))
    if not m:
        return None
    return int(m.group(1)) * {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}[m.group(2)]


def load(path: Path | str) -> Scenario:
    doc = YamlDoc.load(path)
    return from_doc(doc)


def from_doc(doc: YamlDoc) -> Scenario:
    data = doc.data or {}
    _unknown(doc, [], data, TOP_KEYS, "the scenario")
    sc = Scenario(doc=doc)
    cluster = data.get("cluster") or {}
    _unknown(doc, ["cluster"], cluster, CLUSTER_KEYS, "`cluster`")
    sc.name = str(cluster.get("name", sc.name))
    if "subnet" in cluster:
        try:
            addresses.subnet_base(str(cluster["subnet"]))
        except addresses.AddressError as exc:
            raise _fail(doc, ["cluster", "subnet"], str(exc)) from None
        sc.subnet = str(cluster["subnet"])
    for key, attr, limit in (
        ("controlPlanes", "control_planes", addresses.MAX_CONTROL_PLANES),
        ("workers", "workers", addresses.MAX_WORKERS),
    ):
        if key in cluster:
            value = cluster[key]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
                raise _fail(doc, ["cluster", key], f"`{key}` must be a whole number from 0 to {limit}")
            setattr(sc, attr, value)
    if sc.control_planes < 1:
        raise _fail(doc, ["cluster", "controlPlanes"], "a cluster needs at least one control plane")
    for key, attr in (("talosVersion", "talos_version"), ("kubernetesVersion", "kubernetes_version")):
        if key in cluster:
            value = str(cluster[key])
            if not VERSION.match(value):
                raise _fail(doc, ["cluster", key], f"`{key}` must look like v1.12.0, not {value!r}")
            setattr(sc, attr, value)
    sc.maintenance = bool(cluster.get("maintenance", False))
    if "etcdDbSize" in cluster:
        size = parse_size(cluster["etcdDbSize"])
        if size is None or size <= 0:
            raise _fail(doc, ["cluster", "etcdDbSize"], "`etcdDbSize` must be a size like 64Mi")
        sc.etcd_db_size = size
    timings = data.get("timings") or {}
    _unknown(doc, ["timings"], timings, TIMING_KEYS, "`timings`")
    for key, value in timings.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise _fail(doc, ["timings", key], f"timing `{key}` must be a number of seconds ≥ 0")
        sc.timings[TIMING_KEYS[key]] = float(value)
    names = set(sc.node_names())
    nodes = data.get("nodes") or {}
    if not isinstance(nodes, dict):
        raise _fail(doc, ["nodes"], "`nodes` must map hostnames to settings")
    for name, body in nodes.items():
        if name not in names:
            raise _fail(
                doc,
                ["nodes", name],
                f"unknown node {name!r}",
                f"nodes of this scenario: {', '.join(sorted(names))}",
            )
        _unknown(doc, ["nodes", name], body or {}, NODE_KEYS, f"node {name!r}")
        sc.nodes[str(name)] = dict(body or {})
    faults = data.get("talosFaults") or {}
    if not isinstance(faults, dict):
        raise _fail(doc, ["talosFaults"], "`talosFaults` must map hostnames to faults")
    for name, body in faults.items():
        if name not in names:
            raise _fail(
                doc,
                ["talosFaults", name],
                f"unknown node {name!r}",
                f"nodes of this scenario: {', '.join(sorted(names))}",
            )
        _unknown(doc, ["talosFaults", name], body or {}, TALOS_FAULTS, f"faults of {name!r}")
        sc.talos_faults[str(name)] = {TALOS_FAULTS[k]: bool(v) for k, v in (body or {}).items()}
    sc.kube = {
        k: data[k]
        for k in ("ceph", "cnpg", "flux", "workloads", "faults", "kubernetes", "tuppr")
        if k in data
    }
    return sc
