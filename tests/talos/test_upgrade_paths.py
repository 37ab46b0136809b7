"""One node's upgrade on the path its version calls for, as the simulator's record shows it:
ImageService.Pull + LifecycleService.Upgrade + Reboot from 1.13, the legacy Upgrade before —
every call with `node` metadata."""

from __future__ import annotations

import pytest

from simtalos import make_world
from taltasks.errors import OperationFailed
from taltasks.talos import actions
from taltasks.talos.generations import generation
from taltasks.talos.results import TalosCallError

TARGET = "ghcr.io/siderolabs/installer:v1.14.7"
VERSIONS = {"cp-3": "v1.12.11", "worker-1": "v1.14.0", "worker-2": "v1.13.9", "worker-3": "v1.12.11"}


@pytest.fixture
def world(loopback_subnet):
    """Nodes on several Talos minors (overrides the folder's all-1.11 world; `admin` follows)."""
    w = make_world(loopback_subnet, nodes={n: {"version": v} for n, v in VERSIONS.items()}).start()
    yield w
    w.stop()


def calls_for(world, ip: str, since: int = 0) -> list[tuple[str, str, str]]:
    """(service, method, routing) of every call made for ``ip`` except reads."""
    reads = {
        "Version",
        "Read",
        "Events",
        "Get",
        "List",
        "Watch",
        "ServiceList",
        "EtcdMemberList",
        "EtcdStatus",
    }
    return [
        (e["service"].rsplit(".", 1)[1], e["method"], e["routing"])
        for e in world.recorder.entries("talos.api")
        if e.seq >= since and e["targets"] == [ip] and e["method"] not in reads
    ]


def test_the_path_follows_the_generation_table():
    assert [generation(v).upgrade_path for v in ("v1.8.4", "v1.12.11", "v1.13.0-alpha.2", "v1.13.0")] == [
        "legacy",
        "legacy",
        "legacy",
        "lifecycle",
    ]
    assert generation("v1.14.7").upgrade_path == "lifecycle" and not generation("v1.14.7").apply_reboot_mode
    assert generation("v1.16.0").minor == (1, 14)  # newer than the table: its newest row


@pytest.mark.parametrize("host", ["worker-2", "worker-1"])  # Talos 1.13 and 1.14
def test_a_1_13_or_1_14_node_upgrades_through_image_and_lifecycle_services(world, admin, host):
    node = world.talos.node(host)
    before = node.boot_id
    outcome = actions.upgrade(admin, node.ip, TARGET, timeout=30)
    assert outcome.version_after == "v1.14.7" and node.version == "v1.14.7"
    assert outcome.boot_id_after != before == outcome.boot_id_before
    assert calls_for(world, node.ip) == [
        ("ImageService", "Pull", "node"),
        ("LifecycleService", "Upgrade", "node"),
        ("MachineService", "Reboot", "node"),
    ]
    assert not world.recorder.entries("talos.upgrade", node=host)  # never the legacy Upgrade
    [run] = world.recorder.entries("talos.lifecycle_upgrade_done", node=host)
    assert run["exit_code"] == 0 and run["version"] == "v1.14.7"


@pytest.mark.parametrize("host", ["cp-3", "worker-3"])  # Talos 1.12.11: preserve would skip etcd's check
def test_a_1_12_node_upgrades_through_the_legacy_upgrade_without_preserve(world, admin, host):
    node = world.talos.node(host)
    outcome = actions.upgrade(admin, node.ip, TARGET, timeout=30)
    assert outcome.version_after == "v1.14.7"
    assert calls_for(world, node.ip) == [
        ("MachineService", "ImagePull", "node"),
        ("MachineService", "Upgrade", "node"),
    ]
    [up] = world.recorder.entries("talos.upgrade", node=host)
    assert up["preserve"] is False and up["force"] is False
    assert up["etcd_checked"] is node.control_plane  # Talos's own etcd check ran on the control plane


def test_a_failing_installer_reboots_nothing(world, admin):
    node = world.talos.node("worker-1")
    bad = "ghcr.io/siderolabs/installer:latest"  # it exists, but says no version
    with pytest.raises(actions.InstallerFailed) as info:
        actions.upgrade(admin, node.ip, bad, timeout=30)
    assert "exited with code 1" in info.value.message and info.value.where == node.ip
    assert ("MachineService", "Reboot", "node") not in calls_for(world, node.ip)
    assert node.version == "v1.14.0" and node.stage.text == "running"


def test_a_missing_installer_fails_at_the_pull_on_either_path(world, admin):
    missing = "ghcr.io/siderolabs/installer:v1.14.99"
    world.talos.registry_missing.add(missing)
    for host, code in (("worker-1", "NOT_FOUND"), ("worker-3", "UNKNOWN")):
        node = world.talos.node(host)
        with pytest.raises(TalosCallError) as info:
            actions.upgrade(admin, node.ip, missing, timeout=30)
        assert info.value.code == code and "not found" in info.value.message
        assert [c[1] for c in calls_for(world, node.ip)] == ["Pull" if host == "worker-1" else "ImagePull"]


def test_an_action_on_a_node_busy_with_someone_elses_sequence_says_so(world, admin):
    """Talos refuses a second sequence with a LOCKED event, not an error reply: the reboot
    is reported as refused, with why, instead of a wait that never ends."""
    node = world.talos.node("worker-3")  # 1.12: the legacy Upgrade runs a sequence
    node.set_faults(drain_stuck=True)  # someone's upgrade, held in Talos's own drain
    try:
        admin.upgrade(TARGET, node=node.ip)
        with pytest.raises(OperationFailed) as info:
            actions.reboot(admin, node.ip, timeout=10)
        assert "sequence not started: locked" in info.value.message
        assert "busy with another sequence" in info.value.hint
    finally:
        node.set_faults(drain_stuck=False)
