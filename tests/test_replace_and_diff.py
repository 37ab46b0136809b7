"""talos.replace-node in the safe order, and talos.diff-config, against a simulated demo cluster."""

from __future__ import annotations

import pytest
import yaml

from configure_support import copy_demo, edit, move_to_subnet
from taltasks.errors import OperationFailed
from taltasks.events import Collector, Emitter
from taltasks.sim.scenario import Scenario
from taltasks.sim.world import SimWorld
from taltasks.talos.client import TalosClient
from taltasks.talos.config import Context, TalosConfig
from taltasks.workflows.configure import configure
from taltasks.workflows.diffconfig import diff_nodes
from taltasks.workflows.replace import ReplaceOptions, replace_node

FAST = {"reboot": 0.2, "boot": 0.05, "shutdown": 0.05, "install": 0.05}


@pytest.fixture
def cluster(tmp_path, loopback_subnet):
    repo = move_to_subnet(copy_demo(tmp_path / "repo"), loopback_subnet)
    configure(repo, dry_run=False, emitter=Emitter())
    world = SimWorld.from_repo(repo, Scenario(timings=dict(FAST))).start()
    (repo / "kubeconfig").write_text(world.kube.kubeconfig("demo"))
    yield repo, world
    world.stop()


def seq_of(world, kind, **match):
    entries = world.recorder.entries(kind, **match)
    assert entries, f"no {kind} {match} in the record"
    return entries[0].seq


def test_replacing_a_dead_control_plane_follows_the_safe_order(cluster):
    repo, world = cluster
    old_member = world.talos.etcd.by_hostname("cp-3").id
    world.replace_machine("cp-3")  # the old machine is gone; a new one boots the installer
    start = world.recorder.entries()[-1].seq
    events = Collector()
    result = replace_node(ReplaceOptions(root=repo, node="cp-3", timeout=20, poll=0.05), Emitter(events))
    assert result.steps == ["etcd", "node-object", "apply"]  # nothing to reset: the old one is dead
    removed = seq_of(world, "etcd.member_removed", member="cp-3")
    applied = next(e.seq for e in world.recorder.entries("talos.apply", node="cp-3") if e.seq > start)
    joined = next(e.seq for e in world.recorder.entries("etcd.member_joined", node="cp-3") if e.seq > start)
    assert removed < applied < joined
    members = {m.hostname: m.id for m in world.talos.etcd.members.values()}
    assert sorted(members) == ["cp-1", "cp-2", "cp-3"] and members["cp-3"] != old_member
    assert world.talos.etcd.all_healthy()
    deletes = world.kube.emulator.requests.filter(method="DELETE", resource="nodes")
    assert [r.path.rsplit("/", 1)[-1] for r in deletes] == ["cp-3"]
    node = world.kube.store.get("nodes", "cp-3")
    assert node["status"]["nodeInfo"]["bootID"] == world.talos.node("cp-3").boot_id
    assert not world.recorder.entries("etcd.join_refused")


def test_installing_before_removing_the_member_is_what_the_order_prevents(cluster):
    repo, world = cluster
    world.replace_machine("cp-3")
    config = (repo / "talos" / "clusterconfig" / "demo-cp-3.yaml").read_bytes()
    cp3 = world.talos.node("cp-3")
    with TalosClient.from_context(Context("m", endpoints=[cp3.ip]), insecure=True) as m:
        m.apply_configuration(config)[0].unwrap()
    entry = world.recorder.wait_for("etcd.join_refused", 10, node="cp-3")
    assert "remove it first" in entry["reason"]
    # once the stale member is removed, the retrying join succeeds
    cfg = TalosConfig.load(repo / "talos" / "clusterconfig" / "talosconfig")
    with TalosClient.from_context(cfg.context()) as tc:
        stale = next(
            m for m in tc.etcd_members([world.talos.node("cp-1").ip])[0].unwrap() if m.hostname == "cp-3"
        )
        tc.etcd_remove_member(stale.id, node=world.talos.node("cp-1").ip)
    world.recorder.wait_for("etcd.member_joined", 10, node="cp-3")


