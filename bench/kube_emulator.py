"""Kubernetes API emulator figures, with the emulator in its own process (as under sim.up).

Prints list requests per second over HTTPS with client-certificate auth (one keep-alive
connection, four in parallel, and through the official Python client), target ≥ 500/s; and
watch delivery latency — from sending a change (PATCH) to reading its event on an open
watch — p50 and p95, target p50 ≤ 50 ms. Ratios are measured/target for throughput and
target/measured for latency, so ≥ 1 means the target is met.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import compile_project, p50, table

LIST_TARGET = 500.0  # requests per second
WATCH_TARGET = 0.050  # seconds, p50
PODS = 20
SECONDS = 2.0  # per throughput run (--quick: a quarter)
SAMPLES = 200  # watch deliveries (--quick: a quarter)


def _serve(conn) -> None:  # runs in the child process
    from taltasks.machineconfig.pki import create_ca
    from taltasks.sim.addresses import api_address, free_subnet
    from taltasks.sim.kube.server import KubeEmulator

    ca = create_ca(organization="kubernetes", algorithm="ecdsa-p256")
    emu = KubeEmulator(api_address(free_subnet()), 6443, ca=ca).start()
    emu.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
    for i in range(PODS):
        emu.store.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"pod-{i}", "namespace": "bench", "labels": {"app": "bench"}},
                "spec": {
                    "nodeName": "worker-1",
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                },
            }
        )
    emu.store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe", "namespace": "bench"}}
    )
    client = emu.client_certificate()
    conn.send(
        {
            "host": emu.host,
            "port": emu.port,
            "ca": ca.crt,
            "crt": client.crt,
            "key": client.openssl_key,
            "kubeconfig": emu.kubeconfig("bench"),
        }
    )
    conn.recv()  # stop
    emu.stop()


class Endpoint:
    def __init__(self, info: dict, directory: Path) -> None:
        self.host, self.port = info["host"], info["port"]
        (directory / "c.crt").write_bytes(info["crt"])
        (directory / "c.key").write_bytes(info["key"])
        self.ctx = ssl.create_default_context(cadata=info["ca"].decode())
        self.ctx.load_cert_chain(directory / "c.crt", directory / "c.key")

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=10)


def list_rate(endpoint: Endpoint, connections: int, seconds: float) -> float:
    counts = [0] * connections
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        conn = endpoint.connect()
        while time.perf_counter() < stop:
            conn.request(
                "GET",
                "/api/v1/namespaces/bench/pods?labelSelector=app%3Dbench",
                headers={"Accept": "application/json"},
            )
            body = conn.getresponse().read()
            assert body.startswith(b'{"kind":"PodList"')
            counts[i] += 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def client_list_rate(kubeconfig: Path, seconds: float) -> float:
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    count, stop = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop:
        api.list_namespaced_pod("bench", _preload_content=False).data  # noqa: B018 - read the body
        count += 1
    return count / (time.perf_counter() - started)


def watch_latencies(endpoint: Endpoint, samples: int) -> list[float]:
    watcher = endpoint.connect()
    watcher.request(
        "GET",
        "/api/v1/namespaces/bench/configmaps?watch=true&timeoutSeconds=120&fieldSelector=metadata.name%3Dprobe",
    )
    stream = watcher.getresponse()
    received: dict[str, float] = {}
    arrived = threading.Condition()

    def read() -> None:
        try:
            while line := stream.readline():  # chunked transfer: http.client joins the chunks
                if not line.strip():
                    continue
                seq = (json.loads(line)["object"].get("data") or {}).get("seq")
                if seq is not None:
                    with arrived:
                        received[seq] = time.perf_counter()
                        arrived.notify_all()
        except (OSError, ValueError, AttributeError):
            # we shut the socket down under http.client when the bench finished; it reports
            # that as whichever of these it trips over first
            return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    writer = endpoint.connect()
    latencies = []
    for i in range(samples):
        seq = str(i)
        body = json.dumps({"data": {"seq": seq}}).encode()
        sent = time.perf_counter()
        writer.request(
            "PATCH",
            "/api/v1/namespaces/bench/configmaps/probe",
            body=body,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        writer.getresponse().read()
        with arrived:
            arrived.wait_for(lambda s=seq: s in received, timeout=5)
        latencies.append(received[seq] - sent)
    # unblock the reader first: closing an SSL socket another thread reads from waits for it
    watcher.sock.shutdown(socket.SHUT_RDWR)
    reader.join(5)
    watcher.close()
    writer.close()
    return latencies


def main(quick: bool = False) -> dict[str, float]:
    compile_project()
    seconds, samples = (SECONDS / 4, SAMPLES // 4) if quick else (SECONDS, SAMPLES)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), daemon=True)
    proc.start()
    info = parent.recv()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp:
            endpoint = Endpoint(info, Path(tmp))
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(info["kubeconfig"])
            one = list_rate(endpoint, 1, seconds)
            four = list_rate(endpoint, 4, seconds)
            via_client = client_list_rate(kubeconfig, seconds)
            lat = watch_latencies(endpoint, samples)
    finally:
        parent.send("stop")
        proc.join(timeout=10)
    lat_p50, lat_p95 = p50(lat), statistics.quantiles(lat, n=20)[18]
    table(
        f"Kubernetes API emulator (own process, HTTPS + client certs, list of {PODS} pods)",
        [
            (
                "list req/s, 1 keep-alive connection",
                f"{one:.0f}/s",
                f"≥ {LIST_TARGET:.0f}/s",
                f"{one / LIST_TARGET:.2f}×",
            ),
            (
                "list req/s, 4 connections",
                f"{four:.0f}/s",
                f"≥ {LIST_TARGET:.0f}/s",
                f"{four / LIST_TARGET:.2f}×",
            ),
            (
                "list req/s, official Python client",
                f"{via_client:.0f}/s",
                f"≥ {LIST_TARGET:.0f}/s",
                f"{via_client / LIST_TARGET:.2f}×",
            ),
            (
                "watch delivery after PATCH, p50",
                f"{lat_p50 * 1000:.1f} ms",
                f"≤ {WATCH_TARGET * 1000:.0f} ms",
                f"{WATCH_TARGET / lat_p50:.1f}×",
            ),
            ("watch delivery after PATCH, p95", f"{lat_p95 * 1000:.1f} ms", "(info)", "-"),
        ],
    )
    return {
        "list_one": one,
        "list_four": four,
        "list_client": via_client,
        "watch_p50_ms": lat_p50 * 1000,
        "watch_p95_ms": lat_p95 * 1000,
    }


if __name__ == "__main__":
    main()
