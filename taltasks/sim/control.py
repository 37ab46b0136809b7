"""A tiny HTTP control API for a running simulator, on a Unix socket only its user can use.

``sim.up`` starts the world in a background process; tasks and tests reach it here:

    GET  /status                 → world status (nodes, stages, versions, faults)
    GET  /record?since=N         → record entries with seq ≥ N
    POST /faults {"node": "worker-2", "never_returns": false}   → Talos faults of a node
    POST /stop                   → shut the world down and exit

:class:`SimControl` is the client side, found through ``DIR/sim.json``.

The API can stop the simulator, break its nodes and read its record (which holds what
was applied, machine configs included), so it listens where :mod:`taltasks.private_socket`
puts sockets: a 0700 directory of its own, and only processes of the same user are
served (``sim.status`` and ``sim.down`` run as other processes of that user). It is never
a TCP port, which any local user could reach.
"""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from taltasks.errors import ConnectionFailed, InputError


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    refused = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        from taltasks.private_socket import peer_allowed

        if peer_allowed(request, same_process=False):
            return True
        self.refused += 1
        return False


class ControlServer:
    def __init__(self, world: Any, on_stop: Callable[[], None]) -> None:
        import os

        from taltasks.private_socket import private_dir, remove_private_dir

        self.world = world
        self.on_stop = on_stop
        self.directory, self.path = private_dir("sim", "control.sock")
        try:
            self.httpd = _UnixHTTPServer(str(self.path), self._handler())
            os.chmod(self.path, 0o600)
        except BaseException:
            remove_private_dir(self.directory)
            raise

    @property
    def address(self) -> str:
        """What ``sim.json`` records for :class:`SimControl`."""
        return f"unix:{self.path}"

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, name="sim-control", daemon=True).start()

    def stop(self) -> None:
        from taltasks.private_socket import remove_private_dir

        self.httpd.shutdown()
        self.httpd.server_close()
        remove_private_dir(self.directory)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "local"  # a Unix socket peer has no address

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/status":
                    self._send(200, server.world.status())
                elif url.path == "/record":
                    since = int(parse_qs(url.query).get("since", ["0"])[0])
                    self._send(200, [e.as_dict() for e in server.world.recorder.entries() if e.seq >= since])
                else:
                    self._send(404, {"error": f"no such path {url.path}"})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError as exc:
                    self._send(400, {"error": f"body is not JSON: {exc}"})
                    return
                try:
                    if url.path == "/faults":
                        node = body.pop("node")
                        server.world.set_talos_faults(node, **body)
                        self._send(200, server.world.status())
                    elif url.path == "/stop":
                        self._send(200, {"stopping": True})
                        threading.Thread(target=server.on_stop, daemon=True).start()
                    else:
                        self._send(404, {"error": f"no such path {url.path}"})
                except (KeyError, ValueError, TypeError) as exc:
                    self._send(400, {"error": str(exc)})

        return Handler


class SimControl:
    """Client for a simulator started with ``sim.up --dir DIR``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        state = self.directory / "sim.json"
        if not state.exists():
            raise InputError(
                f"no simulator state in {self.directory}", hint="start one with `invoke sim.up --dir DIR`"
            )
        try:
            self.state = json.loads(state.read_text())
        except json.JSONDecodeError:
            raise InputError("simulator state file is corrupt", where=str(state)) from None
        address = str(self.state.get("control", ""))
        if not address.startswith("unix:"):
            raise InputError(
                f"simulator state names no control socket ({address or 'none'})",
                where=str(state),
                hint="a simulator from an older taltasks: stop its process, delete sim.json, start it again",
            )
        self.path = address[len("unix:") :]

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        conn = _UnixHTTPConnection(self.path, timeout)
        try:
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectionFailed(
                f"simulator in {self.directory} is not answering ({exc})",
                hint="is it running? `invoke sim.status --dir DIR`",
            ) from None
        finally:
            conn.close()
        if resp.status >= 400:
            detail = json.loads(payload or b"{}").get("error", resp.reason)
            raise InputError(f"simulator refused {method} {path}: {detail}")
        return json.loads(payload)

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/status")

    def record(self, since: int = 0) -> list[dict[str, Any]]:
        return self._request("GET", f"/record?since={since}")

    def set_faults(self, node: str, **faults: bool) -> dict[str, Any]:
        return self._request("POST", "/faults", {"node": node, **faults})

    def stop(self) -> None:
        self._request("POST", "/stop", {})


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the control socket (the stdlib client only dials TCP)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock
