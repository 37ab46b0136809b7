"""Waiting on a condition with a deadline (never a bare sleep) — shared by every test folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition", poll: float = 0.02
) -> T:
    """Return the first truthy value of ``predicate()``; AssertionError naming ``what`` when
    the deadline passes first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)
