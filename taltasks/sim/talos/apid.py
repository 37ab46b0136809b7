"""apid in the simulator: who is calling, where the call goes, and how replies merge.

One grpcio server serves every simulated node. A :class:`TlsFront` per node terminates
mutual TLS and forwards plaintext; the forwarded connection's local port identifies the
caller's certificate (roles) and the endpoint node they dialled. Routing follows
talos-api.md §8.2 in order, as the *endpoint's* Talos minor does it (:mod:`.versions`):
maintenance mode, ``proxyfrom`` or no header → local; multi-valued ``node`` →
InvalidArgument; a worker endpoint cannot forward; ``nodes`` → one-to-many (not for COSI;
from 1.13 only for MachineService and a few others, so never for LifecycleService or
ImageService; logged as deprecated by 1.14); ``node`` → one-to-one. One-to-many replies
concatenate each node's single element in completion order, with ``metadata.hostname`` =
the target as written, and turn a node's failure into an element carrying only
``metadata{hostname, error, status}``.

What a call may do is decided on the node that serves it, by *that* node's minor: whether
the service exists there (LifecycleService and ImageService from 1.13), the roles
(machined authorizes, not the endpoint's apid — so a fan-out with a certificate that lacks
a role gets one PermissionDenied per node, not a failed call) and maintenance-mode rules.
Every call is recorded (``talos.api``) with its service, method, routing (``local``,
``node`` or ``nodes``) and per-target outcome.
"""

from __future__ import annotations

import ipaddress
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2, message_factory
from google.rpc import status_pb2

from taltasks.sim.talos import installer, machined, rbac, versions
from taltasks.sim.talos.machined import Call, RpcError
from taltasks.talos.api import common_pb2, cosi_resource_pb2, image_pb2, lifecycle_pb2, machine_pb2

if TYPE_CHECKING:
    from taltasks.sim.talos.cluster import SimTalosCluster
    from taltasks.sim.talos.node import SimNode

MAX_MESSAGE = 32 * 1024 * 1024


@dataclass(frozen=True)
class Method:
    path: str
    request: type
    reply: type  # unary response or stream item type
    streaming: bool
    handler: Callable[..., Any]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def service(self) -> str:
        return self.path[1:].split("/", 1)[0]

    @property
    def cosi(self) -> bool:
        return self.path.startswith("/cosi.")


def _service_methods(module: Any, service: str, handlers: Any) -> dict[str, Method]:
    """Every method of ``service`` (from the generated ``module``), handled by the function
    of the same name in ``handlers``."""
    svc = module.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]]
    out = {}
    for md in svc.methods:
        path = f"/{service}/{md.name}"
        req = (
            empty_pb2.Empty
            if md.input_type.full_name == "google.protobuf.Empty"
            else message_factory.GetMessageClass(md.input_type)
        )
        out[path] = Method(
            path,
            req,
            message_factory.GetMessageClass(md.output_type),
            md.server_streaming,
            getattr(handlers, md.name),
        )
    return out


def _cosi_methods() -> dict[str, Method]:
    c = cosi_resource_pb2
    out = {
        "/cosi.resource.State/Get": Method(
            "/cosi.resource.State/Get", c.GetRequest, c.GetResponse, False, machined.COSIGet
        ),
        "/cosi.resource.State/List": Method(
            "/cosi.resource.State/List", c.ListRequest, c.ListResponse, True, machined.COSIList
        ),
        "/cosi.resource.State/Watch": Method(
            "/cosi.resource.State/Watch", c.WatchRequest, c.WatchResponse, True, machined.COSIWatch
        ),
    }
    for name, req, rep in (
        ("Create", c.CreateRequest, c.CreateResponse),
        ("Update", c.UpdateRequest, c.UpdateResponse),
        ("Destroy", c.DestroyRequest, c.DestroyResponse),
    ):
        out[f"/cosi.resource.State/{name}"] = Method(
            f"/cosi.resource.State/{name}", req, rep, False, _cosi_write
        )
    return out


def _cosi_write(node: SimNode, req: Any, call: Call) -> Any:
    raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "write access is not allowed")


METHODS: dict[str, Method] = {
    **_service_methods(machine_pb2, versions.MACHINE, machined),
    **_service_methods(lifecycle_pb2, versions.LIFECYCLE, installer.Lifecycle),
    **_service_methods(image_pb2, versions.IMAGES, installer.Images),
    **_cosi_methods(),
}


def _element_class(reply: type) -> type:
    """``FooResponse.messages`` element type, or the stream item type itself."""
    field = reply.DESCRIPTOR.fields_by_name.get("messages")
    if field is not None and field.message_type is not None:
        return message_factory.GetMessageClass(field.message_type)
    return reply


