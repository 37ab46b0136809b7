"""upgrade-all on clusters running Talos 1.13 and 1.14: each node on the path its version
calls for (ImageService.Pull + LifecycleService.Upgrade + Reboot), judged by the simulator's
record; a bad installer image stops the run at the pull with nothing changed; another
upgrader at work (a node mid-upgrade, tuppr, Omni) is refused before anything changes, with
or without --force."""

from __future__ import annotations

import pytest

from taltasks.errors import OperationFailed
from taltasks.sim.verdict import safety
from upgrade_support import demo_cluster, our_writes, upgrade

START = {"talosVersion": "v1.13.9", "kubernetesVersion": "v1.36.4"}
TARGET = "v1.14.7"
MIXED = {"cp-3": "v1.14.0", "worker-1": "v1.14.0", "worker-3": "v1.14.0"}  # three of six already on 1.14


def mixed_cluster(tmp_path, subnet, **kwargs):
    return demo_cluster(
        tmp_path, subnet, pins=START, node_versions=MIXED, target=TARGET, tuppr_plan=False, **kwargs
    )


def talos_changes(recorder, since: int = 0) -> list:
    """What changed the Talos side: pulls, installers, upgrades, reboots, applies."""
    kinds = ("talos.image_pull", "talos.lifecycle_upgrade", "talos.upgrade", "talos.reboot", "talos.apply")
    return [e for e in recorder.entries() if e.seq >= since and e.kind in kinds]


@pytest.mark.slow
def test_upgrade_all_on_a_mixed_1_13_and_1_14_cluster_with_ceph_and_cnpg(tmp_path, loopback_subnet):
    d = mixed_cluster(tmp_path, loopback_subnet)
    try:
        rec = d.recorder
        assert sorted(set(d.versions().values())) == ["v1.13.9", "v1.14.0"]
        mark = len(rec.entries())
        result, _ = upgrade(d)
        assert d.versions() == dict.fromkeys(d.versions(), TARGET)
        assert sorted(result.upgraded) == sorted(d.versions())
        verdict = safety(rec, mark)
        assert verdict.safe, verdict
        assert verdict.most_not_ready == 1
        # every node: installer pulled before anything changed, then the installer, then Reboot —
        # each call for one node, with `node`; never the legacy Upgrade
        first_cordon = min(verdict.starts.values())
        for host in d.versions():
            ip = d.node_ip(host)
            calls = [
                (e["service"], e["method"], e["routing"])
                for e in rec.entries("talos.api")
                if e.seq >= mark and e["targets"] == [ip] and e["method"] in ("Pull", "Upgrade", "Reboot")
            ]
            assert calls == [
                ("machine.ImageService", "Pull", "node"),
                ("machine.LifecycleService", "Upgrade", "node"),
                ("machine.MachineService", "Reboot", "node"),
            ], (host, calls)
            [pull] = [e for e in rec.entries("talos.image_pull", node=host) if e.seq >= mark]
            assert pull["source"] == "ImageService" and pull.seq < first_cordon
        assert not [e for e in rec.entries("talos.upgrade") if e.seq >= mark]
        # no call used apid's deprecated `nodes` proxying
        assert not [e for e in rec.entries("talos.api") if e.seq >= mark and e["routing"] == "nodes"]
    finally:
        d.stop()


@pytest.mark.slow
def test_a_bad_installer_image_fails_at_the_pull_with_nothing_changed(tmp_path, loopback_subnet):
    d = mixed_cluster(tmp_path, loopback_subnet)
    try:
        rec = d.recorder
        # the bumped installer does not exist (a typo in the Renovate PR, a Factory outage)
        d.world.talos.registry_missing.update(_installers(d))
        mark = len(rec.entries())
        with pytest.raises(OperationFailed) as info:
            upgrade(d)
        assert info.value.step == "pull" and "not found" in str(info.value.cause)
        assert our_writes(rec, mark) == []  # no cordon, no Flux suspend, no Upgrade
        assert not [e for e in rec.entries("kube.api", resource="nodes", verb="patch") if e.seq >= mark]
        assert [e["found"] for e in talos_changes(rec, mark)] == [False] * 6  # six pulls, all refused
        assert sorted(set(d.versions().values())) == ["v1.13.9", "v1.14.0"]
    finally:
        d.stop()


def _installers(d) -> set[str]:
    """The installer images the bumped repo asks for (Factory images of the target)."""
    from taltasks.model import load_cluster

    images = {n.installer_image for n in load_cluster(d.repo).nodes}
    assert all(i.endswith(f":{TARGET}") for i in images), images
    return images


def _node_mid_upgrade(d) -> str:
    """talosctl --legacy upgrading worker-2 elsewhere, its Talos drain stuck on a PDB."""
    from taltasks.talos.client import TalosClient

    node = d.world.talos.node("worker-2")
    node.set_faults(drain_stuck=True)
    talos, _kube = d.connect()
    try:
        talos.upgrade(f"ghcr.io/siderolabs/installer:{TARGET}", node=node.ip)
    finally:
        talos.close()
        _kube.close()
    assert isinstance(talos, TalosClient)
    d.world.kube.wait_for(
        lambda s: "talos.dev/cordoned" in (s.get("nodes", "worker-2")["metadata"].get("annotations") or {}),
        5,
        "Talos's own cordon",
    )
    return "worker-2 is upgrading"


def _tuppr_upgrading(d) -> str:
    from upgrade_support import TUPPR

    store = d.world.kube.store
    store.create(dict(TUPPR))
    store.update_status(
        "talosupgrades.tuppr.home-operations.com",
        "talos",
        {"phase": "Upgrading", "currentNodes": ["worker-1"], "message": "Upgrading 1 nodes"},
    )
    return "tuppr TalosUpgrade 'talos' is Upgrading on worker-1"


def _omni(d) -> str:
    d.world.talos.node("cp-1").manage_by_omni("omni.example.com")
    return "cp-1 is managed by Omni (SideroLink to omni.example.com)"


@pytest.mark.slow
@pytest.mark.parametrize(
    "other", [_node_mid_upgrade, _tuppr_upgrading, _omni], ids=["talosctl", "tuppr", "omni"]
)
def test_another_upgrader_at_work_is_refused_with_nothing_changed_even_with_force(
    tmp_path, loopback_subnet, other
):
    d = mixed_cluster(tmp_path, loopback_subnet)
    try:
        rec = d.recorder
        expected = other(d)
        mark = len(rec.entries())
        for force in (False, True):
            with pytest.raises(OperationFailed) as info:
                upgrade(d, force=force)
            assert "another upgrader is at work, so nothing was changed" in info.value.message
            assert expected in info.value.message
            assert "--force does not skip this check" in info.value.hint
        assert our_writes(rec, mark) == []
        assert talos_changes(rec, mark) == []
    finally:
        d.world.talos.node("worker-2").set_faults(drain_stuck=False)
        d.stop()
