"""The thread simulator controllers run on.

Every controller of a simulated cluster (kubelet, scheduler, DaemonSet, Deployment and
disruption controllers, the Rook, CNPG and Flux operators) runs on one :class:`Reactor`:
a single thread that handles store events and timers in order. Controllers therefore never
race each other and need no locks of their own; the store's lock covers the rest.

Controllers follow the level-triggered pattern of real ones: a change to a watched resource
marks the controller dirty and one ``reconcile()`` of *everything* it owns runs soon after
(coalescing bursts of events). Writes that change nothing are dropped by the store without
an event, so reconcile loops converge.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from taltasks.sim.kube.store import ResourceRef, Store, Subscription, WatchEvent

log = logging.getLogger(__name__)


class Timer:
    """A scheduled call; ``cancel()`` stops it (and its repetitions)."""

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Reactor:
    """One thread running posted calls and timers in due order."""

    def __init__(self, store: Store, *, name: str = "sim-controllers") -> None:
        self.store = store
        self.name = name
        self._heap: list[tuple[float, int, Timer, Callable[[], Any], float | None]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False
        self._subscriptions: list[Subscription] = []
        self.errors: list[BaseException] = []
        self.busy = threading.Event()

    def start(self) -> Reactor:
        if self._thread is None:
            self._running = True
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        for sub in self._subscriptions:
            sub.close()
        self._subscriptions.clear()
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._thread = None

    def post(self, fn: Callable[[], Any], delay: float = 0.0) -> Timer:
        return self._schedule(fn, delay, None)

    def every(self, interval: float, fn: Callable[[], Any], *, first: float | None = None) -> Timer:
        return self._schedule(fn, interval if first is None else first, interval)

    def _schedule(self, fn: Callable[[], Any], delay: float, repeat: float | None) -> Timer:
        timer = Timer()
        with self._cond:
            heapq.heappush(
                self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), timer, fn, repeat)
            )
            self._cond.notify_all()
        return timer

    def on_change(
        self, resources: Iterable[ResourceRef], fn: Callable[[WatchEvent], Any], name: str = ""
    ) -> None:
        """Call ``fn(event)`` on this thread for every change of ``resources``."""
        sub = self.store.subscribe(
            lambda ev: self.post(lambda: fn(ev)), resources=resources, name=name or self.name
        )
        self._subscriptions.append(sub)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if not self._running:
                    return
                due, _, timer, fn, repeat = heapq.heappop(self._heap)
                if repeat is not None and not timer.cancelled:
                    heapq.heappush(
                        self._heap, (max(due + repeat, time.monotonic()), next(self._seq), timer, fn, repeat)
                    )
            if timer.cancelled:
                continue
            self.busy.set()
            try:
                fn()
            except Exception as exc:  # keep the world running; tests assert errors == []
                log.exception("simulator controller failed")
                self.errors.append(exc)
            finally:
                self.busy.clear()


class Controller:
    """Base for level-triggered controllers: ``watches`` lists the resources whose changes
    trigger a full ``reconcile()``; ``resync`` (seconds) adds a periodic one."""

    watches: tuple[str, ...] = ()
    resync: float | None = None

    def __init__(self, reactor: Reactor) -> None:
        self.reactor = reactor
        self.store = reactor.store
        self._pending = False

    def start(self) -> None:
        if self.watches:
            self.reactor.on_change(self.watches, lambda ev: self.trigger(), name=type(self).__name__)
        if self.resync:
            self.reactor.every(self.resync, self.trigger)
        self.trigger()

    def trigger(self, delay: float = 0.0) -> None:
        if self._pending and delay == 0.0:
            return
        if delay == 0.0:
            self._pending = True
        self.reactor.post(self._run, delay)

    def _run(self) -> None:
        self._pending = False
        self.reconcile()

    def reconcile(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
