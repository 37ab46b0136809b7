"""TLS done by OpenSSL (Python's ``ssl``) under grpcio's HTTP/2.

grpcio's bundled BoringSSL never offers Ed25519 signature algorithms, so it cannot handshake
with a Talos node whose OS CA, apid certificate and admin certificate are all Ed25519
(talos-api.md §11.1). The fix used here keeps grpcio for everything gRPC and moves TLS into
a relay running on one asyncio loop in a background thread:

* :class:`ClientBridge` listens on a private Unix socket (a 0700 directory of its own, and
  only connections from this very process are accepted). grpcio opens a plaintext (h2c)
  channel to it; each accepted connection is forwarded to the real endpoint over a TLS
  connection made by ``ssl`` (client certificate, CA verification, SAN check against the
  dialled address, ALPN ``h2``) with TCP keepalive, so a node that vanishes silently is
  noticed. Whoever reaches the socket speaks with the user's certificate: it must never
  be a TCP port (any local user could connect) — see ``docs/talos-api.md``.
* :class:`TlsFront` is the mirror image used by the simulator: it terminates mutual TLS on a
  node's address and forwards plaintext to a grpcio server, remembering which client
  certificate sits behind each forwarded connection so handlers can enforce roles.

A single loop thread serves every bridge in the process; ``ssl`` objects are only touched
from that thread (OpenSSL connections must not be driven from two threads at once).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CHUNK = 256 * 1024
CONNECT_TIMEOUT = 10.0


class _Loop:
    """The process-wide event loop thread that owns every bridge socket."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="taltasks-tls-bridge", daemon=True).start()
                ready.wait()
                cls._loop = loop
            return cls._loop


def run_in_loop(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the bridge loop and wait for its result from any other thread."""
    return asyncio.run_coroutine_threadsafe(coro, _Loop.get()).result(timeout)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_end: Callable[[BaseException | None, int], None] | None = None,
    gate: asyncio.Event | None = None,
) -> None:
    """Copy ``reader`` to ``writer``. When ``reader`` ends, ``on_end`` hears how (the read
    error, or None for end of stream) and how many bytes had arrived before. While ``gate``
    is clear nothing moves (and nothing is closed)."""
    received = 0
    error: BaseException | None = None
    ended = False  # the reader ended by itself (not cancelled because the other side closed)
    try:
        while True:
            if gate is not None:
                await gate.wait()
            data = await reader.read(CHUNK)
            if not data:
                break
            received += len(data)
            if gate is not None:
                await gate.wait()
            writer.write(data)
            await writer.drain()
        ended = True
    except (ConnectionError, ssl.SSLError, OSError) as exc:
        error, ended = exc, True
    finally:
        if on_end is not None and ended:
            on_end(error, received)
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    on_b_end: Callable[[BaseException | None, int], None] | None = None,
    gate: asyncio.Event | None = None,
) -> None:
    """Copy bytes both ways until either side closes, then close both (``gate``: see _pump)."""
    tasks = [
        asyncio.ensure_future(_pump(a[0], b[1], gate=gate)),
        asyncio.ensure_future(_pump(b[0], a[1], on_b_end, gate)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in (a[1], b[1]):
            with contextlib.suppress(Exception):
                w.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def describe_connect_error(exc: BaseException) -> str:
    """One short line for why a connection to an endpoint failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: server certificate not accepted ({exc.verify_message or exc.reason})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "connection timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


@dataclass(frozen=True)
class TcpKeepalive:
    """TCP keepalive on the relay's connection to the node: a probe after ``idle`` s
    without traffic, every ``interval`` s, and the connection is dead after ``count``
    unanswered probes; ``user_timeout`` (Linux) bounds how long sent data may stay
    unacknowledged. A node that loses power or drops off the network closes nothing, so
    without this a quiet connection to it looks alive for hours (the kernel default is
    2 h idle + 9 × 75 s) and a write to it is retried for ~15 min. The figures follow
    talosctl's gRPC keepalive (a ping after 10 s, 5 s to answer)."""

    idle: int = 10
    interval: int = 5
    count: int = 3

    @property
    def user_timeout_ms(self) -> int:
        return (self.idle + self.interval * self.count) * 1000

    def apply(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)  # macOS
        for option, value in (
            (idle, self.idle),
            (getattr(socket, "TCP_KEEPINTVL", None), self.interval),
            (getattr(socket, "TCP_KEEPCNT", None), self.count),
            (getattr(socket, "TCP_USER_TIMEOUT", None), self.user_timeout_ms),
        ):
            if option is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, option, value)


