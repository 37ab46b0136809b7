"""A live view of a rolling workflow on a terminal: one row per node, one per gate.

:class:`LiveModel` folds the event stream into rows (pure, tested without a terminal);
:func:`render` draws them with rich; :class:`LiveReporter` keeps the drawing live and
prints the events worth keeping (warnings, errors, cleanup, finished nodes and gates)
above it as ordinary lines, so the scroll-back tells the story once the view is gone.

The events it understands — the contract for workflows:

* an event with ``phase=`` (the demo's ``== …`` lines) or a ``plan`` starts a new phase:
  the rows of the previous one are dropped, so nothing from a bootstrap lingers into an
  upgrade (the reporter prints the finished table above the view first);
* ``plan`` with ``steps=[PlanStep.row(), ...]`` — the node rows, in order (a step without
  a node, such as a cluster-wide snapshot, makes no row; an ``ip`` next to ``node`` lets
  later events that name the node by address land on its row);
* ``node.started`` / ``node.done`` / ``node.skipped`` / ``node.failed`` (``node=``);
* ``step.started`` / ``step.done`` / ``step.failed`` (``node=``, ``step=``): outside a
  node's own started → done bracket a step makes its row ``running`` and, once done,
  ``done`` — so a workflow made only of per-node steps (bootstrap, the Kubernetes
  upgrade) ends with its rows finished, not ``pending``;
* ``gate.waiting`` / ``gate.passed`` / ``gate.failed`` (``node=``, ``gate=``, ``stage=``,
  ``condition=``, ``observed=``, ``elapsed=``), as the gate engine emits them.

Rows are keyed by hostname: an event naming a node by an address the plan associated with
a hostname goes to that hostname's row. Everything else is printed as a line. rich is
imported only when a view is drawn.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from taltasks.events import Event
from taltasks.ui.reporters import format_plain

RECENT_GATES = 6
_STATE_STYLE = {
    "pending": "dim",
    "upgrading": "yellow",
    "running": "yellow",
    "done": "green",
    "skipped": "dim",
    "failed": "bold red",
    "waiting": "yellow",
    "stabilizing": "cyan",
    "satisfied": "green",
    "passed": "green",
}


@dataclass
class NodeRow:
    node: str
    role: str = ""
    running: str = ""
    desired: str = ""
    state: str = "pending"
    step: str = ""
    step_done: bool = False  # the step shown has finished (drawn with a tick)
    bracketed: bool = False  # between node.started and its end: the node events set the state


@dataclass
class GateRow:
    node: str
    stage: str
    gate: str
    state: str
    condition: str = ""
    observed: str = ""
    elapsed: float = 0.0
    order: int = 0


class LiveModel:
    """Node and gate rows as the events describe them."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeRow] = {}
        self.gates: dict[tuple[str, str, str], GateRow] = {}
        self.phase = ""
        self.aliases: dict[str, str] = {}  # address → hostname
        self._seq = 0

    def new_phase(self, name: str = "") -> None:
        """Drop every row: what the next phase does starts from a clean view."""
        self.nodes.clear()
        self.gates.clear()
        if name:
            self.phase = name

    @staticmethod
    def starts_phase(event: Event) -> bool:
        return bool(event.data.get("phase")) or event.kind == "plan"

    def apply(self, event: Event) -> str | None:
        """Update the rows; return a line to print above the view, if the event is one to keep."""
        kind, data = event.kind, event.data
        if self.starts_phase(event):
            self.new_phase(str(data.get("phase") or ""))
        if kind == "plan":
            for step in data.get("steps") or []:
                name = str(step.get("node") or "")
                if not name:
                    continue  # a cluster-wide step: no node row
                if step.get("ip"):
                    self.aliases[str(step["ip"])] = name
                row = self._node(name)
                row.role = row.role or step.get("role", "")
                running = step.get("running") or step.get("from") or ""
                desired = step.get("desired") or step.get("to") or ""
                row.running, row.desired = running or row.running, desired or row.desired
                if step.get("action") == "skip" and "running" in step:
                    row.state, row.step = "skipped", step.get("reason", "")
            return format_plain(event)
        if kind.startswith("node.") and event.node:
            row = self._node(self._name(event.node))
            row.state = {"node.started": "upgrading", "node.done": "done", "node.skipped": "skipped"}.get(
                kind, "failed"
            )
            row.bracketed = kind == "node.started"
            if kind == "node.started":
                row.step, row.step_done = "", False
            else:
                row.step, row.step_done = event.message, kind == "node.done"
            return None if kind == "node.started" else format_plain(event)
        if kind.startswith("step.") and event.node:
            row = self._node(self._name(event.node))
            row.step = event.message
            if kind == "step.started":
                row.step_done = False
                if not row.bracketed:
                    row.state = "running"
            elif kind == "step.done":
                row.step_done = True
                if not row.bracketed:
                    row.state = "done"
            else:
                row.state, row.step_done, row.bracketed = "failed", False, False
                return format_plain(event)
            return None
        if kind.startswith("gate.") and "gate" in data:
            return self._gate(event)
        return format_plain(event)

    def _name(self, node: str) -> str:
        return self.aliases.get(node, node)

    def _node(self, name: str) -> NodeRow:
        return self.nodes.setdefault(name, NodeRow(name))

    def _gate(self, event: Event) -> str | None:
        data = event.data
        key = (event.node or "", str(data.get("stage", "")), str(data["gate"]))
        row = self.gates.get(key)
        if row is None:
            row = self.gates[key] = GateRow(*key, state="waiting")
        self._seq += 1
        row.order = self._seq
        row.elapsed = float(data.get("elapsed") or data.get("waited") or 0.0)
        if event.kind == "gate.waiting":
            row.state = "waiting" if data.get("state") == "unmet" else str(data.get("state", "waiting"))
            row.condition, row.observed = str(data.get("condition", "")), str(data.get("observed", ""))
            return None
        row.state = "passed" if event.kind == "gate.passed" else "failed"
        if event.kind == "gate.failed":
            row.condition, row.observed = str(data.get("condition", "")), str(data.get("observed", ""))
            return format_plain(event)
        row.condition, row.observed = "", ""
        return None

    def visible_gates(self) -> list[GateRow]:
        """Every gate still waiting, plus the most recent finished ones."""
        rows = sorted(self.gates.values(), key=lambda r: r.order)
        active = [r for r in rows if r.state not in ("passed", "failed")]
        finished = [r for r in rows if r.state in ("passed", "failed")][-RECENT_GATES:]
        return sorted(active + finished, key=lambda r: r.order)


