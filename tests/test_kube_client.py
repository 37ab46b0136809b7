"""taltasks.kube against the simulated world: drain, cordon, Flux, readers, watches.

Pure parts (drain planning, 429 parsing, status parsing, journal records) are table tests.
"""

# ruff: noqa: F811 - pytest fixtures imported from kubesim are redefined as parameters

from __future__ import annotations

import json
import threading

import pytest
from kubesim import emulator, kube_ca, make_world  # noqa: F401 - fixtures

from taltasks.errors import ConnectionFailed, InputError, OperationFailed
from taltasks.events import Collector, Emitter
from taltasks.kube import ceph, cnpg, drain, flux, nodes
from taltasks.kube.client import KubeApiError, connect
from taltasks.kube.watch import follow, wait_until
from taltasks.sim.kube.nodes import set_node_ready

BLOCKER = "faults:\n  - {kind: pdb-blocks-forever, namespace: default, name: critical-app, node: worker-3}\n"


def events():
    collector = Collector()
    return collector, Emitter(collector)


# ---- connecting ----------------------------------------------------------------------------------


def test_connect_errors_say_what_and_where(tmp_path, loopback_subnet, kube_ca):
    from taltasks.sim.addresses import api_address, closed_port
    from taltasks.sim.kube.server import KubeEmulator

    with pytest.raises(InputError) as info:
        connect(tmp_path / "missing")
    assert info.value.where == str(tmp_path / "missing") and "kubeconfig" in info.value.hint
    host = api_address(loopback_subnet)
    unstarted = KubeEmulator(host, closed_port(host), ca=kube_ca)
    path = tmp_path / "kubeconfig"
    path.write_text(unstarted.kubeconfig("demo"))
    with pytest.raises(InputError) as info:
        connect(path, context="nope")
    assert "admin@demo" in info.value.hint
    client = connect(path)
    assert client.context == "admin@demo"
    with pytest.raises(ConnectionFailed) as info:
        nodes.list_nodes(client)
    assert info.value.where == unstarted.url and "cannot reach the Kubernetes API" in info.value.message


def test_api_errors_carry_status_and_message(emulator, tmp_path):
    path = tmp_path / "kc"
    path.write_text(emulator.kubeconfig("demo"))
    with connect(path) as client, pytest.raises(OperationFailed) as info:
        nodes.get_node(client, "ghost")
    assert "node ghost does not exist" in info.value.message
    with connect(path) as client, pytest.raises(KubeApiError) as info:
        client.call("read pod", client.core.read_namespaced_pod, "x", "default")
    assert (
        info.value.status == 404
        and info.value.reason == "NotFound"
        and 'pods "x" not found' in info.value.message
    )


# ---- nodes ------------------------------------------------------------------------------------------


def test_cordon_uncordon_and_wait_for_node(make_world):
    world = make_world()
    collector, emitter = events()
    with connect(world.kubeconfig_path) as client:
        assert nodes.cordon(client, "worker-1", emitter=emitter) is True
        assert nodes.cordon(client, "worker-1", emitter=emitter) is False
        assert nodes.get_node(client, "worker-1").unschedulable
        assert nodes.uncordon(client, "worker-1", emitter=emitter) is True
        assert "unschedulable" not in world.store.get("nodes", "worker-1")["spec"]
        before = nodes.get_node(client, "worker-2")
        threading.Timer(0.1, lambda: set_node_ready(world.store, "worker-2", False)).start()
        down = nodes.wait_for_node(client, "worker-2", ready=False, timeout=5)
        assert down.ready_status == "Unknown" and down.reason == "NodeStatusUnknown"
        threading.Timer(
            0.1,
            lambda: set_node_ready(
                world.store, "worker-2", True, kubelet_version="v1.35.0", boot_id="new-boot"
            ),
        ).start()
        up = nodes.wait_for_node(
            client,
            "worker-2",
            timeout=5,
            not_boot_id=before.boot_id,
            kubelet_version="v1.35.0",
            emitter=emitter,
        )
        assert up.ready and up.boot_id == "new-boot" and up.last_transition >= down.last_transition
        with pytest.raises(OperationFailed) as info:
            nodes.wait_for_node(client, "worker-2", ready=False, timeout=0.5)
        assert "did not happen within 0.5s" in info.value.message and "last seen: Ready" in info.value.message
    assert collector.kinds() == ["info", "info", "cleanup", "gate.waiting", "gate.passed"]


