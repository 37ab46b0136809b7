"""Pure pieces of the emulator, as tables: selectors, patches, budgets, tables, routing."""

from __future__ import annotations

import pytest

from taltasks.sim.kube import disruption, patch, selectors, tables
from taltasks.sim.kube.status import ApiError

LABELS = {"app": "web", "tier": "front", "release": "3"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app=db", False),
        ("missing!=x", True),
        ("tier in (front,back)", True),
        ("tier notin (front)", False),
        ("app,tier", True),
        ("!app", False),
        ("!missing", True),
        ("release>2", True),
        ("release<3", False),
        ("app=web, tier in (front, back), !legacy", True),
    ],
)
def test_label_selector_table(selector, expected):
    assert selectors.matches(selectors.parse_labels(selector), LABELS) is expected


@pytest.mark.parametrize("bad", ["app in (", "a b=c", "=x", "app in ()", "release>two", "app=has space"])
def test_bad_label_selectors_are_400(bad):
    with pytest.raises(ApiError) as info:
        selectors.parse_labels(bad)
    assert info.value.code == 400


def test_field_selectors():
    supported = frozenset({"metadata.name", "spec.nodeName", "spec.unschedulable", "status.phase"})
    obj = {"metadata": {"name": "n"}, "spec": {"nodeName": "w1"}, "status": {"phase": "Running"}}
    assert selectors.fields_match(
        selectors.parse_fields("spec.nodeName=w1,status.phase!=Pending", supported), obj
    )
    assert not selectors.fields_match(selectors.parse_fields("metadata.name==other", supported), obj)
    assert selectors.fields_match(selectors.parse_fields("spec.unschedulable=false", supported), {"spec": {}})
    assert selectors.fields_match(
        selectors.parse_fields("spec.unschedulable=true", supported), {"spec": {"unschedulable": True}}
    )
    with pytest.raises(ApiError) as info:
        selectors.parse_fields("spec.priority=1", supported)
    assert info.value.message == "field label not supported: spec.priority"


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {"a": "1"}, False),  # no selector selects nothing
        ({}, {"a": "1"}, True),  # empty selector selects everything (policy/v1)
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "2"}, False),
    ],
)
def test_label_selector_objects(selector, labels, expected):
    assert selectors.selects(selector, labels) is expected


