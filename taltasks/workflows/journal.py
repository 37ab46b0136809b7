"""A run's journal: every step and every temporary change, on disk, written atomically.

An upgrade changes the cluster temporarily (a node cordoned, Flux suspended, CNPG in
maintenance) and permanently (a node upgraded). If the process dies — a crash, a closed
laptop, ``kill -9`` — the journal still says what was done and what is still to undo, so
the next run can roll the temporary changes back and resume after the last finished node.

The file is ``.taltasks/<operation>.journal.json`` in the checkout (git-ignored). Every
record rewrites it whole through a temporary file, ``fsync`` and ``os.replace``: a reader
sees the old or the new journal, never half of one. Changes are journaled *before* they
are applied (write-ahead), so an undo may find nothing to undo — undo actions are written
to be harmless then. An exclusive lock keeps two runs of one operation apart.

Reading it back (:class:`JournalState`) yields the changes still pending undo, newest
first, the nodes finished and the node that was in progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError, OperationFailed

FORMAT = 1
DIRECTORY = ".taltasks"
KEEP_HISTORY = 20


@dataclass(frozen=True)
class Change:
    """A temporary change: ``kind`` names the undo handler, ``data`` is all it needs."""

    id: str
    kind: str
    target: str
    data: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    node: str | None = None

    def label(self) -> str:
        return self.description or f"{self.kind} {self.target}"


@dataclass(frozen=True)
class JournalState:
    path: Path
    operation: str
    run: str
    status: str  # running | completed | failed | interrupted
    entries: tuple[dict[str, Any], ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def pending(self) -> list[Change]:
        """Changes applied and not (successfully) undone, newest first: the undo order."""
        open_changes: dict[str, Change] = {}
        for e in self.entries:
            if e["type"] == "change":
                open_changes[e["id"]] = Change(
                    e["id"],
                    e["kind"],
                    e["target"],
                    e.get("data") or {},
                    e.get("description", ""),
                    e.get("node"),
                )
            elif e["type"] == "undo" and e.get("ok"):
                open_changes.pop(e["change"], None)
        return list(reversed(open_changes.values()))

    @property
    def done_nodes(self) -> list[str]:
        return [e["node"] for e in self.entries if e["type"] == "node" and e["status"] == "done"]

    @property
    def in_progress(self) -> list[str]:
        """Nodes started and neither done nor skipped (the one a failure stopped at)."""
        open_nodes: dict[str, None] = {}
        for e in self.entries:
            if e["type"] != "node":
                continue
            if e["status"] == "started":
                open_nodes[e["node"]] = None
            elif e["status"] in ("done", "skipped"):
                open_nodes.pop(e["node"], None)
        return list(open_nodes)

    @property
    def failure(self) -> dict[str, Any] | None:
        failed = [e for e in self.entries if e.get("status") == "failed"]
        return failed[-1] if failed else None

    def steps(self, node: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["type"] == "step" and e.get("node") == node]

    def resumptions(self) -> int:
        return sum(1 for e in self.entries if e["type"] == "run" and e.get("event") == "resumed")


def read_journal(path: Path | str) -> JournalState:
    """Parse a journal file; :class:`InputError` naming the file when it is unreadable."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise ValueError(f"unknown journal format {raw.get('format')!r}")
        return JournalState(
            path, raw["operation"], raw["run"], raw["status"], tuple(raw["entries"]), raw.get("meta") or {}
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"the run journal is unreadable: {exc}",
            where=str(path),
            hint="inspect it, undo what it lists by hand if needed, then move it away",
        ) from None


def journal_path(root: Path | str, operation: str) -> Path:
    return Path(root) / DIRECTORY / f"{operation}.journal.json"


