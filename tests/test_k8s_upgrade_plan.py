"""Planning a Kubernetes upgrade (pure): path and support-matrix refusals, step order,
verify/skip decisions, image references."""

from __future__ import annotations

import pytest

from taltasks.errors import InputError, OperationFailed
from taltasks.model.images import image_tag, retag, split
from taltasks.model.versions import Version, kubernetes_path_refusal
from taltasks.workflows.k8s_upgrade import ClusterState, ObservedNode, plan_upgrade

V = Version.parse


def images(k8s: str, *, kubelet: str | None = None, registry: str = "registry.k8s.io") -> dict:
    return {
        "kube-apiserver": f"{registry}/kube-apiserver:{k8s}",
        "kube-controller-manager": f"{registry}/kube-controller-manager:{k8s}",
        "kube-scheduler": f"{registry}/kube-scheduler:{k8s}",
        "kube-proxy": f"{registry}/kube-proxy:{k8s}",
        "kubelet": f"ghcr.io/siderolabs/kubelet:{kubelet or k8s}",
    }


def cluster(
    talos: str = "v1.12.0", k8s: str = "v1.34.3", *, cps: int = 2, workers: int = 1, **node_overrides
) -> ClusterState:
    nodes = []
    for i in range(cps):
        nodes.append(ObservedNode(f"cp-{i + 1}", f"127.0.0.{11 + i}", True, talos, k8s, images(k8s)))
    for i in range(workers):
        nodes.append(ObservedNode(f"worker-{i + 1}", f"127.0.0.{21 + i}", False, talos, k8s, images(k8s)))
    for name, changes in node_overrides.items():
        nodes = [
            ObservedNode(**{**n.__dict__, **changes}) if n.name == name.replace("_", "-") else n
            for n in nodes
        ]
    tags = {
        f"kube-apiserver-{n.name}": image_tag(n.images["kube-apiserver"]) for n in nodes if n.control_plane
    }
    return ClusterState(tuple(nodes), tags)


@pytest.mark.parametrize(
    ("current", "target", "refused"),
    [
        ("v1.34.3", "v1.35.0", None),
        ("v1.34.3", "v1.34.5", None),
        ("v1.34.3", "v1.34.3", None),
        ("v1.34.3", "v1.36.0", "skips 1 minor version"),
        ("v1.33.9", "v1.36.2", "skips 2 minor versions"),
        ("v1.34.3", "v1.34.1", "cannot be downgraded"),
        ("v1.35.0", "v1.34.9", "cannot be downgraded"),
        ("v1.34.3", "v2.0.0", "major version"),
    ],
)
def test_upgrade_path(current, target, refused):
    reason = kubernetes_path_refusal(V(current), V(target))
    assert (reason is None) if refused is None else (refused in reason), reason


def test_two_minor_jump_is_refused_naming_the_next_step():
    with pytest.raises(InputError) as info:
        plan_upgrade(cluster(), V("v1.36.0"))
    assert "skips 1 minor version" in info.value.message
    assert "v1.35.x first" in info.value.message


def test_a_version_the_talos_version_does_not_support_is_refused_naming_the_nodes():
    state = cluster("v1.11.5", cps=1, workers=2, worker_2={"talos_version": "v1.12.1"})
    with pytest.raises(InputError) as info:
        plan_upgrade(state, V("v1.35.0"))
    message = info.value.message
    assert "cp-1 runs Talos v1.11.5 (Kubernetes 1.29–1.34)" in message
    assert "worker-1 runs Talos v1.11.5" in message and "worker-2" not in message
    assert "upgrade Talos first" in info.value.hint


def test_the_lowest_running_apiserver_is_the_starting_point():
    state = cluster(cps=3)
    state = ClusterState(state.nodes, {**state.apiserver_tags, "kube-apiserver-cp-2": "v1.33.8"})
    assert state.running_version() == V("v1.33.8")
    with pytest.raises(InputError, match="skips 1 minor"):
        plan_upgrade(state, V("v1.35.0"))


def test_unreadable_nodes_stop_the_plan():
    state = cluster(worker_1={"error": "UNAVAILABLE: connection refused", "talos_version": None})
    with pytest.raises(OperationFailed, match=r"worker-1 .*connection refused"):
        plan_upgrade(state, V("v1.35.0"))


