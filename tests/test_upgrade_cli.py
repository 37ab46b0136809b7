"""The upgrade tasks as a user runs them: plan for CI, dry runs, and bad input that changes
nothing (proved against the simulator's record: no Upgrade call, no Kubernetes write)."""

from __future__ import annotations

import json

import pytest

from configure_support import edit, line_of, run_invoke
from taltasks.sim.addresses import free_subnet
from upgrade_support import NEW, OLD, demo_cluster, our_writes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    d = demo_cluster(tmp_path_factory.mktemp("upgrade-cli"), free_subnet())
    yield d
    d.stop()


def invoke(d, *args: str):
    mark = len(d.recorder.entries())
    result = run_invoke(*args, *d.args(), cwd=d.repo)
    return result, our_writes(d.recorder, mark)


def test_plan_json_lists_desired_against_running_per_node(cluster):
    result, writes = invoke(cluster, "talos.plan", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["node"] for r in rows][3:] == ["worker-1", "worker-2", "worker-3"]
    assert all((r["running"], r["desired"], r["action"]) == (OLD, NEW, "upgrade") for r in rows)
    assert [r["order"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(r["installer"].endswith(f":{NEW}") for r in rows)
    assert sum("etcd leader" in r["role"] for r in rows) == 1 and "etcd leader" in rows[2]["role"]
    assert "6 to upgrade" in result.stderr
    assert writes == []


def test_dry_run_prints_the_plan_and_changes_nothing(cluster):
    result, writes = invoke(cluster, "talos.upgrade-all", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ORDER",
        "NODE",
        "ROLE",
        "RUNNING",
        "DESIRED",
        "INSTALLER",
        "ACTION",
        "REASON",
    ]
    assert len(lines) == 7 and all(f"{OLD} → {NEW}" in line for line in lines[1:])
    assert "(dry run) 6 to upgrade; nothing was changed" in result.stderr
    assert writes == []


def test_unknown_node_is_refused_before_anything(cluster):
    result, writes = invoke(cluster, "talos.upgrade-node", "--node", "worker-9")
    assert result.returncode == 2
    assert "unknown node 'worker-9' (did you mean 'worker-3'?)" in result.stderr
    assert "known nodes: cp-1" in result.stderr
    assert writes == []


def test_downgrade_without_allow_downgrade_is_refused(cluster):
    talenv = cluster.repo / "talos" / "talenv.yaml"
    edit(talenv, f"talosVersion: {NEW}", "talosVersion: v1.11.0")
    try:
        result, writes = invoke(cluster, "talos.upgrade-all")
        plan, plan_writes = invoke(cluster, "talos.plan", "--json")
    finally:
        edit(talenv, "talosVersion: v1.11.0", f"talosVersion: {NEW}")
    assert result.returncode == 2
    assert "downgrade v1.11.5 → v1.11.0 refused without --allow-downgrade" in result.stderr
    assert "--allow-downgrade" in result.stderr.split("hint:")[1]
    assert writes == [] == plan_writes
    assert plan.returncode == 0 and {r["action"] for r in json.loads(plan.stdout)} == {"refuse"}


def test_a_jump_over_a_minor_is_refused_and_the_plan_shows_the_path(cluster):
    """The nodes run v1.11.5; v1.13.9 skips 1.12: upgrade-all refuses with the path (nothing
    changes), talos.plan shows it minor by minor, and --json carries it per node."""
    talenv = cluster.repo / "talos" / "talenv.yaml"
    edit(talenv, f"talosVersion: {NEW}", "talosVersion: v1.13.9")
    try:
        result, writes = invoke(cluster, "talos.upgrade-all")
        text, text_writes = invoke(cluster, "talos.plan")
        plan, plan_writes = invoke(cluster, "talos.plan", "--json")
    finally:
        edit(talenv, "talosVersion: v1.13.9", f"talosVersion: {NEW}")
    assert result.returncode == 2
    assert (
        f"{OLD} → v1.13.9 skips Talos 1.12: upgrades are tested only between adjacent minors" in result.stderr
    )
    assert f"path: {OLD} → v1.11.6 → v1.12.11 → v1.13.9" in result.stderr
    error = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert error.count("skips Talos 1.12") == 1  # six nodes, one reason: said once
    assert "set talosVersion to v1.11.6" in result.stderr.split("hint:")[1]
    assert writes == [] == text_writes == plan_writes
    assert text.returncode == 0, text.stderr
    header = next(line for line in text.stdout.splitlines() if "crosses minors" in line)
    assert header.endswith(f": {OLD} → v1.13.9 crosses minors; go minor by minor")
    assert sorted(header.split(":")[0].split(", ")) == [
        "cp-1",
        "cp-2",
        "cp-3",
        "worker-1",
        "worker-2",
        "worker-3",
    ]
    steps = [line.split()[:4] for line in text.stdout.split("crosses minors")[1].splitlines()[2:5]]
    assert steps == [
        ["1", "v1.11.6", "1.11", "1.29–1.34"],
        ["2", "v1.12.11", "1.12", "1.30–1.35"],
        ["3", "v1.13.9", "1.13", "1.31–1.36"],
    ]
    rows = json.loads(plan.stdout)
    assert {r["action"] for r in rows} == {"refuse"}
    assert all([h["version"] for h in r["path"]] == ["v1.11.6", "v1.12.11", "v1.13.9"] for r in rows)


def test_upgrade_refused_while_the_configs_do_not_validate_for_the_target(cluster):
    """A patch the target's contract refuses stops upgrade-all before any node is touched,
    naming the patch's line (here 1.12: a static hostname in v1alpha1 and HostnameConfig)."""
    sysctls = cluster.repo / "talos" / "patches" / "global" / "machine-sysctls.yaml"
    original = sysctls.read_text()
    sysctls.write_text(original + "  network:\n    hostname: static-name\n")
    try:
        result, writes = invoke(cluster, "talos.upgrade-all")
    finally:
        sysctls.write_text(original)
    assert result.returncode == 2, result.stderr
    assert f"talos/patches/global/machine-sysctls.yaml:{original.count(chr(10)) + 2}" in result.stderr
    assert "HostnameConfig" in result.stderr
    assert writes == []


def test_plan_json_shows_factory_installers_for_1_14_nodes(cluster):
    """From Talos 1.14 every installer is an Image Factory image: the empty schematic's for
    the control planes, the workers' own schematic; never ghcr.io/siderolabs/installer."""
    from taltasks.model.schematic import VANILLA_ID

    talenv = cluster.repo / "talos" / "talenv.yaml"
    edit(talenv, f"talosVersion: {NEW}", "talosVersion: v1.14.7")
    try:
        plan, writes = invoke(cluster, "talos.plan", "--json")
    finally:
        edit(talenv, "talosVersion: v1.14.7", f"talosVersion: {NEW}")
    assert plan.returncode == 0, plan.stderr
    rows = json.loads(plan.stdout)
    installers = {r["node"]: r["installer"] for r in rows}
    assert all(not i.startswith("ghcr.io/siderolabs/installer") for i in installers.values())
    assert all(
        i.startswith("factory.talos.dev/metal-installer/") and i.endswith(":v1.14.7")
        for i in installers.values()
    )
    assert {installers[n] for n in ("cp-1", "cp-2", "cp-3")} == {
        f"factory.talos.dev/metal-installer/{VANILLA_ID}:v1.14.7"
    }
    assert VANILLA_ID not in installers["worker-1"]  # the workers' schematic (storage extensions)
    assert all(r["desired"] == "v1.14.7" for r in rows)
    assert writes == []


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("    - cnpg\n", "    - cnpgg\n", "- cnpgg", "unknown gate kind 'cnpgg' (did you mean 'cnpg'?)"),
        (
            "expr: status.ceph.health in ['HEALTH_OK']",
            "expr: status.ceph.health in ['HEALTH_OK'",
            "expr:",
            "invalid CEL at line 1",
        ),
    ],
    ids=["unknown-gate-kind", "invalid-cel"],
)
def test_bad_policy_is_refused_with_its_line(cluster, old, new, needle, message):
    policy = cluster.repo / "talos" / "upgrade-policy.yaml"
    original = policy.read_text()
    edit(policy, old, new)
    line = line_of(policy, needle)
    try:
        result, writes = invoke(cluster, "talos.upgrade-all")
    finally:
        policy.write_text(original)
    assert result.returncode == 2
    assert f"upgrade-policy.yaml:{line}" in result.stderr and message in result.stderr
    assert writes == []


def test_the_ci_examples_call_tasks_and_options_that_exist():
    """The GitHub Actions examples are documentation, not run here: keep their commands real."""
    import shlex

    import yaml

    from taltasks.tasks import namespace
    from testpaths import REPO_ROOT

    tasks = namespace()
    seen = []
    for path in sorted((REPO_ROOT / ".github" / "workflows").glob("talos-*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for job in doc["jobs"].values():
            for step in job["steps"]:
                for line in str(step.get("run", "")).replace("\n", " ").split("|"):
                    words = shlex.split(line.split(">")[0]) if "invoke " in line else []
                    if not words:
                        continue
                    name, flags = words[1], [w[2:] for w in words[2:] if w.startswith("--")]
                    task = tasks[name]
                    options = {a.name.replace("_", "-") for a in task.get_arguments()}
                    assert set(flags) <= options, (path.name, name, set(flags) - options)
                    seen.append(name)
    assert {"talos.plan", "talos.upgrade-all"} <= set(seen)
