"""A node's event buffer, as machined keeps one: ids, actors, tails and live subscribers.

Payloads are protobuf messages packed into ``Any`` with the ``talos/runtime/`` type URL
prefix Talos uses. Ids are xid-style: 20 base32hex characters that sort by time. A reboot
(:meth:`EventLog.reset`) clears the buffer and ends every open subscription, which the
gRPC layer turns into UNAVAILABLE — exactly what a client sees when a node goes down.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from google.protobuf import any_pb2
from google.protobuf.message import Message

TYPE_URL_PREFIX = "talos/runtime/"
_B32HEX = "0123456789abcdefghijklmnopqrstuv"
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_machine = os.urandom(5)


def new_xid(now: float | None = None) -> str:
    """12 bytes (4 time, 5 machine, 3 counter) as 20 base32hex characters, like rs/xid."""
    raw = int(now if now is not None else time.time()).to_bytes(4, "big")
    raw += _machine + (next(_counter) & 0xFFFFFF).to_bytes(3, "big")
    value = int.from_bytes(raw, "big") << 4  # 96 bits → 100 bits = 20 × 5
    return "".join(_B32HEX[(value >> (5 * i)) & 31] for i in reversed(range(20)))


def pack(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message, type_url_prefix=TYPE_URL_PREFIX)
    return out


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    id: str
    ts: float
    actor_id: str
    data: any_pb2.Any


class StreamClosed(Exception):
    """The node went down (rebooted) while a subscriber was reading."""


class EventLog:
    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._events: list[StoredEvent] = []
        self._next_seq = 0
        self._cond = threading.Condition()
        self._generation = 0

    def publish(self, payload: Message, actor_id: str = "") -> StoredEvent:
        with self._cond:
            event = StoredEvent(self._next_seq, new_xid(), time.time(), actor_id, pack(payload))
            self._next_seq += 1
            self._events.append(event)
            if len(self._events) > self.capacity:
                del self._events[: len(self._events) - self.capacity]
            self._cond.notify_all()
            return event

    def reset(self) -> None:
        """Reboot: forget everything and end every open subscription."""
        with self._cond:
            self._events.clear()
            self._generation += 1
            self._cond.notify_all()

    def _first_seq(self, tail_events: int, tail_id: str, tail_seconds: int) -> int:
        """Sequence number of the first event a new subscription should see."""
        if tail_id:
            for e in self._events:
                if e.id == tail_id:
                    return e.seq + 1
            return self._next_seq
        if tail_seconds > 0:
            cutoff = time.time() - tail_seconds
            return next((e.seq for e in self._events if e.ts >= cutoff), self._next_seq)
        if tail_events < 0:
            return self._events[0].seq if self._events else self._next_seq
        if tail_events == 0 or not self._events:
            return self._next_seq
        return self._events[max(0, len(self._events) - tail_events)].seq

    def subscribe(
        self,
        *,
        tail_events: int = 0,
        tail_id: str = "",
        tail_seconds: int = 0,
        actor_id: str = "",
        is_active: Callable[[], bool] = lambda: True,
    ) -> Iterator[StoredEvent]:
        """Buffered events per the tail options, then live ones, until the client goes away
        (``is_active`` false) or the node reboots (:class:`StreamClosed`). The start point
        is fixed now, not at the first ``next()``: nothing published after this call is missed."""
        with self._cond:
            generation = self._generation
            first = self._first_seq(tail_events, tail_id, tail_seconds)
        return self._follow(generation, first, actor_id, is_active)

    def _follow(
        self, generation: int, next_seq: int, actor_id: str, is_active: Callable[[], bool]
    ) -> Iterator[StoredEvent]:
        while True:
            with self._cond:
                while True:
                    if self._generation != generation:
                        raise StreamClosed
                    pending = [e for e in self._events if e.seq >= next_seq]
                    if pending or not is_active():
                        break
                    self._cond.wait(0.25)
            if not pending:
                return
            for e in pending:
                next_seq = e.seq + 1
                if actor_id and e.actor_id != actor_id:
                    continue
                yield e