TCP_KEEPALIVE = TcpKeepalive()
_open_bridges: set[ClientBridge] = set()  # started and not closed yet


@atexit.register
def _close_open_bridges() -> None:
    """A client that was never closed (a task that returned early, an exception nobody
    caught, Ctrl-C) still takes its sockets and their directories with it at exit."""
    for bridge in list(_open_bridges):
        bridge.close()


@dataclass(eq=False)
class ClientBridge:
    """A private Unix socket whose connections are relayed to ``host:port`` over TLS.

    The socket (``path``) sits alone in a fresh directory only the user can enter
    (:mod:`taltasks.private_socket`), and every accepted connection must come from this
    very process (kernel peer credentials): the relay lends the client certificate to
    whoever connects, so nobody else may. :meth:`close` removes socket and directory;
    an exit without it does too (atexit), and a killed process's leftovers are swept by
    the next one. ``refused_peers`` counts connections turned away by the peer check.
    """

    host: str
    port: int
    context: ssl.SSLContext
    server_hostname: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    keepalive: TcpKeepalive = TCP_KEEPALIVE
    path: Path | None = None
    connect_failures: int = 0
    refused_peers: int = 0
    last_error: str | None = None
    _dir: Path | None = field(default=None, repr=False)
    _server: asyncio.base_events.Server | None = field(default=None, repr=False)
    _conns: set[asyncio.StreamWriter] = field(default_factory=set, repr=False)

    @property
    def target(self) -> str:
        """The address grpcio should dial."""
        if self.path is None:
            raise RuntimeError("the relay is not started")
        return f"unix:{self.path}"

    def start(self) -> ClientBridge:
        from taltasks.private_socket import private_dir, remove_private_dir

        self._dir, self.path = private_dir("relay", "talos.sock")
        path = str(self.path)

        async def start() -> None:
            self._server = await asyncio.start_unix_server(self._handle, path)
            os.chmod(path, 0o600)

        try:
            run_in_loop(start())
        except BaseException:
            remove_private_dir(self._dir)
            raise
        _open_bridges.add(self)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from taltasks.private_socket import peer_allowed

        sock = writer.get_extra_info("socket")
        if sock is None or not peer_allowed(sock, same_process=True):
            self.refused_peers += 1
            writer.transport.abort()
            return
        try:
            upstream = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.context,
                    server_hostname=self.server_hostname if self.server_hostname is not None else self.host,
                ),
                self.connect_timeout,
            )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self.connect_failures += 1
            self.last_error = describe_connect_error(exc)
            writer.close()
            return
        tcp = upstream[1].get_extra_info("socket")
        if tcp is not None:
            self.keepalive.apply(tcp)
        self.last_error = None
        self._conns.add(upstream[1])
        try:
            await _splice((reader, writer), upstream, self._refused_after_handshake)
        finally:
            self._conns.discard(upstream[1])

    def upstream_sockets(self) -> list[socket.socket]:
        """The TCP sockets of the open relayed connections (for inspection)."""
        return [s for w in list(self._conns) if (s := w.get_extra_info("socket")) is not None]

    def _refused_after_handshake(self, exc: BaseException | None, received: int) -> None:
        """TLS 1.3 servers judge the client certificate after the handshake, so a refusal
        (none offered, wrong CA) arrives as an alert or a close before the server's first
        byte (an HTTP/2 server always speaks first). Nothing was served, so it counts as a
        failed connection, with the reason."""
        if received:
            return
        reason = (getattr(exc, "reason", None) or str(exc)) if exc is not None else ""
        self.connect_failures += 1
        if "CERTIFICATE_REQUIRED" in reason.upper():
            self.last_error = "TLS: the endpoint requires a client certificate and none was offered"
        else:
            self.last_error = (
                "TLS: the endpoint closed the connection right after the handshake "
                f"({reason or 'it did not accept our client certificate, or none was offered'})"
            )

    def probe(self, timeout: float | None = None) -> str | None:
        """Open (and close) one TLS connection to the endpoint; the error text or None."""

        async def probe() -> str | None:
            try:
                _, w = await asyncio.wait_for(
                    asyncio.open_connection(
                        self.host,
                        self.port,
                        ssl=self.context,
                        server_hostname=self.server_hostname
                        if self.server_hostname is not None
                        else self.host,
                    ),
                    timeout or self.connect_timeout,
                )
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                return describe_connect_error(exc)
            w.close()
            return None

        return run_in_loop(probe())

    def close(self) -> None:
        """Stop listening, cut relayed connections, remove the socket and its directory."""
        from taltasks.private_socket import remove_private_dir

        _open_bridges.discard(self)

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for w in list(self._conns):
                w.close()

        with contextlib.suppress(Exception):
            run_in_loop(close(), timeout=5)
        if self._dir is not None:  # also when the loop is gone: the files must go
            remove_private_dir(self._dir)
            self._dir = None


