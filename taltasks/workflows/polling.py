"""Waiting for something that cannot be watched: poll with a deadline, and when it does not
come, say what we waited for and the last thing we saw.

A probe returns something truthy when done. Anything else is "not yet": a falsy value, a
:class:`NotYet` carrying a description of what it saw, or a :class:`TaltasksError` (an
unreachable node, a refused call) whose message becomes the last thing seen. A probe that
knows waiting cannot help raises :class:`GiveUp` with the error to stop with.

The deadline holds for the probes too: every Talos call a probe makes is cut to the time
left (:mod:`taltasks.deadline`), so a node that stops answering cannot carry the wait
past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from taltasks import deadline as deadlines
from taltasks.errors import OperationFailed, TaltasksError
from taltasks.events import NULL, Emitter

T = TypeVar("T")


class NotYet(Exception):
    """Raised by a probe to say what it saw while the condition does not hold yet."""


class GiveUp(Exception):
    """Raised by a probe when waiting longer cannot help; ``poll_until`` raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def poll_until(
    probe: Callable[[], T],
    *,
    what: str,
    timeout: float,
    poll: float = 0.25,
    emitter: Emitter = NULL,
    node: str | None = None,
    hint: str | None = None,
) -> T:
    last = "nothing yet"
    announced = False
    with deadlines.within(timeout) as at:
        assert at is not None
        while True:
            try:
                value = probe()
                if value:
                    return value
            except GiveUp as stop:
                raise stop.error from None
            except (NotYet, TaltasksError) as exc:
                last = str(exc)
            if not announced:
                emitter.emit("gate.waiting", f"waiting for {what}", node=node)
                announced = True
            left = at - time.monotonic()
            if left <= 0:
                raise OperationFailed(
                    f"timed out after {timeout:g}s waiting for {what} (last seen: {last})",
                    where=node,
                    hint=hint,
                )
            time.sleep(min(poll, left))
