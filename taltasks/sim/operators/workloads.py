"""Workloads a scenario seeds: Deployments and DaemonSets, their PDBs, and the
``pdb-blocks-forever`` fault (a single pinned replica under ``minAvailable: 1``, so every
eviction of it answers 429 until the scenario changes)."""

from __future__ import annotations

from typing import Any

from taltasks.sim.kube.controllers import NEVER_READY, START_SECONDS
from taltasks.sim.kube.store import Store
from taltasks.sim.operators.common import TOLERATE_CONTROL_PLANE, ensure_namespace, pdb
from taltasks.sim.operators.scenario import FaultConfig, WorkloadConfig


def manifests(w: WorkloadConfig) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": w.name, **w.labels}
    annotations = {}
    if w.start_seconds is not None:
        annotations[START_SECONDS] = f"{w.start_seconds:g}"
    if w.never_ready:
        annotations[NEVER_READY] = "true"
    pod_spec: dict[str, Any] = {"containers": [{"name": w.name, "image": w.image}]}
    if w.node_selector:
        pod_spec["nodeSelector"] = dict(w.node_selector)
    if w.tolerate_control_plane:
        pod_spec["tolerations"] = [dict(TOLERATE_CONTROL_PLANE)]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
    }
    if w.kind == "Deployment":
        spec["replicas"] = w.replicas
    out = [
        {
            "apiVersion": "apps/v1",
            "kind": w.kind,
            "metadata": {"name": w.name, "namespace": w.namespace, "labels": labels},
            "spec": spec,
        }
    ]
    if w.pdb:
        out.append(
            pdb(
                w.namespace,
                w.name,
                labels,
                min_available=w.pdb.get("minAvailable"),
                max_unavailable=w.pdb.get("maxUnavailable"),
            )
        )
    return out


def blocking_workload(fault: FaultConfig) -> WorkloadConfig:
    return WorkloadConfig(
        kind="Deployment",
        namespace=fault.namespace,
        name=fault.name,
        replicas=1,
        node_selector={"kubernetes.io/hostname": fault.node},
        tolerate_control_plane=True,
        pdb={"minAvailable": 1},
    )


def seed(store: Store, workloads: list[WorkloadConfig]) -> None:
    for w in workloads:
        ensure_namespace(store, w.namespace)
        for obj in manifests(w):
            store.upsert(obj)
