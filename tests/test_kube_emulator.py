"""The emulator answers the official kubernetes client the way kube-apiserver does.

Every test talks HTTPS with client-certificate auth to an emulator on a loopback address.
"""

# ruff: noqa: F811 - pytest fixtures imported from kubesim are redefined as parameters

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request

import pytest
from kubesim import api, emulator, kube_ca, kubeconfig  # noqa: F401 - fixtures

CEPH = ("ceph.rook.io", "v1", "cephclusters")


def ceph_cluster(name: str = "rook-ceph", **spec) -> dict:
    return {
        "apiVersion": "ceph.rook.io/v1",
        "kind": "CephCluster",
        "metadata": {"name": name},
        "spec": {"mon": {"count": 3}, **spec},
    }


def pod(name: str, labels: dict | None = None, node: str | None = None, **meta) -> dict:
    spec: dict = {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, **meta},
        "spec": spec,
    }


def status_of(exc) -> dict:
    return json.loads(exc.body)


@pytest.fixture
def core(api):
    from kubernetes import client

    return client.CoreV1Api(api)


@pytest.fixture
def custom(api):
    from kubernetes import client

    return client.CustomObjectsApi(api)


@pytest.fixture
def ns(core):
    from kubernetes import client

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="work")))
    return "work"


# ---- discovery --------------------------------------------------------------------------------


def test_discovery_with_and_without_trailing_slash(api, emulator):
    from kubernetes import client

    # the client itself asks for /version/ and /apis/ with a trailing slash
    assert client.VersionApi(api).get_code().git_version == "v1.34.3"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {
        "apps",
        "policy",
        "ceph.rook.io",
        "postgresql.cnpg.io",
        "kustomize.toolkit.fluxcd.io",
        "helm.toolkit.fluxcd.io",
    } <= groups
    core_resources = client.CoreV1Api(api).get_api_resources()
    names = {r.name: r for r in core_resources.resources}
    assert names["pods/eviction"].group == "policy" and names["pods/eviction"].kind == "Eviction"
    assert "nodes/status" in names and names["nodes"].short_names == ["no"]
    paths = {r.path for r in emulator.requests.filter(verb="get")}
    assert "/version" in paths and "/apis" in paths  # logged without the slash they came with
    cephs = client.CustomObjectsApi(api).get_api_resources("ceph.rook.io", "v1")
    assert {"cephclusters", "cephclusters/status", "cephblockpools"} <= {r.name for r in cephs.resources}


def test_aggregated_discovery_by_accept_header(emulator):
    admin = emulator.client_certificate()
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    resp = _https(emulator, "/apis", cert=admin, headers={"Accept": accept})
    assert (
        resp.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )
    doc = json.loads(resp.read())
    apps = next(i for i in doc["items"] if i["metadata"].get("name") == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced" and deployments["shortNames"] == ["deploy"]
    assert {s["subresource"] for s in deployments["subresources"]} == {"status", "scale"}
    plain = json.loads(_https(emulator, "/apis", cert=admin).read())
    assert plain["kind"] == "APIGroupList"


# ---- create / get / update ----------------------------------------------------------------------


def test_create_returns_201_with_server_metadata(custom, core, ns, emulator):
    created = custom.create_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], ceph_cluster())
    assert created is not None  # P3: a 200 would make the client return None
    meta = created["metadata"]
    assert meta["uid"] and meta["resourceVersion"].isdigit() and meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    [post] = emulator.requests.filter(method="POST", resource="cephclusters.ceph.rook.io")
    assert post.status == 201
    made = core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    assert made.metadata.uid and made.metadata.resource_version


def test_duplicate_create_is_409_already_exists(custom, ns):
    from kubernetes.client.exceptions import ApiException

    custom.create_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], ceph_cluster())
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], ceph_cluster())
    assert info.value.status == 409
    body = status_of(info.value)
    assert body["kind"] == "Status" and body["reason"] == "AlreadyExists"
    assert body["message"] == 'cephclusters.ceph.rook.io "rook-ceph" already exists'


def test_create_in_missing_namespace_is_404(core):
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod("nowhere", pod("p"))
    assert info.value.status == 404 and status_of(info.value)["message"] == 'namespaces "nowhere" not found'


def test_invalid_objects_are_422_with_causes(core, ns):
    from kubernetes.client.exceptions import ApiException

    bad = pod("Not_A_Name")
    bad["spec"]["containers"] = []
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(ns, bad)
    body = status_of(info.value)
    assert info.value.status == 422 and body["reason"] == "Invalid"
    assert {c["field"] for c in body["details"]["causes"]} == {"metadata.name", "spec.containers"}