class Apid:
    def __init__(self, cluster: SimTalosCluster) -> None:
        self.cluster = cluster
        self.pool = futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="sim-apid-fanout")
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="sim-apid"),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
                # apid polices keepalive pings with grpc-go's defaults (it sets no policy): a
                # ping < 5 min after the last one with no server traffic between is a strike,
                # the third closes the connection (GOAWAY too_many_pings)
                ("grpc.http2.min_ping_interval_without_data_ms", 5 * 60 * 1000),
                ("grpc.http2.max_ping_strikes", 2),
                ("grpc.keepalive_permit_without_calls", 0),
            ],
        )
        handlers = {}
        for path, method in METHODS.items():
            service, name = path[1:].split("/")
            kind = (
                grpc.unary_stream_rpc_method_handler
                if method.streaming
                else grpc.unary_unary_rpc_method_handler
            )
            fn = self._stream(method) if method.streaming else self._unary(method)
            handlers.setdefault(service, {})[name] = kind(
                fn,
                request_deserializer=method.request.FromString,
                response_serializer=lambda msg: msg.SerializeToString(),
            )
        self.server.add_generic_rpc_handlers(
            tuple(grpc.method_handlers_generic_handler(s, h) for s, h in handlers.items())
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=0.5).wait(5)
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ---- who and where ---------------------------------------------------------------------

    def _caller(self, context: grpc.ServicerContext) -> tuple[SimNode, frozenset[str]]:
        peer = context.peer()  # "ipv4:127.0.0.1:PORT": the front's connection to us
        identity = self.cluster.identities.get(peer.split(":", 1)[1])
        if identity is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown connection")
        host = identity.listen_address.rsplit(":", 1)[0]
        endpoint = self.cluster.node_by_ip(host)
        if endpoint is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "node is gone")
        if endpoint.maintenance:
            return endpoint, frozenset({rbac.READER})
        return endpoint, frozenset(o for o in identity.organizations if o.startswith("os:"))

    def _route(
        self, method: Method, endpoint: SimNode, context: grpc.ServicerContext
    ) -> tuple[str, list[tuple[str, SimNode | None]]]:
        """("local"|"node"|"nodes", targets) or abort, as the endpoint's apid directs it."""
        md: dict[str, list[str]] = {}
        for key, value in context.invocation_metadata():
            md.setdefault(key, []).append(value)
        if endpoint.maintenance or "proxyfrom" in md or ("node" not in md and "nodes" not in md):
            return "local", [(endpoint.ip, endpoint)]
        if len(md.get("node", [])) > 1:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "node metadata must be single-valued")
        targets = md.get("nodes") or md.get("node") or []
        for t in targets:
            if _has_port(t):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid target {t!r}")
        if not endpoint.control_plane:
            if len(targets) == 1 and targets[0] in (endpoint.ip, endpoint.hostname):
                return "local", [(targets[0], endpoint)]
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "no request forwarding")
        resolved = [(t, self.cluster.node_by_target(t)) for t in targets]
        if "nodes" in md:
            refusal = endpoint.minor.one_to_many_refusal(method.path)
            if refusal:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, refusal)
            return "nodes", resolved
        return "node", resolved

    # ---- running a call on one node -----------------------------------------------------------

    def _run_on(
        self, method: Method, target: str, node: SimNode | None, request: Any, call: Call, *, proxied: bool
    ) -> Any:
        if node is None or not node.reachable:
            raise RpcError(
                grpc.StatusCode.UNAVAILABLE,
                f'connection error: desc = "transport: Error while dialing: dial tcp {target}:50000: connect: connection refused"',
            )
        if proxied and node.maintenance:
            raise RpcError(
                grpc.StatusCode.UNAVAILABLE,
                'connection error: desc = "transport: authentication handshake failed: x509: certificate signed by unknown authority"',
            )
        if node.faults.vanished and not node.hold_while_vanished(call.is_active):
            # a vanished node never answers: the caller's deadline ends the call
            raise RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
        authorize(node, method.path, method.name, call)
        if node.timings.api_latency:
            node._sleep(node.timings.api_latency)
        result = method.handler(node, request, call)
        return _while_present(node, result, call) if method.streaming else result

    def _error_element(self, cls: type, target: str, code: grpc.StatusCode, message: str) -> Any:
        status = status_pb2.Status(code=code.value[0], message=message)
        text = f"rpc error: code = {_go_code(code)} desc = {message}"
        return cls(metadata=common_pb2.Metadata(hostname=target, error=text, status=status))

    def _unary(self, method: Method) -> Callable[[Any, grpc.ServicerContext], Any]:
        element = _element_class(method.reply)

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            endpoint, roles = self._caller(context)
            mode, targets = self._route(method, endpoint, context)
            call = Call(method.path, roles, context.is_active)
            if mode != "nodes":
                target, node = targets[0]
                try:
                    reply = self._run_on(method, target, node, request, call, proxied=mode == "node")
                except RpcError as exc:
                    self._record(method, endpoint, mode, [target], roles, exc.code.name)
                    context.abort(exc.code, exc.message)
                self._record(method, endpoint, mode, [target], roles, "OK")
                return reply
            reply = method.reply()
            jobs = {
                self.pool.submit(self._run_on, method, t, n, request, call, proxied=True): t
                for t, n in targets
            }
            codes = {}
            for job in futures.as_completed(jobs):
                target = jobs[job]
                try:
                    one = job.result()
                    item = one.messages[0]
                    item.metadata.hostname = target
                    reply.messages.append(item)
                    codes[target] = "OK"
                except RpcError as exc:
                    reply.messages.append(self._error_element(element, target, exc.code, exc.message))
                    codes[target] = exc.code.name
            self._record(method, endpoint, mode, [t for t, _ in targets], roles, codes)
            return reply

        return handle

    def _stream(self, method: Method) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            endpoint, roles = self._caller(context)
            mode, targets = self._route(method, endpoint, context)
            call = Call(method.path, roles, context.is_active)
            if mode != "nodes":
                target, node = targets[0]
                try:
                    items = self._run_on(method, target, node, request, call, proxied=mode == "node")
                    first = next(items, _END)  # errors before the first item are the call's
                except RpcError as exc:
                    self._record(method, endpoint, mode, [target], roles, exc.code.name)
                    context.abort(exc.code, exc.message)
                self._record(method, endpoint, mode, [target], roles, "stream")
                if first is _END:
                    return
                try:
                    yield first
                    yield from items
                except RpcError as exc:
                    context.abort(exc.code, exc.message)
                return
            self._record(method, endpoint, mode, [t for t, _ in targets], roles, "stream")
            yield from self._fan_in(method, targets, request, call)

        return handle

    def _fan_in(
        self, method: Method, targets: list[tuple[str, SimNode | None]], request: Any, call: Call
    ) -> Iterator[Any]:
        """Interleave every node's stream, tagging items with the node's target string."""
        out: queue.Queue[Any] = queue.Queue(maxsize=256)
        done = object()

        def pump(target: str, node: SimNode | None) -> None:
            try:
                for item in self._run_on(method, target, node, request, call, proxied=True):
                    item.metadata.hostname = target
                    out.put(item)
            except RpcError as exc:
                out.put(self._error_element(method.reply, target, exc.code, exc.message))
            finally:
                out.put(done)

        for t, n in targets:
            threading.Thread(target=pump, args=(t, n), daemon=True, name=f"sim-fanin-{t}").start()
        remaining = len(targets)
        while remaining and call.is_active():
            try:
                item = out.get(timeout=0.25)
            except queue.Empty:
                continue
            if item is done:
                remaining -= 1
            else:
                yield item

    def _record(
        self,
        method: Method,
        endpoint: SimNode,
        routing: str,
        targets: list[str],
        roles: frozenset[str],
        code: Any,
    ) -> None:
        extra = {"deprecated": "nodes"} if routing == "nodes" and endpoint.minor.nodes_deprecated else {}
        self.cluster.recorder.record(
            "talos.api",
            service=method.service,
            method=method.name,
            endpoint=endpoint.hostname,
            routing=routing,
            targets=targets,
            roles=sorted(roles),
            code=code,
            **extra,
        )