def test_replacing_a_healthy_node_is_refused_and_changes_nothing(cluster):
    repo, world = cluster
    before = len(world.recorder.entries())
    with pytest.raises(OperationFailed, match="up and healthy"):
        replace_node(ReplaceOptions(root=repo, node="cp-2", timeout=5), Emitter())
    changes = [
        e.kind
        for e in world.recorder.entries()[before:]
        if e.kind in ("etcd.member_removed", "talos.apply", "talos.reset")
    ]
    assert changes == []
    assert not world.kube.emulator.requests.filter(method="DELETE", resource="nodes")


def test_diff_config_after_configure_then_after_a_patch(cluster):
    repo, world = cluster
    assert [(d.node, d.diff) for d in diff_nodes(repo)] == [(n.hostname, "") for n in world.talos.nodes]
    edit(
        repo / "talos" / "patches" / "global" / "machine-sysctls.yaml",
        "sysctls:",
        'sysctls:\n    vm.swappiness: "1"',
    )
    configure(repo, dry_run=False, emitter=Emitter())
    diffs = diff_nodes(repo)
    assert all("+    vm.swappiness: '1'" in d.diff for d in diffs), diffs[0].diff
    secret = yaml.safe_load((repo / "talos" / "clusterconfig" / "demo-cp-1.yaml").read_text())["machine"][
        "token"
    ]
    assert all(secret not in d.diff for d in diffs)


def test_diff_config_masks_changed_secrets(cluster):
    repo, world = cluster
    w = world.talos.node("worker-1")
    raw = yaml.safe_load(w.config.raw)
    original = raw["machine"]["token"]
    raw["machine"]["token"] = "abcdef.0123456789abcdef"
    cfg = TalosConfig.load(repo / "talos" / "clusterconfig" / "talosconfig")
    with TalosClient.from_context(cfg.context()) as tc:
        tc.apply_configuration(yaml.safe_dump(raw).encode(), nodes=[w.ip], mode="no-reboot")[0].unwrap()
    [d] = diff_nodes(repo, node="worker-1")
    assert "-  token: <redacted sha256:" in d.diff and "+  token: <redacted sha256:" in d.diff
    assert "abcdef.0123456789abcdef" not in d.diff and original not in d.diff


def test_diff_config_task_prints_settings_then_the_line_diff_on_request(cluster):
    """`invoke talos.diff-config`: one summary per node and one line per meaningful change;
    --unified adds the masked line diff, --json carries both, --exit-code fails on a difference."""
    import json

    from configure_support import run_invoke

    repo, _ = cluster
    edit(
        repo / "talos" / "patches" / "global" / "machine-sysctls.yaml",
        "sysctls:",
        'sysctls:\n    vm.swappiness: "1"',
    )
    configure(repo, dry_run=False, emitter=Emitter())
    plain = run_invoke("talos.diff-config", "--node", "worker-1", cwd=repo)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[:2] == [
        "# worker-1: 1 real change",
        "  added    v1alpha1 machine.sysctls.vm.swappiness: 1",
    ]
    assert "+++" not in plain.stdout
    unified = run_invoke("talos.diff-config", "--node", "worker-1", "--unified", "--exit-code", cwd=repo)
    assert (
        unified.returncode != 0 and "1 node(s) differ from the generated config: worker-1" in unified.stderr
    )
    assert "+    vm.swappiness: '1'" in unified.stdout
    data = json.loads(run_invoke("talos.diff-config", "--json", cwd=repo).stdout)
    assert {d["node"] for d in data} == {"cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"}
    assert all(
        d["changes"]
        == [
            {
                "what": "added",
                "subject": "v1alpha1 machine.sysctls.vm.swappiness",
                "detail": "1",
                "reboot": None,
            }
        ]
        for d in data
    )
