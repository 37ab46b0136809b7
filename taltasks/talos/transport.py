"""Channels to a talosconfig context's endpoints: one per endpoint, with failover.

grpcio speaks HTTP/2 to a :class:`~taltasks.talos.tlsbridge.ClientBridge` per endpoint —
a private Unix socket only this process may connect to — which does TLS with OpenSSL
(Ed25519 works; the server name checked is the dialled address) over TCP with keepalive.
The ``:authority`` sent is the endpoint, as talosctl sends it. When an endpoint cannot be
reached — connection refused, TLS rejected — nothing was sent to it, so any call (idempotent or not) moves on to the next endpoint.
A failure after the connection was made (a stream cut by a reboot) is the caller's to
handle. Limits follow Talos: 32 MiB messages. Long streams (``live=True``) run on a second
channel per endpoint with keepalive pings and a heartbeat that keeps apid's ping policy
satisfied (:mod:`taltasks.talos.keepalive`); unary calls use a channel that never pings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from taltasks.errors import ConnectionFailed
from taltasks.talos.config import Endpoint
from taltasks.talos.keepalive import TALOSCTL, Heartbeat, Keepalive

if TYPE_CHECKING:
    import ssl

    import grpc

    from taltasks.talos import tlsbridge

T = TypeVar("T")
MAX_MESSAGE = 32 * 1024 * 1024


@dataclass
class _Slot:
    endpoint: Endpoint
    bridge: tlsbridge.ClientBridge | None = None
    channel: grpc.Channel | None = None
    live_channel: grpc.Channel | None = None  # long streams: keepalive pings + heartbeat
    heartbeat: Heartbeat | None = None


class Transport:
    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        context: ssl.SSLContext,
        *,
        server_name: str | None = None,
        connect_timeout: float = 10.0,
        label: str = "",
        keepalive: Keepalive = TALOSCTL,
    ) -> None:
        if not endpoints:
            raise ConnectionFailed(
                f"no Talos endpoints configured{' for ' + label if label else ''}",
                hint="set them with `invoke talos.config.endpoints IP...` or pass --endpoints",
            )
        self.slots = [_Slot(e) for e in endpoints]
        self.context = context
        self.server_name = server_name
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.current = 0
        self._lock = threading.Lock()

    @property
    def endpoints(self) -> list[Endpoint]:
        return [s.endpoint for s in self.slots]

    def _ensure(self, slot: _Slot, *, live: bool = False) -> tuple[tlsbridge.ClientBridge, grpc.Channel]:
        import grpc

        from taltasks.talos import tlsbridge

        with self._lock:
            if slot.bridge is None:
                slot.bridge = tlsbridge.ClientBridge(
                    slot.endpoint.host,
                    slot.endpoint.port,
                    self.context,
                    server_hostname=self.server_name,
                    connect_timeout=self.connect_timeout,
                ).start()
            options = [
                ("grpc.default_authority", str(slot.endpoint)),  # not the socket path
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.min_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2000),
                ("grpc.enable_retries", 0),
            ]
            if not live:
                if slot.channel is None:
                    slot.channel = grpc.insecure_channel(
                        slot.bridge.target, options=[*options, ("grpc.keepalive_permit_without_calls", 0)]
                    )
                return slot.bridge, slot.channel
            if slot.live_channel is None:
                slot.live_channel = grpc.insecure_channel(
                    slot.bridge.target, options=[*options, *self.keepalive.channel_options()]
                )
                slot.heartbeat = Heartbeat(
                    slot.live_channel, self.keepalive.heartbeat, name=str(slot.endpoint)
                )
            return slot.bridge, slot.live_channel

    def _order(self) -> list[int]:
        n = len(self.slots)
        return [(self.current + i) % n for i in range(n)]

    @staticmethod
    def _connect_failed(exc: Exception, bridge: tlsbridge.ClientBridge, before: int) -> bool:
        import grpc

        if not isinstance(exc, grpc.RpcError) or exc.code() != grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
            return False
        return bridge.connect_failures > before or bridge.last_error is not None

    def _unreachable(self, errors: dict[str, str]) -> ConnectionFailed:
        detail = "; ".join(f"{ep}: {err}" for ep, err in errors.items())
        if len(errors) == 1:
            ep, err = next(iter(errors.items()))
            return ConnectionFailed(f"cannot reach Talos endpoint {ep}: {err}", hint=_hint(err))
        return ConnectionFailed(f"cannot reach any Talos endpoint ({detail})", hint=_hint(detail))

    def _failover(self, attempt: Callable[[grpc.Channel], T], *, live: bool = False) -> T:
        """Run ``attempt`` on the current endpoint, then the next ones while endpoints turn
        out unreachable (nothing reached them, so retrying elsewhere is always safe)."""
        errors: dict[str, str] = {}
        last: Exception | None = None
        for i in self._order():
            slot = self.slots[i]
            bridge, channel = self._ensure(slot, live=live)
            before = bridge.connect_failures
            try:
                result = attempt(channel)
            except Exception as exc:
                if self._connect_failed(exc, bridge, before):
                    errors[str(slot.endpoint)] = bridge.last_error or "unavailable"
                    last = exc
                    continue
                raise
            self.current = i
            return result
        raise self._unreachable(errors) from last

    def channel(self) -> grpc.Channel:
        """The current endpoint's channel for unary calls (made now if need be), for calls
        the caller issues itself (the client's concurrent fan-out); a failure there is the
        caller's to send through :meth:`call`, which fails over."""
        return self._ensure(self.slots[self.current])[1]

    def call(self, fn: Callable[[grpc.Channel], T]) -> T:
        """Run ``fn`` against the current endpoint, failing over while endpoints are unreachable."""
        return self._failover(fn)

    def stream(self, fn: Callable[[grpc.Channel], Iterator[Any]], *, live: bool = False) -> Iterator[Any]:
        """Like :meth:`call` for server streams: failover happens before the first item.
        ``live``: a long stream, on the channel with keepalive pings and the heartbeat."""

        def open_and_peek(channel: grpc.Channel) -> Iterator[Any]:
            it = fn(channel)
            try:
                first = next(it)
            except StopIteration:
                return iter(())
            return _prepend(first, it)

        if not live:
            return self._failover(open_and_peek)
        opened: list[Heartbeat] = []

        def open_live(channel: grpc.Channel) -> Iterator[Any]:
            heartbeat = next(s.heartbeat for s in self.slots if s.live_channel is channel)
            assert heartbeat is not None
            heartbeat.stream_opened()  # before the first item: a quiet stream needs it too
            try:
                it = open_and_peek(channel)
            except BaseException:
                heartbeat.stream_closed()
                raise
            opened.append(heartbeat)
            return it

        return _LiveStream(self._failover(open_live, live=True), opened[-1])

    def endpoint_host(self) -> str:
        return self.slots[self.current].endpoint.host

    def close(self) -> None:
        for slot in self.slots:
            if slot.heartbeat is not None:
                slot.heartbeat.close()
                slot.heartbeat = None
            for name in ("channel", "live_channel"):
                channel = getattr(slot, name)
                if channel is not None:
                    channel.close()
                    setattr(slot, name, None)
            if slot.bridge is not None:
                slot.bridge.close()
                slot.bridge = None


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


class _LiveStream(Iterator[Any]):
    """``items``, telling the heartbeat once when the stream ends, is closed or dropped
    (also when it is dropped before its first item was taken)."""

    def __init__(self, items: Iterator[Any], heartbeat: Heartbeat) -> None:
        self._items = items
        self._heartbeat: Heartbeat | None = heartbeat

    def __next__(self) -> Any:
        try:
            return next(self._items)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stream_closed()
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __del__(self) -> None:
        self.close()


def _hint(error: str) -> str | None:
    if "client certificate" in error:
        return "the talosconfig context has no client certificate (crt/key); use one that has (e.g. from `invoke configure`)"
    if "certificate" in error or "TLS" in error:
        return "the endpoint's certificate is not signed by the talosconfig CA (wrong context?), or the node is in maintenance mode (use --insecure)"
    if "refused" in error or "timed out" in error or "unreachable" in error:
        return "check the endpoint addresses (`invoke talos.config.contexts`) and that the nodes are up"
    return None
