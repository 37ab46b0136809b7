"""etcd and node runbooks against simulated nodes: guards first, then the change."""

from __future__ import annotations

import pytest

from simtalos import ips
from taltasks.errors import InputError, OperationFailed
from taltasks.events import Collector, Emitter
from taltasks.talos.discovery import members, resolve
from taltasks.workflows import etcd as wf
from waiting import wait_until


def cps(world):
    return ips(world, "controlplane")


def test_survey_sees_every_member_from_itself(world, admin):
    s = wf.survey(admin, cps(world))
    assert s.size == 3 and len(s.healthy) == 3 and s.has_quorum()
    assert sum(m.leader for m in s.members) == 1
    assert s.quorum_without("cp-1")


def test_remove_member_refused_while_it_is_healthy(world, admin):
    with pytest.raises(OperationFailed, match="up and healthy"):
        wf.plan_removal(wf.survey(admin, cps(world)), "cp-3")
    assert len(world.talos.etcd.members) == 3


def test_remove_member_of_a_dead_node_then_quorum_guard(world, admin):
    world.talos.node("cp-3").set_faults(unreachable=True)
    s = wf.survey(admin, cps(world))
    dead = s.find("cp-3")
    assert dead.down and not dead.reachable
    plan = wf.plan_removal(s, "cp-3")
    assert plan.members_after == 2 and plan.healthy_after == 2 and plan.via != dead.ip
    events = Collector()
    wf.remove_member(admin, plan, Emitter(events))
    assert sorted(m.hostname for m in world.talos.etcd.members.values()) == ["cp-1", "cp-2"]
    assert events.kinds() == ["step.started", "step.done"]
    # with one of the two left members down too, removing it would leave 1 of 1... but
    # removing the healthy one would leave a dead one alone: refused
    world.talos.node("cp-2").set_faults(etcd_unhealthy=True)
    with pytest.raises(OperationFailed, match="no quorum"):
        wf.plan_removal(wf.survey(admin, cps(world)[:2]), "cp-1", force=True)


def test_unknown_member_lists_the_members(world, admin):
    with pytest.raises(InputError) as info:
        wf.survey(admin, cps(world)).find("cp-9")
    assert "cp-1" in info.value.hint and "cp-3" in info.value.hint


def test_snapshot_picks_a_healthy_follower(world, admin, tmp_path):
    s = wf.survey(admin, cps(world))
    source = wf.pick_snapshot_source(s)
    leader = next(m for m in s.members if m.leader)
    assert source != leader.ip
    result = wf.snapshot(admin, tmp_path / "snap.db", source)
    assert result.sha256 == world.talos.etcd.snapshot_sha256()


def test_discovery_resolves_hostnames_and_ips(world, admin):
    known = members(admin)
    assert [m.hostname for m in known] == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"]
    w = world.talos.node("worker-2")
    assert resolve(admin, "worker-2", known).ip == w.ip
    assert resolve(admin, w.ip, known).hostname == "worker-2"
    with pytest.raises(InputError, match="unknown node 'worker-9'"):
        resolve(admin, "worker-9", known)


def test_kubeconfig_merge_replaces_same_names_and_keeps_others(tmp_path, world, admin):
    import yaml

    from taltasks.talos.kubeconfig import merge_into

    target = tmp_path / "config"
    target.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "other", "cluster": {"server": "https://127.0.0.9:6443"}},
                    {"name": "test", "cluster": {"server": "old"}},
                ],
                "users": [],
                "contexts": [{"name": "other", "context": {"cluster": "other", "user": "x"}}],
                "current-context": "other",
            }
        )
    )
    merge_into(admin.kubeconfig(node=world.talos.node("cp-1").ip), target)
    merged = yaml.safe_load(target.read_text())
    assert [c["name"] for c in merged["clusters"]] == ["other", "test"]
    assert merged["clusters"][1]["cluster"]["server"] != "old"
    assert merged["current-context"] == "admin@test"
    assert (target.stat().st_mode & 0o777) == 0o600


def test_reset_then_node_returns_in_maintenance(world, admin):
    w = world.talos.node("worker-1")
    admin.reset(node=w.ip, graceful=True, reboot=True)
    wait_until(lambda: w.maintenance and w.reachable, what="maintenance after reset")