def test_step_order_pulls_snapshot_components_node_by_node_proxy_kubelets():
    plan = plan_upgrade(cluster(cps=2, workers=1), V("v1.35.0"))
    order = [(s.kind, s.component, s.node, s.action) for s in plan.steps]
    assert order == [
        ("pre-pull", "control-plane", "cp-1", "run"),
        ("pre-pull", "kubelet", "cp-1", "run"),
        ("pre-pull", "control-plane", "cp-2", "run"),
        ("pre-pull", "kubelet", "cp-2", "run"),
        ("pre-pull", "kubelet", "worker-1", "run"),
        ("snapshot", "etcd", "", "run"),
        ("control-plane", "kube-apiserver", "cp-1", "upgrade"),
        ("control-plane", "kube-apiserver", "cp-2", "upgrade"),
        ("control-plane", "kube-controller-manager", "cp-1", "upgrade"),
        ("control-plane", "kube-controller-manager", "cp-2", "upgrade"),
        ("control-plane", "kube-scheduler", "cp-1", "upgrade"),
        ("control-plane", "kube-scheduler", "cp-2", "upgrade"),
        ("kube-proxy", "kube-proxy", "cp-1", "upgrade"),
        ("kube-proxy", "kube-proxy", "cp-2", "upgrade"),
        ("kubelet", "kubelet", "cp-1", "upgrade"),
        ("kubelet", "kubelet", "cp-2", "upgrade"),
        ("kubelet", "kubelet", "worker-1", "upgrade"),
    ]
    assert plan.steps[0].images == (
        "registry.k8s.io/kube-apiserver:v1.35.0",
        "registry.k8s.io/kube-controller-manager:v1.35.0",
        "registry.k8s.io/kube-scheduler:v1.35.0",
    )
    assert plan.from_version == V("v1.34.3") and len(plan.changes) == 11


@pytest.mark.parametrize(
    ("overrides", "options", "expect"),
    [
        # a node whose config already has the new apiserver: verified, not re-applied
        (
            {
                "cp_1": {
                    "images": {
                        **images("v1.34.3"),
                        "kube-apiserver": "registry.k8s.io/kube-apiserver:v1.35.0",
                    }
                }
            },
            {},
            {
                ("control-plane", "kube-apiserver", "cp-1"): "verify",
                ("control-plane", "kube-apiserver", "cp-2"): "upgrade",
            },
        ),
        # kubelet config done and the Node reports it: nothing left to do there
        (
            {"worker_1": {"images": images("v1.34.3", kubelet="v1.35.0"), "kubelet_version": "v1.35.0"}},
            {},
            {("kubelet", "kubelet", "worker-1"): "skip", ("kubelet", "kubelet", "cp-1"): "upgrade"},
        ),
        # kubelet config done, Node not yet reporting: wait for it
        (
            {"worker_1": {"images": images("v1.34.3", kubelet="v1.35.0")}},
            {},
            {("kubelet", "kubelet", "worker-1"): "verify"},
        ),
        (
            {"cp_2": {"proxy_disabled": True}},
            {},
            {("kube-proxy", "kube-proxy", "cp-2"): "skip", ("kube-proxy", "kube-proxy", "cp-1"): "upgrade"},
        ),
        (
            {},
            {"kubelet": False},
            {("kubelet", "kubelet", "cp-1"): "skip", ("pre-pull", "control-plane", "cp-1"): "run"},
        ),
        (
            {},
            {"pre_pull": False},
            {("pre-pull", "control-plane", "cp-1"): "skip", ("pre-pull", "kubelet", "worker-1"): "skip"},
        ),
    ],
)
def test_what_each_step_does(overrides, options, expect):
    plan = plan_upgrade(cluster(**overrides), V("v1.35.0"), **options)
    actions = {(s.kind, s.component, s.node): s.action for s in plan.steps}
    for key, action in expect.items():
        assert actions[key] == action, (key, plan.rows())


def test_nothing_to_do_means_no_snapshot_and_only_verification():
    plan = plan_upgrade(cluster(k8s="v1.35.0"), V("v1.35.0"))
    assert plan.changes == []
    snapshot = next(s for s in plan.steps if s.kind == "snapshot")
    assert snapshot.action == "skip"
    assert {s.action for s in plan.steps if s.kind == "control-plane"} == {"verify"}
    assert {s.action for s in plan.steps if s.kind in ("kubelet", "kube-proxy")} == {"skip"}


def test_custom_registries_are_kept():
    mirror = images("v1.34.3", registry="mirror.lan:5000/k8s")
    plan = plan_upgrade(cluster(cps=1, workers=0, cp_1={"images": mirror}), V("v1.35.0"))
    apiserver = next(s for s in plan.steps if s.component == "kube-apiserver")
    assert apiserver.image == "mirror.lan:5000/k8s/kube-apiserver:v1.35.0"


@pytest.mark.parametrize(
    ("image", "repo", "tag"),
    [
        ("registry.k8s.io/kube-apiserver:v1.34.3", "registry.k8s.io/kube-apiserver", "v1.34.3"),
        ("mirror.lan:5000/kube-apiserver", "mirror.lan:5000/kube-apiserver", None),
        ("mirror.lan:5000/kube-apiserver:v1.34.3@sha256:abc", "mirror.lan:5000/kube-apiserver", "v1.34.3"),
        ("ghcr.io/siderolabs/kubelet@sha256:abc", "ghcr.io/siderolabs/kubelet", None),
    ],
)
def test_image_references(image, repo, tag):
    assert split(image) == (repo, tag)
    assert retag(image, "v1.35.0") == f"{repo}:v1.35.0"
