"""talos.upgrade-k8s against simulated clusters (issue 6, point 1).

Every check reads the simulator's own record or the cluster's objects: what was applied,
in which order, and what runs afterwards.
"""

from __future__ import annotations

import json

import pytest

from configure_support import copy_demo, edit, move_to_subnet, run_invoke
from simtalos import FAST as FAST_TIMINGS
from simtalos import make_world
from taltasks.errors import InputError
from taltasks.events import Collector, Emitter
from taltasks.model.versions import Version
from taltasks.workflows import k8s_upgrade as wf
from taltasks.workflows.journal import journal_path, read_journal

FAST = wf.Timeouts(control_plane=15, kubelet=15, pull=15, snapshot=15)
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def settled(world) -> None:
    world.kube.wait_for(
        lambda s: sum(1 for p in s.list("pods", namespace="kube-system") if _ready(p)) == 9,
        10,
        "the nine control-plane pods Ready",
    )


def _ready(pod) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


@pytest.fixture
def world12(loopback_subnet):
    w = make_world(
        loopback_subnet,
        talos_version="v1.12.0",
        kubernetes_version="v1.34.3",
        timings={**FAST_TIMINGS, "kubelet_restart": 0.05},
    ).start()
    settled(w)
    yield w
    assert w.kube.errors == [], w.kube.errors
    w.stop()


@pytest.fixture
def clients(world12):
    from taltasks.kube.client import connect_text
    from taltasks.talos.client import TalosClient

    with (
        TalosClient.from_context(world12.talos.talosconfig().context()) as talos,
        connect_text(world12.kube.kubeconfig("test"), source="sim") as kube,
    ):
        yield talos, kube


def applies(world) -> list:
    return [e for e in world.recorder.entries("talos.api") if e["method"] == "ApplyConfiguration"]


def assert_all_at(world, version: str) -> None:
    store = world.kube.store
    for n in world.talos.control_planes:
        for c in COMPONENTS:
            pod = store.get("pods", f"{c}-{n.hostname}", "kube-system")
            assert pod["spec"]["containers"][0]["image"].endswith(f":{version}"), pod["metadata"]["name"]
            assert _ready(pod), pod["metadata"]["name"]
    for node in store.list("nodes"):
        assert node["status"]["nodeInfo"]["kubeletVersion"] == version, node["metadata"]["name"]


def test_upgrade_1_34_to_1_35_on_talos_1_12(world12, clients, tmp_path):
    talos, kube = clients
    collected = Collector()
    result = wf.upgrade_kubernetes(
        talos, kube, Version.parse("v1.35.0"), root=tmp_path, emitter=Emitter(collected), timeouts=FAST
    )
    assert_all_at(world12, "v1.35.0")
    rec = world12.recorder
    # every image was pre-pulled through the API before the first config change
    first_apply = applies(world12)[0].seq
    pulls = rec.entries("talos.image_pull")
    assert pulls and all(p["source"] == "api" and p.seq < first_apply for p in pulls)
    assert len(pulls) == 3 * 3 + 6  # three components per control plane, a kubelet per node
    # one etcd snapshot, before any change
    [snap] = rec.entries("etcd.snapshot")
    assert snap.seq < first_apply and result.snapshot is not None and result.snapshot.size > 0
    # components one at a time, node by node, in talosctl's order; kubelets after them
    replaced = [(e["pod"]) for e in rec.entries("kubelet.static_pod_replaced")]
    assert replaced == [f"{c}-cp-{i}" for c in COMPONENTS for i in (1, 2, 3)]
    restarts = [e["node"] for e in rec.entries("talos.kubelet_restart")]
    assert restarts == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"]
    assert rec.entries("kubelet.static_pod_replaced")[-1].seq < rec.entries("talos.kubelet_restart")[0].seq
    assert [e["node"] for e in rec.entries("talos.kube_proxy_image")] == ["cp-1", "cp-2", "cp-3"]
    # 9 component + 3 kube-proxy + 6 kubelet changes, each one NO_REBOOT apply, nothing rebooted
    assert len(applies(world12)) == 18
    assert {e["mode"] for e in rec.entries("talos.apply")} == {"NO_REBOOT"}
    assert rec.entries("talos.down") == []
    assert read_journal(journal_path(tmp_path, "upgrade-k8s")).status == "completed"
    assert collected.of("summary")[0].data["done"] == len(result.done)