@dataclass(frozen=True)
class PeerIdentity:
    """Who is behind a connection the front forwarded: the verified certificate subject."""

    organizations: tuple[str, ...]
    common_name: str | None
    listen_address: str


class TlsFront:
    """Terminate TLS on ``(host, port)`` and forward plaintext to ``backend`` (a grpcio server).

    ``identities`` maps the local address (``127.0.0.1:<port>``) of each forwarded backend
    connection to the peer's identity; a grpcio handler finds it from ``context.peer()``
    (``ipv4:127.0.0.1:<port>``). A connection to the backend that did not come through the
    front has no identity and is refused.
    ``context`` is bound when listening starts: a node that changes identity (maintenance
    mode → configured) does so across a reboot, i.e. ``stop()``, new context, ``start()``.

    :meth:`hold` makes the node vanish the way a powered-off or partitioned machine does:
    open connections stay open but carry nothing either way, and new connections are
    accepted by the kernel but never answered (no TLS handshake). :meth:`release` lets
    everything flow again, like a healed network.

    ``verify_peer`` (given the client certificate's DER) may refuse a certificate the CA
    accepted by returning why: the connection is closed before anything is forwarded — the
    simulator's apid uses it for Talos's extended-key-usage rule.
    """

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        backend: tuple[str, int],
        identities: dict[str, PeerIdentity],
        on_connect: Callable[[PeerIdentity], None] | None = None,
        verify_peer: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.context = context
        self.backend = backend
        self.identities = identities
        self.on_connect = on_connect
        self.verify_peer = verify_peer
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._held = False
        self._silent: asyncio.base_events.Server | None = None  # listener while held
        self._silent_conns: set[asyncio.StreamWriter] = set()

    @property
    def listening(self) -> bool:
        return self._server is not None or self._silent is not None

    @property
    def held(self) -> bool:
        return self._held

    def start(self) -> None:
        async def start() -> None:
            if self._held:
                await self._listen_silently()
            elif self._server is None:
                self._server = await asyncio.start_server(
                    self._handle, self.host, self.port, ssl=self.context, reuse_address=True
                )

        run_in_loop(start())

    async def _listen_silently(self) -> None:
        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._silent_conns.add(writer)  # kept open, never read, never answered

        if self._silent is None:
            self._silent = await asyncio.start_server(swallow, self.host, self.port, reuse_address=True)

    async def _close_silent(self) -> None:
        if self._silent is not None:
            self._silent.close()
            self._silent = None
        for w in list(self._silent_conns):
            w.transport.abort()
        self._silent_conns.clear()

    def hold(self) -> None:
        """Vanish: stop moving bytes on open connections and answer no new ones."""

        async def hold() -> None:
            if self._held:
                return
            self._held = True
            self._flowing.clear()
            if self._server is not None:
                self._server.close()
                self._server = None
                await self._listen_silently()

        run_in_loop(hold())

    def release(self) -> None:
        """Come back: held connections flow again and new ones are served."""

        async def release() -> None:
            if not self._held:
                return
            self._held = False
            listening = self._silent is not None
            await self._close_silent()
            self._flowing.set()
            if listening:
                self._server = await asyncio.start_server(
                    self._handle, self.host, self.port, ssl=self.context, reuse_address=True
                )

        run_in_loop(release())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        peer = sslobj.getpeercert() if sslobj is not None else None
        orgs: list[str] = []
        cn: str | None = None
        for rdn in (peer or {}).get("subject", ()):
            for key, value in rdn:
                if key == "organizationName":
                    orgs.append(value)
                elif key == "commonName":
                    cn = value
        identity = PeerIdentity(tuple(orgs), cn, f"{self.host}:{self.port}")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        if der and self.verify_peer is not None and self.verify_peer(der):
            writer.close()
            return
        try:
            b_reader, b_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            writer.close()
            return
        # keyed by the full address: a port alone could be claimed from another loopback
        # address (127.0.0.2:<same port>) by a local process dialling the backend directly
        host, port = b_writer.get_extra_info("sockname")[:2]
        local = f"{host}:{port}"
        self.identities[local] = identity
        self._conns.add(writer)
        if self.on_connect:
            self.on_connect(identity)
        try:
            await _splice((reader, writer), (b_reader, b_writer), gate=self._flowing)
        finally:
            self._conns.discard(writer)
            self.identities.pop(local, None)

    def stop(self, *, drop_connections: bool = True) -> None:
        """Stop listening (connects are refused) and, by default, cut open connections."""

        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            await self._close_silent()
            if drop_connections:
                for w in list(self._conns):
                    w.transport.abort()
                self._conns.clear()
                self._flowing.set()  # held pumps wake up to find their connections gone

        run_in_loop(stop())


