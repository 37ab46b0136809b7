"""The event stream workflows report through (no workflow prints).

A workflow gets an :class:`Emitter` and calls ``emit(kind, message, node=..., **data)``.
Reporters in :mod:`taltasks.ui` render the same events as a live view, plain lines or JSON
lines. Kinds are dotted, coarse to fine: ``plan``, ``node.started``, ``node.done``,
``node.skipped``, ``step.started``, ``step.done``, ``step.failed``, ``gate.waiting``,
``gate.passed``, ``gate.failed``, ``cleanup``, ``info``, ``warning``, ``summary``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    kind: str
    message: str
    node: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    @property
    def level(self) -> str:
        if self.kind.endswith(".failed") or self.kind == "error":
            return "error"
        if self.kind == "warning":
            return "warning"
        return "info"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ts": round(self.ts, 3), "kind": self.kind, "message": self.message}
        if self.node is not None:
            out["node"] = self.node
        if self.data:
            out["data"] = self.data
        return out


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...


class Emitter:
    """Fans events out to sinks; thread-safe so gate watchers may emit from their threads."""

    def __init__(self, *sinks: Sink | Callable[[Event], None]) -> None:
        self._sinks: list[Callable[[Event], None]] = [
            s.handle if hasattr(s, "handle") else s  # type: ignore[union-attr]
            for s in sinks
        ]
        self._lock = threading.Lock()

    def add(self, sink: Sink | Callable[[Event], None]) -> None:
        self._sinks.append(sink.handle if hasattr(sink, "handle") else sink)  # type: ignore[union-attr]

    def emit(self, kind: str, message: str, *, node: str | None = None, **data: Any) -> Event:
        event = Event(kind, message, node, data)
        with self._lock:
            for sink in self._sinks:
                sink(event)
        return event

    @contextmanager
    def step(self, name: str, message: str, *, node: str | None = None, **data: Any) -> Iterator[None]:
        """Emit ``step.started``, then ``step.done`` or ``step.failed`` around a block."""
        self.emit("step.started", message, node=node, step=name, **data)
        started = time.monotonic()
        try:
            yield
        except BaseException as exc:
            self.emit("step.failed", f"{message}: {exc}", node=node, step=name, **data)
            raise
        self.emit(
            "step.done", message, node=node, step=name, seconds=round(time.monotonic() - started, 3), **data
        )


class Collector:
    """A sink that keeps every event: for tests and for summaries."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


NULL = Emitter()
