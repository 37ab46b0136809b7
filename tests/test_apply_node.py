"""talos.apply-node against the demo repository's simulated cluster: dry-run diffs, live
changes, changes that reboot (safely: cordoned and drained first, followed until the node is
back), each as the node's Talos version serves it — 1.14 takes reboot-only changes without
a reboot and apply-node says they are not in effect yet — and maintenance mode found out
without being told."""

from __future__ import annotations

import pytest

from configure_support import copy_demo, edit, move_to_subnet, run_invoke, set_pins
from taltasks.errors import InputError
from taltasks.model import load_cluster
from taltasks.sim.scenario import Scenario
from taltasks.sim.world import SimWorld
from taltasks.talos.config import TalosConfig
from taltasks.workflows.apply import ApplyOptions, apply_node, in_maintenance

FAST = {"reboot": 0.2, "boot": 0.05, "shutdown": 0.05, "install": 0.05}
SYSCTLS = "talos/patches/global/machine-sysctls.yaml"
KERNEL = "talos/patches/worker/machine-kernel.yaml"


def start(tmp_path, subnet, *, maintenance: bool = False, shipped: bool = False, talos: str | None = None):
    """The demo repo's cluster: before 1.14 (Talos v1.11.5) unless ``shipped`` (Talos 1.14,
    its documents); ``talos`` pins another version."""
    repo = move_to_subnet(copy_demo(tmp_path / "repo", shipped=shipped), subnet)
    if talos:
        set_pins(repo, {"talosVersion": talos})
    world = SimWorld.from_repo(
        repo, Scenario(timings=dict(FAST), maintenance=maintenance), directory=tmp_path / "sim"
    ).start()
    return repo, world, TalosConfig.load(str(tmp_path / "sim" / "talosconfig")).context()


def kube_of(world):
    """What the task hands apply_node: a way to connect to Kubernetes, used only to reboot."""
    from taltasks.kube.client import connect

    return lambda: connect(world.files.kubeconfig)


def apply_task(repo, tmp_path, host: str, *args: str):
    """``invoke talos.apply-node --node HOST`` in its own process, against the test's sim."""
    talosconfig = str(tmp_path / "sim" / "talosconfig")
    return run_invoke(
        "talos.apply-node", "--node", host, "--root", str(repo), "--talosconfig", talosconfig, *args, cwd=repo
    )


def node_writes(world, host: str) -> list:
    return [
        e for e in world.recorder.entries("kube.api", resource="nodes", verb="patch") if e["name"] == host
    ]


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


def test_a_change_that_needs_a_reboot_reboots_safely_up_to_1_13(configured):
    """Talos 1.11's AUTO would reboot the node by itself: apply-node cordons and drains it
    first, lets Talos reboot it, waits until it is back and uncordons it."""
    repo, world, context = configured
    edit(repo / KERNEL, "      - name: nbd", "      - name: nbd\n      - name: dm_crypt")
    node = world.talos.node("worker-2")
    boot = node.boot_id
    with pytest.raises(InputError, match="needs the Kubernetes API to cordon and drain"):
        apply_node(repo, load_cluster(repo), "worker-2", context)  # no way to drain: refused
    assert world.recorder.entries("talos.apply") == [] and node.boot_id == boot

    done = apply_node(repo, load_cluster(repo), "worker-2", context, kube=kube_of(world))
    assert (done.mode, done.rebooted, done.in_effect) == ("REBOOT", True, True)
    assert "machine.kernel" in done.details
    # returned only once the node was back: running, ready, on a new boot
    assert node.boot_id != boot and node.stage.text == "running" and node.ready
    [cordon, uncordon] = node_writes(world, "worker-2")
    [applied] = world.recorder.entries("talos.apply", node="worker-2")
    booted = world.recorder.entries("talos.boot", node="worker-2")[-1]
    assert cordon.seq < applied.seq < booted.seq < uncordon.seq and booted["boot_id"] == node.boot_id
    assert applied["mode"] == "REBOOT"  # Talos's own REBOOT mode, which 1.11 has
    assert not world.kube.store.get("nodes", "worker-2")["spec"].get("unschedulable")


RBD_PARAMETERS = ("name: rbd\n", "name: rbd\nparameters:\n  - single_major=Y\n")


@pytest.fixture
def talos14(tmp_path, loopback_subnet):
    repo, world, context = start(tmp_path, loopback_subnet, shipped=True)
    assert {n.version for n in world.talos.nodes} == {"v1.14.7"}
    yield repo, world, context
    world.stop()