# ---- drain -------------------------------------------------------------------------------------------


def test_drain_evicts_everything_but_daemonset_and_mirror_pods(make_world):
    world = make_world()
    collector, emitter = events()
    with connect(world.kubeconfig_path) as client:
        result = drain.drain_node(
            client, "worker-1", timeout=10, retry_interval=0.05, poll_interval=0.02, emitter=emitter
        )
        left = [
            p
            for p in world.store.list("pods", field_selector="spec.nodeName=worker-1")
            if not p["metadata"].get("deletionTimestamp")
        ]
        assert [p["metadata"]["name"].rsplit("-", 1)[0] for p in left] == ["kube-proxy"]
        assert result.cordoned and nodes.get_node(client, "worker-1").unschedulable
        assert {str(p).split("/")[1].split("-")[0] for p in result.evicted} >= {"postgres", "rook", "web"}
        assert [why for _, why in result.skipped] == ["managed by DaemonSet kube-proxy"]
        # the CNPG primary was protected until the switchover moved it
        warnings = [e for e in collector.of("warning") if e.data.get("pdb") == "database/postgres-primary"]
        assert warnings, collector.kinds()
        assert cnpg.read_cnpg_cluster(client, "database", "postgres").current_primary != "postgres-1"
        drained = drain.drain_node(client, "cp-1", timeout=5, retry_interval=0.05, poll_interval=0.02)
        assert {why for _, why in drained.skipped} == {
            "mirror pod of a static pod",
            "managed by DaemonSet kube-proxy",
        }
    assert collector.kinds()[0] == "step.started" and collector.kinds()[-1] == "step.done"


def test_drain_blocked_by_a_budget_waits_names_it_and_uncordons(make_world):
    world = make_world(__import__("kubesim").DEMO_SCENARIO + BLOCKER)
    collector, emitter = events()
    with connect(world.kubeconfig_path) as client:
        with pytest.raises(drain.DrainTimeout) as info:
            drain.drain_node(
                client, "worker-3", timeout=1.0, retry_interval=0.1, poll_interval=0.02, emitter=emitter
            )
        err = info.value
        assert err.uncordoned and not nodes.get_node(client, "worker-3").unschedulable
        [blocker] = err.blockers
        assert blocker.budget == "default/critical-app" and blocker.pod.name.startswith("critical-app-")
        assert "needs 1 healthy pods and has 1 currently" in blocker.message
        assert err.message.startswith("drain of worker-3 did not finish within 1s: 1 pod(s) left:")
        assert "blocked by PodDisruptionBudget default/critical-app" in err.message and err.message.endswith(
            "worker-3 was uncordoned again"
        )
        assert "default/critical-app allows no disruption" in err.hint
    refusals = world.emulator.requests.filter(verb="evict", status=429, namespace="default")
    assert len(refusals) >= 3  # it kept retrying until the deadline
    kinds = collector.kinds()
    assert kinds[-2:] == ["cleanup", "step.failed"]
    # an already-cordoned node stays cordoned after a failed drain
    world.store.patch("nodes", "worker-3", {"spec": {"unschedulable": True}}, patch_type="strategic")
    with connect(world.kubeconfig_path) as client, pytest.raises(drain.DrainTimeout) as info:
        drain.drain_node(client, "worker-3", timeout=0.3, retry_interval=0.1, poll_interval=0.02)
    assert not info.value.uncordoned and world.store.get("nodes", "worker-3")["spec"]["unschedulable"]


