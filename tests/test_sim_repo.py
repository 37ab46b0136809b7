"""The simulator runs the cluster a repository describes, with the repository's own CAs."""

from __future__ import annotations

import pytest

from configure_support import copy_demo, edit, move_to_subnet
from taltasks.errors import InputError
from taltasks.sim.scenario import Scenario
from taltasks.sim.world import SimWorld
from taltasks.talos.client import TalosClient


def test_repo_cluster_answers_to_the_repo_talosconfig(tmp_path, loopback_subnet):
    from taltasks.machineconfig.render import render_talosconfig
    from taltasks.model import load_cluster
    from taltasks.secrets.store import SecretStore

    repo = move_to_subnet(copy_demo(tmp_path / "repo"), loopback_subnet)
    world = SimWorld.from_repo(repo, Scenario(timings={"reboot": 0.2})).start()
    try:
        cluster = load_cluster(repo)
        names = [n.hostname for n in world.talos.nodes]
        assert names == [n.hostname for n in cluster.nodes]
        assert [n.ip for n in world.talos.nodes] == [n.ip for n in cluster.nodes]
        talosconfig = render_talosconfig(cluster, SecretStore(repo).load())
        with TalosClient.from_context(talosconfig.context()) as tc:
            results = tc.version()
            assert len(results) == 6 and all(r.ok and r.value.tag == cluster.talos_version for r in results)
            mc = tc.get("MachineConfigs.config.talos.dev", "v1alpha1", node=cluster.node("worker-1").ip)
            assert "factory.talos.dev/metal-installer/" in mc.spec  # the config configure generates
    finally:
        world.stop()


def test_non_loopback_definition_is_refused_before_any_traffic(tmp_path, loopback_subnet):
    repo = move_to_subnet(copy_demo(tmp_path / "repo"), loopback_subnet)
    base = loopback_subnet.rsplit(".", 1)[0]
    edit(repo / "talos" / "talconfig.yaml", f"ipAddress: {base}.22", "ipAddress: 203.0.113.22")
    with pytest.raises(InputError) as info:
        SimWorld.from_repo(repo, Scenario())
    assert "node worker-2 is '203.0.113.22'" in info.value.message
    assert "loopback" in info.value.message
