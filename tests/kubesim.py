"""Fixtures for tests of the Kubernetes emulator, the simulated world and taltasks.kube.

Imported by the test modules that need them (``from kubesim import ...``), so the shared
conftest stays untouched. Everything listens on a free 127.X.Y.0/24.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from taltasks.sim.addresses import api_address, control_plane_address, worker_address
from taltasks.sim.record import Recorder
from taltasks.yamlpos import YamlDoc

DEMO_SCENARIO = """\
cluster: {name: demo, controlPlanes: 3, workers: 3, talosVersion: v1.11.5, kubernetesVersion: v1.34.3}
nodes: {worker-1: {zone: zone-a}, worker-2: {zone: zone-b}, worker-3: {zone: zone-c}}
ceph:
  osds: {worker-1: [0], worker-2: [1], worker-3: [2]}
  mons: [cp-1, cp-2, cp-3]
  recoverySeconds: 0.3
  checkIntervalSeconds: 0.1
cnpg:
  switchoverSeconds: 0.2
  clusters:
    - {namespace: database, name: postgres, instances: 3, nodes: [worker-1, worker-2, worker-3]}
    - {namespace: database, name: immich, instances: 2, nodes: [worker-2, worker-3]}
flux:
  reconcileSeconds: 0.05
  kustomizations: [{namespace: flux-system, name: cluster-apps}, {namespace: flux-system, name: tuppr, suspend: true}]
  helmReleases: [{namespace: kube-system, name: cilium, chart: cilium, version: 1.18.4}]
workloads:
  - {kind: DaemonSet, namespace: kube-system, name: kube-proxy, tolerateControlPlane: true}
  - {kind: Deployment, namespace: default, name: web, replicas: 2, pdb: {minAvailable: 1}}
"""


@pytest.fixture(scope="session")
def kube_ca():
    from taltasks.machineconfig.pki import create_ca

    return create_ca(organization="kubernetes", algorithm="ecdsa-p256")


def cluster_nodes(subnet: str, control_planes: int = 3, workers: int = 3) -> list[tuple[str, str, bool]]:
    return [(f"cp-{i + 1}", control_plane_address(subnet, i), True) for i in range(control_planes)] + [
        (f"worker-{i + 1}", worker_address(subnet, i), False) for i in range(workers)
    ]


@pytest.fixture
def emulator(loopback_subnet, kube_ca) -> Iterator:
    from taltasks.sim.kube.server import KubeEmulator

    emu = KubeEmulator(
        api_address(loopback_subnet), 6443, ca=kube_ca, recorder=Recorder(), bookmark_seconds=0.2
    )
    emu.start()
    yield emu
    emu.stop()
    assert emu.errors == [], emu.errors


@pytest.fixture
def kubeconfig(emulator, tmp_path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(emulator.kubeconfig("demo"))
    return path


@pytest.fixture
def api(kubeconfig):
    """The official client's ApiClient for the emulator's admin kubeconfig."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(kubeconfig))
    yield client
    client.close()


def scenario_doc(text: str = DEMO_SCENARIO, name: str = "scenario.yaml") -> YamlDoc:
    return YamlDoc.load(name, text=textwrap.dedent(text))


@pytest.fixture
def make_world(loopback_subnet, kube_ca, tmp_path):
    """``make_world(text)`` → a started KubeWorld (3 control planes, 3 workers, Ready),
    with its kubeconfig at ``world.kubeconfig_path``; stopped and checked after the test."""
    from taltasks.sim.kubeworld import KubeWorld

    worlds = []

    def make(text: str = DEMO_SCENARIO, *, workers: int = 3, settle: bool = True):
        recorder = Recorder()
        world = KubeWorld.from_scenario(
            scenario_doc(text),
            host=api_address(loopback_subnet),
            ca=kube_ca,
            recorder=recorder,
            nodes=cluster_nodes(loopback_subnet, 3, workers),
        )
        worlds.append(world)
        world.kubeconfig_path = tmp_path / "kubeconfig"
        world.kubeconfig_path.write_text(world.kubeconfig("demo"))
        if settle:
            world.wait_settled(15)
        return world

    yield make
    for w in worlds:
        w.stop()
        assert w.errors == [], w.errors
