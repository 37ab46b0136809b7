"""kubectl (Debian's kubernetes-client) works against the emulator: get, cordon, uncordon,
and a drain through the eviction API."""

# ruff: noqa: F811 - pytest fixtures imported from kubesim are redefined as parameters

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from kubesim import kube_ca, make_world  # noqa: F401 - fixtures

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed (Debian package kubernetes-client)"
)


def kubectl(world, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [KUBECTL, "--kubeconfig", str(world.kubeconfig_path), "--request-timeout=10s", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def table(text: str) -> list[dict[str, str]]:
    lines = text.strip().splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split(), strict=False)) for line in lines[1:]]


def test_kubectl_get_shows_ready_nodes_pods_and_custom_resources(make_world):
    world = make_world()
    nodes = table(kubectl(world, "get", "nodes").stdout)
    assert [(n["NAME"], n["STATUS"], n["VERSION"]) for n in nodes] == [
        (name, "Ready", "v1.34.3") for name in ("cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3")
    ]
    assert [n["ROLES"] for n in nodes[:3]] == ["control-plane"] * 3
    wide = kubectl(world, "get", "no", "-o", "wide").stdout
    assert "Talos (v1.11.5)" in wide and world.nodes[3][1] in wide
    pods = table(kubectl(world, "get", "pods", "-n", "database").stdout)
    assert {p["NAME"]: (p["READY"], p["STATUS"]) for p in pods}["postgres-1"] == ("1/1", "Running")
    ceph = kubectl(world, "get", "cephcluster", "-n", "rook-ceph").stdout
    assert "HEALTH_OK" in ceph and "Ready" in ceph
    as_json = kubectl(
        world, "get", "clusters.postgresql.cnpg.io", "-A", "-o", "jsonpath={.items[*].status.phase}"
    ).stdout
    assert as_json == "Cluster in healthy state Cluster in healthy state"
    missing = kubectl(world, "get", "node", "nope", check=False)
    assert missing.returncode == 1 and 'nodes "nope" not found' in missing.stderr


def test_kubectl_cordon_and_uncordon(make_world):
    world = make_world()
    assert "node/worker-1 cordoned" in kubectl(world, "cordon", "worker-1").stdout
    assert world.store.get("nodes", "worker-1")["spec"]["unschedulable"] is True
    status = {n["NAME"]: n["STATUS"] for n in table(kubectl(world, "get", "nodes").stdout)}
    assert status["worker-1"] == "Ready,SchedulingDisabled"
    assert "node/worker-1 uncordoned" in kubectl(world, "uncordon", "worker-1").stdout
    assert not world.store.get("nodes", "worker-1")["spec"].get("unschedulable")
    patches = world.emulator.requests.filter(verb="patch", resource="nodes", name="worker-1")
    assert [r.content_type for r in patches] == ["application/strategic-merge-patch+json"] * 2


def test_kubectl_drain_uses_the_eviction_api(make_world):
    world = make_world()
    proc = kubectl(
        world, "drain", "worker-3", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s"
    )
    assert "node/worker-3 drained" in proc.stdout
    evictions = world.emulator.requests.filter(verb="evict", status=201)
    assert {r.namespace for r in evictions} >= {"database", "rook-ceph"}
    kubectl(world, "uncordon", "worker-3")


def test_shipped_scenario_shows_every_node_ready(loopback_subnet, kube_ca, tmp_path):
    """The issue's acceptance line, without the Talos half: the rook-cnpg scenario's
    Kubernetes world comes up and `kubectl get nodes` lists every node Ready."""
    from kubesim import cluster_nodes

    from taltasks.sim.addresses import api_address
    from taltasks.sim.kubeworld import KubeWorld
    from taltasks.yamlpos import YamlDoc

    doc = YamlDoc.load(Path(__file__).parent / "scenarios" / "rook-cnpg.yaml")
    with KubeWorld.from_scenario(
        doc, host=api_address(loopback_subnet), ca=kube_ca, nodes=cluster_nodes(loopback_subnet)
    ) as world:
        world.wait_settled(15)
        world.kubeconfig_path = tmp_path / "kubeconfig"
        world.kubeconfig_path.write_text(world.kubeconfig("demo"))
        nodes = table(kubectl(world, "get", "nodes").stdout)
        assert len(nodes) == 6 and {n["STATUS"] for n in nodes} == {"Ready"}
        assert world.errors == []
