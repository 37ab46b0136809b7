"""A tiny HTTP control API for a running simulator (loopback only).

``sim.up`` starts the world in a background process; tasks and tests reach it here:

    GET  /status                 → world status (nodes, stages, versions, faults)
    GET  /record?since=N         → record entries with seq ≥ N
    POST /faults {"node": "worker-2", "never_returns": false}   → Talos faults of a node
    POST /kube-faults {...}      → faults of the Kubernetes world (when it runs)
    POST /stop                   → shut the world down and exit

:class:`SimControl` is the client side, found through ``DIR/sim.json``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from taltasks.errors import ConnectionFailed, InputError


class ControlServer:
    def __init__(self, world: Any, on_stop: Callable[[], None]) -> None:
        self.world = world
        self.on_stop = on_stop
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, name="sim-control", daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

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
                    elif url.path == "/kube-faults":
                        if server.world.kube is None:
                            self._send(409, {"error": "this world has no Kubernetes side"})
                            return
                        server.world.kube.set_faults(body)
                        self._send(200, {"ok": True})
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
        self.url = self.state["control"]

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise InputError(f"simulator refused {method} {path}: {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise ConnectionFailed(
                f"simulator in {self.directory} is not answering ({exc})",
                hint="is it running? `invoke sim.status --dir DIR`",
            ) from None

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/status")

    def record(self, since: int = 0) -> list[dict[str, Any]]:
        return self._request("GET", f"/record?since={since}")

    def set_faults(self, node: str, **faults: bool) -> dict[str, Any]:
        return self._request("POST", "/faults", {"node": node, **faults})

    def set_kube_faults(self, **faults: Any) -> Any:
        return self._request("POST", "/kube-faults", faults)

    def stop(self) -> None:
        self._request("POST", "/stop", {})