def client_context(
    *,
    ca_pem: bytes | None,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    verify: bool = True,
) -> ssl.SSLContext:
    """An OpenSSL client context for a Talos endpoint: TLS ≥ 1.2, ALPN h2, the talosconfig CA,
    the client certificate, and the dialled address checked against the server's SANs.
    No ``ca_pem`` means the system's trusted roots; no certificate means none is offered.
    ``verify=False`` is maintenance mode (``--insecure``): no client certificate, no checks."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_pem is None:
        ctx.load_default_certs()  # no CA in the talosconfig: the system's roots, as talosctl
    else:
        ctx.load_verify_locations(cadata=ca_pem.decode())
    if cert_pem and key_pem:
        _load_chain(ctx, cert_pem, key_pem)
    return ctx


def server_context(*, cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes | None) -> ssl.SSLContext:
    """An OpenSSL server context like apid's: TLS ≥ 1.2, ALPN h2, and, when ``client_ca_pem``
    is given, a client certificate signed by it is required (maintenance mode passes None)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    ctx.options |= ssl.OP_NO_TICKET
    _load_chain(ctx, cert_pem, key_pem)
    if client_ca_pem is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca_pem.decode())
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """``ssl`` only loads certificates and keys from files: write them to a private temp dir."""
    import os
    import tempfile

    from taltasks.machineconfig.pki import openssl_key_pem

    with tempfile.TemporaryDirectory(prefix="taltasks-tls-") as tmp:
        crt_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(openssl_key_pem(key_pem))
        with open(crt_path, "wb") as f:
            f.write(cert_pem)
        ctx.load_cert_chain(crt_path, key_path)