def _while_present(node: SimNode, items: Iterator[Any], call: Call) -> Iterator[Any]:
    """A stream from ``node`` that goes quiet (without ending) while the node is vanished."""
    for item in items:
        if node.faults.vanished and not node.hold_while_vanished(call.is_active):
            return
        yield item


_END = object()


def authorize(node: SimNode, path: str, name: str, call: Call) -> None:
    """What the serving node's machined decides before a handler runs, by its minor: the
    service must exist there, maintenance mode has its own rules, and the roles must allow
    the method (talos-api.md §9.3-9.4)."""
    minor = node.minor
    service = path[1:].split("/", 1)[0]
    maintenance = minor.maintenance if node.maintenance else None
    if maintenance is not None and maintenance.kind == "service":
        # up to 1.12 a separate maintenance server: a few MachineService methods, COSI reads
        if service == versions.COSI:
            return
        admin = rbac.ADMIN in call.roles
        if (
            service != versions.MACHINE
            or name not in maintenance.methods
            or (name in maintenance.admin_only and not admin)
        ):
            raise RpcError(grpc.StatusCode.UNIMPLEMENTED, "API is not implemented in maintenance mode")
        return
    if not minor.serves(path):
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, f"unknown service {service}")
    if not minor.allowed(path, call.roles):
        raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "not authorized")


def refuse_client_certificate(der: bytes) -> str | None:
    """apid's extended-key-usage rule (every Talos 1.x): a client certificate that is not a
    CA must list exactly clientAuth — serverAuth+clientAuth, or no EKU at all, is refused at
    the TLS layer with this reason."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = x509.load_der_x509_certificate(der)
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return None
    except x509.ExtensionNotFound:
        pass
    try:
        usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = []
    if usages == [ExtendedKeyUsageOID.CLIENT_AUTH]:
        return None
    return f"certificate {cert.subject.rfc4514_string()!r} is missing the client auth extended key usage"


def _has_port(target: str) -> bool:
    try:
        ipaddress.ip_address(target)
        return False
    except ValueError:
        pass
    if target.startswith("["):
        return "]:" in target
    return ":" in target


def _go_code(code: grpc.StatusCode) -> str:
    """grpc-go's spelling of a status code, as it appears in ``metadata.error``."""
    return "OK" if code == grpc.StatusCode.OK else "".join(p.capitalize() for p in code.name.split("_"))
