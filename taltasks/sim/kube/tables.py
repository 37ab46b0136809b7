"""``meta.k8s.io/v1`` Table output, what ``kubectl get`` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the rows
the server computed, so the columns here mirror kube-apiserver's printers for the built-in
kinds (NAME STATUS ROLES AGE VERSION for nodes…) and the ``additionalPrinterColumns`` of
CRDs (a small JSONPath subset: ``.a.b``, ``.a[0]``, ``.a[?(@.k=="v")].b``).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from taltasks.sim.kube.resources import Column, ResourceType

Cells = Callable[[dict[str, Any]], list[Any]]


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    days = hours // 24
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{days // 365}y" if rest == 0 else f"{days // 365}y{rest}d"
    return f"{days // 365}y"


def _since(timestamp: str) -> str:
    try:
        then = calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return timestamp
    return human_duration(time.time() - then)


def age(obj: dict[str, Any]) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    return _since(ts) if ts else "<unknown>"


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def _node_cells(obj: dict[str, Any]) -> list[Any]:
    ready = _conditions(obj).get("Ready")
    status = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    if (obj.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = sorted(
        {
            k.split("/", 1)[1]
            for k in labels
            if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]
        }
        | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set())
    )
    st = obj.get("status") or {}
    info = st.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    return [
        obj["metadata"]["name"],
        status,
        ",".join(roles) or "<none>",
        age(obj),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _pod_cells(obj: dict[str, Any]) -> list[Any]:
    st = obj.get("status") or {}
    spec = obj.get("spec") or {}
    statuses = st.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    reason = st.get("reason") or st.get("phase") or "Unknown"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return [
        obj["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        str(restarts),
        age(obj),
        st.get("podIP", "<none>"),
        spec.get("nodeName", "<none>"),
        st.get("nominatedNodeName", "<none>"),
        "<none>",
    ]


def _deployment_cells(obj: dict[str, Any]) -> list[Any]:
    st, spec = obj.get("status") or {}, obj.get("spec") or {}
    return [
        obj["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(obj),
    ]


def _daemonset_cells(obj: dict[str, Any]) -> list[Any]:
    st = obj.get("status") or {}
    selector = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeSelector") or {}
    return [
        obj["metadata"]["name"],
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
        age(obj),
    ]


def _pdb_cells(obj: dict[str, Any]) -> list[Any]:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A",
        str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A",
        st.get("disruptionsAllowed", 0),
        age(obj),
    ]


def _namespace_cells(obj: dict[str, Any]) -> list[Any]:
    return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", ""), age(obj)]


def _configmap_cells(obj: dict[str, Any]) -> list[Any]:
    return [obj["metadata"]["name"], len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age(obj)]


def _secret_cells(obj: dict[str, Any]) -> list[Any]:
    return [obj["metadata"]["name"], obj.get("type", "Opaque"), len(obj.get("data") or {}), age(obj)]


def _col(name: str, type_: str = "string", priority: int = 0, fmt: str = "") -> Column:
    return Column(name=name, type=type_, priority=priority, format=fmt)


_NAME = _col("Name", fmt="name")
BUILTIN_TABLES: dict[tuple[str, str], tuple[tuple[Column, ...], Cells]] = {
    ("", "nodes"): (
        (
            _NAME,
            _col("Status"),
            _col("Roles"),
            _col("Age"),
            _col("Version"),
            _col("Internal-IP", priority=1),
            _col("External-IP", priority=1),
            _col("OS-Image", priority=1),
            _col("Kernel-Version", priority=1),
            _col("Container-Runtime", priority=1),
        ),
        _node_cells,
    ),
    ("", "pods"): (
        (
            _NAME,
            _col("Ready"),
            _col("Status"),
            _col("Restarts"),
            _col("Age"),
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ),
        _pod_cells,
    ),
    ("", "namespaces"): ((_NAME, _col("Status"), _col("Age")), _namespace_cells),
    ("", "configmaps"): ((_NAME, _col("Data", "integer"), _col("Age")), _configmap_cells),
    ("", "secrets"): ((_NAME, _col("Type"), _col("Data", "integer"), _col("Age")), _secret_cells),
    ("apps", "deployments"): (
        (_NAME, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Age")),
        _deployment_cells,
    ),
    ("apps", "daemonsets"): (
        (
            _NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _col("Node Selector"),
            _col("Age"),
        ),
        _daemonset_cells,
    ),
    ("policy", "poddisruptionbudgets"): (
        (
            _NAME,
            _col("Min Available"),
            _col("Max Unavailable"),
            _col("Allowed Disruptions", "integer"),
            _col("Age"),
        ),
        _pdb_cells,
    ),
}

_SEGMENT = re.compile(
    r"""\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_\-.]+)\s*==\s*["']([^"']*)["']\)\]"""
)


def json_path(obj: Any, path: str) -> list[Any]:
    """Evaluate the JSONPath subset CRD printer columns use; all matches, in order."""
    nodes = [obj]
    pos = 0
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if not m:
            return []
        pos = m.end()
        key, index, fkey, fval = m.groups()
        out: list[Any] = []
        for node in nodes:
            if key is not None and isinstance(node, dict) and key in node:
                out.append(node[key])
            elif index is not None and isinstance(node, list) and int(index) < len(node):
                out.append(node[int(index)])
            elif fkey is not None and isinstance(node, list):
                for item in node:
                    found = json_path(item, "." + fkey)
                    if found and str(found[0]) == fval:
                        out.append(item)
        nodes = out
    return nodes


def _crd_cells(columns: Iterable[Column]) -> Cells:
    cols = list(columns)

    def cells(obj: dict[str, Any]) -> list[Any]:
        row: list[Any] = [obj["metadata"]["name"]]
        for col in cols:
            found = json_path(obj, col.json_path)
            if not found:
                row.append(None)
            elif col.type == "date" and isinstance(found[0], str):
                row.append(_since(found[0]))  # as the CRD table convertor does
            elif col.type == "integer" and isinstance(found[0], int):
                row.append(found[0])
            else:
                row.append(",".join(str(v) for v in found))
        return row

    return cells


def columns_for(rt: ResourceType) -> tuple[tuple[Column, ...], Cells]:
    builtin = BUILTIN_TABLES.get(rt.key)
    if builtin is not None:
        return builtin
    if rt.columns:
        return (_NAME, *rt.columns), _crd_cells(rt.columns)
    return (_NAME, _col("Created At", "date")), lambda o: [
        o["metadata"]["name"],
        (o.get("metadata") or {}).get("creationTimestamp"),
    ]


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def table(
    rt: ResourceType,
    objects: Iterable[dict[str, Any]],
    *,
    resource_version: str = "",
    include_object: str = "Metadata",
    continue_token: str | None = None,
    table_version: str = "v1",
) -> dict[str, Any]:
    columns, cells = columns_for(rt)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj)}
        row_obj = _row_object(obj, include_object)
        if row_obj is not None:
            row["object"] = row_obj
        rows.append(row)
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": meta,
        "columnDefinitions": [
            {
                "name": c.name,
                "type": c.type,
                "format": c.format,
                "description": c.description or c.name,
                "priority": c.priority,
            }
            for c in columns
        ],
        "rows": rows,
    }
