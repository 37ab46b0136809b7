"""The HTTPS front of the emulator: :class:`KubeEmulator`.

A threaded stdlib HTTP/1.1 server (keep-alive; one thread per connection, so a watch costs
one idle thread) behind TLS done by Python's ``ssl``:

* the server certificate is issued by the cluster's Kubernetes CA for the endpoint's
  address; clients authenticate with a certificate from that CA (``O=`` values are the
  groups, ``CN`` the user, as kube-apiserver reads them). A request without a client
  certificate gets 401; a certificate from another CA fails the TLS handshake (stdlib
  ``ssl`` cannot ask for a certificate without verifying it); only ``system:masters`` is
  authorised, anyone else gets kube-apiserver's 403 wording. ``/healthz``, ``/livez`` and
  ``/readyz`` are open, as on a real control plane.
* routing follows the REST layout: ``/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]`` and
  ``/apis/GROUP/VERSION/...``, legacy ``/watch/`` paths included.
* content negotiation: JSON, kubectl's ``as=Table`` and aggregated discovery
  (``apidiscovery.k8s.io/v2``) by Accept header; patches by Content-Type.
* every request lands in :attr:`KubeEmulator.requests` (filterable, for assertions) and
  every write in the simulator's :class:`~taltasks.sim.record.Recorder` as ``kube.api``.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import logging
import os
import queue
import socket
import socketserver
import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from taltasks.machineconfig.pki import KeyPair, issue
from taltasks.sim.addresses import check_loopback
from taltasks.sim.kube import crds, discovery, selectors, tables
from taltasks.sim.kube.resources import ResourceType
from taltasks.sim.kube.status import ApiError, bad_request, method_not_allowed, success
from taltasks.sim.kube.store import PATCH_TYPES, Store, WatchEvent
from taltasks.sim.record import Recorder

log = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
MASTERS = "system:masters"
DEFAULT_WATCH_SECONDS = 1800  # kube-apiserver's --min-request-timeout
_WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection", "evict"})


# ---- request log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it."""

    ts: float
    method: str
    path: str
    query: dict[str, str]
    verb: str
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    user: str = ""
    groups: tuple[str, ...] = ()
    status: int = 0
    seconds: float = 0.0
    content_type: str = ""
    accept: str = ""
    user_agent: str = ""


class RequestLog:
    """Bounded, thread-safe list of :class:`RequestRecord` with a filter for assertions:
    ``emulator.requests.filter(verb="evict", status=429)``."""

    def __init__(self, maxlen: int = 20000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def all(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def filter(
        self, *, path_prefix: str | None = None, since: float | None = None, **equal: Any
    ) -> list[RequestRecord]:
        """Records whose attributes equal every keyword given (``verb``, ``method``,
        ``resource`` like ``pods`` or ``cephclusters.ceph.rook.io``, ``status``…)."""
        out = []
        for r in self.all():
            if path_prefix is not None and not r.path.startswith(path_prefix):
                continue
            if since is not None and r.ts < since:
                continue
            if all(getattr(r, k) == v for k, v in equal.items()):
                out.append(r)
        return out

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


# ---- the server -------------------------------------------------------------------------------


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: KubeEmulator, context: ssl.SSLContext) -> None:
        self.emulator = emulator
        self.context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address) -> None:  # runs on the connection thread
        # headers and body leave in separate writes: without NODELAY, Nagle plus the client's
        # delayed ACK costs ~40 ms per response
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.emulator.handshake_failures.append(str(exc))
            if self.emulator.recorder is not None:
                self.emulator.recorder.record("kube.tls", error=str(exc), client=client_address[0])
            with contextlib.suppress(OSError):
                request.close()
            return
        tls.settimeout(None)
        with self.connections_lock:
            self.connections.add(tls)
        try:
            _Handler(tls, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self.connections_lock:
                self.connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def _ssl_context(server: KeyPair, ca: KeyPair) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="taltasks-kube-") as tmp:
        crt, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(server.openssl_key)
        with open(crt, "wb") as fh:
            fh.write(server.crt)
        ctx.load_cert_chain(crt, key)
    ctx.load_verify_locations(cadata=ca.crt.decode())
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


