"""Simulated Talos nodes run Kubernetes from their config: component config resources,
static pods with ``talos.dev/config-version``, StaticPodStatus, kubelet restarts.

What ``talosctl upgrade-k8s`` (and ``talos.upgrade-k8s``) relies on, checked through the
real APIs: COSI over gRPC on the Talos side, the Kubernetes store on the other.
"""

from __future__ import annotations

import threading

import pytest
import yaml

from simtalos import make_world
from waiting import wait_until

APISERVER = "APIServerConfigs.kubernetes.talos.dev"
POD_STATUS = "StaticPodStatuses.kubernetes.talos.dev"
SERVICES = "Services.v1alpha1.talos.dev"


@pytest.fixture
def kworld(loopback_subnet):
    w = make_world(loopback_subnet, talos_version="v1.12.0", kubernetes_version="v1.34.3").start()
    w.kube.wait_for(
        lambda s: sum(1 for p in s.list("pods", namespace="kube-system") if _ready(p)) == 9,
        10,
        "nine Ready control-plane mirror pods",
    )
    yield w
    assert w.kube.errors == [], w.kube.errors
    w.stop()


def _ready(pod) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _apply(admin, node, change) -> None:
    cfg = yaml.safe_load(node.config.raw)
    change(cfg)
    [res] = admin.apply_configuration(yaml.safe_dump(cfg).encode(), nodes=[node.ip], mode="NO_REBOOT")
    res.unwrap()


def _collect(stream, into: list, stop_after: int) -> threading.Thread:
    def run():
        for event in stream:
            into.append(event)
            if len(into) >= stop_after:
                return

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_mirror_pods_carry_the_config_image_and_version_and_report_back(kworld):
    from taltasks.talos.client import TalosClient

    cp1 = kworld.talos.node("cp-1")
    pod = kworld.kube.store.get("pods", "kube-apiserver-cp-1", "kube-system")
    assert pod["spec"]["containers"][0]["image"] == cp1.config.image("apiServer")
    with TalosClient.from_context(kworld.talos.talosconfig().context()) as admin:
        config = admin.get(APISERVER, "kube-apiserver", namespace="controlplane", node=cp1.ip)
        assert pod["metadata"]["annotations"]["talos.dev/config-version"] == config.version
        status = wait_until(
            lambda: next(
                (
                    r
                    for r in admin.list(POD_STATUS, namespace="k8s", node=cp1.ip)
                    if r.id == "kube-system/kube-apiserver-cp-1" and r.spec.get("phase") == "Running"
                ),
                None,
            ),
            5,
            "the StaticPodStatus of kube-apiserver-cp-1",
        )
        assert {c["type"]: c["status"] for c in status.spec["conditions"]}["Ready"] == "True"
        ids = sorted(r.id for r in admin.list(POD_STATUS, namespace="k8s", node=cp1.ip))
        assert ids == [
            f"kube-system/{c}-cp-1" for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
        ]
        assert admin.list(POD_STATUS, namespace="k8s", node=kworld.talos.node("worker-1").ip) == []


def test_a_new_apiserver_image_bumps_the_config_and_restarts_only_that_pod(kworld):
    from taltasks.talos.client import TalosClient

    store, cp1 = kworld.kube.store, kworld.talos.node("cp-1")
    before = {
        p["metadata"]["name"]: p["metadata"]["uid"] for p in store.list("pods", namespace="kube-system")
    }
    with TalosClient.from_context(kworld.talos.talosconfig().context()) as admin:
        v0 = admin.get(APISERVER, "kube-apiserver", namespace="controlplane", node=cp1.ip).version
        statuses: list = []
        watcher = _collect(
            admin.watch(
                POD_STATUS, "kube-system/kube-apiserver-cp-1", namespace="k8s", node=cp1.ip, timeout=10
            ),
            statuses,
            stop_after=4,
        )
        wait_until(lambda: statuses, 5, "the watch's first event")  # the watch opens in its thread
        image = "registry.k8s.io/kube-apiserver:v1.35.0"
        _apply(admin, cp1, lambda c: c["cluster"]["apiServer"].update(image=image))
        v1 = admin.get(APISERVER, "kube-apiserver", namespace="controlplane", node=cp1.ip)
        assert int(v1.version) == int(v0) + 1 and v1.spec["image"] == image
        pod = kworld.kube.wait_for(
            lambda s: (
                (p := s.try_get("pods", "kube-apiserver-cp-1", "kube-system"))
                and p["metadata"]["annotations"]["talos.dev/config-version"] == v1.version
                and _ready(p)
                and p
            ),
            5,
            "the restarted kube-apiserver on cp-1",
        )
        assert pod["spec"]["containers"][0]["image"] == image
        watcher.join(5)
    # the pod was replaced (new uid) and went through a not-Ready state on the way
    assert pod["metadata"]["uid"] != before["kube-apiserver-cp-1"]
    readiness = [
        {c["type"]: c["status"] for c in (e.resource.spec or {}).get("conditions") or []}.get("Ready")
        for e in statuses[1:]
        if e.type != "DESTROYED"
    ]
    assert [e.type for e in statuses] == ["CREATED", "DESTROYED", "CREATED", "UPDATED"]
    assert readiness == [None, "True"]  # Pending first, then Running and Ready
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in store.list("pods", namespace="kube-system")}
    unchanged = {n for n in before if n != "kube-apiserver-cp-1"}
    assert {n: after[n] for n in unchanged} == {n: before[n] for n in unchanged}
    [replaced] = kworld.recorder.entries("kubelet.static_pod_replaced")
    assert replaced["pod"] == "kube-apiserver-cp-1" and replaced["image"] == image