def test_stale_resource_version_is_409_on_put_and_patch(custom, ns):
    from kubernetes.client.exceptions import ApiException

    first = custom.create_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], ceph_cluster())
    stale_rv = first["metadata"]["resourceVersion"]
    first["spec"]["mon"]["count"] = 5
    updated = custom.replace_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph", first)
    assert updated["metadata"]["generation"] == 2 and updated["metadata"]["resourceVersion"] != stale_rv
    first["spec"]["mon"]["count"] = 7  # still carries the old resourceVersion
    with pytest.raises(ApiException) as info:
        custom.replace_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph", first)
    assert info.value.status == 409 and status_of(info.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(
            *CEPH[:2], ns, CEPH[2], "rook-ceph", {"metadata": {"resourceVersion": stale_rv}, "spec": {"x": 1}}
        )
    assert info.value.status == 409
    # a custom resource PUT without any resourceVersion is refused like the real server does
    del first["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as info:
        custom.replace_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph", first)
    assert info.value.status == 422


def test_noop_update_keeps_resource_version(custom, ns):
    created = custom.create_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], ceph_cluster())
    again = custom.patch_namespaced_custom_object(
        *CEPH[:2], ns, CEPH[2], "rook-ceph", {"spec": {"mon": {"count": 3}}}
    )
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


# ---- patches ----------------------------------------------------------------------------------------


def test_merge_json_and_strategic_patches_by_content_type(custom, core, ns):
    from kubernetes.client.exceptions import ApiException

    custom.create_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], ceph_cluster(storage={"nodes": ["a"]}))
    merged = custom.patch_namespaced_custom_object(
        *CEPH[:2], ns, CEPH[2], "rook-ceph", {"spec": {"mon": {"count": 5}, "storage": None}}
    )
    assert merged["spec"] == {"mon": {"count": 5}}
    # P4: a list body sent as merge patch (the client's default content type) is a 400
    ops = [{"op": "replace", "path": "/spec/mon/count", "value": 7}]
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph", ops)
    assert info.value.status == 400 and "cannot unmarshal array" in status_of(info.value)["message"]
    patched = custom.patch_namespaced_custom_object(
        *CEPH[:2], ns, CEPH[2], "rook-ceph", ops, _content_type="application/json-patch+json"
    )
    assert patched["spec"]["mon"]["count"] == 7
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(
            *CEPH[:2],
            ns,
            CEPH[2],
            "rook-ceph",
            [{"op": "test", "path": "/spec/mon/count", "value": 1}],
            _content_type="application/json-patch+json",
        )
    assert info.value.status == 422
    # strategic merge is for built-in kinds only
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(
            *CEPH[:2],
            ns,
            CEPH[2],
            "rook-ceph",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert info.value.status == 415
    # on a pod, containers merge by name and finalizers as a set (CoreV1Api sends SMP for dicts)
    p = pod("smp", labels={"a": "1"})
    p["spec"]["containers"].append({"name": "side", "image": "busybox:1"})
    p["metadata"]["finalizers"] = ["example.com/one"]
    core.create_namespaced_pod(ns, p)
    out = core.patch_namespaced_pod(
        "smp",
        ns,
        {
            "metadata": {"labels": {"b": "2"}, "finalizers": ["example.com/two"]},
            "spec": {"containers": [{"name": "side", "image": "busybox:2"}]},
        },
    )
    assert out.metadata.labels == {"a": "1", "b": "2"}
    assert out.metadata.finalizers == ["example.com/one", "example.com/two"]
    assert [(c.name, c.image) for c in out.spec.containers] == [
        ("app", "registry.k8s.io/pause:3.10"),
        ("side", "busybox:2"),
    ]


def test_unsupported_patch_content_type_is_415(custom, ns, emulator):
    import urllib.error

    custom.create_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], ceph_cluster())
    with pytest.raises(urllib.error.HTTPError) as info:
        _https(
            emulator,
            f"/apis/ceph.rook.io/v1/namespaces/{ns}/cephclusters/rook-ceph",
            cert=emulator.client_certificate(),
            method="PATCH",
            data=b'{"spec":{}}',
            headers={"Content-Type": "text/plain"},
        )
    assert info.value.code == 415 and json.loads(info.value.read())["reason"] == "UnsupportedMediaType"


