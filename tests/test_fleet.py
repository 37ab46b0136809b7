"""Fleets: the fleet file's validation, one plan for every cluster, and a fleet run that
stops at the first failing cluster with the ones before it finished and journaled."""

from __future__ import annotations

import json
import textwrap

import pytest

from configure_support import copy_demo, run_invoke
from taltasks.errors import InputError
from taltasks.model.fleet import load_fleet
from taltasks.sim.addresses import free_subnet
from taltasks.workflows.journal import journal_path, read_journal
from upgrade_support import NEW, OLD, demo_cluster


def fleet_file(tmp_path, text: str):
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def repos(tmp_path):
    return copy_demo(tmp_path / "lab"), copy_demo(tmp_path / "home")


def test_a_fleet_file_names_checkouts_in_order(tmp_path, repos):
    (tmp_path / "lab" / "kubeconfig").write_text("")
    path = fleet_file(
        tmp_path,
        """
        clusters:
          - {name: lab, repo: lab}
          - {name: home, repo: ./home, context: admin@home, kubeconfig: lab/kubeconfig}
        """,
    )
    fleet = load_fleet(path)
    assert fleet.names() == ["lab", "home"]
    lab, home = fleet.members
    assert lab.repo == repos[0].resolve() and lab.cluster.name == "demo" and lab.policy.source
    assert lab.kubeconfig_path() == repos[0].resolve() / "kubeconfig"  # the checkout's own
    assert (home.context, home.kubeconfig) == ("admin@home", (tmp_path / "lab" / "kubeconfig").resolve())
    assert lab.where == f"{path}:2" and home.where == f"{path}:3"


def test_the_environment_never_picks_a_fleet_member_s_configs(tmp_path, repos, monkeypatch):
    monkeypatch.setenv("TALOSCONFIG", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "elsewhere"))
    fleet = load_fleet(fleet_file(tmp_path, "clusters: [{name: lab, repo: lab}]\n"))
    assert fleet.members[0].talosconfig_path() is None and fleet.members[0].kubeconfig_path() is None


BAD = [
    ("clusters: []\n", "clusters must be a non-empty list", 1),
    ("fleets: []\n", "unknown key 'fleets' in the fleet file", 1),
    ("clusters:\n  - {name: lab, repo: lab, ctx: x}\n", "unknown key 'ctx' for a cluster", 2),
    ("clusters:\n  - {name: Lab, repo: lab}\n", "cluster name 'Lab' must be lower-case", 2),
    (
        "clusters:\n  - {name: lab, repo: lab}\n  - {name: lab, repo: home}\n",
        "cluster 'lab' is listed twice",
        3,
    ),
    ("clusters:\n  - {name: lab, repo: nowhere}\n", "nowhere does not exist", 2),
    ("clusters:\n  - {name: lab, repo: .}\n", "has no talos/talconfig.yaml", 2),
]


@pytest.mark.parametrize(("text", "message", "line"), BAD)
def test_bad_fleet_files_are_refused_at_their_line(tmp_path, repos, text, message, line):
    path = fleet_file(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_fleet(path)
    assert message in info.value.message and info.value.where == f"{path}:{line}"


def test_a_bad_policy_in_any_cluster_stops_the_fleet_before_it_starts(tmp_path, repos):
    (repos[1] / "talos" / "upgrade-policy.yaml").write_text("batching: {by: zone}\n")
    with pytest.raises(InputError) as info:
        load_fleet(fleet_file(tmp_path, "clusters: [{name: lab, repo: lab}, {name: home, repo: home}]\n"))
    assert info.value.where == f"{repos[1].resolve()}/talos/upgrade-policy.yaml:1"
    assert info.value.message.startswith("cluster home: by must be one of node, failure-domain")


@pytest.mark.slow
def test_fleet_plan_and_a_run_that_stops_at_the_failing_second_cluster(tmp_path):
    lab = demo_cluster(tmp_path / "lab", free_subnet())
    home = demo_cluster(tmp_path / "home", free_subnet(), talos_faults={"cp-2": {"etcdUnhealthy": True}})
    try:
        path = fleet_file(
            tmp_path,
            f"""
            clusters:
              - {{name: lab, repo: {lab.repo}, talosconfig: {lab.talosconfig}, kubeconfig: {lab.kubeconfig}}}
              - {{name: home, repo: {home.repo}, talosconfig: {home.talosconfig}, kubeconfig: {home.kubeconfig}}}
            """,
        )
        planned = run_invoke("talos.plan", "--fleet", str(path), "--json", cwd=tmp_path)
        assert planned.returncode == 0, planned.stderr
        document = json.loads(planned.stdout)  # one JSON document for the whole fleet
        assert [c["name"] for c in document["clusters"]] == ["lab", "home"]
        for c in document["clusters"]:
            assert c["ok"] and c["summary"] == "6 to upgrade"
            assert {(s["running"], s["desired"]) for s in c["steps"]} == {(OLD, NEW)}
        assert "lab: 6 to upgrade; home: 6 to upgrade" in planned.stderr
        table = run_invoke("talos.plan", "--fleet", str(path), cwd=tmp_path)
        assert table.stdout.splitlines()[0].split()[:3] == ["CLUSTER", "ORDER", "NODE"]
        assert {line.split()[0] for line in table.stdout.splitlines()[1:]} == {"lab", "home"}

        home_mark = len(home.recorder.entries())
        ran = run_invoke("talos.upgrade-all", "--fleet", str(path), cwd=tmp_path)
        assert ran.returncode == 4, ran.stderr
        assert "fleet stopped at cluster home" in ran.stderr
        assert "lab finished; no cluster after it" in ran.stderr
        assert "refusing to upgrade control plane" in ran.stderr and "unhealthy now: cp-2" in ran.stderr
        # lab: every node upgraded, its own journal completed
        assert set(lab.versions().values()) == {NEW}
        assert read_journal(journal_path(lab.repo, "talos-upgrade")).status == "completed"
        # home: refused by its own etcd quorum guard before any change: nothing upgraded,
        # no Kubernetes write, no journal (nothing to resume or undo)
        assert set(home.versions().values()) == {OLD}
        assert home.recorder.entries("talos.upgrade") == []
        assert [e for e in home.recorder.entries("kube.api") if e.seq > home_mark] == []
        assert not journal_path(home.repo, "talos-upgrade").exists()
    finally:
        lab.stop()
        home.stop()
