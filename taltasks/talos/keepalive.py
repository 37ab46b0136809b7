"""gRPC keepalive for long Talos streams, within apid's ping policy.

A node that loses power or drops off the network closes nothing: a stream from it simply
goes quiet. talosctl's reboot/upgrade tracker notices with HTTP/2 keepalive pings — every
10 s without traffic, 5 s to answer (``action.GRPCDialOptions``). taltasks does the same
for its long streams (events, COSI watches, etcd snapshots, followed logs): they run on a
second channel per endpoint that carries those pings, so a dead connection fails the
stream within ~15 s and the wait around it can reconnect or give up.

apid, though, polices pings with grpc-go's defaults (no ``KeepaliveEnforcementPolicy`` is
set: ``MinTime`` 5 min, ``PermitWithoutStream`` false): a ping that arrives less than 5 min
after the previous one, with nothing sent by the server in between, is a strike, and the
third strike closes the connection with GOAWAY ``too_many_pings`` — taking every stream on
it down. A quiet stream pinged every 10 s would be cut after ~40 s. The server forgets its
strikes whenever it sends anything, so while long streams are open a :class:`Heartbeat`
makes one tiny unary call (``Version`` to the endpoint itself) on the same channel every
20 s: its reply resets the count before a second strike can follow the first. Unary calls
stay on the ordinary channel, which never pings (a long ``Upgrade`` call must not be cut).

grpcio's core library also needs ``grpc.http2.ping_timeout_ms``: with another ping already
in flight it skips the keepalive ping and waits for that one, by default for a minute.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

HEARTBEAT_METHOD = "/machine.MachineService/Version"


@dataclass(frozen=True)
class Keepalive:
    """Ping every ``time`` s without traffic, give up after ``timeout`` s without an
    answer; while streams are open, a heartbeat call every ``heartbeat`` s (which must stay
    under 3 × ``time``: apid tolerates two pings between two things it sends)."""

    time: float = 10.0
    timeout: float = 5.0
    heartbeat: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat < 3 * self.time:
            raise ValueError("the heartbeat must come before apid's third ping strike (< 3 × time)")

    def channel_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.keepalive_time_ms", int(self.time * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.timeout * 1000)),
            ("grpc.keepalive_permit_without_calls", 0),  # apid: PermitWithoutStream false
            ("grpc.http2.max_pings_without_data", 0),  # we send nothing on a server stream
            ("grpc.http2.ping_timeout_ms", int(self.timeout * 1000)),
        ]


TALOSCTL = Keepalive()


class Heartbeat:
    """While at least one long stream is open on ``channel``, call the endpoint every
    ``interval`` s so apid keeps seeing server traffic between our pings."""

    def __init__(self, channel: grpc.Channel, interval: float, *, name: str = "") -> None:
        self.channel = channel
        self.interval = interval
        self.name = name
        self.beats = 0  # heartbeat calls made (for tests and benchmarks)
        self._open = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def stream_opened(self) -> None:
        with self._cond:
            self._open += 1
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name=f"talos-heartbeat-{self.name}", daemon=True
                )
                self._thread.start()

    def stream_closed(self) -> None:
        with self._cond:
            self._open = max(self._open - 1, 0)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        call = self.channel.unary_unary(
            HEARTBEAT_METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._open == 0, timeout=self.interval)
                if self._closed or self._open == 0:
                    self._thread = None
                    return
            # any answer at all (even PermissionDenied for an etcd-backup certificate) is
            # server traffic; failures are the streams' keepalive's business
            with contextlib.suppress(Exception):
                call(b"", timeout=max(self.interval / 2, 1.0))
            self.beats += 1