class Journal:
    """The journal of one run of ``operation``; open with :meth:`open`."""

    def __init__(self, path: Path, state: JournalState, lock: int, clock: Callable[[], float]) -> None:
        self.path = path
        self._state = state
        self._entries = list(state.entries)
        self._lock_fd: int | None = lock
        self._clock = clock
        self._append_lock = threading.Lock()  # a batch's nodes journal from their own threads
        self.previous: JournalState | None = None

    @classmethod
    def open(
        cls,
        root: Path | str,
        operation: str,
        *,
        meta: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Journal:
        """Resume the unfinished journal of ``operation`` or start a new one (archiving a
        finished one under ``.taltasks/history/``). :class:`OperationFailed` when another
        process holds the operation's lock."""
        directory = Path(root) / DIRECTORY
        _ensure_directory(directory)
        lock = _lock(directory / f"{operation}.lock", operation)
        try:
            path = journal_path(root, operation)
            previous = read_journal(path) if path.exists() else None
            if previous is not None and not previous.finished:
                journal = cls(path, previous, lock, clock)
                journal.previous = previous
                journal._append({"type": "run", "event": "resumed", "pid": os.getpid()})
                return journal
            if previous is not None:
                _archive(path, previous)
            run = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock())) + f"-{os.getpid()}"
            state = JournalState(path, operation, run, "running", (), dict(meta or {}))
            journal = cls(path, state, lock, clock)
            journal._append({"type": "run", "event": "started", "pid": os.getpid()})
            return journal
        except BaseException:
            _unlock(lock)
            raise

    # ---- reading -------------------------------------------------------------------------

    def state(self) -> JournalState:
        return self._state

    @property
    def resumed(self) -> bool:
        return self.previous is not None

    # ---- recording -----------------------------------------------------------------------

    def node(self, node: str, status: str, **data: Any) -> None:
        """``started``, ``done``, ``skipped`` or ``failed`` for a whole node."""
        self._append({"type": "node", "node": node, "status": status, **data})

    def step(self, node: str | None, step: str, status: str, **data: Any) -> None:
        """``started``, ``done`` or ``failed`` for one step of a node (or of the run)."""
        self._append({"type": "step", "node": node, "step": step, "status": status, **data})

    def change(
        self,
        kind: str,
        target: str,
        data: dict[str, Any] | None = None,
        *,
        node: str | None = None,
        description: str = "",
    ) -> Change:
        """Record a temporary change before applying it; returns it with its id."""
        change = Change(
            f"c{sum(1 for e in self._entries if e['type'] == 'change') + 1}",
            kind,
            target,
            dict(data or {}),
            description,
            node,
        )
        self._append(
            {
                "type": "change",
                "id": change.id,
                "kind": kind,
                "target": target,
                "data": change.data,
                "description": description,
                "node": node,
            }
        )
        return change

    def undone(self, change: Change | str, *, ok: bool = True, error: str | None = None) -> None:
        change_id = change.id if isinstance(change, Change) else change
        entry: dict[str, Any] = {"type": "undo", "change": change_id, "ok": ok}
        if error:
            entry["error"] = error
        self._append(entry)

    def note(self, message: str, **data: Any) -> None:
        self._append({"type": "note", "message": message, **data})

    def finish(self, status: str = "completed") -> None:
        if status not in ("completed", "failed", "interrupted"):
            raise ValueError(f"unknown final status {status!r}")
        self._append({"type": "run", "event": status}, status=status)

    def close(self) -> None:
        if self._lock_fd is not None:
            _unlock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if not self._state.finished:
                if exc_type is None:
                    self.finish("completed")
                elif issubclass(exc_type, KeyboardInterrupt):
                    self.finish("interrupted")
                else:
                    self.finish("failed")
        finally:
            self.close()

    def _append(self, entry: dict[str, Any], *, status: str | None = None) -> None:
        with self._append_lock:
            self._append_locked(entry, status)

    def _append_locked(self, entry: dict[str, Any], status: str | None) -> None:
        entry = {"seq": len(self._entries) + 1, "ts": round(self._clock(), 3), **entry}
        self._entries.append(entry)
        s = self._state
        self._state = JournalState(
            s.path, s.operation, s.run, status or s.status, tuple(self._entries), s.meta
        )
        _write_atomically(
            self.path,
            {
                "format": FORMAT,
                "operation": s.operation,
                "run": s.run,
                "status": self._state.status,
                "meta": s.meta,
                "entries": self._entries,
            },
        )


# ---- files -------------------------------------------------------------------------------


def _ensure_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        # belt and braces: the checkout's .gitignore should already exclude .taltasks/
        ignore.write_text("*\n", encoding="utf-8")


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(_encode(data))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _encode(data: dict[str, Any]) -> str:
    """The journal as JSON with one entry per line: readable, and fast to write again on
    every record (each value goes through the C encoder; a long run appends hundreds of
    entries, a batch of ten nodes a hundred at a time)."""
    head = json.dumps({k: v for k, v in data.items() if k != "entries"}, default=str, ensure_ascii=False)
    entries = ",\n  ".join(json.dumps(e, default=str, ensure_ascii=False) for e in data.get("entries") or [])
    inner = f"\n  {entries}\n" if entries else ""
    return f'{head[:-1]}{", " if len(head) > 2 else ""}"entries": [{inner}]}}\n'


def _archive(path: Path, state: JournalState) -> None:
    history = path.parent / "history"
    history.mkdir(mode=0o700, exist_ok=True)
    os.replace(path, history / f"{state.operation}-{state.run}.json")
    kept = sorted(history.glob(f"{state.operation}-*.json"))
    for old in kept[:-KEEP_HISTORY]:
        old.unlink(missing_ok=True)


def _lock(path: Path, operation: str) -> int:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise OperationFailed(
            f"another {operation} run is in progress (pid {holder})",
            where=str(path.parent),
            hint="wait for it to finish; if no such process exists, the lock frees itself",
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _unlock(fd: int) -> None:
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