def test_drain_refuses_unmanaged_pods_before_evicting_anything(make_world):
    world = make_world()
    world.store.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "loner", "namespace": "default"},
            "spec": {"nodeName": "worker-2", "containers": [{"name": "c", "image": "busybox"}]},
        }
    )
    with connect(world.kubeconfig_path) as client:
        with pytest.raises(drain.DrainRefused) as info:
            drain.drain_node(client, "worker-2", timeout=5)
        assert "default/loner: not managed by a controller" in info.value.message and info.value.uncordoned
    assert world.emulator.requests.filter(verb="evict") == []


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (
            {"metadata": {"ownerReferences": [{"kind": "DaemonSet", "name": "ds", "controller": True}]}},
            ("skip", "managed by DaemonSet ds"),
        ),
        (
            {"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}},
            ("skip", "mirror pod of a static pod"),
        ),
        ({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}, ("wait", None)),
        ({"metadata": {}, "status": {"phase": "Succeeded"}}, ("evict", None)),
        ({"metadata": {}}, ("refuse", "not managed by a controller (it would be gone for good)")),
        (
            {
                "metadata": {"ownerReferences": [{"kind": "ReplicaSet", "controller": True}]},
                "spec": {"volumes": [{"name": "v", "emptyDir": {}}]},
            },
            ("evict", None),
        ),
        ({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "controller": True}]}}, ("evict", None)),
    ],
)
def test_plan_drain_table(pod, expected):
    pod = {**pod, "metadata": {"name": "p", "namespace": "ns", **pod["metadata"]}}
    plan = drain.plan_drain([pod])
    kind, why = expected
    if kind == "skip":
        assert [w for _, w in plan.skip] == [why]
    elif kind == "refuse":
        assert [w for _, w in plan.refuse] == [why]
    elif kind == "wait":
        assert [str(r) for r in plan.wait] == ["ns/p"]
    else:
        assert [str(r) for r in plan.evict] == ["ns/p"]


def test_plan_drain_options():
    unmanaged = {"metadata": {"name": "u", "namespace": "ns"}}
    scratch = {
        "metadata": {
            "name": "s",
            "namespace": "ns",
            "ownerReferences": [{"kind": "Job", "controller": True}],
        },
        "spec": {"volumes": [{"emptyDir": {}}]},
    }
    assert [str(r) for r in drain.plan_drain([unmanaged], force=True).evict] == ["ns/u"]
    assert [w for _, w in drain.plan_drain([scratch], delete_emptydir_data=False).refuse] == [
        "uses emptyDir storage (its data would be deleted)"
    ]


@pytest.mark.parametrize(
    ("body", "budget", "message"),
    [
        (
            {
                "details": {
                    "causes": [
                        {
                            "reason": "DisruptionBudget",
                            "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
                        }
                    ]
                }
            },
            "ns/web",
            "needs 2 healthy pods and has 2 currently",
        ),
        (
            {
                "details": {
                    "causes": [
                        {
                            "reason": "DisruptionBudget",
                            "message": "The disruption budget db is still being processed by the server.",
                        }
                    ]
                }
            },
            "ns/db",
            "is still being processed by the server.",
        ),
        (
            {"message": "Too many requests, please try again later."},
            "",
            "Too many requests, please try again later.",
        ),
    ],
)
def test_blocker_from_429_table(body, budget, message):
    err = KubeApiError("evict: x", status=429, reason="TooManyRequests", body=body)
    blocker = drain.blocker_from(drain.PodRef("ns", "p"), err)
    assert (blocker.budget, blocker.message) == (budget, message)


# ---- Flux ---------------------------------------------------------------------------------------------


