"""Waiting for something that cannot be watched: poll with a deadline, and when it does not
come, say what we waited for and the last thing we saw.

A probe returns something truthy when done. Anything else is "not yet": a falsy value, a
:class:`NotYet` carrying a description of what it saw, or a :class:`TaltasksError` (an
unreachable node, a refused call) whose message becomes the last thing seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from taltasks.errors import OperationFailed, TaltasksError
from taltasks.events import NULL, Emitter

T = TypeVar("T")


class NotYet(Exception):
    """Raised by a probe to say what it saw while the condition does not hold yet."""


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
    deadline = time.monotonic() + timeout
    last = "nothing yet"
    announced = False
    while True:
        try:
            value = probe()
            if value:
                return value
        except (NotYet, TaltasksError) as exc:
            last = str(exc)
        if not announced:
            emitter.emit("gate.waiting", f"waiting for {what}", node=node)
            announced = True
        if time.monotonic() >= deadline:
            raise OperationFailed(
                f"timed out after {timeout:g}s waiting for {what} (last seen: {last})", where=node, hint=hint
            )
        time.sleep(poll)
