"""Event reporters: plain lines, JSON lines, and on a terminal a live view or rich lines.

Every reporter has ``handle(event)`` and ``close()`` and is a context manager, so a task
can write ``with make_reporter(...) as reporter:`` whichever one it got; the live view
needs ``close()`` to stop redrawing.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO

from taltasks.events import Event

_MARK = {
    "plan": "plan",
    "node.started": ">>",
    "node.done": "ok",
    "node.skipped": "--",
    "step.started": " >",
    "step.done": " ✓",
    "step.failed": " ✗",
    "gate.waiting": " …",
    "gate.passed": " ✓",
    "gate.failed": " ✗",
    "cleanup": "cleanup",
    "warning": "warn",
    "error": "error",
    "summary": "==",
}


def format_plain(event: Event) -> str:
    clock = time.strftime("%H:%M:%S", time.localtime(event.ts))
    mark = _MARK.get(event.kind, event.kind)
    node = f"[{event.node}] " if event.node else ""
    return f"{clock} {mark:<7} {node}{event.message}"


class _Closable:
    def close(self) -> None:
        """Nothing to release for line-based reporters."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PlainReporter(_Closable):
    """One line per event; good for logs and pipes."""

    def __init__(self, stream: IO[str] | None = None, *, quiet_kinds: frozenset[str] = frozenset()) -> None:
        self.stream = stream or sys.stderr
        self.quiet_kinds = quiet_kinds

    def handle(self, event: Event) -> None:
        if event.kind in self.quiet_kinds:
            return
        print(format_plain(event), file=self.stream, flush=True)


class JsonReporter(_Closable):
    """One JSON object per event on stdout, for CI (``--json``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def handle(self, event: Event) -> None:
        print(json.dumps(event.as_dict(), default=str), file=self.stream, flush=True)


class RichReporter(_Closable):
    """Colour and symbols on a terminal; same information as :class:`PlainReporter`."""

    _STYLE = {"error": "bold red", "warning": "yellow", "info": ""}

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)

    def handle(self, event: Event) -> None:
        style = self._STYLE[event.level]
        if event.kind in {"node.done", "gate.passed", "step.done"}:
            style = "green"
        elif event.kind in {"gate.waiting"}:
            style = "dim"
        self.console.print(format_plain(event), style=style or None, markup=False)


def make_reporter(*, json_lines: bool = False, stream: IO[str] | None = None, live: bool = True):
    """The reporter for this run: JSON lines with --json; on a terminal the live view
    (or rich lines with ``live=False``); plain lines otherwise."""
    if json_lines:
        return JsonReporter(stream)
    target = stream or sys.stderr
    if stream is None and target.isatty():
        if live:
            from taltasks.ui.live import LiveReporter

            return LiveReporter()
        return RichReporter()
    return PlainReporter(target)
