"""Temporary changes around a rolling upgrade, each undoable from its journaled data alone.

A run changes the cluster for its duration: a node is cordoned, Flux is suspended, CNPG
clusters may get a maintenance window, tuppr is paused so two orchestrators do not fight.
Every such change follows the same pattern, so that an interrupted or killed run can be
undone by the next one (:meth:`~taltasks.workflows.cleanup.CleanupStack.adopt`):

1. *plan* — read what is there now and decide exactly what to change (``plan_*``), as
   plain JSON-able data;
2. *journal* — the caller pushes that data onto its cleanup stack (write-ahead);
3. *apply* — change exactly what the data names (``apply_*``);
4. *undo* — :func:`undo_handlers` turns the same data back (what it names, nothing else:
   objects that were already suspended or in maintenance before the run stay so).

Undo actions are harmless when the change never happened or was already undone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taltasks.events import NULL, Emitter
from taltasks.kube.client import KubeApiError, KubeClient
from taltasks.workflows.journal import Change

CORDON = "cordon"
FLUX = "flux-suspend"
CNPG = "cnpg-maintenance"
TUPPR = "tuppr-pause"

CNPG_API = ("postgresql.cnpg.io", "v1", "clusters")
TUPPR_GROUP, TUPPR_VERSION = "tuppr.home-operations.com", "v1alpha1"
TUPPR_PLURALS = {"TalosUpgrade": "talosupgrades", "KubernetesUpgrade": "kubernetesupgrades"}
TUPPR_SUSPEND = "tuppr.home-operations.com/suspend"


# ---- Flux ----------------------------------------------------------------------------------


def plan_flux(kube: KubeClient, kinds: tuple[str, ...], emitter: Emitter = NULL) -> dict[str, Any]:
    from taltasks.kube.flux import plan_suspension

    return plan_suspension(kube, kinds=kinds, emitter=emitter).to_dict()


def apply_flux(kube: KubeClient, data: dict[str, Any], emitter: Emitter = NULL) -> None:
    from taltasks.kube.flux import FluxSuspension, apply_suspension

    apply_suspension(kube, FluxSuspension.from_dict(data), emitter=emitter)


def _undo_flux(kube: KubeClient, data: dict[str, Any], emitter: Emitter) -> None:
    from taltasks.kube.flux import FluxSuspension, resume_flux

    resume_flux(kube, FluxSuspension.from_dict(data), emitter=emitter)


# ---- CNPG maintenance window ---------------------------------------------------------------


def plan_cnpg(kube: KubeClient) -> dict[str, Any]:
    """Clusters not already in a maintenance window, with their window as it is now."""
    items = kube.list_custom(*CNPG_API, what="list CNPG clusters") or []
    clusters = []
    for obj in items:
        m, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        window = spec.get("nodeMaintenanceWindow")
        if isinstance(window, dict) and window.get("inProgress"):
            continue
        clusters.append({"namespace": m.get("namespace", ""), "name": m.get("name", ""), "previous": window})
    return {"clusters": clusters}


def apply_cnpg(kube: KubeClient, data: dict[str, Any], reuse_pvc: bool, emitter: Emitter = NULL) -> None:
    for c in data.get("clusters") or []:
        _patch_cnpg(kube, c, {"inProgress": True, "reusePVC": reuse_pvc})
    names = ", ".join(f"{c['namespace']}/{c['name']}" for c in data.get("clusters") or []) or "none"
    emitter.emit("info", f"CNPG maintenance window opened for: {names}", step="cnpg-maintenance")


def _undo_cnpg(kube: KubeClient, data: dict[str, Any], emitter: Emitter) -> None:
    restored = []
    for c in data.get("clusters") or []:
        # a merge patch with null removes the key the run added
        if _patch_cnpg(kube, c, c.get("previous")):
            restored.append(f"{c['namespace']}/{c['name']}")
    emitter.emit(
        "cleanup",
        f"CNPG maintenance window closed for: {', '.join(restored) or 'none'}",
        step="cnpg-maintenance",
    )


def _patch_cnpg(kube: KubeClient, cluster: dict[str, Any], window: dict[str, Any] | None) -> bool:
    """True when patched; False when the cluster is gone."""
    group, version, plural = CNPG_API
    try:
        kube.call(
            f"patch CNPG cluster {cluster['namespace']}/{cluster['name']}",
            kube.custom.patch_namespaced_custom_object,
            group,
            version,
            cluster["namespace"],
            plural,
            cluster["name"],
            {"spec": {"nodeMaintenanceWindow": window}},
        )
    except KubeApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


# ---- tuppr ---------------------------------------------------------------------------------


def plan_tuppr(kube: KubeClient) -> dict[str, Any]:
    """tuppr upgrade resources not already suspended (none when tuppr is not installed)."""
    objects = []
    for kind, plural in TUPPR_PLURALS.items():
        items = kube.list_custom(TUPPR_GROUP, TUPPR_VERSION, plural, what=f"list tuppr {kind}s") or []
        for obj in items:
            m = obj.get("metadata") or {}
            if TUPPR_SUSPEND in (m.get("annotations") or {}):  # tuppr: any value suspends
                continue
            objects.append({"kind": kind, "name": m.get("name", "")})
    return {"objects": objects}


def apply_tuppr(kube: KubeClient, data: dict[str, Any], emitter: Emitter = NULL) -> None:
    for obj in data.get("objects") or []:
        _annotate_tuppr(kube, obj, "true")
    names = ", ".join(f"{o['kind']} {o['name']}" for o in data.get("objects") or []) or "none"
    emitter.emit("info", f"tuppr paused: {names}", step="tuppr-pause")


def _undo_tuppr(kube: KubeClient, data: dict[str, Any], emitter: Emitter) -> None:
    for obj in data.get("objects") or []:
        _annotate_tuppr(kube, obj, None)
    names = ", ".join(f"{o['kind']} {o['name']}" for o in data.get("objects") or []) or "none"
    emitter.emit("cleanup", f"tuppr resumed: {names}", step="tuppr-pause")


def _annotate_tuppr(kube: KubeClient, obj: dict[str, Any], value: str | None) -> None:
    try:
        kube.call(
            f"annotate {obj['kind']} {obj['name']}",
            kube.custom.patch_cluster_custom_object,
            TUPPR_GROUP,
            TUPPR_VERSION,
            TUPPR_PLURALS[obj["kind"]],
            obj["name"],
            {"metadata": {"annotations": {TUPPR_SUSPEND: value}}},
        )
    except KubeApiError as exc:
        if exc.status != 404:
            raise


# ---- undo from the journal -----------------------------------------------------------------


def undo_handlers(kube: KubeClient, emitter: Emitter = NULL) -> dict[str, Callable[[Change], None]]:
    """Change kind → the action undoing it from ``Change.data`` alone."""
    from taltasks.kube.nodes import uncordon

    return {
        CORDON: lambda c: uncordon(kube, c.data["node"], emitter=emitter),
        FLUX: lambda c: _undo_flux(kube, c.data, emitter),
        CNPG: lambda c: _undo_cnpg(kube, c.data, emitter),
        TUPPR: lambda c: _undo_tuppr(kube, c.data, emitter),
    }
