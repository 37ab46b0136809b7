"""What happened in a simulated cluster, in order: the simulator's own account.

Talos nodes, the Kubernetes emulator and the operators all write here: API calls, node
stage changes, Node readiness, operator health. Tests and the demo read it to check claims
such as "no node started while Ceph was unhealthy" against the simulator's view rather
than the tool's. With a path, every entry is also appended to a JSON-lines file so a
separate process (``sim.up`` in the background) can be inspected.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Entry:
    seq: int
    ts: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, **self.data}


class Recorder:
    """Append-only, thread-safe log of simulator entries."""

    def __init__(self, path: Path | None = None) -> None:
        self._entries: list[Entry] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._file = open(path, "a", buffering=1, encoding="utf-8") if path else None  # noqa: SIM115

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> Recorder:
        """A recorder holding entries read back from a file (:func:`read_file`), so the
        verdicts of :mod:`taltasks.sim.verdict` read another process's record."""
        recorder = cls()
        recorder._entries = list(entries)
        return recorder

    def record(self, kind: str, **data: Any) -> Entry:
        with self._cond:
            entry = Entry(len(self._entries), time.time(), kind, data)
            self._entries.append(entry)
            if self._file:
                self._file.write(json.dumps(entry.as_dict(), default=str) + "\n")
            self._cond.notify_all()
        return entry

    def entries(self, kind: str | None = None, **match: Any) -> list[Entry]:
        """Entries of ``kind`` (prefix match on ``kind.`` too) whose data has the given values."""
        with self._lock:
            snapshot = list(self._entries)
        return [e for e in snapshot if _matches(e, kind, match)]

    def wait_for(
        self, kind: str, timeout: float, predicate: Callable[[Entry], bool] | None = None, **match: Any
    ) -> Entry:
        """Block until a matching entry exists (already or later); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for e in self._entries[seen:]:
                    if _matches(e, kind, match) and (predicate is None or predicate(e)):
                        return e
                seen = len(self._entries)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {kind} entry matching {match} within {timeout}s")
                self._cond.wait(remaining)

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


def _matches(entry: Entry, kind: str | None, match: dict[str, Any]) -> bool:
    if kind is not None and entry.kind != kind and not entry.kind.startswith(kind + "."):
        return False
    return all(entry.data.get(k) == v for k, v in match.items())


def read_file(path: Path) -> list[Entry]:
    """Load a record written by another process."""
    out: list[Entry] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(Entry(d.pop("seq"), d.pop("ts"), d.pop("kind"), d))
    return out


def kinds(entries: Iterable[Entry]) -> list[str]:
    return [e.kind for e in entries]
