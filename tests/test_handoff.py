"""Hand-off to tuppr: resources checked against tuppr's own CRD schema, and end to end on a
simulated cluster whose simulated tuppr carries them out (the simulator's record judges)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from importlib import resources

import pytest

from configure_support import run_invoke, set_pins
from taltasks.errors import InputError
from taltasks.handoff import tuppr as tp
from taltasks.model.policy import MaintenanceWindow, default_policy, load_policy
from upgrade_support import NEW, OLD, demo_cluster, write_policy, zone_of, zoned_cluster

SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"


def test_the_crds_are_tuppr_s_own_files():
    notes = resources.files("taltasks.handoff").joinpath("TUPPR_CRDS.md").read_text()
    for kind, file in tp.CRD_FILES.items():
        data = gzip.decompress(resources.files("taltasks.handoff").joinpath(file).read_bytes())
        digest = hashlib.sha256(data).hexdigest()
        row = next(line for line in notes.splitlines() if file in line)
        assert digest in row, f"{file}: {digest} is not the hash TUPPR_CRDS.md records"
        assert tp.crd(kind)["spec"]["names"]["kind"] == kind
    assert "6da4415f140bfee9b17667b532b45e09f50fabf6" in notes


def full_talos_upgrade():
    return tp.talos_upgrade(
        "talos-workers-zone-a",
        "v1.12.0",
        checks=tp.health_checks(default_policy()).checks,
        node_selector={"matchLabels": {"topology.kubernetes.io/zone": "zone-a"}},
        parallelism=10,
        windows=(MaintenanceWindow("0 2 * * 0", 4 * 3600, "Europe/Paris"),),
        timeout=1140,
    )


def test_generated_resources_pass_the_crd_schema():
    talos = full_talos_upgrade()
    assert tp.validate(talos) == []
    assert talos["spec"]["maintenance"] == {
        "windows": [{"start": "0 2 * * 0", "duration": "4h", "timezone": "Europe/Paris"}]
    }
    assert talos["spec"]["policy"] == {"timeout": "19m"}
    kinds = [c["kind"] for c in talos["spec"]["healthChecks"]]
    assert kinds == ["Node", "CephCluster", "Cluster"]  # the built-in kube-node, ceph, cnpg gates
    assert tp.validate(tp.kubernetes_upgrade("v1.35.0", checks=talos["spec"]["healthChecks"])) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda r: r["spec"]["talos"].update(version="1.12.0"),
            r"spec\.talos\.version: '1\.12\.0' does not match",
        ),
        (lambda r: r["spec"].update(parallelism=0), r"spec\.parallelism: 0 is less than the minimum of 1"),
        (
            lambda r: r["spec"]["healthChecks"][0].update(window="5m"),
            r"spec\.healthChecks\[0\]\.window: unknown field",
        ),
        (
            lambda r: r["spec"]["healthChecks"][0].update(timeout="90 seconds"),
            r"spec\.healthChecks\[0\]\.timeout: '90 seconds' does not match",
        ),
        (
            lambda r: r["spec"]["healthChecks"][0].pop("expr"),
            r"spec\.healthChecks\[0\]: 'expr' is a required property",
        ),
        (
            lambda r: r["spec"]["policy"].update(rebootMode="kexec"),
            r"spec\.policy\.rebootMode: 'kexec' is not one of",
        ),
        (lambda r: r["spec"].update(batching="zone"), r"spec\.batching: unknown field"),
        (
            lambda r: r["metadata"].update(name="Zone_A"),
            r"metadata\.name: 'Zone_A' is not a valid Kubernetes name",
        ),
    ],
)
def test_the_crd_schema_rejects_what_tuppr_would(change, problem):
    resource = full_talos_upgrade()
    change(resource)
    problems = tp.validate(resource)
    assert any(re.search(problem, p) for p in problems), problems


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "1s"), (45, "45s"), (90, "1m30s"), (600, "10m"), (5400, "1h30m"), (3601, "1h1s")],
)
def test_durations_in_tuppr_s_syntax(seconds, text):
    assert tp.tuppr_duration(seconds) == text


def test_node_annotations_carry_pins_and_factory_images():
    image = f"factory.talos.dev/metal-installer/{SCHEMATIC}:v1.12.0"
    assert tp.node_annotations(image, "v1.12.0", "v1.12.0") == {
        tp.VERSION_ANNOTATION: None,
        tp.FACTORY_URL_ANNOTATION: "factory.talos.dev/metal-installer",
        tp.SCHEMATIC_ANNOTATION: SCHEMATIC,
    }
    stock = tp.node_annotations("ghcr.io/siderolabs/installer:v1.11.6", "v1.11.6", "v1.12.0")
    assert stock == {
        tp.VERSION_ANNOTATION: "v1.11.6",
        tp.FACTORY_URL_ANNOTATION: None,
        tp.SCHEMATIC_ANNOTATION: None,
    }
    assert tp.factory_parts("factory.talos.dev/metal-installer/abc:v1.12.0") is None  # not a schematic ID


def test_health_checks_drop_the_window_and_say_so(tmp_path):
    (tmp_path / "talos").mkdir()
    (tmp_path / "talos" / "upgrade-policy.yaml").write_text(
        "gates: {pre: [etcd, ceph]}\n"
        "healthChecks:\n"
        "  - {apiVersion: v1, kind: Node, expr: 'true', window: 30s, timeout: 2m, description: all nodes}\n"
    )
    translated = tp.health_checks(load_policy(tmp_path))
    assert [c["kind"] for c in translated.checks] == ["CephCluster", "Node"]
    assert translated.checks[1] == {
        "apiVersion": "v1",
        "kind": "Node",
        "expr": "true",
        "timeout": "2m",
        "description": "all nodes",
    }
    assert any("window dropped" in n for n in translated.notes)
    assert any("gate 'etcd' (etcd) has no tuppr equivalent" in n for n in translated.notes)


# ---- end to end ----------------------------------------------------------------------------------

K8S_OLD, K8S_NEW = "v1.34.3", "v1.34.4"
KUBERNETES = "kubernetesupgrades.tuppr.home-operations.com"
TUPPR_SCENARIO = "tuppr: {namespace: system-upgrade, controllerNode: worker-2, reconcileSeconds: 0.05}\n"
BATCHING = "batching: {by: failure-domain}\nhandoff:\n  maintenanceWindows:\n    - {start: '* * * * *', duration: 1h}\n"


@pytest.fixture
def tuppr_cluster(tmp_path, loopback_subnet):
    d = demo_cluster(tmp_path, loopback_subnet, scenario_extra=TUPPR_SCENARIO, tuppr_plan=False)
    write_policy(d.repo, extra=BATCHING)
    yield d
    d.stop()


def plans_done(store) -> bool:
    plans = store.list("talosupgrades.tuppr.home-operations.com")
    return bool(plans) and all((p.get("status") or {}).get("phase") == "Completed" for p in plans)


def k8s_status(store) -> dict:
    return store.get(KUBERNETES, "kubernetes").get("status") or {}


def kubelets(store) -> dict[str, str]:
    return {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in store.list("nodes")}


def static_pod_images(store) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
        for p in store.list("pods", "kube-system", label_selector="tier=control-plane")
    }


@pytest.mark.slow
def test_handoff_to_tuppr_upgrades_every_node_safely(tuppr_cluster):
    """A Renovate PR bumping Talos and Kubernetes, handed off: tuppr upgrades Talos node by
    node, then Kubernetes (control planes' static pods, then every kubelet)."""
    from taltasks.sim.verdict import safety

    d = tuppr_cluster
    set_pins(d.repo, {"kubernetesVersion": K8S_NEW})
    preview = run_invoke("talos.handoff", "--dry-run", *d.args(), cwd=d.repo)
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.count("kind: TalosUpgrade") == 4 and "kind: KubernetesUpgrade" in preview.stdout
    assert "(dry run)" in preview.stderr and "nothing was changed" in preview.stderr
    assert d.world.kube.store.list("talosupgrades.tuppr.home-operations.com") == []
    mark = len(d.recorder.entries())
    result = run_invoke("talos.handoff", "--engine", "tuppr", *d.args(), cwd=d.repo)
    assert result.returncode == 0, result.stderr
    store = d.world.kube.store
    applied = store.list("talosupgrades.tuppr.home-operations.com")
    assert sorted(p["metadata"]["name"] for p in applied) == [
        "talos-control-planes",
        "talos-workers-zone-a",
        "talos-workers-zone-b",
        "talos-workers-zone-c",
    ]
    for plan in applied:  # what the API holds is what tuppr's CRD accepts
        body = {k: v for k, v in plan.items() if k != "status"}
        body["metadata"] = {"name": plan["metadata"]["name"], "labels": plan["metadata"]["labels"]}
        assert tp.validate(body) == [], plan["metadata"]["name"]
        assert (
            plan["spec"]["talos"]["version"] == NEW
            and plan["spec"]["maintenance"]["windows"][0]["duration"] == "1h"
        )
    assert store.get(KUBERNETES, "kubernetes")["spec"]["kubernetes"]["version"] == K8S_NEW
    worker = store.get("nodes", "worker-1")["metadata"]["annotations"]
    assert worker[tp.FACTORY_URL_ANNOTATION] == "factory.talos.dev/metal-installer"
    # in-cluster progress shows up in talos.plan while tuppr works
    d.recorder.wait_for("tuppr.job", 30)
    during = run_invoke("talos.plan", "--json", *d.args(), cwd=d.repo)
    assert during.returncode == 0, during.stderr
    rows = {r["node"]: r for r in json.loads(during.stdout)}
    assert all(r["in_cluster"] for r in rows.values())
    assert re.search(r"in-cluster: TalosUpgrade talos-control-planes → v1\.12\.0: \w+", during.stderr)
    d.world.kube.wait_for(plans_done, 120, "every TalosUpgrade Completed")
    assert set(d.versions().values()) == {NEW}
    # then Kubernetes: one upgrade-k8s Job, every static pod and kubelet on the target
    d.world.kube.wait_for(lambda s: k8s_status(store).get("phase") == "Completed", 60, "KubernetesUpgrade")
    assert set(kubelets(store).values()) == {K8S_NEW}
    images = static_pod_images(store)
    assert len(images) == 9 and all(i.endswith(f":{K8S_NEW}") for i in images.values()), images
    status = k8s_status(store)
    assert status["message"] == f"Cluster successfully upgraded to {K8S_NEW}"
    assert status["currentVersion"] == status["targetVersion"] == K8S_NEW
    assert status["jobName"].startswith("kubernetes-cp-1-") and status["completedAt"]
    assert status["history"][0]["fromVersion"] == K8S_OLD and status["history"][0]["phase"] == "Completed"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Progressing": "False", "Ready": "True"}
    [k8s_job] = d.recorder.entries("tuppr.k8s_job")
    assert k8s_job["node"] == "cp-1"  # the first control plane whose kubelet lags
    assert all(j.seq < k8s_job.seq for j in d.recorder.entries("tuppr.job_done"))  # Talos first
    assert any(
        "Waiting for TalosUpgrade" in e["message"]
        for e in d.recorder.entries("tuppr.k8s_phase", phase="Pending")
    )
    steps = [(e["component"], e["node"]) for e in d.recorder.entries("tuppr.k8s_step")]
    planes, nodes = ["cp-1", "cp-2", "cp-3"], ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"]
    assert steps == [
        *[(c, n) for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler") for n in planes],
        *[("kubelet", n) for n in nodes],
    ]
    after = run_invoke("talos.plan", "--json", *d.args(), cwd=d.repo)
    rows = json.loads(after.stdout)
    assert {r["action"] for r in rows} == {"skip"}
    assert {r["in_cluster"].split(" ")[0] for r in rows} == {"completed"}
    assert f"in-cluster: KubernetesUpgrade kubernetes → {K8S_NEW}: Completed" in after.stderr
    # tuppr's semantics, from the simulator's record: one node at a time cluster-wide,
    # health checks passed before every node, never a Job on the node it upgrades
    jobs = d.recorder.entries("tuppr.job")
    assert len(jobs) == 6 and all(j["pod_node"] not in ("", j["node"]) for j in jobs)
    assert jobs[0]["node"] in ("cp-1", "cp-2", "cp-3", "worker-2")
    health = d.recorder.entries("tuppr.health", passed=True)
    for job in jobs:
        assert any(h.seq < job.seq and job["node"] in h["nodes"] for h in health)
    # judged from the moment the plans exist: the hand-off's own writes before that are
    # Node annotations, not cordons
    handed = next(
        e.seq
        for e in d.recorder.entries("kube.api")
        if e.seq > mark and "talosupgrades" in str(e.get("resource")) and e.get("verb") not in ("get", "list")
    )
    zones = {"worker-1": "zone-a", "worker-2": "zone-b", "worker-3": "zone-c"}
    verdict = safety(d.recorder, handed, domain_of=zones)
    assert verdict.safe, verdict
    assert verdict.most_not_ready == 1 and len(verdict.waves) == 6
    upgrades = d.recorder.entries("talos.upgrade")
    assert [u["node"] for u in upgrades if u.seq > mark] == [j["node"] for j in jobs]
    assert old_gone(d)


def old_gone(d) -> bool:
    return OLD not in d.versions().values()


def test_write_puts_the_resources_into_the_flux_tree_and_keeps_it_tidy(tmp_path):
    from taltasks.workflows.handoff import HEADER, Handoff, write_handoff
    from taltasks.workflows.plan import UpgradePlan

    zone_a = full_talos_upgrade()
    handoff = Handoff(UpgradePlan(()), (zone_a, tp.kubernetes_upgrade("v1.35.0")))
    target = "kubernetes/apps/system-upgrade/tuppr/upgrades"
    written = write_handoff(tmp_path, handoff, target)
    folder = tmp_path / target
    assert sorted(p.name for p in written) == [
        "kubernetesupgrade-kubernetes.yaml",
        "kustomization.yaml",
        "talosupgrade-talos-workers-zone-a.yaml",
    ]
    import yaml

    assert yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"] == [
        "kubernetesupgrade-kubernetes.yaml",
        "talosupgrade-talos-workers-zone-a.yaml",
    ]
    assert yaml.safe_load((folder / "talosupgrade-talos-workers-zone-a.yaml").read_text()) == zone_a
    assert write_handoff(tmp_path, handoff, target) == []  # nothing changed, nothing written
    (folder / "mine.yaml").write_text("# a file of the user's\n")
    smaller = Handoff(UpgradePlan(()), (tp.kubernetes_upgrade("v1.35.0"),))
    write_handoff(tmp_path, smaller, target)
    assert sorted(p.name for p in folder.iterdir()) == [
        "kubernetesupgrade-kubernetes.yaml",
        "kustomization.yaml",
        "mine.yaml",
    ]
    assert (folder / "kustomization.yaml").read_text().startswith(HEADER)
    with pytest.raises(InputError):
        write_handoff(tmp_path, smaller, "../outside")


@pytest.mark.slow
def test_handoff_of_zone_batches_gives_tuppr_one_plan_per_zone_with_the_batch_size(tmp_path, loopback_subnet):
    from taltasks.sim.verdict import lowest_pool_replicas, safety

    d = zoned_cluster(
        tmp_path, loopback_subnet, 6, scenario_extra=TUPPR_SCENARIO.replace("worker-2", "worker-5")
    )
    try:
        result = run_invoke("talos.handoff", *d.args(), cwd=d.repo)
        assert result.returncode == 0, result.stderr
        store = d.world.kube.store
        plans = {
            p["metadata"]["name"]: p["spec"] for p in store.list("talosupgrades.tuppr.home-operations.com")
        }
        assert {n: s["parallelism"] for n, s in plans.items()} == {
            "talos-control-planes": 1,
            "talos-workers-zone-a": 2,
            "talos-workers-zone-b": 2,
            "talos-workers-zone-c": 2,
        }
        assert plans["talos-workers-zone-b"]["nodeSelector"]["matchLabels"] == {
            "topology.kubernetes.io/zone": "zone-b"
        }
        handed = d.recorder.entries()[-1].seq
        d.world.kube.wait_for(plans_done, 120, "every TalosUpgrade Completed")
        assert set(d.versions().values()) == {NEW}
        zones = {f"worker-{i}": zone_of(i) for i in range(1, 7)}
        verdict = safety(d.recorder, handed, domain_of=zones)
        assert verdict.safe, verdict
        assert verdict.most_domains_down == 1 and verdict.most_not_ready == 2
        assert sorted(sorted(w) for w in verdict.waves if len(w) == 2) == [
            ["worker-1", "worker-4"],
            ["worker-2", "worker-5"],
            ["worker-3", "worker-6"],
        ]
        assert all(up >= min_size for up, min_size in lowest_pool_replicas(d.recorder, handed).values())
    finally:
        d.stop()


@pytest.mark.slow
def test_a_kubernetes_upgrade_that_a_node_refuses_ends_failed_with_nothing_further_changed(tuppr_cluster):
    """cp-2's Talos API stops answering: the Job upgrades cp-1's kube-apiserver, fails at
    cp-2 on every attempt (backoff limit 5), and the KubernetesUpgrade ends Failed with
    tuppr's status — cp-3, the other components and every kubelet untouched."""
    d = tuppr_cluster
    store = d.world.kube.store
    before = static_pod_images(store)
    d.world.talos.node("cp-2").set_faults(unreachable=True)
    mark = len(d.recorder.entries())
    store.create(tp.kubernetes_upgrade(K8S_NEW))
    d.world.kube.wait_for(
        lambda s: k8s_status(store).get("phase") == "Failed", 60, "KubernetesUpgrade Failed"
    )
    status = k8s_status(store)
    assert status["message"] == "Kubernetes upgrade job failed permanently"
    assert status["lastError"] == "Job failed permanently" and status["controllerNode"] == "cp-1"
    assert status["jobName"].startswith("kubernetes-cp-1-")
    assert status["history"][0]["phase"] == "Failed" and status["history"][0]["toVersion"] == K8S_NEW
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Progressing": "False",
        "Ready": "False",
    }
    [done] = d.recorder.entries("tuppr.k8s_job_done")
    assert done["outcome"] == "failed" and done["attempts"] == 5
    attempts = d.recorder.entries("tuppr.k8s_attempt")
    assert len(attempts) == 5 and all(a["error"].startswith("cp-2: ") for a in attempts)
    assert store.list("jobs.batch", "system-upgrade") == []  # tuppr deletes the failed Job
    # only cp-1's kube-apiserver moved; one apply, on cp-1
    after = static_pod_images(store)
    assert after.pop("kube-apiserver-cp-1") == f"registry.k8s.io/kube-apiserver:{K8S_NEW}"
    assert after == {k: v for k, v in before.items() if k != "kube-apiserver-cp-1"}
    assert set(kubelets(store).values()) == {K8S_OLD}
    applies = [e for e in d.recorder.entries("talos.apply") if e.seq > mark]
    assert [e["node"] for e in applies] == ["cp-1"]
    # every retry finds cp-1's kube-apiserver done and stops at cp-2 again
    steps = [(e["component"], e["node"], e["changed"]) for e in d.recorder.entries("tuppr.k8s_step")]
    assert steps == [("kube-apiserver", "cp-1", True)] + [("kube-apiserver", "cp-1", False)] * 4