def test_server_side_apply_creates_merges_and_reports_conflicts(custom, ns):
    from kubernetes.client.exceptions import ApiException

    def apply(body, manager, force=False):
        return custom.patch_namespaced_custom_object(
            *CEPH[:2],
            ns,
            CEPH[2],
            "rook-ceph",
            body,
            field_manager=manager,
            force=force,
            _content_type="application/apply-patch+yaml",
        )

    # an apply that creates answers 201, which this client's patch method (documented for 200
    # only) turns into None, exactly as against kube-apiserver: read the object back instead
    assert apply(ceph_cluster(dataDirHostPath="/var/lib/rook"), "cilium-install") is None
    created = custom.get_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph")
    assert created["metadata"]["managedFields"][0]["manager"] == "cilium-install"
    assert created["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:dataDirHostPath"] == {}
    # the same manager dropping a field removes it
    second = apply(ceph_cluster(), "cilium-install")
    assert "dataDirHostPath" not in second["spec"]
    # another manager changing an owned field conflicts, unless it forces
    other = ceph_cluster()
    other["spec"]["mon"]["count"] = 5
    with pytest.raises(ApiException) as info:
        apply(other, "someone-else")
    body = status_of(info.value)
    assert info.value.status == 409 and body["details"]["causes"][0]["field"] == ".spec.mon.count"
    forced = apply(other, "someone-else", force=True)
    assert forced["spec"]["mon"]["count"] == 5
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(
            *CEPH[:2], ns, CEPH[2], "rook-ceph", other, _content_type="application/apply-patch+yaml"
        )
    assert info.value.status == 400  # no fieldManager


def test_repeating_an_identical_apply_later_changes_nothing(emulator, custom, ns):
    """kube-apiserver ignores managedFields timestamps when deciding whether an apply
    changed anything; so must the emulator, or a re-run looks like a change."""

    def apply(body):
        return custom.patch_namespaced_custom_object(
            *CEPH[:2], ns, CEPH[2], "rook-ceph", body, field_manager="taltasks",
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip

    apply(ceph_cluster())

    def age(obj):  # as if the first apply happened an hour ago
        obj["metadata"]["managedFields"][0]["time"] = "2020-01-01T00:00:00Z"

    store = emulator.store
    before = store.mutate("cephclusters.ceph.rook.io", "rook-ceph", age, namespace=ns)
    after = apply(ceph_cluster())
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["managedFields"][0]["time"] == "2020-01-01T00:00:00Z"
    changed = ceph_cluster()
    changed["spec"]["mon"]["count"] = 5
    moved = apply(changed)
    assert moved["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
    assert moved["metadata"]["managedFields"][0]["time"] != "2020-01-01T00:00:00Z"


# ---- status subresource -------------------------------------------------------------------------------


def test_status_subresource_is_isolated(custom, ns):
    custom.create_namespaced_custom_object(
        *CEPH[:2], ns, CEPH[2], {**ceph_cluster(), "status": {"phase": "Ignored"}}
    )
    obj = custom.get_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph")
    assert "status" not in obj  # status is dropped on create
    via_status = custom.patch_namespaced_custom_object_status(
        *CEPH[:2], ns, CEPH[2], "rook-ceph", {"spec": {"mon": {"count": 9}}, "status": {"phase": "Ready"}}
    )
    assert via_status["status"] == {"phase": "Ready"} and via_status["spec"]["mon"]["count"] == 3
    assert via_status["metadata"]["generation"] == 1
    via_main = custom.patch_namespaced_custom_object(
        *CEPH[:2], ns, CEPH[2], "rook-ceph", {"spec": {"mon": {"count": 5}}, "status": {"phase": "Failure"}}
    )
    assert via_main["status"] == {"phase": "Ready"} and via_main["spec"]["mon"]["count"] == 5
    assert via_main["metadata"]["generation"] == 2


# ---- selectors and pagination -------------------------------------------------------------------------


def test_label_and_field_selectors(core, ns):
    from kubernetes.client.exceptions import ApiException

    core.create_namespaced_pod(ns, pod("a", {"app": "web", "tier": "front"}, node="worker-1"))
    core.create_namespaced_pod(ns, pod("b", {"app": "web", "tier": "back"}, node="worker-2"))
    core.create_namespaced_pod(ns, pod("c", {"app": "db"}, node="worker-1"))

    def names(**kw):
        return sorted(p.metadata.name for p in core.list_namespaced_pod(ns, **kw).items)

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app=web,tier!=front") == ["b"]
    assert names(label_selector="tier in (front,back)") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(field_selector="spec.nodeName=worker-1") == ["a", "c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="status.phase=Pending,spec.nodeName!=worker-1") == ["b"]
    assert [
        p.metadata.name
        for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-2").items
    ] == ["b"]
    with pytest.raises(ApiException) as info:
        core.list_namespaced_pod(ns, field_selector="spec.priority=1")
    assert info.value.status == 400 and "field label not supported" in status_of(info.value)["message"]
    with pytest.raises(ApiException) as info:
        core.list_namespaced_pod(ns, label_selector="app in (")
    assert info.value.status == 400


def test_list_pagination_with_limit_and_continue(core, ns):
    for i in range(5):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i}"}})
    first = core.list_namespaced_config_map(ns, limit=2)
    assert [c.metadata.name for c in first.items] == [
        "cm-0",
        "cm-1",
    ] and first.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map(ns, limit=10, _continue=first.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["cm-2", "cm-3", "cm-4"] and not rest.metadata._continue


# ---- watch -----------------------------------------------------------------------------------------------


def test_watch_replays_from_resource_version_and_sees_in_process_changes(core, ns, emulator):
    from kubernetes import watch

    core.create_namespaced_config_map(ns, {"metadata": {"name": "one"}})
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "two"}})
    core.patch_namespaced_config_map("two", ns, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("one", ns)

    def change_later():
        emulator.store.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "three", "namespace": ns}}
        )

    seen = []
    w = watch.Watch()
    timer = threading.Timer(0.2, change_later)
    timer.start()
    for ev in w.stream(
        core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5, _request_timeout=10
    ):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 4:
            w.stop()
    timer.join()
    assert seen == [("ADDED", "two"), ("MODIFIED", "two"), ("DELETED", "one"), ("ADDED", "three")]


