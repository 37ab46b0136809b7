"""The live view: the event → rows model, its drawing, and reporter choice on a real pty."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import textwrap
import time

import pytest

from taltasks.events import Emitter, Event
from taltasks.ui.live import LiveModel, LiveReporter, render
from taltasks.ui.reporters import JsonReporter, PlainReporter, make_reporter
from testpaths import REPO_ROOT

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
    assert model.gates[("cp1", "post", "ceph")].state == "passed" and cp1.state == "done"
    assert (cp1.step, cp1.step_done) == ("cp1 at v1.12.2", True)  # shown finished, not "draining"
    assert model.nodes["w2"].state == "failed" and line is not None and "PDB app-db-primary" in line


def test_a_new_phase_starts_from_clean_rows_keyed_by_hostname():
    """The Kubernetes upgrade after a bootstrap: no bootstrap step lingers, the cluster-wide
    snapshot step makes no row, the snapshot's source named by address lands on its
    hostname's row, and steps that finished show finished."""
    model = LiveModel()
    model.apply(Event("info", "== bootstrap", data={"phase": "bootstrap"}))
    model.apply(Event("step.started", "applying its config in maintenance mode", node="w1"))
    assert model.nodes["w1"].state == "running"
    model.apply(Event("info", "== Kubernetes", data={"phase": "upgrade-k8s"}))
    assert model.nodes == {} and model.phase == "upgrade-k8s"
    steps = [
        {"step": "pre-pull", "node": "cp1", "ip": "127.0.0.11", "from": "", "to": "v1.35.0", "action": "run"},
        {"step": "snapshot", "node": "", "ip": "", "action": "run"},
        {"step": "kubelet", "node": "cp1", "ip": "127.0.0.11", "from": "v1.34.3", "to": "v1.35.0"},
        {"step": "kubelet", "node": "w1", "ip": "127.0.0.21", "from": "v1.34.3", "to": "v1.35.0"},
    ]
    model.apply(Event("plan", "Kubernetes v1.34.3 → v1.35.0", data={"steps": steps}))
    assert list(model.nodes) == ["cp1", "w1"]  # one row per node, none for the snapshot
    assert [(r.state, r.running, r.desired) for r in model.nodes.values()] == [
        ("pending", "v1.34.3", "v1.35.0")
    ] * 2
    model.apply(Event("step.started", "etcd snapshot", data={"step": "snapshot"}))  # no node
    model.apply(Event("step.started", "etcd snapshot from 127.0.0.11", node="127.0.0.11"))
    assert "127.0.0.11" not in model.nodes and model.nodes["cp1"].step == "etcd snapshot from 127.0.0.11"
    model.apply(Event("step.done", "etcd snapshot from 127.0.0.11", node="127.0.0.11"))
    assert (model.nodes["cp1"].state, model.nodes["cp1"].step_done) == ("done", True)
    for node in ("cp1", "w1"):
        model.apply(Event("step.started", f"upgrading kubelet on {node}", node=node))
        assert model.nodes[node].state == "running"
        model.apply(Event("step.done", f"upgrading kubelet on {node}", node=node))
    assert [(r.state, r.step) for r in model.nodes.values()] == [
        ("done", "upgrading kubelet on cp1"),
        ("done", "upgrading kubelet on w1"),
    ]
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render(model))
    assert "nodes — upgrade-k8s" in out.getvalue() and "✓ upgrading kubelet on w1" in out.getvalue()


def test_the_reporter_keeps_each_finished_phase_in_the_scroll_back():
    from rich.console import Console

    out = io.StringIO()
    with LiveReporter(Console(file=out, width=200, force_terminal=True, color_system=None)) as reporter:
        reporter.handle(Event("info", "== bootstrap", data={"phase": "bootstrap"}))
        reporter.handle(Event("step.done", "applied its config", node="w1"))
        reporter.handle(Event("info", "== upgrade", data={"phase": "upgrade-all"}))
    text = out.getvalue()
    assert "nodes — bootstrap" in text and "✓ applied its config" in text


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


def run_with_pty_stderr(cmd: list[str], *, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``cmd`` with a terminal as stderr (stdout discarded); its exit code
    and everything it wrote to the terminal."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env, cwd=REPO_ROOT
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed its side
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def _run_on(stderr_target, env_extra=None) -> str:
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm", **(env_extra or {})}
    if stderr_target == "pty":
        _, output = run_with_pty_stderr([sys.executable, "-c", CHILD], env=env, timeout=20)
        return output
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=30)
    return proc.stderr


