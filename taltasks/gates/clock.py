"""Time as the gate engine sees it, injectable so pure tests run in no time.

The engine needs three things from a clock: wall time (to compare with timestamps the
operators write, such as a CephCluster's ``lastChecked``), a monotonic reading (for
deadlines), and a sleep that a watch can cut short. :class:`SystemClock` is the real
thing; :class:`FakeClock` advances only when slept on and runs scheduled changes to the
world at their due time, waking the sleeper when a change sets the wake event — so a
test can say "at t=42 s Ceph turns HEALTH_OK" and observe exactly when the engine reacts.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Sleep up to ``seconds``; return True (and clear ``wake``) if ``wake`` was set first."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is None:
            if seconds > 0:
                time.sleep(seconds)
            return False
        woke = wake.wait(max(seconds, 0.0))
        wake.clear()
        return woke


class FakeClock:
    """A clock that only moves when slept on; ``at``/``after`` schedule changes."""

    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self.start = start
        self.elapsed = 0.0
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    def iso(self, offset: float = 0.0) -> str:
        """RFC 3339 text of the current wall time plus ``offset``, as operators write it."""
        return datetime.fromtimestamp(self.time() + offset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` when ``elapsed`` reaches ``when``."""
        heapq.heappush(self._due, (when, next(self._seq), action))

    def after(self, delay: float, action: Callable[[], None]) -> None:
        self.at(self.elapsed + delay, action)

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is not None and wake.is_set():
            wake.clear()
            return True
        end = self.elapsed + max(seconds, 0.0)
        while self._due and self._due[0][0] <= end:
            when, _, action = heapq.heappop(self._due)
            self.elapsed = max(self.elapsed, when)
            action()
            # everything due at this same instant happens before the sleeper wakes
            if wake is not None and wake.is_set() and not (self._due and self._due[0][0] <= self.elapsed):
                wake.clear()
                return True
        self.elapsed = end
        return False


SYSTEM_CLOCK = SystemClock()
