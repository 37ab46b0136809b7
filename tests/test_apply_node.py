"""talos.apply-node against the demo repository's simulated cluster: dry-run diffs, live
changes, changes that reboot (followed until the node is back), and maintenance mode
found out without being told."""

from __future__ import annotations

import pytest

from configure_support import copy_demo, edit, move_to_subnet, run_invoke
from taltasks.errors import InputError
from taltasks.model import load_cluster
from taltasks.sim.scenario import Scenario
from taltasks.sim.world import SimWorld
from taltasks.talos.config import TalosConfig
from taltasks.workflows.apply import ApplyOptions, apply_node, in_maintenance

FAST = {"reboot": 0.2, "boot": 0.05, "shutdown": 0.05, "install": 0.05}
SYSCTLS = "talos/patches/global/machine-sysctls.yaml"
KERNEL = "talos/patches/worker/machine-kernel.yaml"


def start(tmp_path, subnet, *, maintenance: bool = False):
    repo = move_to_subnet(copy_demo(tmp_path / "repo"), subnet)
    world = SimWorld.from_repo(
        repo, Scenario(timings=dict(FAST), maintenance=maintenance), directory=tmp_path / "sim"
    ).start()
    return repo, world, TalosConfig.load(str(tmp_path / "sim" / "talosconfig")).context()


@pytest.fixture
def configured(tmp_path, loopback_subnet):
    repo, world, context = start(tmp_path, loopback_subnet)
    yield repo, world, context
    world.stop()


def test_dry_run_shows_the_diff_then_a_live_change_applies_without_reboot(configured):
    repo, world, context = configured
    edit(
        repo / SYSCTLS,
        '    net.core.wmem_max: "7500000"',
        '    net.core.wmem_max: "7500000"\n    vm.max_map_count: "262144"',
    )
    cluster = load_cluster(repo)
    boot = world.talos.node("worker-1").boot_id
    assert not in_maintenance(context, world.talos.node("worker-1").ip)

    preview = apply_node(repo, cluster, "worker-1", context, ApplyOptions(dry_run=True))
    assert (preview.maintenance, preview.mode) == (False, "NO_REBOOT")
    assert preview.config_source == "rendered from talos/ (not written)"
    assert "without a reboot (skipped in dry-run)" in preview.details
    assert "+    vm.max_map_count: '262144'" in preview.details
    assert world.recorder.entries("talos.apply") == []

    done = apply_node(repo, cluster, "worker-1", context)
    assert (done.mode, done.rebooted) == ("NO_REBOOT", False)
    assert [e["mode"] for e in world.recorder.entries("talos.apply", node="worker-1")] == ["NO_REBOOT"]
    assert world.talos.node("worker-1").boot_id == boot


def test_a_change_that_needs_a_reboot_waits_for_the_node_to_be_back(configured):
    repo, world, context = configured
    edit(repo / KERNEL, "      - name: nbd", "      - name: nbd\n      - name: dm_crypt")
    node = world.talos.node("worker-2")
    boot = node.boot_id

    done = apply_node(repo, load_cluster(repo), "worker-2", context)
    assert (done.mode, done.rebooted) == ("REBOOT", True)
    assert "machine.kernel" in done.details
    # returned only once the node was back: running, ready, on a new boot
    assert node.boot_id != boot and node.stage.text == "running" and node.ready
    applied = world.recorder.entries("talos.apply", node="worker-2")[0]
    booted = world.recorder.entries("talos.boot", node="worker-2")[-1]
    assert applied.seq < booted.seq and booted["boot_id"] == node.boot_id


def test_unknown_mode_and_unknown_node_are_refused(configured):
    repo, world, context = configured
    cluster = load_cluster(repo)
    with pytest.raises(InputError, match="unknown apply mode 'sometimes'"):
        apply_node(repo, cluster, "worker-1", context, ApplyOptions(mode="sometimes"))
    with pytest.raises(InputError, match="unknown node 'worker-7'"):
        apply_node(repo, cluster, "worker-7", context)
    assert world.recorder.entries("talos.apply") == []


def test_maintenance_mode_is_detected_and_the_install_is_followed(tmp_path, loopback_subnet):
    repo, world, context = start(tmp_path, loopback_subnet, maintenance=True)
    try:
        node = world.talos.node("worker-3")
        assert in_maintenance(context, node.ip)
        assert (
            not in_maintenance(context, world.talos.node("cp-1").ip) or world.talos.node("cp-1").maintenance
        )
        result = run_invoke(
            "talos.apply-node",
            "--node",
            "worker-3",
            "--root",
            str(repo),
            "--talosconfig",
            str(tmp_path / "sim" / "talosconfig"),
            cwd=repo,
        )
        assert result.returncode == 0, result.stderr
        assert "is maintenance mode" in result.stderr and "installed and running" in result.stderr
        assert not node.maintenance and node.stage.text == "running"
        assert [e["mode"] for e in world.recorder.entries("talos.apply", node="worker-3")] == [
            "maintenance-install"
        ]
    finally:
        world.stop()