def render(model: LiveModel) -> Any:
    """The view: a node table, and a gate table when any gate has reported."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = f"nodes — {model.phase}" if model.phase else "nodes"
    nodes = Table(header_style="bold", expand=False, title=title, title_justify="left")
    for col in ("NODE", "ROLE", "FROM → TO", "STATE", "STEP"):
        nodes.add_column(col, overflow="fold")
    for row in model.nodes.values():
        change = f"{row.running} → {row.desired}" if row.desired else ""
        step = f"✓ {row.step}" if row.step and row.step_done else row.step
        nodes.add_row(
            row.node, row.role, change, Text(row.state, style=_STATE_STYLE.get(row.state, "")), step
        )
    parts: list[Any] = [nodes]
    gates = model.visible_gates()
    if gates:
        table = Table(header_style="bold", expand=False, title="gates", title_justify="left")
        for col in ("NODE", "STAGE", "GATE", "STATE", "WAITED", "CONDITION", "LAST VALUE"):
            table.add_column(col, overflow="fold")
        for g in gates:
            table.add_row(
                g.node or "-",
                g.stage,
                g.gate,
                Text(g.state, style=_STATE_STYLE.get(g.state, "")),
                f"{g.elapsed:.0f}s",
                g.condition,
                g.observed,
            )
        parts.append(table)
    return Group(*parts)


class LiveReporter:
    """Draws :func:`render` live on a terminal (stderr by default) until :meth:`close`."""

    def __init__(self, console: Any = None, *, refresh_per_second: float = 4.0) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False)
        self.model = LiveModel()
        self._lock = threading.Lock()
        self._refresh = refresh_per_second
        self._live: Any = None

    def handle(self, event: Event) -> None:
        with self._lock:
            finished = None
            if self._live is not None and self.model.starts_phase(event) and self.model.nodes:
                finished = render(self.model)  # the phase that ends, kept in the scroll-back
            line = self.model.apply(event)
            if self._live is None:
                from rich.live import Live

                self._live = Live(
                    get_renderable=lambda: render(self.model),
                    console=self.console,
                    refresh_per_second=self._refresh,
                    transient=False,
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self._live.start()
            if finished is not None:
                self._live.console.print(finished)
            if line is not None:
                style = (
                    "bold red" if event.level == "error" else ("yellow" if event.level == "warning" else None)
                )
                self._live.console.print(line, style=style, markup=False, highlight=False)
            self._live.refresh()

    def close(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def __enter__(self) -> LiveReporter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