class KubeEmulator:
    """A strict kube-apiserver stand-in on ``https://host:port``.

    ``ca`` is the cluster's Kubernetes CA (ECDSA P-256 in Talos); ``recorder`` gets a
    ``kube.api`` entry per write. The simulator's CRDs are installed at start. Use as a
    context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        host: str,
        port: int = 6443,
        *,
        ca: KeyPair,
        recorder: Recorder | None = None,
        kubernetes_version: str = "v1.34.3",
        store: Store | None = None,
        bookmark_seconds: float = 60.0,
        history_limit: int = 5000,
        install_crds: bool = True,
        record_reads: bool = False,
    ) -> None:
        self.host = check_loopback(host)
        self.port = port
        self.ca = ca
        self.recorder = recorder
        self.kubernetes_version = (
            kubernetes_version if kubernetes_version.startswith("v") else f"v{kubernetes_version}"
        )
        self.store = store or Store(history_limit=history_limit)
        self.bookmark_seconds = bookmark_seconds
        self.record_reads = record_reads
        self.requests = RequestLog()
        self.errors: list[BaseException] = []
        self.handshake_failures: list[str] = []
        self._install_crds = install_crds
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> KubeEmulator:
        if self._server is not None:
            return self
        if self._install_crds:
            for crd in crds.SIMULATOR_CRDS:
                name = crd["metadata"]["name"]
                if self.store.try_get("customresourcedefinitions.apiextensions.k8s.io", name) is None:
                    self.store.create(crd)
        server_cert = issue(
            self.ca,
            usage="server",
            common_name="kube-apiserver",
            ip_sans=sorted({self.host, "127.0.0.1"}),
            dns_sans=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        self._server = _Server((self.host, self.port), self, _ssl_context(server_cert, self.ca))
        self.port = self._server.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"kube-emulator-{self.host}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        self.store.close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- credentials ----------------------------------------------------------------------

    def client_certificate(
        self, common_name: str = "admin", organizations: tuple[str, ...] = (MASTERS,)
    ) -> KeyPair:
        return issue(self.ca, usage="client", common_name=common_name, organizations=list(organizations))

    def kubeconfig(
        self,
        cluster_name: str = "simulated",
        *,
        user: str = "admin",
        groups: tuple[str, ...] = (MASTERS,),
        namespace: str = "default",
        client: KeyPair | None = None,
    ) -> str:
        """A kubeconfig shaped like the one ``talosctl kubeconfig`` writes: context and
        user ``admin@<cluster>``, inline CA, client certificate and key."""
        import yaml

        client = client or self.client_certificate(user, groups)
        context = f"{user}@{cluster_name}"
        b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": self.url, "certificate-authority-data": b64(self.ca.crt)},
                }
            ],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": cluster_name, "namespace": namespace, "user": context},
                }
            ],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {"client-certificate-data": b64(client.crt), "client-key-data": b64(client.key)},
                }
            ],
            "preferences": {},
        }
        return yaml.safe_dump(doc, sort_keys=False)

    # ---- version --------------------------------------------------------------------------

    def version_info(self) -> dict[str, str]:
        major, minor = self.kubernetes_version.lstrip("v").split(".")[:2]
        return {
            "major": major,
            "minor": minor,
            "emulationMajor": major,
            "emulationMinor": minor,
            "gitVersion": self.kubernetes_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _record(self, rec: RequestRecord) -> None:
        self.requests.append(rec)
        if self.recorder is not None and (rec.verb in _WRITE_VERBS or self.record_reads):
            self.recorder.record(
                "kube.api",
                verb=rec.verb,
                resource=rec.resource,
                subresource=rec.subresource,
                namespace=rec.namespace,
                name=rec.name,
                status=rec.status,
                user=rec.user,
            )


# ---- one request ------------------------------------------------------------------------------


@dataclass
class _Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool = False


@dataclass
class _Ctx:
    method: str = ""
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    user: str = ""
    groups: tuple[str, ...] = ()
    started: float = 0.0
    verb: str = ""
    route: _Route | None = None
    status: int = 0
    logged: bool = False


def _accepts(accept: str, marker: str) -> bool:
    return any(marker in part.replace(" ", "") for part in accept.split(","))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "taltasks-kube-emulator"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ---- plumbing -------------------------------------------------------------------------

    @property
    def emulator(self) -> KubeEmulator:
        return self.server.emulator

    def _identity(self) -> tuple[str | None, tuple[str, ...]]:
        cert = self.connection.getpeercert()  # type: ignore[attr-defined]
        if not cert:
            return None, ()
        cn, orgs = "", []
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
                elif key == "organizationName":
                    orgs.append(value)
        return cn, tuple(orgs)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        code: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._ctx.status = code
        self._log_request()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, code: int, obj: Any, content_type: str = "application/json") -> None:
        self._send(code, json.dumps(obj, separators=(",", ":")).encode(), content_type)

    def _send_error(self, err: ApiError) -> None:
        self._send(err.code, json.dumps(err.status(), separators=(",", ":")).encode(), headers=err.headers)

    # ---- entry ----------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        user, groups = self._identity()
        self._ctx = _Ctx(
            method=method, path=path, query=query, user=user or "", groups=groups, started=time.monotonic()
        )
        try:
            body = self._read_body()
            if path in HEALTH_PATHS and method == "GET":
                self._ctx.verb = "get"
                self._send(200, b"ok", "text/plain; charset=utf-8")
            elif user is None:
                self._ctx.verb = "unauthenticated"
                self._send_error(ApiError(401, "Unauthorized", "Unauthorized"))
            else:
                self._dispatch(method, path, query, body, user, groups)
        except ApiError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # a bug in the emulator: answer like the real server, keep it for tests
            log.exception("emulator failure on %s %s", method, self.path)
            self.emulator.errors.append(exc)
            with contextlib.suppress(Exception):
                self._send_error(ApiError(500, "InternalError", f"Internal error occurred: {exc}"))
        finally:
            self._log_request()  # when nothing was sent (a broken connection)

    def _log_request(self) -> None:
        """Log this request once, just before its response leaves: a client that has the
        answer can already find the request in the log and the record."""
        ctx = self._ctx
        if ctx.logged:
            return
        ctx.logged = True
        route = ctx.route
        self.emulator._record(
            RequestRecord(
                ts=time.time(),
                method=ctx.method,
                path=ctx.path,
                query=ctx.query,
                verb=ctx.verb,
                resource=route.rt.qualified if route else "",
                subresource=(route.subresource or "") if route else "",
                namespace=(route.namespace or "") if route else "",
                name=(route.name or "") if route else "",
                user=ctx.user,
                groups=ctx.groups,
                status=ctx.status,
                seconds=time.monotonic() - ctx.started,
                content_type=self.headers.get("Content-Type", ""),
                accept=self.headers.get("Accept", ""),
                user_agent=self.headers.get("User-Agent", ""),
            )
        )

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], body: bytes, user: str, groups: tuple[str, ...]
    ) -> None:
        emu = self.emulator
        registry = emu.store.registry
        accept = self.headers.get("Accept", "")
        segs = [s for s in path.split("/") if s]
        if method == "GET" and segs in (["version"],):
            self._ctx.verb = "get"
            return self._send_json(200, emu.version_info())
        if method == "GET" and segs in (["api"], ["apis"]):
            self._ctx.verb = "get"
            core = segs == ["api"]
            for wanted, api_version in (
                (discovery.AGGREGATED_V2, "apidiscovery.k8s.io/v2"),
                (discovery.AGGREGATED_V2BETA1, "apidiscovery.k8s.io/v2beta1"),
            ):
                if _accepts(accept, wanted.replace(" ", "")):
                    return self._send_json(
                        200, discovery.aggregated(registry, core=core, api_version=api_version), wanted
                    )
            doc = discovery.api_versions(f"{emu.host}:{emu.port}") if core else discovery.group_list(registry)
            return self._send_json(200, doc)
        if method == "GET" and len(segs) == 2 and segs[0] == "api":
            self._ctx.verb = "get"
            doc = discovery.resource_list(registry, "", segs[1])
            if doc is None:
                raise _no_route()
            return self._send_json(200, doc)
        if method == "GET" and len(segs) == 2 and segs[0] == "apis":
            self._ctx.verb = "get"
            doc = discovery.group(registry, segs[1])
            if doc is None:
                raise _no_route()
            return self._send_json(200, doc)
        if method == "GET" and len(segs) == 3 and segs[0] == "apis":
            self._ctx.verb = "get"
            doc = discovery.resource_list(registry, segs[1], segs[2])
            if doc is None:
                raise _no_route()
            return self._send_json(200, doc)
        route = self._route(segs)
        self._ctx.route = route
        verb = self._verb(method, route, query)
        self._ctx.verb = verb
        if MASTERS not in groups:
            raise _forbidden(user, verb, route)
        handler = getattr(self, f"_verb_{verb}")
        handler(route, query, body)

    def _route(self, segs: list[str]) -> _Route:
        registry = self.emulator.store.registry
        if len(segs) >= 2 and segs[0] == "api":
            group, version, rest = "", segs[1], segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise _no_route()
        watch_path = False
        if rest and rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = registry.lookup(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _no_route()
        rt = registry.lookup(group, version, rest[0])
        if rt is None:
            raise _no_route()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if rt.namespaced and namespace is None and name is not None:
            raise _no_route()
        if sub is not None and sub not in rt.all_subresources():
            raise _no_route()
        return _Route(rt, namespace, name, sub, watch_path)

    @staticmethod
    def _verb(method: str, route: _Route, query: dict[str, str]) -> str:
        if route.watch_path:
            if method != "GET":
                raise method_not_allowed()
            return "watch"
        if method == "GET":
            if route.name is None:
                return "watch" if query.get("watch") in ("true", "1") else "list"
            return "get"
        if method == "POST":
            if route.name is None:
                return "create"
            if route.subresource == "eviction":
                return "evict"
            raise method_not_allowed()
        if route.name is None:
            if method == "DELETE":
                return "deletecollection"
            raise method_not_allowed()
        if route.subresource == "eviction":
            raise method_not_allowed()
        return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]

    # ---- helpers --------------------------------------------------------------------------

    @staticmethod
    def _present(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("apiVersion") != rt.api_version:
            return {**obj, "apiVersion": rt.api_version}
        return obj

    def _json_body(self, body: bytes) -> Any:
        if not body:
            raise bad_request("the request body is empty")
        try:
            return json.loads(body)
        except ValueError:
            if (self.headers.get("Content-Type") or "").startswith("application/apply-patch+yaml"):
                import yaml

                try:
                    return yaml.safe_load(body)
                except yaml.YAMLError as exc:
                    raise bad_request(f"error decoding YAML: {exc}") from None
            raise bad_request(
                "couldn't get version/kind; json parse error: invalid character in the request body"
            ) from None

    @staticmethod
    def _check_type(rt: ResourceType, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        if rt.builtin:  # typed decoding defaults the kind from the URL, as kube-apiserver does
            obj.setdefault("apiVersion", rt.api_version)
            obj.setdefault("kind", rt.kind)
        if not obj.get("kind"):
            raise bad_request(f"Object 'Kind' is missing in '{json.dumps(obj)[:200]}'")
        api_version = obj.get("apiVersion")
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
            )
        if obj["kind"] != rt.kind:
            raise bad_request(
                f"the kind in the data ({obj['kind']}) does not match the expected kind ({rt.kind})"
            )

    @staticmethod
    def _dry_run(query: dict[str, str]) -> bool:
        value = query.get("dryRun")
        if value and value != "All":
            raise bad_request(f'Invalid value: "{value}": supported values: "All"')
        return value == "All"

    def _wants_table(self) -> str | None:
        accept = self.headers.get("Accept", "")
        for part in accept.split(","):
            p = part.replace(" ", "")
            if "as=Table" in p and "g=meta.k8s.io" in p:
                return "v1beta1" if "v=v1beta1" in p else "v1"
        if accept and not any(
            t in accept
            for t in ("application/json", "*/*", "application/yaml", "application/vnd.kubernetes.protobuf")
        ):
            raise ApiError(
                406,
                "NotAcceptable",
                f"only the following media types are accepted: application/json, application/yaml (asked for {accept})",
            )
        return None

    def _filter(self, rt: ResourceType, query: dict[str, str]):
        return selectors.compile_filter(
            query.get("labelSelector"), query.get("fieldSelector"), rt.field_labels
        )

    # ---- verbs ----------------------------------------------------------------------------

    def _verb_get(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        store = self.emulator.store
        table_version = self._wants_table()
        obj = store.get_raw(route.rt, route.name or "", route.namespace)
        if route.subresource == "log":
            node = (obj.get("spec") or {}).get("nodeName", "<none>")
            text = f"simulated pod {route.namespace}/{route.name} on {node}: the simulator keeps no container logs\n"
            return self._send(200, text.encode(), "text/plain")
        if route.subresource == "scale":
            return self._send_json(200, _scale_of(route.rt, obj))
        obj = self._present(route.rt, obj)
        if table_version:
            return self._send_json(
                200,
                tables.table(
                    route.rt,
                    [obj],
                    resource_version=obj["metadata"]["resourceVersion"],
                    include_object=query.get("includeObject", "Metadata"),
                    table_version=table_version,
                ),
            )
        self._send_json(200, obj)

    def _verb_list(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        rt = route.rt
        table_version = self._wants_table()
        accept = self._filter(rt, query)
        items, rv = self.emulator.store.list_raw(rt, route.namespace, accept)
        limit = int(query.get("limit") or 0)
        token = query.get("continue")
        if token:
            try:
                state = json.loads(base64.b64decode(token))
                start = tuple(state["start"])
            except (ValueError, KeyError, TypeError):
                raise bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
                ) from None
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        next_token = None
        if limit and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            last = items[-1]["metadata"]
            next_token = base64.b64encode(
                json.dumps({"rv": rv, "start": [last.get("namespace", ""), last["name"]]}).encode()
            ).decode()
            meta["continue"] = next_token
            meta["remainingItemCount"] = remaining
        if table_version:
            return self._send_json(
                200,
                tables.table(
                    rt,
                    [self._present(rt, o) for o in items],
                    resource_version=str(rv),
                    include_object=query.get("includeObject", "Metadata"),
                    continue_token=next_token,
                    table_version=table_version,
                ),
            )
        if rt.builtin:
            out_items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]
        else:
            out_items = [self._present(rt, o) for o in items]
        self._send_json(
            200, {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": out_items}
        )

    def _verb_watch(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        emu = self.emulator
        rt = route.rt
        table_version = self._wants_table()
        accept = self._filter(rt, query)
        if route.name:
            by_name = route.name
            base_accept = accept
            accept = lambda o: base_accept(o) and o["metadata"]["name"] == by_name  # noqa: E731
        try:
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else DEFAULT_WATCH_SECONDS
        except ValueError:
            raise bad_request(f"invalid timeoutSeconds {query['timeoutSeconds']!r}") from None
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        expired: ApiError | None = None
        try:
            listener, initial = emu.store.watch(rt, route.namespace, query.get("resourceVersion"))
        except ApiError as err:
            if err.code != 410:
                raise
            expired, listener, initial = err, None, []
        self._ctx.status = 200
        self._log_request()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        include = query.get("includeObject", "Metadata")

        def send(event_type: str, obj: dict[str, Any]) -> None:
            if table_version and event_type in ("ADDED", "MODIFIED", "DELETED"):
                obj = tables.table(
                    rt,
                    [obj],
                    resource_version=obj["metadata"]["resourceVersion"],
                    include_object=include,
                    table_version=table_version,
                )
            line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        try:
            if expired is not None:
                send("ERROR", expired.status())
                return
            deadline = time.monotonic() + max(0.0, timeout)
            next_bookmark = time.monotonic() + emu.bookmark_seconds
            last_rv = emu.store.resource_version
            for event in initial:
                self._send_event(send, rt, event, accept)
            while not emu._stopping.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(0.0, next_bookmark - now))
                try:
                    event = listener.get(timeout=wait)  # type: ignore[union-attr]
                except queue.Empty:  # a timeout or a bookmark tick
                    if bookmarks and time.monotonic() >= next_bookmark:
                        send(
                            "BOOKMARK",
                            {
                                "kind": rt.kind,
                                "apiVersion": rt.api_version,
                                "metadata": {
                                    "resourceVersion": str(max(last_rv, emu.store.resource_version))
                                },
                            },
                        )
                        next_bookmark = time.monotonic() + emu.bookmark_seconds
                    continue
                if event is None:
                    break
                last_rv = event.rv
                self._send_event(send, rt, event, accept)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
            return
        finally:
            if listener is not None:
                emu.store.stop_watch(listener)
        with contextlib.suppress(OSError, ssl.SSLError):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _send_event(self, send, rt: ResourceType, event: WatchEvent, accept) -> None:
        new_ok = accept(event.object)
        if event.type == "MODIFIED":
            old_ok = event.old is not None and accept(event.old)
            if new_ok and old_ok:
                kind = "MODIFIED"
            elif new_ok:
                kind = "ADDED"
            elif old_ok:
                kind = "DELETED"
            else:
                return
        elif new_ok:
            kind = event.type
        else:
            return
        send(kind, self._present(rt, event.object))

    def _verb_create(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        obj = self._json_body(body)
        self._check_type(route.rt, obj)
        created = self.emulator.store.create(
            obj, namespace=route.namespace, resource=route.rt, dry_run=self._dry_run(query)
        )
        self._send_json(201, self._present(route.rt, created))

    def _verb_update(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        obj = self._json_body(body)
        store = self.emulator.store
        if route.subresource == "scale":
            return self._update_scale(route, lambda scale: obj, query)
        self._check_type(route.rt, obj)
        updated = store.replace(
            obj,
            resource=route.rt,
            name=route.name,
            namespace=route.namespace,
            subresource=route.subresource,
            dry_run=self._dry_run(query),
        )
        self._send_json(200, self._present(route.rt, updated))

    def _verb_patch(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        patch_type = PATCH_TYPES.get(content_type)
        if patch_type is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}",
            )
        payload = self._json_body(body)
        if route.subresource == "scale":
            from taltasks.sim.kube import patch as patches

            def patched(scale: dict[str, Any]) -> dict[str, Any]:
                if patch_type == "json":
                    return patches.json_patch(scale, payload)
                return patches.merge_patch(scale, patches.check_merge_patch_body(payload))

            return self._update_scale(route, patched, query)
        obj, created = self.emulator.store.patch(
            route.rt,
            route.name or "",
            payload,
            namespace=route.namespace,
            patch_type=patch_type,
            subresource=route.subresource,
            dry_run=self._dry_run(query),
            field_manager=query.get("fieldManager"),
            force=query.get("force") in ("true", "1"),
        )
        self._send_json(201 if created else 200, self._present(route.rt, obj))

    def _update_scale(self, route: _Route, change, query: dict[str, str]) -> None:
        store = self.emulator.store
        current = store.get_raw(route.rt, route.name or "", route.namespace)
        scale = change(_scale_of(route.rt, current))
        replicas = int((scale.get("spec") or {}).get("replicas", 0))
        path = _replicas_path(route.rt)

        def put(obj: dict[str, Any]) -> None:
            node = obj
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = replicas

        if self._dry_run(query):
            return self._send_json(200, scale)
        updated = store.mutate(route.rt, route.name or "", put, namespace=route.namespace)
        self._send_json(200, _scale_of(route.rt, updated))

    def _delete_options(self, query: dict[str, str], body: bytes) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if body:
            parsed = self._json_body(body)
            if isinstance(parsed, dict):
                options.update(parsed)
        if query.get("gracePeriodSeconds"):
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        if query.get("propagationPolicy"):
            options["propagationPolicy"] = query["propagationPolicy"]
        if options.get("dryRun") == ["All"] or self._dry_run(query):
            options["dryRun"] = True
        else:
            options.pop("dryRun", None)
        return options

    def _verb_delete(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        opts = self._delete_options(query, body)
        obj, gone = self.emulator.store.delete(
            route.rt,
            route.name or "",
            namespace=route.namespace,
            grace_period_seconds=opts.get("gracePeriodSeconds"),
            preconditions=opts.get("preconditions"),
            propagation_policy=opts.get("propagationPolicy"),
            dry_run=bool(opts.get("dryRun")),
        )
        if gone and not route.rt.return_deleted:
            details = {
                "name": obj["metadata"]["name"],
                "kind": route.rt.plural,
                "uid": obj["metadata"].get("uid"),
            }
            if route.rt.group:
                details["group"] = route.rt.group
            return self._send_json(200, success(200, details))
        self._send_json(200, self._present(route.rt, obj))

    def _verb_deletecollection(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        opts = self._delete_options(query, body)
        self.emulator.store.delete_collection(
            route.rt,
            route.namespace,
            label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"),
            grace_period_seconds=opts.get("gracePeriodSeconds"),
            dry_run=bool(opts.get("dryRun")),
        )
        self._send_json(200, success(200))

    def _verb_evict(self, route: _Route, query: dict[str, str], body: bytes) -> None:
        eviction = self._json_body(body)
        if not isinstance(eviction, dict):
            raise bad_request("the body of the request must be a policy/v1 Eviction object")
        self.emulator.store.evict(
            route.name or "", route.namespace or "", eviction, dry_run=self._dry_run(query)
        )
        self._send_json(201, success(201))


def _replicas_path(rt: ResourceType) -> tuple[str, ...]:
    return ("spec", "instances") if rt.group == "postgresql.cnpg.io" else ("spec", "replicas")


def _scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    node: Any = obj
    for part in _replicas_path(rt):
        node = (node or {}).get(part) if isinstance(node, dict) else None
    m = obj["metadata"]
    status = obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m
        },
        "spec": {"replicas": int(node or 0)},
        "status": {"replicas": int(status.get("replicas", status.get("instances", 0)) or 0)},
    }


def _no_route() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


def _forbidden(user: str, verb: str, route: _Route) -> ApiError:
    rt = route.rt
    resource = rt.plural + (f"/{route.subresource}" if route.subresource else "")
    where = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
    verb_word = "create" if verb == "evict" else verb
    subject = f'{rt.qualified} "{route.name}"' if route.name else rt.qualified
    return ApiError(
        403,
        "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {verb_word} resource "{resource}" in API group "{rt.group}" {where}',
        details={"name": route.name or "", "group": rt.group, "kind": rt.plural},
    )