def test_two_minor_jump_and_unsupported_version_change_nothing(loopback_subnet, tmp_path):
    from taltasks.kube.client import connect_text
    from taltasks.talos.client import TalosClient

    world = make_world(loopback_subnet, talos_version="v1.11.5", kubernetes_version="v1.34.3").start()
    try:
        settled(world)
        with (
            TalosClient.from_context(world.talos.talosconfig().context()) as talos,
            connect_text(world.kube.kubeconfig("test"), source="sim") as kube,
        ):
            with pytest.raises(InputError, match="skips 1 minor version"):
                wf.upgrade_kubernetes(talos, kube, Version.parse("v1.36.0"), root=tmp_path)
            with pytest.raises(
                InputError, match=r"not supported by the Talos version of cp-1 runs Talos v1\.11\.5"
            ):
                wf.upgrade_kubernetes(talos, kube, Version.parse("v1.35.0"), root=tmp_path)
        assert applies(world) == []
        assert world.recorder.entries("talos.image_pull") == []
        assert world.recorder.entries("etcd.snapshot") == []
        assert not journal_path(tmp_path, "upgrade-k8s").exists()
    finally:
        world.stop()


def test_an_interrupted_run_resumes_without_redoing_finished_steps(world12, clients, tmp_path):
    talos, kube = clients

    def stop_before_cp2_apiserver(event):
        if (
            event.kind == "step.started"
            and event.data.get("step") == "control-plane"
            and event.node == "cp-2"
            and "kube-apiserver" in event.message
        ):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wf.upgrade_kubernetes(
            talos,
            kube,
            Version.parse("v1.35.0"),
            root=tmp_path,
            emitter=Emitter(stop_before_cp2_apiserver),
            timeouts=FAST,
        )
    first = read_journal(journal_path(tmp_path, "upgrade-k8s"))
    assert first.status == "interrupted"
    assert [e["node"] for e in world12.recorder.entries("kubelet.static_pod_replaced")] == ["cp-1"]

    collected = Collector()
    result = wf.upgrade_kubernetes(
        talos, kube, Version.parse("v1.35.0"), root=tmp_path, emitter=Emitter(collected), timeouts=FAST
    )
    assert_all_at(world12, "v1.35.0")
    # cp-1's apiserver was verified, not applied again: one replacement per pod overall
    replaced = [e["pod"] for e in world12.recorder.entries("kubelet.static_pod_replaced")]
    assert sorted(replaced) == sorted(f"{c}-cp-{i}" for c in COMPONENTS for i in (1, 2, 3))
    assert any(k.startswith("control-plane:kube-apiserver:cp-1:") for k in result.verified)
    assert len(applies(world12)) == 18  # across both runs: every change exactly once
    # the second run journaled on its own; the interrupted one went to history
    assert read_journal(journal_path(tmp_path, "upgrade-k8s")).status == "completed"
    assert len(list((tmp_path / ".taltasks" / "history").glob("upgrade-k8s-*.json"))) == 1


@pytest.mark.slow
def test_task_dry_run_then_upgrade_to_the_repo_pin(tmp_path, loopback_subnet):
    """The user's path: a repo on Talos v1.12 whose talenv.yaml Renovate bumped to 1.35;
    `invoke talos.upgrade-k8s --dry-run` shows the plan, then the real run upgrades."""
    from taltasks.sim.scenario import Scenario
    from taltasks.sim.world import SimWorld

    repo = move_to_subnet(copy_demo(tmp_path / "repo"), loopback_subnet)
    talenv = repo / "talos" / "talenv.yaml"
    edit(talenv, "talosVersion: v1.11.5", "talosVersion: v1.12.0")
    world = SimWorld.from_repo(repo, Scenario(timings={"reboot": 0.2}), directory=tmp_path / "sim").start()
    try:
        settled(world)
        edit(talenv, "kubernetesVersion: v1.34.3", "kubernetesVersion: v1.35.0")
        env = {"TALOSCONFIG": str(world.files.talosconfig)}  # no kubeconfig: fetched through Talos
        dry = run_invoke(
            "talos.upgrade-k8s", "--root", str(repo), "--dry-run", "--json", cwd=tmp_path, env=env
        )
        assert dry.returncode == 0, dry.stderr
        rows = json.loads(dry.stdout)
        assert {r["action"] for r in rows if r["step"] == "kube-apiserver"} == {"upgrade"}
        assert next(r for r in rows if r["step"] == "snapshot")["action"] == "run"
        assert applies(world) == [] and world.recorder.entries("talos.image_pull") == []

        run = run_invoke("talos.upgrade-k8s", "--root", str(repo), "--json", cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stderr
        events = [json.loads(line) for line in run.stdout.splitlines()]
        assert events[-1]["kind"] == "summary" and "v1.35.0" in events[-1]["message"]
        assert_all_at(world, "v1.35.0")
        # the repo's own (multi-document, 1.12-contract) configs were edited, not replaced
        cp1 = world.talos.node("cp-1").config
        assert cp1.image("apiServer") == "registry.k8s.io/kube-apiserver:v1.35.0"
        assert len(cp1.documents) > 1
        assert len(applies(world)) == 15  # 9 components + 6 kubelets: the repo disables kube-proxy
        assert world.recorder.entries("talos.kube_proxy_image") == []

        again = run_invoke("talos.upgrade-k8s", "--root", str(repo), "--json", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr
        assert len(applies(world)) == 15  # the second run only verified
    finally:
        world.stop()
