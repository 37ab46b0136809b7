"""The live view: the event → rows model, its drawing, and reporter choice on a real pty."""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import textwrap
import time

from taltasks.events import Emitter, Event
from taltasks.ui.live import LiveModel, LiveReporter, render
from taltasks.ui.reporters import JsonReporter, PlainReporter, make_reporter

PLAN = [
    {
        "node": "cp1",
        "role": "controlplane",
        "running": "v1.12.1",
        "desired": "v1.12.2",
        "action": "upgrade",
        "reason": "v1.12.1 → v1.12.2",
    },
    {
        "node": "w1",
        "role": "worker",
        "running": "v1.12.2",
        "desired": "v1.12.2",
        "action": "skip",
        "reason": "already at v1.12.2",
    },
    {
        "node": "w2",
        "role": "worker",
        "running": "v1.12.1",
        "desired": "v1.12.2",
        "action": "upgrade",
        "reason": "v1.12.1 → v1.12.2",
    },
]


def story() -> list[Event]:
    return [
        Event("plan", "2 to upgrade, 1 already at the desired version", data={"steps": PLAN}),
        Event("node.started", "upgrading cp1", node="cp1"),
        Event("step.started", "draining cp1", node="cp1", data={"step": "drain"}),
        Event(
            "gate.waiting",
            "ceph: waiting",
            node="cp1",
            data={
                "gate": "ceph",
                "stage": "post",
                "state": "unmet",
                "condition": "CephCluster rook-ceph/rook-ceph: HEALTH_OK",
                "observed": "HEALTH_WARN: OSD_DOWN (1 osds down)",
                "elapsed": 12.0,
            },
        ),
        Event(
            "gate.waiting",
            "kube-node: holding",
            node="cp1",
            data={
                "gate": "kube-node",
                "stage": "post",
                "state": "stabilizing",
                "condition": "stable for 3m",
                "observed": "conditions held 40s of the 3m window",
                "elapsed": 12.0,
            },
        ),
        Event("warning", "Flux Kustomization apps was already suspended: left as it was"),
    ]


def test_model_folds_events_into_node_and_gate_rows():
    model = LiveModel()
    printed = [model.apply(e) for e in story()]
    assert [r.node for r in model.nodes.values()] == ["cp1", "w1", "w2"]
    cp1, w1, w2 = model.nodes.values()
    assert (cp1.state, cp1.step, cp1.running, cp1.desired) == (
        "upgrading",
        "draining cp1",
        "v1.12.1",
        "v1.12.2",
    )
    assert (w1.state, w1.step) == ("skipped", "already at v1.12.2")
    assert w2.state == "pending"
    ceph = model.gates[("cp1", "post", "ceph")]
    assert (ceph.state, ceph.observed, ceph.elapsed) == (
        "waiting",
        "HEALTH_WARN: OSD_DOWN (1 osds down)",
        12.0,
    )
    assert model.gates[("cp1", "post", "kube-node")].state == "stabilizing"
    kept = [p for p in printed if p]
    assert len(kept) == 2 and "plan" in kept[0] and "already suspended" in kept[1]

    model.apply(
        Event(
            "gate.passed", "ceph: passed", node="cp1", data={"gate": "ceph", "stage": "post", "waited": 95.0}
        )
    )
    model.apply(Event("node.done", "cp1 at v1.12.2", node="cp1"))
    line = model.apply(
        Event(
            "step.failed",
            "draining w2: PDB app-db-primary blocks eviction",
            node="w2",
            data={"step": "drain"},
        )
    )
    assert model.gates[("cp1", "post", "ceph")].state == "passed" and cp1.state == "done" and cp1.step == ""
    assert model.nodes["w2"].state == "failed" and line is not None and "PDB app-db-primary" in line


def test_only_recent_finished_gates_stay_visible():
    model = LiveModel()
    for i in range(10):
        model.apply(Event("gate.passed", "", node=f"n{i}", data={"gate": "etcd", "stage": "pre"}))
    model.apply(
        Event("gate.waiting", "", node="n0", data={"gate": "ceph", "stage": "post", "state": "unmet"})
    )
    visible = model.visible_gates()
    assert [g.node for g in visible] == ["n4", "n5", "n6", "n7", "n8", "n9", "n0"]
    assert visible[-1].gate == "ceph"


def test_render_shows_nodes_and_gates():
    from rich.console import Console

    model = LiveModel()
    for e in story():
        model.apply(e)
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render(model))
    text = out.getvalue()
    assert "v1.12.1 → v1.12.2" in text and "upgrading" in text and "draining cp1" in text
    assert "HEALTH_WARN: OSD_DOWN (1 osds down)" in text and "12s" in text and "stabilizing" in text


def test_live_reporter_prints_kept_lines_above_the_view():
    from rich.console import Console

    out = io.StringIO()
    with LiveReporter(Console(file=out, width=200, force_terminal=True, color_system=None)) as reporter:
        emitter = Emitter(reporter)
        for e in story():
            emitter.emit(e.kind, e.message, node=e.node, **e.data)
    text = out.getvalue()
    assert "already suspended" in text and "HEALTH_WARN: OSD_DOWN" in text and "FROM → TO" in text
    assert reporter._live is None  # stopped


def test_make_reporter_off_a_terminal_and_for_json():
    stream = io.StringIO()
    assert isinstance(make_reporter(stream=stream), PlainReporter)
    assert isinstance(make_reporter(json_lines=True, stream=stream), JsonReporter)
    with make_reporter(stream=stream) as reporter:
        reporter.handle(Event("node.done", "cp1 at v1.12.2", node="cp1"))
    assert "[cp1] cp1 at v1.12.2" in stream.getvalue()


CHILD = textwrap.dedent(
    """
    import sys
    from taltasks.events import Emitter
    from taltasks.ui.reporters import make_reporter
    with make_reporter() as reporter:
        print(type(reporter).__name__, file=sys.stderr, flush=True)
        e = Emitter(reporter)
        e.emit("plan", "1 to upgrade", steps=[{"node": "cp1", "role": "controlplane", "running": "v1.12.1", "desired": "v1.12.2", "action": "upgrade"}])
        e.emit("node.started", "upgrading cp1", node="cp1")
        e.emit("gate.waiting", "etcd: waiting", node="cp1", gate="etcd", stage="pre", state="unmet", condition="etcd cp2: etcd running and healthy", observed="Finished, unhealthy", elapsed=3.0)
        e.emit("node.done", "cp1 at v1.12.2", node="cp1")
    """
)


def _run_on(stderr_target, env_extra=None) -> str:
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm", **(env_extra or {})}
    if stderr_target == "pty":
        master, slave = os.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD], stderr=slave, stdout=subprocess.DEVNULL, env=env
        )
        os.close(slave)
        chunks = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=10)
        os.close(master)
        return b"".join(chunks).decode(errors="replace")
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=30)
    return proc.stderr


def test_a_terminal_gets_the_live_view_a_pipe_gets_plain_lines():
    on_tty = _run_on("pty")
    assert on_tty.splitlines()[0].strip() == "LiveReporter", on_tty
    assert "FROM → TO" in on_tty and "Finished, unhealthy" in on_tty and "\x1b[" in on_tty
    piped = _run_on("pipe")
    assert piped.splitlines()[0] == "PlainReporter"
    assert "[cp1] etcd: waiting" in piped and "\x1b[" not in piped