def test_watch_with_selector_turns_relabels_into_added_and_deleted(core, ns):
    from kubernetes import watch

    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm", "labels": {"pick": "no"}}})
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.patch_namespaced_config_map("cm", ns, {"metadata": {"labels": {"pick": "yes"}}})
    core.patch_namespaced_config_map("cm", ns, {"metadata": {"labels": {"pick": "no"}}})
    events = [
        ev["type"]
        for ev in watch.Watch().stream(
            core.list_namespaced_config_map,
            ns,
            label_selector="pick=yes",
            resource_version=rv,
            timeout_seconds=1,
            _request_timeout=5,
        )
    ]
    assert events == ["ADDED", "DELETED"]


def test_watch_ends_at_timeout_seconds_without_client_timeout(core, ns):
    from kubernetes import watch

    started = time.monotonic()
    events = list(
        watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=1, _request_timeout=5)
    )
    elapsed = time.monotonic() - started
    assert events == []  # nothing in the namespace, nothing happened
    assert 0.9 <= elapsed < 3, elapsed  # ended by the server at timeoutSeconds, not by the 5 s client timeout


def test_watch_from_compacted_version_is_410_gone(core, ns, emulator):
    from kubernetes.client.exceptions import ApiException

    from kubernetes import watch

    old_rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "x"}})
    emulator.store.compact()
    with pytest.raises(ApiException) as info:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map,
                ns,
                resource_version=old_rv,
                timeout_seconds=2,
                _request_timeout=5,
            )
        )
    assert info.value.status == 410 and "too old resource version" in info.value.reason


def test_watch_sends_bookmarks_when_asked(core, ns, api):
    resp = core.list_namespaced_config_map(
        ns, watch=True, allow_watch_bookmarks=True, timeout_seconds=1, _preload_content=False
    )
    lines = [json.loads(line) for line in resp.data.decode().splitlines() if line]
    assert lines and {e["type"] for e in lines} == {"BOOKMARK"}
    assert lines[0]["object"]["metadata"]["resourceVersion"].isdigit()


# ---- deletion ------------------------------------------------------------------------------------------


