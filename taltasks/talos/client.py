"""``TalosClient``: every Talos API call taltasks makes, with typed results.

Targeting (talos-api.md §8): ``nodes=[...]`` fans out on the client, as talosctl 1.14
does: one call per node with ``node`` metadata, in parallel, and one :class:`NodeResult`
per node, in the order asked, each with that node's value or error. ``node="x"`` is one
call (one-to-one) that returns the value or raises :class:`TalosCallError`. Neither means
"the endpoint itself". apid's one-to-many ``nodes`` proxying (deprecated in 1.14, refused
for LifecycleService / ImageService) is used only when the client is asked for it
(``fanout="proxy"``) and only for nodes known to run Talos older than 1.13. Every call
has a deadline, and none outlives the deadline of the wait it is made in
(:mod:`taltasks.deadline`); idempotent reads retry on UNAVAILABLE with tenacity; streams
(events, logs, dmesg, kubeconfig, snapshot) are iterators that raise
:class:`StreamInterrupted` when a node goes away mid-stream, so callers can reconnect.
Long streams (events, COSI watches, snapshots, followed logs) run with keepalive
(:mod:`taltasks.talos.keepalive`) and end by their ``timeout`` or the wait's deadline.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from taltasks import deadline as deadlines
from taltasks.errors import ConnectionFailed, OperationFailed
from taltasks.talos.results import (
    ActionAck,
    ApplyResult,
    EtcdMember,
    EtcdStatus,
    ImageInfo,
    InstallerRun,
    MachineEvent,
    MemoryInfo,
    NodeError,
    NodeResult,
    PullProgress,
    Resource,
    ServiceEvent,
    ServiceInfo,
    SnapshotResult,
    TalosCallError,
    VersionInfo,
    WatchEvent,
)

if TYPE_CHECKING:
    import grpc

    from taltasks.talos.config import Context
    from taltasks.talos.generations import Generation
    from taltasks.talos.transport import Transport

T = TypeVar("T")

READ_TIMEOUT = 30.0
UPGRADE_TIMEOUT = 15 * 60.0  # Upgrade replies after pulling the installer image
SNAPSHOT_TIMEOUT = 10 * 60.0  # a whole etcd snapshot stream


class StreamInterrupted(OperationFailed):
    """A server stream ended with UNAVAILABLE (node rebooting, connection cut)."""


APPLY_MODES = ("REBOOT", "AUTO", "NO_REBOOT", "STAGED", "TRY")
FANOUTS = ("client", "proxy")
FANOUT_THREADS = 32
# talosctl's --namespace values: which containerd (driver) and namespace images live in
CONTAINERD = {"system": (1, 1), "cri": (1, 2), "inmem": (0, 1)}  # name → (driver, namespace)
MACHINE_CONFIG_TYPE = "MachineConfigs.config.talos.dev"
BOOT_ID_TYPE = "BootIDs.runtime.talos.dev"  # Talos 1.14+


def _code_name(code: int) -> str:
    import grpc

    for c in grpc.StatusCode:
        if c.value[0] == code:
            return c.name
    return str(code)


class TalosClient:
    def __init__(
        self,
        transport: Transport,
        *,
        default_nodes: Sequence[str] = (),
        insecure: bool = False,
        fanout: str = "client",
    ) -> None:
        if fanout not in FANOUTS:
            raise ValueError(f"fanout must be one of {FANOUTS}, not {fanout!r}")
        self.transport = transport
        self.default_nodes = list(default_nodes)
        self.insecure = insecure
        self.fanout = fanout
        self.versions: dict[str, str] = {}  # node → the Talos tag it last reported
        self._pool: Any = None  # the fan-out's threads, made on first use
        self._pool_lock = threading.Lock()
        self._stubs: dict[tuple[int, str], Any] = {}
        self._rd_cache: dict[str, list[dict[str, Any]]] = {}
        self.call_metadata: list[tuple[str, str]] = []  # sent with every call (basic auth)
        self.context_name: str | None = None
        # the os:* roles of the client certificate; None when unknown (no certificate,
        # maintenance mode): then only the server can say what is allowed
        self.roles: frozenset[str] | None = None

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def from_context(
        cls,
        context: Context,
        *,
        endpoints: Sequence[str] | None = None,
        nodes: Sequence[str] | None = None,
        insecure: bool = False,
        connect_timeout: float = 10.0,
        fanout: str = "client",
    ) -> TalosClient:
        """A client for a talosconfig context; ``endpoints``/``nodes`` override the context's.
        ``insecure`` is maintenance mode: no client certificate, server not verified.
        ``fanout="proxy"`` asks for apid's `nodes` proxying where a node allows it."""
        from taltasks.errors import InputError
        from taltasks.machineconfig.pki import PKIError
        from taltasks.talos import tlsbridge
        from taltasks.talos.config import Endpoint
        from taltasks.talos.transport import Transport

        eps = [Endpoint.parse(e) for e in (endpoints or context.endpoints)]
        metadata: list[tuple[str, str]] = []
        if insecure:
            ssl_ctx = tlsbridge.client_context(ca_pem=None, verify=False)
        else:
            metadata = _context_auth(context)
            try:
                # like talosctl: no `ca` means the system's roots, no crt+key means no client
                # certificate (the endpoint may authenticate otherwise, e.g. basic auth)
                ssl_ctx = tlsbridge.client_context(
                    ca_pem=context.ca, cert_pem=context.crt, key_pem=context.key
                )
            except (OSError, ValueError, PKIError) as exc:
                raise InputError(
                    f"context {context.name!r} has an unusable CA, certificate or key: {exc}"
                ) from None
        transport = Transport(
            eps, ssl_ctx, connect_timeout=connect_timeout, label=f"context {context.name!r}"
        )
        client = cls(
            transport,
            default_nodes=list(nodes if nodes is not None else context.nodes),
            insecure=insecure,
            fanout=fanout,
        )
        client.call_metadata = metadata
        client.context_name = context.name
        if not insecure:
            from taltasks.talos.roles import certificate_roles

            client.roles = certificate_roles(context.crt)
        return client

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.transport.close()

    def __enter__(self) -> TalosClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing -------------------------------------------------------------------------

    def _stub(self, channel: grpc.Channel, kind: str) -> Any:
        """The stub of service ``kind`` (machine, cosi, lifecycle, image) on ``channel``."""
        key = (id(channel), kind)
        stub = self._stubs.get(key)
        if stub is None:
            stub = self._stubs[key] = _STUBS[kind]()(channel)
        return stub

    @staticmethod
    def _many(nodes: Sequence[str]) -> list[tuple[str, str]]:
        return [("nodes", n) for n in nodes]

    def _targets(self, nodes: Sequence[str] | None) -> list[str]:
        return list(nodes) if nodes is not None else list(self.default_nodes)

    def _unary(
        self,
        method: str,
        request: Any,
        *,
        metadata: list[tuple[str, str]],
        timeout: float,
        idempotent: bool,
        kind: str = "machine",
    ) -> Any:
        import grpc
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

        metadata = [*metadata, *self.call_metadata]
        self._check_deadline(method, metadata)

        def once(channel: grpc.Channel) -> Any:
            # never past the deadline of the wait this call is part of
            bounded = deadlines.clip(timeout)
            return getattr(self._stub(channel, kind), method)(request, metadata=metadata, timeout=bounded)

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

        if not idempotent:
            return self.transport.call(once)
        for attempt in Retrying(
            stop=stop_after_attempt(3) | (lambda _state: deadlines.expired()),
            wait=wait_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception(transient),
            reraise=True,
        ):
            with attempt:
                return self.transport.call(once)
        raise AssertionError("unreachable")

    def _check_deadline(self, method: str, metadata: list[tuple[str, str]]) -> None:
        """A call made once the wait's deadline has passed fails at once, as it would."""
        if deadlines.expired():
            target = next((v for k, v in metadata if k in ("node", "nodes")), None)
            raise TalosCallError(
                method,
                NodeError(
                    target or self.transport.endpoint_host(),
                    "DEADLINE_EXCEEDED",
                    "the deadline of the wait passed before the call was made",
                ),
            )

    def _call_error(self, method: str, exc: Exception, target: str | None) -> Exception:
        import grpc

        if isinstance(exc, grpc.RpcError):
            code = exc.code()  # type: ignore[attr-defined]
            return TalosCallError(
                method,
                NodeError(target or self.transport.endpoint_host(), code.name, exc.details() or code.name),
            )  # type: ignore[attr-defined]
        return exc

    def _fan(
        self,
        method: str,
        request: Any,
        nodes: Sequence[str] | None,
        convert: Callable[[Any], T],
        *,
        timeout: float = READ_TIMEOUT,
        idempotent: bool = True,
    ) -> list[NodeResult[T]]:
        """One call per target node with ``node`` metadata, in parallel, aggregated into one
        result per node in the order asked (a node's failure is its result, never the
        call's); with no targets, one call to the endpoint itself. ``convert`` gets the
        reply's element. Nothing reached an endpoint → :class:`ConnectionFailed`."""
        targets = list(dict.fromkeys(self._targets(nodes)))
        if not targets:  # the endpoint itself: its failure is the call's, as before
            value = self._one(
                method,
                request,
                None,
                lambda r: convert(r.messages[0]),
                timeout=timeout,
                idempotent=idempotent,
            )
            return [NodeResult(self.transport.endpoint_host(), value=value)]
        proxied = [t for t in targets if self._proxy_for(t)]
        direct = [t for t in targets if t not in proxied]
        results: dict[str, NodeResult[T]] = {}
        if proxied:
            for r in self._proxied(method, request, proxied, convert, timeout, idempotent):
                results.setdefault(r.node, r)
        if idempotent and len(direct) > 1:
            results.update(self._concurrently(method, request, direct, convert, timeout))
        rest = [t for t in direct if t not in results]
        for target, r in zip(
            rest,
            self.parallel(
                [
                    lambda t=t: self._node_result(method, request, t, convert, timeout, idempotent)
                    for t in rest
                ]
            ),
            strict=True,
        ):
            results[target] = r
        return [results.get(t) or NodeResult(t, error=NodeError(t, "UNKNOWN", "no reply")) for t in targets]

    def _concurrently(
        self, method: str, request: Any, targets: list[str], convert: Callable[[Any], T], timeout: float
    ) -> dict[str, NodeResult[T]]:
        """An idempotent read for several nodes, issued all at once on the current channel
        (grpc futures: no thread per call). A node whose call could not get through
        (UNAVAILABLE: the endpoint down, a connection cut) is left out, for the careful
        path (retries, endpoint failover) to ask again."""
        import grpc

        self._check_deadline(method, [])
        try:
            rpc = getattr(self._stub(self.transport.channel(), "machine"), method)
        except Exception:  # no channel yet (the relay could not start): the careful path says why
            return {}
        bounded = deadlines.clip(timeout)
        calls = {
            t: rpc.future(request, metadata=[("node", t), *self.call_metadata], timeout=bounded)
            for t in targets
        }
        out: dict[str, NodeResult[T]] = {}
        for target, call in calls.items():
            try:
                reply = call.result()
            except grpc.RpcError as exc:
                code = exc.code()  # type: ignore[attr-defined]
                if code != grpc.StatusCode.UNAVAILABLE:
                    out[target] = NodeResult(
                        target, error=NodeError(target, code.name, exc.details() or code.name)
                    )  # type: ignore[attr-defined]
                continue
            out[target] = NodeResult(target, value=convert(reply.messages[0]))
        return out

    def parallel(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Run ``calls`` at the same time (each in the caller's deadline) and return their
        results in order; the first exception any of them raised is raised after all end.
        Inside one of the fan-out's own threads they run one after the other (no pool
        starvation)."""
        if len(calls) <= 1 or getattr(_fanout_thread, "inside", False):
            return [c() for c in calls]
        import contextvars

        pool = self._fanout_pool()
        jobs = [pool.submit(contextvars.copy_context().run, _in_fanout, c) for c in calls]
        out: list[T] = []
        error: BaseException | None = None
        for job in jobs:
            try:
                out.append(job.result())
            except BaseException as exc:  # re-raised once every call has ended
                error = error or exc
        if error is not None:
            raise error
        return out

    def _fanout_pool(self) -> Any:
        with self._pool_lock:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(FANOUT_THREADS, thread_name_prefix="talos-fanout")
            return self._pool

    def _node_result(
        self,
        method: str,
        request: Any,
        node: str | None,
        convert: Callable[[Any], T],
        timeout: float,
        idempotent: bool,
    ) -> NodeResult[T]:
        where = node or self.transport.endpoint_host()
        try:
            value = self._one(
                method,
                request,
                node,
                lambda r: convert(r.messages[0]),
                timeout=timeout,
                idempotent=idempotent,
            )
        except TalosCallError as exc:
            return NodeResult(where, error=exc.error)
        return NodeResult(where, value=value)

    def _proxy_for(self, node: str) -> bool:
        """Whether ``node`` goes in a `nodes` one-to-many call: only when asked for
        (``fanout="proxy"``) and the node is known to run Talos older than 1.13."""
        if self.fanout != "proxy" or node not in self.versions:
            return False
        from taltasks.talos.generations import generation

        return generation(self.versions[node]).nodes_proxying

    def _proxied(
        self,
        method: str,
        request: Any,
        targets: list[str],
        convert: Callable[[Any], T],
        timeout: float,
        idempotent: bool,
    ) -> list[NodeResult[T]]:
        """One `nodes` call through the endpoint's apid (talos-api.md §8.3): one element
        per node, errors as elements with only metadata."""
        import grpc

        try:
            reply = self._unary(
                method, request, metadata=self._many(targets), timeout=timeout, idempotent=idempotent
            )
        except grpc.RpcError as exc:
            raise self._call_error(method, exc, None) from None
        out: list[NodeResult[T]] = []
        for item in reply.messages:
            node = (
                item.metadata.hostname
                if item.HasField("metadata") and item.metadata.hostname
                else (targets[0] if len(targets) == 1 else self.transport.endpoint_host())
            )
            if item.HasField("metadata") and (item.metadata.error or item.metadata.HasField("status")):
                status = item.metadata.status
                code = _code_name(status.code) if item.metadata.HasField("status") else "UNKNOWN"
                message = (
                    status.message
                    if item.metadata.HasField("status") and status.message
                    else item.metadata.error
                )
                out.append(NodeResult(node, error=NodeError(node, code, message)))
            else:
                out.append(NodeResult(node, value=convert(item)))
        return out

    def generation(self, node: str) -> Generation:
        """Which API path ``node`` calls for (:mod:`taltasks.talos.generations`), from the
        version it last reported (asked now when not known yet)."""
        from taltasks.talos.generations import generation

        if node not in self.versions:
            self.version([node])[0].unwrap("Version")
        return generation(self.versions[node])

    def _one(
        self,
        method: str,
        request: Any,
        node: str | None,
        convert: Callable[[Any], T],
        *,
        timeout: float = READ_TIMEOUT,
        idempotent: bool = True,
        kind: str = "machine",
    ) -> T:
        """A one-to-one call; raises TalosCallError on failure."""
        import grpc

        metadata = [("node", node)] if node else []
        try:
            reply = self._unary(
                method, request, metadata=metadata, timeout=timeout, idempotent=idempotent, kind=kind
            )
        except grpc.RpcError as exc:
            raise self._call_error(method, exc, node) from None
        return convert(reply)

    def _stream(
        self,
        method: str,
        request: Any,
        metadata: list[tuple[str, str]],
        timeout: float | None,
        target: str | None,
        kind: str = "machine",
        *,
        live: bool = False,
    ) -> Iterator[Any]:
        """Open a server stream now (the first item has arrived when this returns) and
        return an iterator over the rest; gRPC errors become our errors. ``timeout`` None:
        no bound but the wait's deadline; ``live``: a long stream (keepalive channel)."""
        import grpc

        metadata = [*metadata, *self.call_metadata]
        self._check_deadline(method, metadata)
        timeout = deadlines.clip(timeout)  # the whole stream ends by the wait's deadline

        def open_stream(channel: grpc.Channel) -> Iterator[Any]:
            return getattr(self._stub(channel, kind), method)(request, metadata=metadata, timeout=timeout)

        try:
            it = self.transport.stream(open_stream, live=live)
        except grpc.RpcError as exc:
            raise self._stream_error(method, exc, target) from None
        return self._translate(method, it, target)

    def _translate(self, method: str, it: Iterator[Any], target: str | None) -> Iterator[Any]:
        import grpc

        try:
            yield from it
        except grpc.RpcError as exc:
            raise self._stream_error(method, exc, target) from None

    def _stream_error(self, method: str, exc: Any, target: str | None) -> Exception:
        import grpc

        code = exc.code()
        error = NodeError(target or self.transport.endpoint_host(), code.name, exc.details() or code.name)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return StreamInterrupted(f"{method} stream interrupted: {error.message}", where=error.node)
        return TalosCallError(method, error)

    # ---- reads ---------------------------------------------------------------------------------

    def version(
        self, nodes: Sequence[str] | None = None, *, timeout: float = READ_TIMEOUT
    ) -> list[NodeResult[VersionInfo]]:
        from google.protobuf import empty_pb2

        def conv(v: Any) -> VersionInfo:
            return VersionInfo(
                v.version.tag,
                v.version.sha,
                v.version.os,
                v.version.arch,
                v.platform.name,
                v.platform.mode,
                v.features.rbac,
            )

        results = self._fan("Version", empty_pb2.Empty(), nodes, conv, timeout=timeout)
        for r in results:
            if r.value is not None:
                self.versions[r.node] = r.value.tag
        return results

    def hostname(self, nodes: Sequence[str] | None = None) -> list[NodeResult[str]]:
        from google.protobuf import empty_pb2

        return self._fan("Hostname", empty_pb2.Empty(), nodes, lambda h: h.hostname)

    def memory(self, nodes: Sequence[str] | None = None) -> list[NodeResult[MemoryInfo]]:
        from google.protobuf import empty_pb2

        return self._fan(
            "Memory",
            empty_pb2.Empty(),
            nodes,
            lambda x: MemoryInfo(x.meminfo.memtotal, x.meminfo.memfree, x.meminfo.memavailable),
        )

    def services(self, nodes: Sequence[str] | None = None) -> list[NodeResult[list[ServiceInfo]]]:
        from google.protobuf import empty_pb2

        def conv(x: Any) -> list[ServiceInfo]:
            return [
                ServiceInfo(
                    s.id,
                    s.state,
                    s.health.healthy,
                    s.health.unknown,
                    s.health.last_message,
                    tuple(ServiceEvent(e.msg, e.state, e.ts.ToNanoseconds() / 1e9) for e in s.events.events),
                )
                for s in x.services
            ]

        return self._fan("ServiceList", empty_pb2.Empty(), nodes, conv)

    def etcd_members(
        self, nodes: Sequence[str] | None = None, *, query_local: bool = True
    ) -> list[NodeResult[list[EtcdMember]]]:
        from taltasks.talos.api import machine_pb2 as m

        def conv(x: Any) -> list[EtcdMember]:
            return [
                EtcdMember(mm.id, mm.hostname, tuple(mm.peer_urls), tuple(mm.client_urls), mm.is_learner)
                for mm in x.members
            ]

        return self._fan("EtcdMemberList", m.EtcdMemberListRequest(query_local=query_local), nodes, conv)

    def etcd_status(self, nodes: Sequence[str] | None = None) -> list[NodeResult[EtcdStatus]]:
        from google.protobuf import empty_pb2

        def conv(x: Any) -> EtcdStatus:
            s = x.member_status
            return EtcdStatus(
                s.member_id,
                s.leader,
                s.raft_index,
                s.raft_term,
                s.db_size,
                s.db_size_in_use,
                s.protocol_version,
                s.storage_version,
                tuple(s.errors),
                s.is_learner,
            )

        return self._fan("EtcdStatus", empty_pb2.Empty(), nodes, conv)

    def read(self, path: str, *, node: str | None = None, timeout: float = READ_TIMEOUT) -> bytes:
        from taltasks.talos.api import machine_pb2 as m

        meta = [("node", node)] if node else []
        return b"".join(d.bytes for d in self._stream("Read", m.ReadRequest(path=path), meta, timeout, node))

    def boot_id(self, node: str | None = None) -> str:
        """The node's kernel boot id: the ``BootIDs.runtime.talos.dev`` resource where the
        node has it (Talos 1.14+, readable by every role), else the admin-only Read of
        ``/proc/sys/kernel/random/boot_id`` (PERMISSION_DENIED for other roles). A node
        known to run an older Talos (:attr:`versions`) is not asked for the resource: the
        gates read boot ids every tick."""
        from taltasks.talos.generations import generation

        known = self.versions.get(node) if node else None
        if known is None or generation(known).boot_id_resource:
            value = self._boot_id_resource(node)
            if value:
                return value
        return self.read("/proc/sys/kernel/random/boot_id", node=node).decode().strip()

    def _boot_id_resource(self, node: str | None) -> str:
        """The boot id from the BootID resource; "" where the node has no such resource."""
        try:
            res = self.get(BOOT_ID_TYPE, "boot-id", namespace="runtime", node=node)
        except TalosCallError as exc:
            # older Talos: "resource type ... is not supported" (PermissionDenied) or NotFound
            unsupported = exc.code == "PERMISSION_DENIED" and "not supported" in exc.error.message
            if not (unsupported or exc.code in ("NOT_FOUND", "UNIMPLEMENTED")):
                raise
            return ""
        spec = res.spec if isinstance(res.spec, dict) else {}
        value = str(spec.get("bootID") or "").strip()
        if not value and res.proto_spec:
            from taltasks.talos.api import definitions_runtime_pb2 as rt

            value = rt.BootIDSpec.FromString(res.proto_spec).boot_id.strip()
        return value

    # ---- changes ---------------------------------------------------------------------------------

    def apply_configuration(
        self,
        data: bytes,
        *,
        nodes: Sequence[str] | None = None,
        mode: str = "AUTO",
        dry_run: bool = False,
        try_timeout: float | None = None,
        timeout: float = 120.0,
    ) -> list[NodeResult[ApplyResult]]:
        from google.protobuf.duration_pb2 import Duration

        from taltasks.talos.api import machine_pb2 as m

        mode = mode.upper().replace("-", "_")
        if mode not in APPLY_MODES:
            from taltasks.errors import InputError

            raise InputError(f"unknown apply mode {mode!r}; use one of auto, reboot, no-reboot, staged, try")
        req = m.ApplyConfigurationRequest(
            data=data, mode=m.ApplyConfigurationRequest.Mode.Value(mode), dry_run=dry_run
        )
        if try_timeout is not None or mode == "TRY":
            req.try_mode_timeout.CopyFrom(Duration(seconds=int(try_timeout or 60)))

        def conv(x: Any) -> ApplyResult:
            return ApplyResult(
                m.ApplyConfigurationRequest.Mode.Name(x.mode), x.mode_details, tuple(x.warnings)
            )

        return self._fan("ApplyConfiguration", req, nodes, conv, timeout=timeout, idempotent=False)

    def upgrade(
        self,
        image: str,
        *,
        node: str | None = None,
        preserve: bool = False,
        stage: bool = False,
        force: bool = False,
        powercycle: bool = False,
        timeout: float = UPGRADE_TIMEOUT,
    ) -> ActionAck:
        from taltasks.talos.api import machine_pb2 as m

        req = m.UpgradeRequest(
            image=image, preserve=preserve, stage=stage, force=force, reboot_mode=1 if powercycle else 0
        )
        return self._one(
            "Upgrade",
            req,
            node,
            lambda r: ActionAck(r.messages[0].actor_id, r.messages[0].ack),
            timeout=timeout,
            idempotent=False,
        )

    def reboot(self, *, node: str | None = None, powercycle: bool = False) -> ActionAck:
        from taltasks.talos.api import machine_pb2 as m

        return self._one(
            "Reboot",
            m.RebootRequest(mode=1 if powercycle else 0),
            node,
            lambda r: ActionAck(r.messages[0].actor_id),
            idempotent=False,
        )

    def shutdown(self, *, node: str | None = None, force: bool = False) -> ActionAck:
        from taltasks.talos.api import machine_pb2 as m

        return self._one(
            "Shutdown",
            m.ShutdownRequest(force=force),
            node,
            lambda r: ActionAck(r.messages[0].actor_id),
            idempotent=False,
        )

    def reset(
        self,
        *,
        node: str | None = None,
        graceful: bool = True,
        reboot: bool = False,
        wipe_mode: str = "ALL",
        system_partitions: Sequence[str] = (),
    ) -> ActionAck:
        from taltasks.talos.api import machine_pb2 as m

        req = m.ResetRequest(
            graceful=graceful,
            reboot=reboot,
            mode=m.ResetRequest.WipeMode.Value(wipe_mode),
            system_partitions_to_wipe=[m.ResetPartitionSpec(label=p, wipe=True) for p in system_partitions],
        )
        return self._one("Reset", req, node, lambda r: ActionAck(r.messages[0].actor_id), idempotent=False)

    def bootstrap(self, *, node: str | None = None, timeout: float = READ_TIMEOUT) -> None:
        """Bootstrap etcd on ``node``. Talos refuses with FailedPrecondition while its runtime
        is coming up; :func:`taltasks.workflows.bootstrap.bootstrap_etcd` retries those."""
        from taltasks.talos.api import machine_pb2 as m

        self._one("Bootstrap", m.BootstrapRequest(), node, lambda r: None, timeout=timeout, idempotent=False)

    def service_restart(self, service: str, nodes: Sequence[str] | None = None) -> list[NodeResult[str]]:
        from taltasks.talos.api import machine_pb2 as m

        return self._fan(
            "ServiceRestart", m.ServiceRestartRequest(id=service), nodes, lambda x: x.resp, idempotent=False
        )

    def image_pull(
        self,
        reference: str,
        *,
        nodes: Sequence[str] | None = None,
        cri: bool = True,
        timeout: float = UPGRADE_TIMEOUT,
    ) -> list[NodeResult[None]]:
        from taltasks.talos.api import machine_pb2 as m

        req = m.ImagePullRequest(reference=reference, namespace=2 if cri else 1)
        return self._fan("ImagePull", req, nodes, lambda x: None, timeout=timeout)

    # ---- Talos 1.13+: ImageService, LifecycleService (always `node`: apid refuses `nodes`) --

    @staticmethod
    def _containerd(name: str) -> Any:
        from taltasks.talos.api import common_pb2

        if name not in CONTAINERD:
            from taltasks.errors import InputError

            raise InputError(f"unknown containerd {name!r}; use one of {', '.join(CONTAINERD)}")
        driver, namespace = CONTAINERD[name]
        return common_pb2.ContainerdInstance(driver=driver, namespace=namespace)

    def pull_image(
        self,
        image: str,
        *,
        node: str,
        containerd: str = "system",
        on_progress: Callable[[PullProgress], None] | None = None,
        timeout: float = UPGRADE_TIMEOUT,
    ) -> str:
        """Pull ``image`` into one containerd of ``node`` (``ImageService.Pull``; talosctl's
        default ``system`` is where LifecycleService finds an installer). Returns the pulled
        reference pinned to its digest; an image the registry lacks raises
        :class:`TalosCallError` NOT_FOUND and nothing was stored."""
        from taltasks.talos.api import image_pb2 as img

        req = img.ImageServicePullRequest(containerd=self._containerd(containerd), image_ref=image)
        Status = img.ImageServicePullLayerProgress.Status
        pulled = ""
        for reply in self._stream("Pull", req, [("node", node)], timeout, node, kind="image"):
            if reply.WhichOneof("response") == "name":
                pulled = reply.name
            elif on_progress is not None:
                p = reply.pull_progress
                on_progress(
                    PullProgress(
                        p.layer_id, Status.Name(p.progress.status), p.progress.offset, p.progress.total
                    )
                )
        if not pulled:
            raise OperationFailed(f"the pull of {image} ended without naming what it pulled", where=node)
        return pulled

    def list_images(self, *, node: str, containerd: str = "system") -> list[ImageInfo]:
        """The images in one containerd of ``node`` (``ImageService.List``)."""
        from taltasks.talos.api import image_pb2 as img

        req = img.ImageServiceListRequest(containerd=self._containerd(containerd))
        return [
            ImageInfo(i.name, i.digest, i.size)
            for i in self._stream("List", req, [("node", node)], READ_TIMEOUT, node, kind="image")
        ]

    def lifecycle_upgrade(
        self,
        image: str,
        *,
        node: str,
        containerd: str = "system",
        on_output: Callable[[str], None] | None = None,
        timeout: float = UPGRADE_TIMEOUT,
    ) -> InstallerRun:
        """Run the installer ``image`` (already pulled into ``containerd``) on ``node``
        (``LifecycleService.Upgrade``). It writes the new system and reboots nothing; the
        exit code says whether it worked. Talos checks nothing about etcd here."""
        from taltasks.talos.api import lifecycle_pb2 as lc

        req = lc.LifecycleServiceUpgradeRequest(
            containerd=self._containerd(containerd), source=lc.InstallArtifactsSource(image_name=image)
        )
        output: list[str] = []
        exit_code: int | None = None
        for reply in self._stream("Upgrade", req, [("node", node)], timeout, node, kind="lifecycle"):
            progress = reply.progress
            if progress.WhichOneof("response") == "exit_code":
                exit_code = progress.exit_code
            elif progress.WhichOneof("response") == "message":
                output.append(progress.message)
                if on_output is not None:
                    on_output(progress.message)
        if exit_code is None:
            raise OperationFailed(
                f"the installer {image} ended without an exit code", where=node, hint="see the node's logs"
            )
        return InstallerRun(image, exit_code, tuple(output))

    def etcd_remove_member(self, member_id: int, *, node: str | None = None) -> None:
        from taltasks.talos.api import machine_pb2 as m

        self._one(
            "EtcdRemoveMemberByID",
            m.EtcdRemoveMemberByIDRequest(member_id=member_id),
            node,
            lambda r: None,
            idempotent=False,
        )

    def etcd_leave(self, *, node: str | None = None) -> None:
        from taltasks.talos.api import machine_pb2 as m

        self._one("EtcdLeaveCluster", m.EtcdLeaveClusterRequest(), node, lambda r: None, idempotent=False)

    def etcd_forfeit_leadership(self, *, node: str | None = None) -> str:
        from taltasks.talos.api import machine_pb2 as m

        return self._one(
            "EtcdForfeitLeadership",
            m.EtcdForfeitLeadershipRequest(),
            node,
            lambda r: r.messages[0].member,
            idempotent=False,
        )

    # ---- streams ---------------------------------------------------------------------------------

    def events(
        self,
        *,
        node: str | None = None,
        tail_events: int = 0,
        tail_id: str = "",
        actor_id: str = "",
        timeout: float | None = None,
    ) -> Iterator[MachineEvent]:
        """Decoded machine events, the empty "hello" event skipped. The stream is open (the
        node has started buffering for us) when this returns, so an action started right
        after cannot slip its events past the caller. It ends after ``timeout`` seconds or
        at the deadline of the wait it is opened in (DEADLINE_EXCEEDED), whichever is first."""
        from taltasks.talos.api import machine_pb2 as m

        req = m.EventsRequest(tail_events=tail_events, tail_id=tail_id, with_actor_id=actor_id)
        meta = [("node", node)] if node else []
        return self._decode_events(self._stream("Events", req, meta, timeout, node, live=True), node)

    def _decode_events(self, stream: Iterator[Any], node: str | None) -> Iterator[MachineEvent]:
        from google.protobuf.json_format import MessageToDict

        from taltasks.talos.api import machine_pb2 as m

        types = {
            n: getattr(m, n)
            for n in (
                "SequenceEvent",
                "PhaseEvent",
                "TaskEvent",
                "ServiceStateEvent",
                "MachineStatusEvent",
                "RestartEvent",
                "ConfigLoadErrorEvent",
                "ConfigValidationErrorEvent",
                "AddressEvent",
            )
        }
        for ev in stream:
            if not ev.data.type_url:
                continue  # hello
            short = ev.data.type_url.rsplit("/", 1)[-1].removeprefix("machine.")
            cls = types.get(short)
            data: dict[str, Any] = {}
            if cls is not None:
                msg = cls()
                ev.data.Unpack(msg)
                data = MessageToDict(
                    msg, preserving_proto_field_name=False, always_print_fields_with_no_presence=True
                )
            host = (
                ev.metadata.hostname
                if ev.HasField("metadata") and ev.metadata.hostname
                else (node or self.transport.endpoint_host())
            )
            yield MachineEvent(host, ev.id, ev.actor_id, short, data)

    def logs(
        self,
        service: str,
        *,
        node: str | None = None,
        follow: bool = False,
        tail_lines: int = -1,
        kubernetes: bool = False,
        timeout: float | None = None,
    ) -> Iterator[bytes]:
        """A service's log; ``follow`` keeps reading until stopped (or ``timeout``)."""
        from taltasks.talos.api import machine_pb2 as m

        req = m.LogsRequest(
            namespace="k8s.io" if kubernetes else "system",
            id=service,
            driver=1 if kubernetes else 0,
            follow=follow,
            tail_lines=tail_lines,
        )
        meta = [("node", node)] if node else []
        bound = timeout if timeout is not None or follow else READ_TIMEOUT
        for d in self._stream("Logs", req, meta, bound, node, live=follow):
            yield d.bytes

    def dmesg(
        self,
        *,
        node: str | None = None,
        follow: bool = False,
        tail: bool = False,
        timeout: float | None = None,
    ) -> Iterator[bytes]:
        """The kernel log; ``follow`` keeps reading until stopped (or ``timeout``)."""
        from taltasks.talos.api import machine_pb2 as m

        meta = [("node", node)] if node else []
        bound = timeout if timeout is not None or follow else READ_TIMEOUT
        req = m.DmesgRequest(follow=follow, tail=tail)
        for d in self._stream("Dmesg", req, meta, bound, node, live=follow):
            yield d.bytes

    def kubeconfig(self, *, node: str | None = None, timeout: float = READ_TIMEOUT) -> str:
        """The admin kubeconfig (Talos streams a gzip'd tar holding one file, ``kubeconfig``)."""
        import gzip
        import io
        import tarfile

        from google.protobuf import empty_pb2

        meta = [("node", node)] if node else []
        blob = b"".join(d.bytes for d in self._stream("Kubeconfig", empty_pb2.Empty(), meta, timeout, node))
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
            member = tar.extractfile("kubeconfig")
            if member is None:
                raise OperationFailed("the kubeconfig archive has no `kubeconfig` entry", where=node)
            return member.read().decode()

    def etcd_snapshot(
        self,
        path: str | Path,
        *,
        node: str | None = None,
        progress: Callable[[int], None] | None = None,
        timeout: float = SNAPSHOT_TIMEOUT,
    ) -> SnapshotResult:
        """Stream the etcd database into ``path`` (written via a temp file, then renamed).
        The whole stream must finish within ``timeout`` (and the wait's deadline): a node
        that stops sending fails it then, naming how much had arrived."""
        from taltasks.talos.api import machine_pb2 as m

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        digest = hashlib.sha256()
        size = 0
        meta = [("node", node)] if node else []
        bound = deadlines.clip(timeout)
        try:
            with open(tmp, "wb") as f:
                try:
                    stream = self._stream(
                        "EtcdSnapshot", m.EtcdSnapshotRequest(), meta, bound, node, live=True
                    )
                    for d in stream:
                        f.write(d.bytes)
                        digest.update(d.bytes)
                        size += len(d.bytes)
                        if progress:
                            progress(size)
                except TalosCallError as exc:
                    if exc.code != "DEADLINE_EXCEEDED":
                        raise
                    raise OperationFailed(
                        f"etcd snapshot did not finish within {bound:g}s ({size} bytes received); "
                        "the partial file was removed",
                        where=node or self.transport.endpoint_host(),
                        hint="the node stopped sending (down or unreachable?): take the snapshot from another "
                        "control plane, or allow more time",
                    ) from None
                f.flush()
                os.fsync(f.fileno())
            if size == 0:
                raise OperationFailed("etcd snapshot stream was empty", where=node)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return SnapshotResult(str(target), size, digest.hexdigest())

    # ---- COSI --------------------------------------------------------------------------------

    def _resource(self, r: Any) -> Resource:
        import yaml

        meta = r.metadata
        try:
            spec = yaml.safe_load(r.spec.yaml_spec) if r.spec.yaml_spec else None
        except yaml.YAMLError:
            spec = r.spec.yaml_spec
        return Resource(
            meta.namespace,
            meta.type,
            meta.id,
            meta.version,
            meta.phase,
            spec,
            dict(meta.labels),
            meta.created.ToNanoseconds() / 1e9 if meta.HasField("created") else None,
            meta.updated.ToNanoseconds() / 1e9 if meta.HasField("updated") else None,
            r.spec.proto_spec,
        )

    def resource_definitions(self, node: str | None = None) -> list[dict[str, Any]]:
        key = node or ""
        if key not in self._rd_cache:
            self._rd_cache[key] = [
                r.spec for r in self.list("ResourceDefinitions.meta.cosi.dev", namespace="meta", node=node)
            ]
        return self._rd_cache[key]

    def resolve_type(self, name: str, node: str | None = None) -> tuple[str, str]:
        """``machinestatus`` / ``mc`` / a full type → (default namespace, full type), the way
        talosctl matches: case-insensitively against the type or any alias."""
        from taltasks.errors import InputError

        wanted = name.lower()
        matches = [
            rd
            for rd in self.resource_definitions(node)
            if wanted == rd["type"].lower() or wanted in [a.lower() for a in rd.get("allAliases") or []]
        ]
        if not matches:
            raise InputError(
                f"resource type {name!r} is not known to the node",
                hint="list them with `invoke talos.get rd`",
            )
        if len(matches) > 1:
            raise InputError(
                f"resource type {name!r} is ambiguous: {', '.join(rd['type'] for rd in matches)}"
            )
        return matches[0]["defaultNamespace"], matches[0]["type"]

    def get(self, type_: str, id_: str, *, namespace: str | None = None, node: str | None = None) -> Resource:
        from taltasks.talos.api import cosi_resource_pb2 as c

        ns = namespace or self._default_namespace(type_, node)
        return self._one(
            "Get",
            c.GetRequest(namespace=ns, type=type_, id=id_),
            node,
            lambda r: self._resource(r.resource),
            kind="cosi",
        )

    def machine_config(self, node: str | None = None) -> bytes:
        """The node's active machine config, byte for byte as it was applied (COSI
        ``MachineConfig`` ``v1alpha1``; needs ``os:admin``, the resource is sensitive)."""
        from taltasks.talos.api import resource_config_pb2 as rc

        res = self.get(MACHINE_CONFIG_TYPE, "v1alpha1", namespace="config", node=node)
        if res.proto_spec:
            return rc.MachineConfigSpec.FromString(res.proto_spec).yaml_marshalled
        return str(res.spec or "").encode("utf-8")

    def list(
        self,
        type_: str,
        *,
        namespace: str | None = None,
        node: str | None = None,
        timeout: float = READ_TIMEOUT,
    ) -> list[Resource]:
        from taltasks.talos.api import cosi_resource_pb2 as c

        ns = namespace or self._default_namespace(type_, node)
        meta = [("node", node)] if node else []
        return [
            self._resource(x.resource)
            for x in self._stream(
                "List", c.ListRequest(namespace=ns, type=type_), meta, timeout, node, kind="cosi"
            )
        ]

    def watch(
        self,
        type_: str,
        id_: str | None = None,
        *,
        namespace: str | None = None,
        node: str | None = None,
        bootstrap: bool = False,
        timeout: float | None = None,
    ) -> Iterator[WatchEvent]:
        """COSI watch, open when this returns; the server's empty "watch is ready" message is
        skipped. One resource (``id_``): its current state comes first (CREATED, or DESTROYED
        when absent), then its changes. A kind with ``bootstrap``: its resources, then
        BOOTSTRAPPED, then changes. Ends after ``timeout`` or at the deadline of the wait it
        is opened in, whichever is first."""
        from taltasks.talos.api import cosi_resource_pb2 as c

        if id_ is not None and bootstrap:
            # COSI servers refuse it (Unimplemented): the first event is the current state anyway
            raise ValueError("bootstrap contents are for a watch of a kind, not of one resource")
        ns = namespace or self._default_namespace(type_, node)
        req = c.WatchRequest(
            namespace=ns, type=type_, api_version=1, options=c.WatchOptions(bootstrap_contents=bootstrap)
        )
        if id_ is not None:
            req.id = id_
        meta = [("node", node)] if node else []
        stream = self._stream("Watch", req, meta, timeout, node, kind="cosi", live=True)
        return self._watch_events(stream)

    def _watch_events(self, stream: Iterator[Any]) -> Iterator[WatchEvent]:
        from taltasks.talos.api import cosi_resource_pb2 as c

        names = {v: k for k, v in c.EventType.items()}
        for resp in stream:
            for e in resp.event:
                yield WatchEvent(
                    names.get(e.event_type, str(e.event_type)),
                    self._resource(e.resource) if e.HasField("resource") else None,
                    self._resource(e.old) if e.HasField("old") else None,
                    e.error if e.HasField("error") else None,
                )

    def _default_namespace(self, type_: str, node: str | None) -> str:
        if type_.endswith(".meta.cosi.dev"):
            return "meta"
        for rd in self.resource_definitions(node):
            if rd["type"] == type_:
                return rd["defaultNamespace"]
        return "default"


_fanout_thread = threading.local()


def _in_fanout(call: Callable[[], T]) -> T:
    """Run one fanned-out call, marking the thread so nested fan-outs run inline."""
    _fanout_thread.inside = True
    try:
        return call()
    finally:
        _fanout_thread.inside = False


def _stub_class(module: str, name: str) -> Callable[[], Any]:
    def load() -> Any:
        import importlib

        return getattr(importlib.import_module(f"taltasks.talos.api.{module}"), name)

    return load


_STUBS: dict[str, Callable[[], Any]] = {
    "machine": _stub_class("machine_pb2_grpc", "MachineServiceStub"),
    "cosi": _stub_class("cosi_resource_pb2_grpc", "StateStub"),
    "lifecycle": _stub_class("lifecycle_pb2_grpc", "LifecycleServiceStub"),
    "image": _stub_class("image_pb2_grpc", "ImageServiceStub"),
}


def _context_auth(context: Context) -> list[tuple[str, str]]:
    """Per-call metadata for the context's ``auth`` block, as talosctl sends it; a clear
    error for what taltasks cannot do (before anything is dialled)."""
    import base64

    from taltasks.errors import InputError

    if context.proxy_url:
        raise InputError(
            f"context {context.name!r} reaches its endpoints through proxy-url {context.proxy_url!r}, "
            "which taltasks does not support",
            hint="reach the endpoints directly (e.g. an SSH tunnel to a local port) and use a context without proxy-url",
        )
    if bool(context.crt) != bool(context.key):
        have, missing = ("crt", "key") if context.crt else ("key", "crt")
        raise InputError(
            f"context {context.name!r} has a client certificate `{have}` but no `{missing}`",
            hint="a client certificate needs both; regenerate the talosconfig with `invoke configure`",
        )
    auth = context.auth or {}
    if auth.get("siderov1"):
        raise InputError(
            f"context {context.name!r} authenticates with Omni (auth.siderov1), which signs every "
            "request with the user's PGP key; taltasks cannot do that",
            hint="use a talosconfig with a client certificate for the cluster (e.g. from `invoke configure`)",
        )
    basic = auth.get("basic")
    if isinstance(basic, dict):
        pair = f"{basic.get('username', '')}:{basic.get('password', '')}".encode()
        return [("authorization", "Basic " + base64.b64encode(pair).decode())]
    return []


__all__ = ["ConnectionFailed", "StreamInterrupted", "TalosCallError", "TalosClient"]