def test_on_1_14_a_change_that_needs_a_reboot_is_reported_not_claimed(talos14, tmp_path):
    """Talos 1.14 takes module parameters without a reboot (AUTO is NO_REBOOT) and they act
    only at the next boot: apply-node says so, and does not say the change took effect."""
    repo, world, context = talos14
    edit(repo / KERNEL, *RBD_PARAMETERS)
    node = world.talos.node("worker-1")
    boot = node.boot_id
    preview = apply_node(repo, load_cluster(repo), "worker-1", context, ApplyOptions(dry_run=True))
    assert (preview.mode, preview.in_effect) == ("NO_REBOOT", False)
    assert "Not in effect until the node reboots" in preview.details

    result = apply_task(repo, tmp_path, "worker-1")
    assert result.returncode == 0, result.stderr
    assert "NOT in effect yet" in result.stderr
    assert "KernelModuleConfig/rbd parameters" in result.stderr and "after a reboot" in result.stderr
    assert "--mode reboot" in result.stderr
    [applied] = world.recorder.entries("talos.apply", node="worker-1")
    assert applied["mode"] == "NO_REBOOT"
    assert node.boot_id == boot and node_writes(world, "worker-1") == []  # no reboot, no cordon


def test_on_1_14_mode_reboot_applies_then_reboots_safely(talos14):
    repo, world, context = talos14
    edit(repo / KERNEL, *RBD_PARAMETERS)
    node = world.talos.node("worker-3")
    boot = node.boot_id
    done = apply_node(
        repo, load_cluster(repo), "worker-3", context, ApplyOptions(mode="reboot"), kube=kube_of(world)
    )
    assert (done.mode, done.rebooted, done.in_effect) == ("REBOOT", True, True)
    assert "KernelModuleConfig/rbd parameters" in done.details
    assert node.boot_id != boot and node.stage.text == "running" and node.ready
    rec = world.recorder
    [cordon, uncordon] = node_writes(world, "worker-3")
    [applied] = rec.entries("talos.apply", node="worker-3")
    assert applied["mode"] == "NO_REBOOT"  # never the REBOOT mode 1.14 refuses
    reboots = [e for e in rec.entries("talos.api", method="Reboot") if e["targets"] == [node.ip]]
    assert [(e["routing"], e["code"]) for e in reboots] == [("node", "OK")]
    [rebooted] = rec.entries("talos.reboot", node="worker-3")
    evicted = [e for e in rec.entries("kube.api", verb="create") if e.get("subresource") == "eviction"]
    assert cordon.seq < applied.seq < rebooted.seq < uncordon.seq
    assert all(cordon.seq < e.seq < rebooted.seq for e in evicted)
    assert not world.kube.store.get("nodes", "worker-3")["spec"].get("unschedulable")


@pytest.mark.parametrize(("talos", "staged"), [("v1.11.5", False), ("v1.13.9", True)])
def test_maintenance_mode_takes_the_modes_its_version_serves(tmp_path, loopback_subnet, talos, staged):
    repo, world, context = start(tmp_path, loopback_subnet, maintenance=True, talos=talos)
    try:
        node = world.talos.node("worker-1")
        options = ApplyOptions(mode="staged")
        if staged:  # 1.13+: apid read-only takes it and keeps it for the next boot
            done = apply_node(repo, load_cluster(repo), "worker-1", context, options)
            assert (done.mode, done.in_effect, done.maintenance) == ("STAGED", False, True)
            assert node.maintenance
            assert [e["mode"] for e in world.recorder.entries("talos.apply", node="worker-1")] == [
                "maintenance-staged"
            ]
        else:  # up to 1.12 the maintenance service has no staged mode: refused before sending
            with pytest.raises(InputError, match="takes no 'staged' apply"):
                apply_node(repo, load_cluster(repo), "worker-1", context, options)
            assert world.recorder.entries("talos.apply") == []
    finally:
        world.stop()


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
        result = apply_task(repo, tmp_path, "worker-3")
        assert result.returncode == 0, result.stderr
        assert "is maintenance mode" in result.stderr and "installed and running" in result.stderr
        assert not node.maintenance and node.stage.text == "running"
        assert [e["mode"] for e in world.recorder.entries("talos.apply", node="worker-3")] == [
            "maintenance-install"
        ]
    finally:
        world.stop()
