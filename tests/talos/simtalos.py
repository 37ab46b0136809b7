"""Fixtures for tests against simulated Talos nodes (real TLS, real gRPC, loopback only)."""

from __future__ import annotations

import pytest

from taltasks.sim.scenario import Scenario
from taltasks.sim.talos import minconfig
from taltasks.sim.world import SimWorld

FAST = {
    "reboot": 0.3,
    "boot": 0.05,
    "shutdown": 0.05,
    "install": 0.05,
    "upgrade_pull": 0.05,
    "image_pull": 0.01,
}


def make_world(subnet: str, **overrides) -> SimWorld:
    sc = Scenario(name="test", talos_version="v1.11.5", timings=dict(FAST))
    for key, value in overrides.items():
        setattr(sc, key, value)
    return SimWorld(sc, subnet=subnet)


@pytest.fixture
def world(loopback_subnet):
    w = make_world(loopback_subnet).start()
    yield w
    w.stop()


@pytest.fixture
def admin(world):
    """An os:admin client whose endpoints are the control planes and default nodes none."""
    from taltasks.talos.client import TalosClient

    client = TalosClient.from_context(world.talos.talosconfig().context())
    yield client
    client.close()


def client_with(world, *, roles=("os:admin",), endpoints=None, nodes=None):
    from taltasks.talos.client import TalosClient

    ctx = world.talos.talosconfig(roles=roles, endpoints=endpoints, nodes=nodes).context()
    return TalosClient.from_context(ctx)


def ips(world, role=None):
    return [n.ip for n in world.talos.nodes if role is None or n.role == role]


def node_config(world, name, *, version="v1.11.5"):
    node = world.talos.node(name)
    return minconfig.render(
        cluster_name="test",
        endpoint=f"https://{world.api_address}:6443",
        hostname=name,
        ip=node.ip,
        control_plane=name.startswith("cp-"),
        version=version,
        kubernetes_version="v1.34.3",
        os_ca=world.talos.secrets.os_ca,
        k8s_ca=world.talos.secrets.k8s_ca,
    )