@pytest.mark.parametrize(
    ("original", "body", "expected"),
    [
        ({"a": 1, "b": {"c": 2}}, {"b": {"c": None, "d": 3}}, {"a": 1, "b": {"d": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": 1}, {"a": {"x": 1}}, {"a": {"x": 1}}),
    ],
)
def test_merge_patch_table(original, body, expected):
    assert patch.merge_patch(original, body) == expected


def test_json_patch_operations():
    doc = {"spec": {"list": [1, 2], "a/b": "x", "keep": True}}
    ops = [
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "add", "path": "/spec/list/0", "value": 0},
        {"op": "replace", "path": "/spec/a~1b", "value": "y"},
        {"op": "copy", "from": "/spec/a~1b", "path": "/spec/copied"},
        {"op": "move", "from": "/spec/keep", "path": "/spec/moved"},
        {"op": "remove", "path": "/spec/list/1"},
        {"op": "test", "path": "/spec/moved", "value": True},
    ]
    assert patch.json_patch(doc, ops) == {
        "spec": {"list": [0, 2, 3], "a/b": "y", "copied": "y", "moved": True}
    }
    assert doc["spec"]["list"] == [1, 2]  # inputs are never modified
    for bad, code in (
        ([{"op": "remove", "path": "/spec/nope"}], 422),
        ([{"op": "test", "path": "/spec/keep", "value": False}], 422),
        ({"op": "add"}, 400),
        ([{"op": "frob", "path": "/x"}], 400),
    ):
        with pytest.raises(ApiError) as info:
            patch.json_patch(doc, bad)
        assert info.value.code == code


def test_strategic_merge_directives():
    pod = {
        "metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "v1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "s1"},
            ],
            "tolerations": [{"key": "k"}],
        },
    }
    body = {
        "metadata": {
            "finalizers": ["b"],
            "labels": {"y": None},
            "$deleteFromPrimitiveList/finalizers": ["a"],
        },
        "spec": {
            "containers": [
                {"name": "app", "env": [{"name": "B", "value": "2"}]},
                {"name": "side", "$patch": "delete"},
            ],
            "tolerations": [{"key": "other"}],
            "$setElementOrder/containers": [{"name": "app"}],
        },
    }
    out = patch.strategic_merge(pod, body, "Pod")
    assert out["metadata"] == {"finalizers": ["b"], "labels": {"x": "1"}}
    assert out["spec"]["containers"] == [
        {"name": "app", "image": "v1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    ]
    assert out["spec"]["tolerations"] == [{"key": "other"}]  # no merge key: replaced
    assert patch.strategic_merge({"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}}) == {
        "spec": {"c": 3}
    }
    assert patch.strategic_merge({"spec": {"a": 1, "b": 2}}, {"spec": {"$retainKeys": ["a"], "a": 5}}) == {
        "spec": {"a": 5}
    }
    svc = patch.strategic_merge(
        {"spec": {"ports": [{"port": 80, "name": "http"}]}},
        {"spec": {"ports": [{"port": 80, "name": "web"}]}},
        "Service",
    )
    assert svc["spec"]["ports"] == [{"port": 80, "name": "web"}]


def test_apply_field_paths_round_trip():
    paths = set(patch.leaf_paths({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 2, "list": [1]}}))
    assert paths == {("metadata", "labels", "a"), ("spec", "replicas"), ("spec", "list")}
    assert patch.paths_from_fields_v1(patch.fields_v1(paths)) == paths
    doc = {"spec": {"x": {"y": 1}, "z": 2}}
    patch.remove_path(doc, ("spec", "x", "y"))
    assert doc == {"spec": {"z": 2}}


def _pods(*specs):
    out = []
    for i, (ready, owner) in enumerate(specs):
        p = {
            "metadata": {"name": f"p{i}", "namespace": "ns", "labels": {"app": "a"}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
        }
        if owner:
            p["metadata"]["ownerReferences"] = [{"uid": owner, "controller": True}]
        out.append(p)
    return out


@pytest.mark.parametrize(
    ("spec", "pods", "scale", "expected"),
    [
        ({"minAvailable": 1}, [(True, None), (True, None)], None, (2, 2, 1, 1)),
        ({"minAvailable": 2}, [(True, None), (False, None)], None, (2, 1, 2, 0)),
        ({"maxUnavailable": 1}, [(True, "d"), (True, "d"), (True, "d")], 3, (3, 3, 2, 1)),
        ({"maxUnavailable": 0}, [(True, "d")], 1, (1, 1, 1, 0)),
        ({"maxUnavailable": "50%"}, [(True, "d"), (True, "d")], 4, (4, 2, 2, 0)),
        ({"minAvailable": "50%"}, [(True, "d"), (True, "d")], 2, (2, 2, 1, 1)),
        ({"maxUnavailable": 1}, [(True, None)], None, (0, 1, 0, 0)),  # no controller: fail safe
        ({"minAvailable": 1}, [], None, (0, 0, 1, 0)),
    ],
)
def test_disruption_budget_arithmetic(spec, pods, scale, expected):
    pdb = {
        "metadata": {"name": "b", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, **spec},
    }
    budget = disruption.evaluate(pdb, _pods(*pods), lambda ns, ref: scale)
    assert (
        budget.expected_pods,
        budget.current_healthy,
        budget.desired_healthy,
        budget.disruptions_allowed,
    ) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60 * 5, "3h5m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (400 * 86400, "400d"),
    ],
)
def test_human_duration(seconds, text):
    assert tables.human_duration(seconds) == text


def test_json_path_subset():
    obj = {
        "status": {
            "conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}],
            "ceph": {"health": "HEALTH_OK"},
        }
    }
    assert tables.json_path(obj, ".status.ceph.health") == ["HEALTH_OK"]
    assert tables.json_path(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert tables.json_path(obj, ".status.conditions[0].type") == ["Other"]
    assert tables.json_path(obj, ".status.missing") == []


def test_node_table_cells():
    from taltasks.sim.kube.resources import Registry

    node = {
        "metadata": {
            "name": "cp-1",
            "labels": {"node-role.kubernetes.io/control-plane": ""},
            "creationTimestamp": "2020-01-01T00:00:00Z",
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"kubeletVersion": "v1.34.3"},
        },
    }
    out = tables.table(Registry.builtin().resolve("nodes"), [node])
    assert out["rows"][0]["cells"][:3] == ["cp-1", "Ready,SchedulingDisabled", "control-plane"]
    assert out["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert [c["name"] for c in out["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
    ]
