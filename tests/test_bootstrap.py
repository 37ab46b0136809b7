"""bootstrap: a fresh simulated 3+3 cluster in maintenance mode, stage by stage, resumable."""

from __future__ import annotations

import pytest

from configure_support import copy_demo, move_to_subnet
from taltasks.errors import InputError
from taltasks.events import Collector, Emitter
from taltasks.sim import scenario as sc
from taltasks.sim.world import SimWorld
from taltasks.workflows.bootstrap import STAGES, BootstrapOptions, bootstrap
from taltasks.workflows.configure import configure
from testpaths import REPO_ROOT

SCENARIO = REPO_ROOT / "tests" / "scenarios" / "rook-cnpg.yaml"
FAST = {"reboot": 0.2, "boot": 0.05, "shutdown": 0.05, "install": 0.05}


@pytest.fixture
def fresh(tmp_path, loopback_subnet):
    """The demo repo (configured) and a simulated cluster of its machines in maintenance mode."""
    repo = move_to_subnet(copy_demo(tmp_path / "repo"), loopback_subnet)
    configure(repo, dry_run=False, confirm_new_secrets=False, emitter=Emitter())
    scenario = sc.load(SCENARIO)
    scenario.maintenance = True
    scenario.timings.update(FAST)
    world = SimWorld.from_repo(repo, scenario).start()
    yield repo, world
    world.stop()


def options(repo, until):
    return BootstrapOptions(root=repo, until=until, timeout=30, poll=0.05)


def counts(world):
    rec = world.recorder
    return {
        "apply": len(rec.entries("talos.apply")),
        "bootstrap": len([e for e in rec.entries("talos.api", method="Bootstrap")]),
        "kubeconfig": len([e for e in rec.entries("talos.api", method="Kubeconfig")]),
    }


def test_each_stage_once_even_when_stopped_after_every_stage(fresh):
    repo, world = fresh
    stages = STAGES[: STAGES.index("api") + 1]
    for stage in stages:
        events = Collector()
        run = bootstrap(options(repo, stage), Emitter(events))
        if stage == "api":  # a wait: the simulated API may already be there, which counts as done
            assert run.done + run.skipped[3:] == ["api"], (run.done, run.skipped)
        else:
            assert run.done == [stage], (stage, run.done, run.skipped)
        assert run.skipped[: stages.index(stage)] == list(stages[: stages.index(stage)])
    assert counts(world) == {"apply": 6, "bootstrap": 1, "kubeconfig": 1}
    # a full re-run now finds every finished stage done and changes nothing
    again = bootstrap(options(repo, "api"), Emitter())
    assert again.done == [] and again.skipped == list(stages)
    assert counts(world) == {"apply": 6, "bootstrap": 1, "kubeconfig": 1}
    assert sorted(m.hostname for m in world.talos.etcd.members.values()) == ["cp-1", "cp-2", "cp-3"]
    assert (repo / "kubeconfig").stat().st_mode & 0o777 == 0o600
    nodes = {n["metadata"]["name"] for n in world.kube.store.list("nodes")}
    assert nodes == {"cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"}
    # the journal tells the same story
    from taltasks.workflows.journal import journal_path, read_journal

    state = read_journal(journal_path(repo, "bootstrap"))
    skipped = [e["step"] for e in state.entries if e.get("type") == "step" and e.get("status") == "skipped"]
    assert skipped == list(stages)


def test_etcd_bootstrapped_elsewhere_counts_as_done(fresh):
    repo, world = fresh
    bootstrap(options(repo, "configs"), Emitter())
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import TalosConfig

    tc = TalosClient.from_context(
        TalosConfig.load(repo / "talos" / "clusterconfig" / "talosconfig").context()
    )
    tc.bootstrap(node=world.talos.node("cp-2").ip)  # someone bootstrapped by hand
    tc.close()
    run = bootstrap(options(repo, "etcd"), Emitter())
    assert run.skipped == ["configs", "etcd"] and run.done == []
    assert counts(world)["bootstrap"] == 1


def test_missing_generated_configs_are_a_clear_error(fresh):
    repo, world = fresh
    for f in (repo / "talos" / "clusterconfig").glob("demo-worker-*.yaml"):
        f.unlink()
    with pytest.raises(InputError, match="generated configs are missing") as info:
        bootstrap(options(repo, "configs"), Emitter())
    assert "invoke configure" in info.value.hint
    assert counts(world)["apply"] == 0


def test_unknown_stage_is_refused(fresh):
    repo, _ = fresh
    with pytest.raises(InputError, match="unknown stage 'etdc'"):
        bootstrap(options(repo, "etdc"), Emitter())


def test_full_bootstrap_ends_with_nodes_ready_and_cni_rolled_out_and_resumes(fresh):
    repo, world = fresh
    # stop after every stage, then run to the end: each stage does its work exactly once
    for stage in STAGES:
        bootstrap(BootstrapOptions(root=repo, until=stage, timeout=30, poll=0.05, flux=True), Emitter())
    final = bootstrap(BootstrapOptions(root=repo, timeout=30, poll=0.05, flux=True), Emitter())
    assert final.done == [] and final.skipped == list(STAGES)
    assert counts(world) == {"apply": 6, "bootstrap": 1, "kubeconfig": 1}
    store = world.kube.store
    ds = store.get("daemonsets.apps", "cilium", "kube-system")
    assert ds["status"]["numberReady"] == ds["status"]["desiredNumberScheduled"] == 6
    assert all(
        c["status"] == "True"
        for n in store.list("nodes")
        for c in n["status"]["conditions"]
        if c["type"] == "Ready"
    )
    # the CNI objects were applied once: later runs found them unchanged
    applies = world.kube.emulator.requests.filter(method="PATCH", resource="daemonsets.apps", name="cilium")
    assert len([r for r in applies if "dryRun" not in r.query]) == 1
    secret = store.get("secrets", "sops-age", "flux-system")
    assert "age.agekey" in secret["data"]
    namespaces = {n["metadata"]["name"] for n in store.list("namespaces")}
    assert {"flux-system", "kube-system", "rook-ceph", "database"} <= namespaces
    assert store.get("kustomizations.kustomize.toolkit.fluxcd.io", "cluster-apps", "flux-system")
