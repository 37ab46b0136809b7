"""The deadline of the wait we are in, seen by every call made inside it.

A wait (a gate, a poll, a reboot followed to the end) has one deadline. The calls it makes
on the way — a Version here, a COSI Get there, each with its own default timeout — must
not carry it past that deadline: a node that vanished without closing its connections
answers nothing, and a 30 s read started one second before the deadline would otherwise
overrun it by 29 s. ``with within(seconds):`` sets the deadline for the current thread
(nested waits keep the earlier one); :func:`clip` is what a client applies to each call's
own timeout.

It lives in a context variable, which a new thread does not inherit: code that fans calls
out to a thread pool submits each of them wrapped by :func:`carry` (a copy of the caller's
context per call) so they keep the deadline of the wait that made them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

# the smallest timeout handed to a call once the deadline has (nearly) passed: the call
# then fails at once with DEADLINE_EXCEEDED instead of not being made at all
MIN_CALL = 0.05

_deadline: ContextVar[float | None] = ContextVar("taltasks_deadline", default=None)


@contextlib.contextmanager
def within(seconds: float | None) -> Iterator[float | None]:
    """Everything inside ends by ``seconds`` from now (or by an outer, earlier deadline).
    ``None`` adds no bound. Yields the monotonic deadline in force."""
    outer = _deadline.get()
    mine = None if seconds is None else time.monotonic() + max(seconds, 0.0)
    at = mine if outer is None else (outer if mine is None else min(outer, mine))
    token = _deadline.set(at)
    try:
        yield at
    finally:
        _deadline.reset(token)


@contextlib.contextmanager
def until(at: float | None) -> Iterator[float | None]:
    """Like :func:`within`, with an absolute ``time.monotonic()`` deadline."""
    with within(None if at is None else at - time.monotonic()) as bound:
        yield bound


def current() -> float | None:
    """The monotonic deadline in force, or None."""
    return _deadline.get()


def remaining(default: float | None = None) -> float | None:
    """Seconds left until the deadline (never negative), or ``default`` without one."""
    at = _deadline.get()
    if at is None:
        return default
    left = max(at - time.monotonic(), 0.0)
    return left if default is None else min(left, default)


def clip(timeout: float | None) -> float | None:
    """A call's own ``timeout`` shortened to the time left (at least :data:`MIN_CALL`)."""
    left = remaining(timeout)
    if left is None:
        return None
    return max(left, MIN_CALL)


def expired() -> bool:
    at = _deadline.get()
    return at is not None and time.monotonic() >= at


def carry(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the current deadline, for running in another thread (one wrapper per
    job: the copied context may be entered by one thread at a time)."""
    import contextvars

    ctx = contextvars.copy_context()
    return lambda *args, **kwargs: ctx.run(fn, *args, **kwargs)
