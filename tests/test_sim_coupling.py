"""Talos machines drive their Kubernetes Nodes, and operators react (the whole simulated world)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from taltasks.sim import scenario as sc
from taltasks.sim.world import SimWorld
from taltasks.talos import actions
from taltasks.talos.client import TalosClient
from taltasks.talos.config import Context
from testpaths import REPO_ROOT
from waiting import wait_until

SCENARIO = REPO_ROOT / "tests" / "scenarios" / "rook-cnpg.yaml"
FAST = {"reboot": 0.4, "boot": 0.05, "shutdown": 0.05, "install": 0.05, "upgrade_pull": 0.05}


def world_from(loopback_subnet, **overrides) -> SimWorld:
    scenario = sc.load(SCENARIO)
    scenario.timings.update(FAST)
    for k, v in overrides.items():
        setattr(scenario, k, v)
    return SimWorld(scenario, subnet=loopback_subnet)


@pytest.fixture
def world(loopback_subnet):
    w = world_from(loopback_subnet).start()
    w.kube.wait_settled(15)
    yield w
    w.stop()


def test_upgrading_an_osd_node_shows_in_kubernetes_and_ceph(world):
    rec = world.recorder
    worker = world.talos.node("worker-2")
    with TalosClient.from_context(world.talos.talosconfig().context()) as tc:
        actions.upgrade(tc, worker.ip, "ghcr.io/siderolabs/installer:v1.12.1", timeout=30)
    node = world.kube.wait_for(
        lambda s: (
            (n := s.get("nodes", "worker-2"))["status"]["nodeInfo"]["osImage"] == "Talos (v1.12.1)" and n
        ),
        10,
        "worker-2 reporting the new OS",
    )
    assert node["status"]["nodeInfo"]["bootID"] == worker.boot_id
    transitions = [e["ready"] for e in rec.entries("node.ready", node="worker-2")]
    assert transitions[-2:] == [False, True]
    world.kube.wait_settled(15)
    healths = [(e.get("health"), tuple(e.get("details") or ())) for e in rec.entries("ceph.health")]
    assert any(h == "HEALTH_WARN" and "OSD_DOWN" in d for h, d in healths)
    assert healths[-1][0] == "HEALTH_OK"
    # ordering from the simulator's own record: down before WARN, back before OK
    down = next(e.seq for e in rec.entries("node.ready", node="worker-2") if e["ready"] is False)
    warn = next(e.seq for e in rec.entries("ceph.health") if e.get("health") == "HEALTH_WARN")
    assert down < warn


def test_fresh_cluster_has_no_api_until_bootstrap(loopback_subnet):
    from taltasks.sim.talos import minconfig

    world = world_from(loopback_subnet, maintenance=True).start()
    try:
        assert not world.coupling.started
        assert world.status()["kubernetes_api"] is None
        for n in world.talos.nodes:
            cfg = minconfig.render(
                cluster_name="demo",
                endpoint=f"https://{world.api_address}:6443",
                hostname=n.hostname,
                ip=n.ip,
                control_plane=n.control_plane,
                version="v1.11.5",
                kubernetes_version="v1.34.3",
                os_ca=world.talos.secrets.os_ca,
                k8s_ca=world.talos.secrets.k8s_ca,
            )
            with TalosClient.from_context(Context("m", endpoints=[n.ip]), insecure=True) as m:
                m.apply_configuration(cfg)[0].unwrap()
        wait_until(
            lambda: all(n.reachable and n.stage.text == "running" for n in world.talos.nodes), 15, "installed"
        )
        with TalosClient.from_context(world.talos.talosconfig().context()) as tc:
            tc.bootstrap(node=world.talos.node("cp-1").ip)
        world.kube.wait_for(lambda s: len(s.list("nodes")) == 6, 10, "six Nodes registered")
        assert world.coupling.started and world.status()["kubernetes_api"].startswith("https://127.")
        assert [e.kind for e in world.recorder.entries("kube.api_started")] == ["kube.api_started"]
    finally:
        world.stop()


def test_sim_up_scenario_then_kubectl_shows_every_node_ready(tmp_path):
    import shutil

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (Debian: apt install kubernetes-client)")
    up = subprocess.run(
        [sys.executable, "-m", "invoke", "sim.up", "--dir", str(tmp_path), "--scenario", str(SCENARIO)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stderr
    try:
        out = subprocess.run(
            [kubectl, "--kubeconfig", str(tmp_path / "kubeconfig"), "get", "nodes", "--no-headers"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        rows = [line.split() for line in out.stdout.strip().splitlines()]
        assert sorted(r[0] for r in rows) == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"]
        assert all(r[1] == "Ready" for r in rows), out.stdout
    finally:
        subprocess.run(
            [sys.executable, "-m", "invoke", "sim.down", "--dir", str(tmp_path)], cwd=REPO_ROOT, timeout=60
        )