def test_finalizers_hold_deletion_until_removed(custom, ns):
    from kubernetes.client.exceptions import ApiException

    body = ceph_cluster()
    body["metadata"]["finalizers"] = ["ceph.rook.io/disaster-protection"]
    custom.create_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], body)
    pending = custom.delete_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph")
    assert pending["metadata"]["deletionTimestamp"]
    still = custom.get_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph")
    assert still["metadata"]["deletionTimestamp"] == pending["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as info:  # no new finalizers on an object being deleted
        custom.patch_namespaced_custom_object(
            *CEPH[:2], ns, CEPH[2], "rook-ceph", {"metadata": {"finalizers": ["a", "b"]}}
        )
    assert info.value.status == 422
    custom.patch_namespaced_custom_object(
        *CEPH[:2], ns, CEPH[2], "rook-ceph", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as info:
        custom.get_namespaced_custom_object(*CEPH[:2], ns, CEPH[2], "rook-ceph")
    assert info.value.status == 404


def test_graceful_pod_deletion_and_preconditions(core, ns):
    from kubernetes.client.exceptions import ApiException

    from kubernetes import client

    created = core.create_namespaced_pod(ns, pod("bound", node="worker-1"))
    with pytest.raises(ApiException) as info:
        core.delete_namespaced_pod(
            "bound", ns, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="wrong"))
        )
    assert info.value.status == 409
    terminating = core.delete_namespaced_pod("bound", ns, grace_period_seconds=30)
    assert (
        terminating.metadata.deletion_timestamp is not None
        and terminating.metadata.deletion_grace_period_seconds == 30
    )
    core.delete_namespaced_pod(
        "bound",
        ns,
        grace_period_seconds=0,
        body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=created.metadata.uid)),
    )
    with pytest.raises(ApiException):
        core.read_namespaced_pod("bound", ns)
    core.create_namespaced_pod(ns, pod("unbound"))
    gone = core.delete_namespaced_pod("unbound", ns)  # never scheduled: deleted at once
    assert gone.metadata.name == "unbound"
    assert core.list_namespaced_pod(ns).items == []


def test_deleting_a_namespace_terminates_its_content(core, ns, emulator):
    from kubernetes.client.exceptions import ApiException

    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
    core.delete_namespace(ns)
    with pytest.raises(ApiException) as info:
        core.read_namespace(ns)
    assert info.value.status == 404
    assert emulator.store.list("configmaps", ns) == []


def test_owner_deletion_collects_dependents(core, ns):
    owner = core.create_namespaced_config_map(ns, {"metadata": {"name": "owner"}})
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
        "controller": True,
    }
    core.create_namespaced_config_map(ns, {"metadata": {"name": "child", "ownerReferences": [ref]}})
    core.delete_namespaced_config_map("owner", ns)
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items] == []


# ---- eviction ---------------------------------------------------------------------------------------------


def _ready(emulator, ns, name):
    emulator.store.update_status(
        "pods", name, {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}, namespace=ns
    )


def test_eviction_429_when_budget_forbids_else_deleted(core, ns, emulator):
    from kubernetes.client.exceptions import ApiException

    from kubernetes import client

    for name in ("web-1", "web-2"):
        p = pod(name, {"app": "web"}, node="worker-1")
        p["metadata"]["ownerReferences"] = []
        core.create_namespaced_pod(ns, p)
        _ready(emulator, ns, name)
    client.PolicyV1Api(core.api_client).create_namespaced_pod_disruption_budget(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
    )
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "web-1", "namespace": ns},
        "deleteOptions": {"gracePeriodSeconds": 0},
    }
    core.create_namespaced_pod_eviction("web-1", ns, eviction)  # 2 healthy, 1 needed: allowed
    with pytest.raises(ApiException):
        core.read_namespaced_pod("web-1", ns)
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod_eviction(
            "web-2", ns, {**eviction, "metadata": {"name": "web-2", "namespace": ns}}
        )
    body = status_of(info.value)
    assert info.value.status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 1 healthy pods and has 1 currently",
        }
    ]
    assert core.read_namespaced_pod("web-2", ns).metadata.deletion_timestamp is None
    [refused] = emulator.requests.filter(verb="evict", status=429)
    assert refused.name == "web-2" and refused.subresource == "eviction"
    assert [e["status"] for e in emulator.recorder.entries("kube.api", verb="evict")] == [201, 429]


def test_eviction_of_a_pending_pod_ignores_the_budget(core, ns):
    from kubernetes import client

    core.create_namespaced_pod(ns, pod("pending", {"app": "x"}))
    client.PolicyV1Api(core.api_client).create_namespaced_pod_disruption_budget(
        ns,
        {"metadata": {"name": "x"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}}},
    )
    core.create_namespaced_pod_eviction(
        "pending", ns, {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "pending"}}
    )
    assert core.list_namespaced_pod(ns).items == []


