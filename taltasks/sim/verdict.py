"""Reading the simulator's record for the claims an upgrade must keep.

Used by the demo's closing verdict and by the tests: the facts come from the simulator's
own account (``Recorder``), never from what the tool under test says about itself.

* ``most_not_ready`` — the largest number of Nodes NotReady at the same time;
* ``node_starts`` — where each node's upgrade began: the first change made to its Node
  (the cordon) after a point in the record;
* ``health_at`` — Ceph's health and every CNPG cluster's last status just before a point;
* ``safety`` — all of it for one run: at most one node down, and every node started only
  while Ceph was HEALTH_OK and every Postgres cluster healthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taltasks.sim.record import Recorder

CNPG_HEALTHY = "Cluster in healthy state"


def most_not_ready(recorder: Recorder, since: int = 0) -> int:
    down: set[str] = set()
    worst = 0
    for e in recorder.entries("node.ready"):
        (down.discard if e["ready"] else down.add)(e["node"])
        if e.seq >= since:
            worst = max(worst, len(down))
    return worst


def node_starts(recorder: Recorder, since: int = 0) -> dict[str, int]:
    """Per node, the record position of the first change made to its Node object (the
    cordon) at or after ``since``; the simulator's own actors write to the store directly,
    so API writes are the tool's."""
    starts: dict[str, int] = {}
    for e in recorder.entries("kube.api", resource="nodes", verb="patch"):
        if e.seq >= since:
            starts.setdefault(e["name"], e.seq)
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


@dataclass
class Safety:
    starts: dict[str, int]
    most_not_ready: int
    unsafe_starts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return self.most_not_ready <= 1 and not self.unsafe_starts


def safety(recorder: Recorder, since: int = 0) -> Safety:
    starts = node_starts(recorder, since)
    unsafe = []
    for node, seq in sorted(starts.items(), key=lambda kv: kv[1]):
        ceph, cnpg = health_at(recorder, seq)
        seen = [f"ceph {ceph}"] if ceph not in (None, "HEALTH_OK") else []
        seen += [f"{name}: {st.get('phase')}" for name, st in cnpg.items() if st.get("phase") != CNPG_HEALTHY]
        if seen:
            unsafe.append({"node": node, "seen": seen})
    return Safety(starts, most_not_ready(recorder, since), unsafe)