def test_a_new_kubelet_image_restarts_the_kubelet_and_the_node_reports_it(kworld):
    from taltasks.talos.client import TalosClient

    store, w1 = kworld.kube.store, kworld.talos.node("worker-1")
    image = "ghcr.io/siderolabs/kubelet:v1.35.0"
    with TalosClient.from_context(kworld.talos.talosconfig().context()) as admin:
        assert admin.image_pull(image, nodes=[w1.ip], cri=False)[0].ok
        events: list = []
        watcher = _collect(
            admin.watch(SERVICES, "kubelet", namespace="runtime", node=w1.ip, timeout=10),
            events,
            stop_after=3,
        )
        wait_until(lambda: events, 5, "the watch's first event")
        _apply(admin, w1, lambda c: c["machine"]["kubelet"].update(image=image))
        watcher.join(5)
        assert [e.type for e in events] == ["CREATED", "DESTROYED", "CREATED"]
        assert events[2].resource.spec["running"] and events[2].resource.spec["healthy"]
        kubelet = admin.get("KubeletSpecs.kubernetes.talos.dev", "kubelet", namespace="k8s", node=w1.ip)
        assert kubelet.spec["image"] == image
    node = kworld.kube.wait_for(
        lambda s: (
            (n := s.get("nodes", "worker-1"))["status"]["nodeInfo"]["kubeletVersion"] == "v1.35.0" and n
        ),
        5,
        "worker-1 reporting kubelet v1.35.0",
    )
    assert _ready(node)
    # a kubelet restart is no reboot: the Node never went NotReady
    assert [e["ready"] for e in kworld.recorder.entries("node.ready", node="worker-1")][-1] is True
    assert all(e["ready"] for e in kworld.recorder.entries("node.ready", node="worker-1"))
    pulls = [(e["image"], e["source"]) for e in kworld.recorder.entries("talos.image_pull", node="worker-1")]
    assert pulls == [(image, "api")]  # pre-pulled: nothing pulled late
    assert [e["image"] for e in kworld.recorder.entries("talos.kubelet_restart")] == [image]
    assert store.get("nodes", "worker-1")["metadata"]["uid"]


def test_kube_proxy_image_change_and_late_pulls_are_recorded(kworld):
    from taltasks.talos.client import TalosClient

    cp2 = kworld.talos.node("cp-2")
    proxy = "registry.k8s.io/kube-proxy:v1.35.0"
    scheduler = "registry.k8s.io/kube-scheduler:v1.35.0"
    with TalosClient.from_context(kworld.talos.talosconfig().context()) as admin:
        _apply(admin, cp2, lambda c: c["cluster"]["proxy"].update(image=proxy))
        _apply(admin, cp2, lambda c: c["cluster"]["scheduler"].update(image=scheduler))
    [change] = kworld.recorder.entries("talos.kube_proxy_image")
    assert change["node"] == "cp-2" and change["image"] == proxy and change["before"].endswith(":v1.34.3")
    # nobody pre-pulled the scheduler: the node pulls it when the config changes (kube-proxy
    # is a DaemonSet's image, which Talos does not pull)
    assert [(e["image"], e["source"]) for e in kworld.recorder.entries("talos.image_pull")] == [
        (scheduler, "config")
    ]
    assert kworld.recorder.entries("talos.kubelet_restart") == []


def test_resource_watch_gives_up_at_its_deadline_naming_the_last_state(kworld):
    from taltasks.errors import OperationFailed
    from taltasks.talos.client import TalosClient
    from taltasks.talos.watching import ResourceWatch

    cp1 = kworld.talos.node("cp-1")
    with (
        TalosClient.from_context(kworld.talos.talosconfig().context()) as admin,
        ResourceWatch(
            admin, APISERVER, "kube-apiserver", namespace="controlplane", node=cp1.ip, timeout=0.5
        ) as watch,
    ):
        assert watch.initial.type == "CREATED" and watch.initial.resource.spec["image"].endswith(":v1.34.3")
        with pytest.raises(OperationFailed) as info:
            watch.until(lambda e: e.type == "UPDATED", "the config resource to update")
    assert "the config resource to update did not happen within 0.5s" in info.value.message
    assert "APIServerConfigs/kube-apiserver: CREATED version 1" in info.value.message
    assert info.value.where == cp1.ip