# ---- dry run, generateName, CRDs ---------------------------------------------------------------------------


def test_dry_run_changes_nothing(core, ns):
    made = core.create_namespaced_config_map(ns, {"metadata": {"name": "dry"}}, dry_run="All")
    assert made.metadata.name == "dry"
    assert core.list_namespaced_config_map(ns).items == []


def test_generate_name_and_new_crds_are_served(api, ns, emulator):
    from kubernetes import client

    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "gen-"}})
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9
    ext = client.ApiextensionsV1Api(api)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    established = ext.create_custom_resource_definition(crd)
    assert {c.type for c in established.status.conditions} >= {"Established"}
    widgets = client.CustomObjectsApi(api)
    widgets.create_namespaced_custom_object(
        "example.com",
        "v1",
        ns,
        "widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
    )
    assert [
        w["metadata"]["name"]
        for w in widgets.list_namespaced_custom_object("example.com", "v1", ns, "widgets")["items"]
    ] == ["w"]
    ext.delete_custom_resource_definition("widgets.example.com")
    assert emulator.store.registry.lookup("example.com", "v1", "widgets") is None


# ---- authentication ---------------------------------------------------------------------------------------------


def _https(emulator, path, *, cert=None, ca=True, headers=None, method="GET", data=None):
    ctx = (
        ssl.create_default_context(cadata=emulator.ca.crt.decode())
        if ca
        else ssl._create_unverified_context()
    )
    if cert is not None:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            crt, key = Path(tmp) / "c.crt", Path(tmp) / "c.key"
            crt.write_bytes(cert.crt)
            key.write_bytes(cert.openssl_key)
            ctx.load_cert_chain(crt, key)
    return urllib.request.urlopen(
        urllib.request.Request(emulator.url + path, headers=headers or {}, method=method, data=data),
        context=ctx,
        timeout=5,
    )


def test_requests_without_a_client_certificate_get_401(emulator):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as info:
        _https(emulator, "/api/v1/namespaces")
    assert info.value.code == 401 and json.loads(info.value.read())["reason"] == "Unauthorized"
    assert _https(emulator, "/readyz").read() == b"ok"  # health endpoints stay open


def test_certificate_from_another_ca_is_refused(emulator):
    import urllib.error

    from taltasks.machineconfig.pki import create_ca, issue

    stranger = issue(
        create_ca(organization="kubernetes", algorithm="ecdsa-p256"),
        usage="client",
        common_name="admin",
        organizations=["system:masters"],
    )
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _https(emulator, "/api/v1/namespaces", cert=stranger).read()
    refused = emulator.recorder.wait_for("kube.tls", 5)
    assert "certificate" in refused["error"]
    assert emulator.requests.filter(path_prefix="/api/v1/namespaces") == []


def test_non_admin_certificate_gets_403(emulator):
    import urllib.error

    viewer = emulator.client_certificate("viewer", ("developers",))
    with pytest.raises(urllib.error.HTTPError) as info:
        _https(emulator, "/api/v1/namespaces/default/pods", cert=viewer)
    body = json.loads(info.value.read())
    assert info.value.code == 403
    assert (
        body["message"]
        == 'pods is forbidden: User "viewer" cannot list resource "pods" in API group "" in the namespace "default"'
    )
    admin = emulator.client_certificate()
    assert (
        json.loads(_https(emulator, "/api/v1/namespaces/default/pods", cert=admin).read())["kind"]
        == "PodList"
    )


def test_kubeconfig_is_talos_shaped(emulator):
    import yaml

    doc = yaml.safe_load(emulator.kubeconfig("demo"))
    assert doc["current-context"] == "admin@demo"
    user = doc["users"][0]["user"]
    assert set(user) == {"client-certificate-data", "client-key-data"}
    assert doc["clusters"][0]["cluster"]["server"] == emulator.url
    from base64 import b64decode

    from taltasks.machineconfig.pki import load_certificate, organizations

    assert organizations(load_certificate(b64decode(user["client-certificate-data"]))) == ["system:masters"]


def test_unknown_paths_and_methods(emulator):
    import urllib.error

    admin = emulator.client_certificate()
    for path in ("/api/v1/frobs", "/apis/nope/v1", "/api/v1/namespaces/default/pods/x/logs-nope"):
        with pytest.raises(urllib.error.HTTPError) as info:
            _https(emulator, path, cert=admin)
        assert info.value.code == 404, path