def test_flux_suspend_and_resume_restore_exactly_what_was_active(make_world):
    world = make_world()
    collector, emitter = events()
    with connect(world.kubeconfig_path) as client:
        token = flux.suspend_flux(client, emitter=emitter)
        assert sorted(map(str, token.suspended)) == [
            "HelmRelease kube-system/cilium",
            "Kustomization flux-system/cluster-apps",
        ]
        assert list(map(str, token.already_suspended)) == ["Kustomization flux-system/tuppr"]
        ks = world.store.get("kustomizations.kustomize.toolkit.fluxcd.io", "cluster-apps", "flux-system")
        assert (
            ks["spec"]["suspend"] is True
            and ks["status"]["observedGeneration"] < ks["metadata"]["generation"]
        )
        journal = json.loads(json.dumps(token.to_dict()))  # what a journal stores
        resumed = flux.resume_flux(client, flux.FluxSuspension.from_dict(journal), emitter=emitter)
        assert sorted(map(str, resumed)) == sorted(map(str, token.suspended))
    assert (
        world.store.get("kustomizations.kustomize.toolkit.fluxcd.io", "tuppr", "flux-system")["spec"][
            "suspend"
        ]
        is True
    )

    def reconciled(store):
        obj = store.get("kustomizations.kustomize.toolkit.fluxcd.io", "cluster-apps", "flux-system")
        requested = obj["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
        return (
            obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
            and obj["status"].get("lastHandledReconcileAt") == requested
        )

    world.wait_for(reconciled, 5, "cluster-apps reconciled after resume")
    assert [
        (e["name"], e["suspended"]) for e in world.recorder.entries("flux.suspend", name="cluster-apps")
    ] == [("cluster-apps", True), ("cluster-apps", False)]
    assert collector.kinds() == ["info", "cleanup"]


def test_flux_without_crds_is_nothing_to_suspend(emulator, tmp_path):
    emulator.store.delete(
        "customresourcedefinitions.apiextensions.k8s.io", "kustomizations.kustomize.toolkit.fluxcd.io"
    )
    path = tmp_path / "kc"
    path.write_text(emulator.kubeconfig("demo"))
    with connect(path) as client:
        token = flux.suspend_flux(client)
    assert token == flux.FluxSuspension()


# ---- readers --------------------------------------------------------------------------------------------


def test_parse_ceph_cluster_table():
    obj = {
        "metadata": {"namespace": "rook-ceph", "name": "rook-ceph", "generation": 3},
        "status": {
            "phase": "Ready",
            "observedGeneration": 3,
            "ceph": {
                "health": "HEALTH_WARN",
                "lastChecked": "2026-11-21T10:00:00Z",
                "previousHealth": "HEALTH_OK",
                "details": {
                    "PG_AVAILABILITY": {
                        "severity": "HEALTH_WARN",
                        "message": "Reduced data availability: 64 pgs stale",
                    }
                },
            },
        },
    }
    status = ceph.parse_ceph_cluster(obj)
    assert (
        status.codes == {"PG_AVAILABILITY"}
        and status.last_checked.hour == 10
        and status.previous_health == "HEALTH_OK"
    )
    assert status.describe() == "rook-ceph/rook-ceph: HEALTH_WARN [PG_AVAILABILITY]"
    assert (
        ceph.parse_ceph_cluster({"metadata": {"namespace": "a", "name": "b"}}).describe()
        == "a/b: no health reported yet (phase ?)"
    )
    assert not ceph.parse_rook_budget_state(
        "rook-ceph", ["rook-ceph-osd-host-a"], {"data": {"draining-failure-domain": "b"}}
    ).idle


def test_parse_cnpg_cluster_uses_spec_instances():
    obj = {
        "metadata": {"namespace": "db", "name": "pg"},
        "spec": {"instances": 3},
        "status": {
            "instances": 4,  # PVC groups, not what readiness is measured against
            "readyInstances": 3,
            "phase": "Cluster in healthy state",
            "currentPrimary": "pg-2",
            "targetPrimary": "pg-2",
            "timelineID": 7,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-21T10:00:00Z"}],
        },
    }
    pods = [
        {
            "metadata": {
                "namespace": "db",
                "name": "pg-2",
                "labels": {"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "primary"},
            },
            "spec": {"nodeName": "w1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
        {
            "metadata": {"namespace": "db", "name": "other", "labels": {"cnpg.io/cluster": "other"}},
            "spec": {"nodeName": "w1"},
        },
    ]
    status = cnpg.parse_cnpg_cluster(obj, pods)
    assert status.healthy and status.instances == 3 and status.primary_node() == "w1"
    assert [i.name for i in status.instances_on("w1")] == ["pg-2"]
    switching = cnpg.parse_cnpg_cluster({**obj, "status": {**obj["status"], "targetPrimary": "pg-3"}})
    assert not switching.healthy and "(target pg-3)" in switching.describe()


# ---- watch helper -----------------------------------------------------------------------------------------


def test_follow_relists_after_410_gone(make_world):
    import time

    world = make_world()
    seen = []
    with connect(world.kubeconfig_path) as client:
        deadline = time.monotonic() + 5
        for update in follow(
            client, client.core.list_namespaced_config_map, "default", deadline=deadline, server_timeout=2
        ):
            seen.append((update.type, sorted(update.objects)))
            if len(seen) == 1:
                # a change, then the history is compacted before we watch: the watch gets 410 Gone
                world.store.create(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "late", "namespace": "default"},
                    }
                )
                world.store.compact()
            elif update.type == "LISTED":
                break
    assert seen[0][0] == "LISTED" and seen[-1] == ("LISTED", ["default/late"])
    watches = world.emulator.requests.filter(verb="watch", resource="configmaps")
    assert watches and all("timeoutSeconds" in r.query for r in watches)


def test_wait_until_reports_last_state(make_world):
    world = make_world()
    with connect(world.kubeconfig_path) as client, pytest.raises(OperationFailed) as info:
        wait_until(
            client,
            client.core.list_namespaced_config_map,
            lambda objs: objs.get("default/never"),
            "default",
            timeout=0.5,
            what="configmap never",
            describe=lambda objs: f"{len(objs)} configmaps",
        )
    assert info.value.message == "configmap never did not happen within 0.5s (last seen: 0 configmaps)"


# ---- the gate engine's KubeSource ------------------------------------------------------------------


def test_api_kube_source_reads_any_kind_and_wakes_on_change(make_world):
    from taltasks.gates.kubesource import ApiKubeSource
    from taltasks.gates.sources import ResourceQuery, ResourceTypeUnknown

    world = make_world()
    with connect(world.kubeconfig_path) as client:
        source = ApiKubeSource(client, watch_seconds=2)
        nodes_ = source.list(ResourceQuery("v1", "Node"))
        assert len(nodes_) == 6 and nodes_[0]["kind"] == "Node" and nodes_[0]["apiVersion"] == "v1"
        pods = source.list(
            ResourceQuery("v1", "Pod", namespace="database", label_selector="cnpg.io/instanceRole=primary")
        )
        assert sorted(p["metadata"]["name"] for p in pods) == ["immich-1", "postgres-1"]
        ceph_obj = source.get(
            ResourceQuery("ceph.rook.io/v1", "CephCluster", namespace="rook-ceph", name="rook-ceph")
        )
        assert ceph_obj["status"]["ceph"]["health"] == "HEALTH_OK"
        assert (
            source.get(ResourceQuery("policy/v1", "PodDisruptionBudget", namespace="rook-ceph", name="nope"))
            is None
        )
        assert len(source.list(ResourceQuery("apps/v1", "DaemonSet"))) == 1
        with pytest.raises(ResourceTypeUnknown):
            source.list(ResourceQuery("example.com/v1", "Widget"))
        with pytest.raises(ResourceTypeUnknown):
            source.list(ResourceQuery("v1", "Frobnicator"))
        wake = threading.Event()
        unsubscribe = source.subscribe([ResourceQuery("v1", "Node", name="worker-2")], wake)
        assert wake.wait(5)  # the initial list
        wake.clear()
        set_node_ready(world.store, "worker-2", False)
        assert wake.wait(5)
        unsubscribe()
