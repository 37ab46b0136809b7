"""Guaranteed cleanup: undo every temporary change, in reverse, whatever happens.

A workflow registers an undo action for each temporary change *before* making it
(``push``: journaled write-ahead), may undo one early on the normal path (``undo``: the
uncordon after a node is back), and leaves the rest to the stack, which runs them newest
first when its ``with`` block ends — on success, on an error, on Ctrl-C, and on SIGTERM
or SIGHUP, which :func:`signals_interrupt` turns into the same unwinding as Ctrl-C.

While the stack unwinds, further SIGINT/SIGTERM/SIGHUP are held back (a second Ctrl-C
must not abandon a half-restored cluster); the run still ends as interrupted afterwards.
An undo that fails is recorded and reported, and the others still run. Each undo is
recorded in the journal, so a run killed outright (SIGKILL, power loss) leaves a journal
whose pending changes :meth:`CleanupStack.adopt` turns back into undo actions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from taltasks.errors import OperationFailed
from taltasks.events import NULL, Emitter
from taltasks.gates.checks import short_error
from taltasks.workflows.journal import Change, Journal, JournalState

UndoHandler = Callable[[Change], None]
SHIELDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, unwinding like Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def signals_interrupt(signums: Sequence[int] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """While active, these signals raise :class:`Interrupted` in the main thread, so
    ``finally`` blocks and the cleanup stack run as they do for Ctrl-C. Off the main
    thread (where Python cannot install handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, interrupt) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass
class Undo:
    change: Change
    action: Callable[[], None]
    done: bool = False


class CleanupStack:
    """Undo actions registered as changes are made; run in reverse on exit."""

    def __init__(self, journal: Journal | None = None, emitter: Emitter = NULL) -> None:
        self.journal = journal
        self.emitter = emitter
        self._stack: list[Undo] = []
        self._local_ids = 0
        self._held: list[int] = []
        self.failures: list[tuple[Change, str]] = []

    # ---- registering ---------------------------------------------------------------------

    def push(
        self,
        kind: str,
        target: str,
        undo: Callable[[], None],
        *,
        data: dict[str, Any] | None = None,
        node: str | None = None,
        description: str = "",
    ) -> Undo:
        """Register (and journal) a change about to be made, with the action undoing it."""
        if self.journal is not None:
            change = self.journal.change(kind, target, data, node=node, description=description)
        else:
            self._local_ids += 1
            change = Change(f"local{self._local_ids}", kind, target, dict(data or {}), description, node)
        entry = Undo(change, undo)
        self._stack.append(entry)
        return entry

    def adopt(self, state: JournalState, handlers: Mapping[str, UndoHandler]) -> list[Undo]:
        """Take over the changes an earlier, interrupted run left pending (oldest first on
        the stack, so they unwind newest first). ``handlers`` maps a change kind to the
        function undoing it from its journaled data."""
        missing = sorted({c.kind for c in state.pending if c.kind not in handlers})
        if missing:
            raise OperationFailed(
                f"the journal lists changes this version cannot undo: {', '.join(missing)}",
                where=str(state.path),
                hint="undo them by hand, then move the journal away",
            )
        adopted = []
        for change in reversed(state.pending):
            entry = Undo(change, lambda c=change: handlers[c.kind](c))
            self._stack.append(entry)
            adopted.append(entry)
        return adopted

    @property
    def pending(self) -> list[Change]:
        return [u.change for u in reversed(self._stack) if not u.done]

    # ---- undoing -------------------------------------------------------------------------

    def undo(self, entry: Undo) -> None:
        """Undo one change now (the normal path); an error propagates to the caller."""
        if entry.done:
            return
        self._run(entry, raise_errors=True)

    def discard(self, entry: Undo) -> None:
        """Forget a change without undoing it (it became permanent on purpose)."""
        entry.done = True
        if self.journal is not None:
            self.journal.undone(entry.change, ok=True, error="kept")

    def unwind(self) -> list[tuple[Change, str]]:
        """Run every pending undo, newest first; failures are collected, not raised."""
        failures: list[tuple[Change, str]] = []
        with _shield_signals(self.emitter) as held:
            for entry in reversed(self._stack):
                if entry.done:
                    continue
                error = self._run(entry, raise_errors=False)
                if error is not None:
                    failures.append((entry.change, error))
        self._stack = [u for u in self._stack if not u.done]
        self.failures.extend(failures)
        self._held.extend(held)
        return failures

    def _run(self, entry: Undo, *, raise_errors: bool) -> str | None:
        change = entry.change
        self.emitter.emit(
            "cleanup",
            f"undoing: {change.label()}",
            node=change.node,
            change=change.id,
            change_kind=change.kind,
        )
        try:
            entry.action()
        except Exception as exc:
            error = short_error(exc)
            if self.journal is not None:
                self.journal.undone(change, ok=False, error=error)
            self.emitter.emit(
                "warning", f"could not undo {change.label()}: {error}", node=change.node, change=change.id
            )
            if raise_errors:
                raise
            return error
        entry.done = True
        if self.journal is not None:
            self.journal.undone(change, ok=True)
        return None

    def __enter__(self) -> CleanupStack:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        failures = self.unwind()
        if failures:
            listed = "; ".join(f"{c.label()}: {err}" for c, err in failures)
            where = str(self.journal.path) if self.journal is not None else None
            if exc is None:
                raise OperationFailed(
                    f"cleanup could not undo: {listed}",
                    where=where,
                    hint="fix the cause and run the command again: the journal still lists these changes",
                )
            exc.add_note(f"cleanup could not undo: {listed}")
        if exc is None and self._held:
            # a signal held back during cleanup still ends the run as interrupted
            raise KeyboardInterrupt() if self._held[0] == signal.SIGINT else Interrupted(self._held[0])


@contextlib.contextmanager
def _shield_signals(emitter: Emitter) -> Iterator[list[int]]:
    """Hold back interrupting signals while cleanup runs; yields the list of those seen.

    The handler takes no lock (the emitter and Python's buffered streams hold locks, and
    a handler runs between any two bytecodes of the main thread, possibly inside them):
    it records the signal and writes one line straight to file descriptor 2. The event
    is emitted once cleanup is over."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)
        with contextlib.suppress(OSError):
            os.write(2, f"{signal.Signals(signum).name} received: finishing cleanup first\n".encode())

    previous = {s: signal.signal(s, hold) for s in SHIELDED}
    try:
        yield held
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if held:
            names = ", ".join(signal.Signals(s).name for s in held)
            emitter.emit("warning", f"{names} received during cleanup: cleanup finished first")
