"""Reading the simulator's record for the claims an upgrade must keep.

Used by the demo's closing verdict and by the tests: the facts come from the simulator's
own account (``Recorder``), never from what the tool under test says about itself.

* ``talos_upgrades`` — the nodes upgraded, on either path (legacy Upgrade, LifecycleService);
* ``most_not_ready`` — the largest number of Nodes NotReady at the same time;
* ``node_starts`` — where each node's upgrade began: the first change made to its Node
  (the cordon) after a point in the record;
* ``health_at`` — Ceph's health and every CNPG cluster's last status just before a point;
* ``waves`` — the nodes started together: every cordon before the next node goes down
  belongs to one wave (one node in a rolling upgrade, a whole batch with failure-domain
  batching);
* ``pools_below_min_size`` / ``cnpg_without_ready`` — storage or a database that lost
  availability: a Ceph pool whose worst placement group fell below its ``min_size``, a
  CNPG cluster with no ready instance;
* ``most_domains_down`` — the most failure domains with a node NotReady at the same time
  (each control plane counts as a domain of its own);
* ``safety`` — all of it for one run: at most one node (or, given the nodes' domains, one
  failure domain) down at once, every wave started only while Ceph was HEALTH_OK and every
  Postgres cluster healthy, no pool below min_size, every CNPG cluster ready throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taltasks.sim.record import Recorder

CNPG_HEALTHY = "Cluster in healthy state"


def talos_upgrades(recorder: Recorder, since: int = 0) -> list[str]:
    """The nodes (in order) whose Talos was upgraded from ``since`` on, on either path: a
    legacy ``Upgrade`` accepted, or a LifecycleService installer that exited 0."""
    out = []
    for e in recorder.entries():
        if e.seq < since:
            continue
        if e.kind == "talos.upgrade" or (e.kind == "talos.lifecycle_upgrade_done" and e["exit_code"] == 0):
            out.append(e["node"])
    return out


def most_not_ready(recorder: Recorder, since: int = 0) -> int:
    down: set[str] = set()
    worst = 0
    for e in recorder.entries("node.ready"):
        (down.discard if e["ready"] else down.add)(e["node"])
        if e.seq >= since:
            worst = max(worst, len(down))
    return worst


def _start_of(e: Any) -> str | None:
    """The node an entry starts upgrading: the tool's first change to its Node through the
    API (the cordon; the simulator's own actors write to the store directly, so API writes
    are the tool's), or the simulated tuppr's cordon."""
    if e.kind == "kube.api" and e.get("resource") == "nodes" and e.get("verb") == "patch":
        return e["name"]
    if e.kind == "tuppr.cordon":
        return e["node"]
    return None


def node_starts(recorder: Recorder, since: int = 0) -> dict[str, int]:
    """Per node, the record position where its upgrade began (:func:`_start_of`) at or
    after ``since``."""
    starts: dict[str, int] = {}
    for e in recorder.entries():
        node = _start_of(e) if e.seq >= since else None
        if node is not None:
            starts.setdefault(node, e.seq)
    return starts


def health_at(recorder: Recorder, seq: int) -> tuple[str | None, dict[str, dict[str, Any]]]:
    ceph = None
    cnpg: dict[str, dict[str, Any]] = {}
    for e in recorder.entries():
        if e.seq >= seq:
            break
        if e.kind == "ceph.health":
            ceph = e["health"]
        elif e.kind == "cnpg.status":
            cnpg[e["cluster"]] = e.data
    return ceph, cnpg


def waves(recorder: Recorder, since: int = 0) -> list[tuple[int, list[str]]]:
    """``(position of the first start, nodes)`` per wave: starts (first Node change per
    node) that happen before any node goes NotReady belong together."""
    out: list[tuple[int, list[str]]] = []
    seen: set[str] = set()
    current: list[str] | None = None
    for e in recorder.entries():
        if e.seq < since:
            continue
        node = _start_of(e)
        if node is not None:
            if node in seen:
                continue
            seen.add(node)
            if current is None:
                current = []
                out.append((e.seq, current))
            current.append(node)
        elif e.kind == "node.ready" and not e["ready"]:
            current = None
    return out


def most_domains_down(recorder: Recorder, domain_of: Mapping[str, str], since: int = 0) -> int:
    """The most distinct failure domains with a node NotReady at once; a node without a
    domain (a control plane, an unlabelled worker) is a domain of its own."""
    down: set[str] = set()
    worst = 0
    for e in recorder.entries("node.ready"):
        (down.discard if e["ready"] else down.add)(e["node"])
        if e.seq >= since:
            worst = max(worst, len({domain_of.get(n) or f"node {n}" for n in down}))
    return worst


def pools_below_min_size(recorder: Recorder, since: int = 0) -> list[dict[str, Any]]:
    return [e.data for e in recorder.entries("ceph.pool") if e.seq >= since and e["up"] < e["min_size"]]


def cnpg_without_ready(recorder: Recorder, since: int = 0) -> list[dict[str, Any]]:
    return [e.data for e in recorder.entries("cnpg.status") if e.seq >= since and not e["readyInstances"]]


def lowest_pool_replicas(recorder: Recorder, since: int = 0) -> dict[str, tuple[int, int]]:
    """Per pool, ``(fewest replicas up seen, min_size)`` from ``since`` on (including the
    state at ``since``)."""
    out: dict[str, tuple[int, int]] = {}
    for e in recorder.entries("ceph.pool"):
        key = e["pool"]
        if e.seq < since or key not in out:
            out[key] = (e["up"], e["min_size"])
        else:
            out[key] = (min(e["up"], out[key][0]), e["min_size"])
    return out


def fewest_ready_instances(recorder: Recorder, since: int = 0) -> dict[str, int]:
    """Per CNPG cluster, the fewest ready instances seen from ``since`` on (including the
    state at ``since``)."""
    out: dict[str, int] = {}
    for e in recorder.entries("cnpg.status"):
        key, ready = e["cluster"], e["readyInstances"]
        out[key] = ready if e.seq < since or key not in out else min(ready, out[key])
    return out


@dataclass
class Safety:
    starts: dict[str, int]
    most_not_ready: int
    unsafe_starts: list[dict[str, Any]] = field(default_factory=list)
    most_domains_down: int | None = None  # given the nodes' failure domains
    pools_below_min_size: list[dict[str, Any]] = field(default_factory=list)
    cnpg_without_ready: list[dict[str, Any]] = field(default_factory=list)
    waves: list[list[str]] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        at_once = self.most_not_ready if self.most_domains_down is None else self.most_domains_down
        return (
            at_once <= 1
            and not self.unsafe_starts
            and not self.pools_below_min_size
            and not self.cnpg_without_ready
        )


def safety(recorder: Recorder, since: int = 0, *, domain_of: Mapping[str, str] | None = None) -> Safety:
    """The run's safety from ``since``. Without ``domain_of`` one node may be down at a
    time; with it (hostname → failure domain, for batched runs) one failure domain."""
    starts = node_starts(recorder, since)
    grouped = waves(recorder, since)
    unsafe = []
    for seq, nodes in grouped:
        ceph, cnpg = health_at(recorder, seq)
        seen = [f"ceph {ceph}"] if ceph not in (None, "HEALTH_OK") else []
        seen += [f"{name}: {st.get('phase')}" for name, st in cnpg.items() if st.get("phase") != CNPG_HEALTHY]
        if seen:
            unsafe.append({"node": nodes[0], "nodes": nodes, "seen": seen})
    return Safety(
        starts,
        most_not_ready(recorder, since),
        unsafe,
        most_domains_down(recorder, domain_of, since) if domain_of is not None else None,
        pools_below_min_size(recorder, since),
        cnpg_without_ready(recorder, since),
        [nodes for _, nodes in grouped],
    )