def test_a_terminal_gets_the_live_view_a_pipe_gets_plain_lines():
    on_tty = _run_on("pty")
    assert on_tty.splitlines()[0].strip() == "LiveReporter", on_tty
    assert "FROM → TO" in on_tty and "Finished, unhealthy" in on_tty and "\x1b[" in on_tty
    piped = _run_on("pipe")
    assert piped.splitlines()[0] == "PlainReporter"
    assert "[cp1] etcd: waiting" in piped and "\x1b[" not in piped


# ---- the demo on a real terminal ------------------------------------------------------------

CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")
OSC = re.compile(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\\\)")


def final_screen(output: str) -> list[str]:
    """What a terminal shows after ``output``: enough of a VT100 for rich's live display
    (carriage return, line feed, cursor up/down/column, erase in line; colours ignored),
    with the scroll-back kept, so redrawn tables leave only their last drawing."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(output):
        ch = output[i]
        if ch == "\x1b":
            m = CSI.match(output, i) or OSC.match(output, i)
            i = m.end() if m else i + 1
            if m is None or m.re is OSC:
                continue
            params, cmd = m.group(1), m.group(2)
            n = int(params) if params.isdigit() else 1
            if cmd == "A":
                row = max(0, row - n)
            elif cmd == "B":
                row += n
            elif cmd == "G":
                col = n - 1
            elif cmd == "K":
                while len(lines) <= row:
                    lines.append([])
                lines[row] = [] if params == "2" else lines[row][:col]
            continue
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row, col = row + 1, 0
        elif ch >= " ":
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = ch
            col += 1
    return ["".join(line).rstrip() for line in lines]


def node_rows(screen: list[str], title: str) -> list[dict[str, str]]:
    """The rows of the last node table titled ``title`` (a cell folded over several lines
    is one row: its continuation lines have no STATE)."""
    start = max(i for i, line in enumerate(screen) if line.strip() == title)
    header = next(i for i in range(start, len(screen)) if "NODE" in screen[i] and "STATE" in screen[i])
    names = [c.strip() for c in re.split(r"[│┃]", screen[header])[1:-1]]
    rows: list[dict[str, str]] = []
    for line in screen[header + 2 :]:
        if not line.startswith(("│", "┃")):
            break  # the table's bottom border
        cells = dict(zip(names, (c.strip() for c in re.split(r"[│┃]", line)[1:-1]), strict=True))
        if cells["STATE"]:
            rows.append(cells)
        else:
            rows[-1]["STEP"] += " " + cells["STEP"]
    return rows


@pytest.mark.slow
def test_the_demos_kubernetes_upgrade_on_a_terminal_ends_with_one_finished_row_per_node(tmp_path):
    """`invoke demo` with the live view on a pty: the last drawing of the Kubernetes-upgrade
    phase has each node once, by hostname (the etcd snapshot's source, named by address,
    lands on its row), no row without a node, nothing still pending, and nothing carried
    over from the bootstrap or the Talos upgrade."""
    env = {**os.environ, "COLUMNS": "240", "LINES": "60", "TERM": "xterm", "PYTHONUNBUFFERED": "1"}
    returncode, output = run_with_pty_stderr(
        [sys.executable, "-m", "invoke", "demo", "--dir", str(tmp_path / "work")], env=env, timeout=600
    )
    assert returncode == 0, output[-3000:]
    screen = final_screen(output)
    rows = node_rows(screen, "nodes — upgrade-k8s")
    hostnames = ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"]
    assert sorted(r["NODE"] for r in rows) == hostnames, rows  # once each, no IP, no empty row
    assert [r["STATE"] for r in rows] == ["done"] * 6, rows
    assert all(r["STEP"].startswith("✓ upgrading kubelet") for r in rows), rows
    assert all(r["FROM → TO"].endswith("→ v1.37.2") for r in rows), rows
    table = "\n".join(screen[max(i for i, line in enumerate(screen) if "nodes — upgrade-k8s" in line) :])
    assert "maintenance mode" not in table and "v1.14.7" not in table  # nothing from earlier phases
    # the earlier phases had their own tables, each finished in its turn
    upgrade = node_rows(screen, "nodes — upgrade-all")
    assert sorted(r["NODE"] for r in upgrade) == hostnames
    assert {r["STATE"] for r in upgrade} == {"done"}, upgrade
