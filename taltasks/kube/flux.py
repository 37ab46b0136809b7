"""Suspend Flux for the length of a maintenance run, and put back exactly what was there.

:func:`suspend_flux` sets ``spec.suspend: true`` on every Kustomization and HelmRelease
(optionally of one namespace) that is not already suspended, and returns a
:class:`FluxSuspension` naming the objects *it* suspended and the ones that already were.
The caller stores ``suspension.to_dict()`` in its journal (:func:`plan_suspension` gives
it before anything changes, for write-ahead journals); :func:`resume_flux` takes it back (``FluxSuspension.from_dict``) and resumes only the objects this run suspended,
requesting an immediate reconcile as ``flux reconcile`` does. If suspending fails half-way,
what was already suspended is resumed before the error propagates. Missing CRDs (no Flux
installed) mean nothing to suspend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from taltasks.errors import OperationFailed
from taltasks.events import NULL, Emitter
from taltasks.kube.client import KubeApiError, KubeClient

FLUX_KINDS: dict[str, tuple[str, str, str]] = {
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
}
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


@dataclass(frozen=True)
class FluxRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class FluxSuspension:
    """What a run suspended (and so must resume) and what it found already suspended."""

    suspended: tuple[FluxRef, ...] = ()
    already_suspended: tuple[FluxRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "suspended": [vars(r) for r in self.suspended],
            "alreadySuspended": [vars(r) for r in self.already_suspended],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FluxSuspension:
        return cls(
            suspended=tuple(FluxRef(**r) for r in data.get("suspended") or []),
            already_suspended=tuple(FluxRef(**r) for r in data.get("alreadySuspended") or []),
        )


def _patch(client: KubeClient, ref: FluxRef, body: dict[str, Any]) -> None:
    group, version, plural = FLUX_KINDS[ref.kind]
    client.call(
        f"patch {ref}",
        client.custom.patch_namespaced_custom_object,
        group,
        version,
        ref.namespace,
        plural,
        ref.name,
        body,
    )


def plan_suspension(
    client: KubeClient,
    *,
    namespace: str | None = None,
    kinds: Iterable[str] = ("Kustomization", "HelmRelease"),
    emitter: Emitter = NULL,
) -> FluxSuspension:
    """What :func:`suspend_flux` would suspend, changing nothing: a caller that journals
    before it acts (write-ahead) records this, then passes it to :func:`apply_suspension`."""
    suspended: list[FluxRef] = []
    already: list[FluxRef] = []
    for kind in kinds:
        if kind not in FLUX_KINDS:
            raise OperationFailed(f"unknown Flux kind {kind!r}", hint=f"use one of: {', '.join(FLUX_KINDS)}")
        items = client.list_custom(*FLUX_KINDS[kind], namespace, what=f"list {kind}s")
        if items is None:
            emitter.emit(
                "info",
                f"no {kind} resource in this cluster (Flux not installed?): nothing to suspend",
                step="flux-suspend",
            )
            continue
        for obj in items:
            m = obj.get("metadata") or {}
            ref = FluxRef(kind, m.get("namespace", ""), m.get("name", ""))
            (already if (obj.get("spec") or {}).get("suspend") else suspended).append(ref)
    return FluxSuspension(tuple(suspended), tuple(already))


def apply_suspension(client: KubeClient, suspension: FluxSuspension, *, emitter: Emitter = NULL) -> None:
    """Suspend the objects ``suspension.suspended`` names; if that fails half-way, resume
    the ones already suspended before the error propagates."""
    done: list[FluxRef] = []
    try:
        for ref in suspension.suspended:
            _patch(client, ref, {"spec": {"suspend": True}})
            done.append(ref)
    except BaseException:
        if done:
            resume_flux(client, FluxSuspension(tuple(done)), reconcile=False, emitter=emitter)
        raise
    already = suspension.already_suspended
    emitter.emit(
        "info",
        f"suspended {len(done)} Flux object(s)"
        + (f"; {len(already)} were already suspended and stay so" if already else ""),
        step="flux-suspend",
        suspended=[str(r) for r in done],
        already_suspended=[str(r) for r in already],
    )


def suspend_flux(
    client: KubeClient,
    *,
    namespace: str | None = None,
    kinds: Iterable[str] = ("Kustomization", "HelmRelease"),
    emitter: Emitter = NULL,
) -> FluxSuspension:
    suspension = plan_suspension(client, namespace=namespace, kinds=kinds, emitter=emitter)
    apply_suspension(client, suspension, emitter=emitter)
    return suspension


def resume_flux(
    client: KubeClient,
    suspension: FluxSuspension,
    *,
    reconcile: bool = True,
    emitter: Emitter = NULL,
) -> list[FluxRef]:
    """Resume what ``suspension`` suspended (nothing else); returns what was resumed.
    An object deleted meanwhile is reported and skipped."""
    resumed: list[FluxRef] = []
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for ref in suspension.suspended:
        body: dict[str, Any] = {"spec": {"suspend": False}}
        if reconcile:
            body["metadata"] = {"annotations": {REQUESTED_AT: stamp}}
        try:
            _patch(client, ref, body)
        except KubeApiError as exc:
            if exc.status == 404:
                emitter.emit("warning", f"{ref} no longer exists; nothing to resume", step="flux-resume")
                continue
            raise
        resumed.append(ref)
    emitter.emit(
        "cleanup",
        f"resumed {len(resumed)} Flux object(s)",
        step="flux-resume",
        resumed=[str(r) for r in resumed],
    )
    return resumed
