"""Waiting on one COSI resource through a watch, with a deadline and a clear failure.

A workflow that changes a node and then waits for the effect must start watching *before*
it acts, or the change can slip past it. :class:`ResourceWatch` opens the watch (the node
answers with the resource's current state first: CREATED, or DESTROYED when it does not
exist), lets the caller act, then follows events until a predicate holds. The whole watch
shares one deadline (the gRPC call's); when it passes, the error names what was awaited
and the last state seen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from taltasks.errors import OperationFailed
from taltasks.talos.client import TalosClient
from taltasks.talos.results import TalosCallError, WatchEvent


def describe_event(event: WatchEvent | None) -> str:
    if event is None:
        return "nothing yet"
    res = event.resource
    if res is None:
        return event.type
    return f"{event.type} version {res.version}: {res.spec}"


class ResourceWatch:
    """One resource of one node, followed from now on; use as a context manager."""

    def __init__(
        self,
        client: TalosClient,
        type_: str,
        id_: str,
        *,
        namespace: str,
        node: str,
        timeout: float,
    ) -> None:
        self.node = node
        self.what = f"{type_.split('.', 1)[0]}/{id_}"
        self.timeout = timeout
        self._stream = client.watch(type_, id_, namespace=namespace, node=node, timeout=timeout)
        self.initial: WatchEvent = self._next_or_fail("the watch to start")
        self.last: WatchEvent = self.initial

    def _next_or_fail(self, awaited: str) -> WatchEvent:
        event = self._next(awaited)
        if event is None:
            raise OperationFailed(f"the watch of {self.what} ended before {awaited}", where=self.node)
        return event

    def _next(self, awaited: str) -> WatchEvent | None:
        try:
            return next(self._stream)
        except StopIteration:
            return None
        except TalosCallError as exc:
            if exc.code == "DEADLINE_EXCEEDED":
                raise OperationFailed(
                    f"{awaited} did not happen within {self.timeout:g}s "
                    f"(last seen on {self.what}: {describe_event(getattr(self, 'last', None))})",
                    where=self.node,
                ) from None
            raise

    def until(self, predicate: Callable[[WatchEvent], bool], awaited: str) -> WatchEvent:
        """The first later event for which ``predicate`` holds."""
        while (event := self._next(awaited)) is not None:
            self.last = event
            if predicate(event):
                return event
        raise OperationFailed(
            f"the watch of {self.what} ended before {awaited} (last seen: {describe_event(self.last)})",
            where=self.node,
        )

    def close(self) -> None:
        # closing the generator chain drops the gRPC call, which cancels it
        with contextlib.suppress(Exception):
            self._stream.close()  # type: ignore[attr-defined]

    def __enter__(self) -> ResourceWatch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
