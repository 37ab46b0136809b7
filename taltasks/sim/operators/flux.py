"""A simulated Flux: Kustomizations and HelmReleases that honour ``spec.suspend``.

An object that is not suspended is reconciled ``reconcileSeconds`` after each change of
its generation or of its ``reconcile.fluxcd.io/requestedAt`` annotation (what ``flux
reconcile`` sets): ``observedGeneration`` catches up, the Ready condition says the revision
was applied and ``lastHandledReconcileAt`` echoes the request. A suspended object is left
alone, so after ``suspend: true`` its ``observedGeneration`` lags its generation (as on a
real cluster, flux2#4738). Objects of these kinds created by anyone are handled, not only
the scenario's. Suspend changes are recorded as ``flux.suspend`` entries.
"""

from __future__ import annotations

import hashlib
from typing import Any

from taltasks.sim.kube.objects import is_deleting, rfc3339
from taltasks.sim.kube.runtime import Controller, Reactor, Timer
from taltasks.sim.kube.store import WatchEvent
from taltasks.sim.operators.common import ensure_namespace
from taltasks.sim.operators.scenario import FluxConfig, FluxObjectConfig

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
KINDS = {
    "Kustomization": ("kustomizations.kustomize.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io/v1"),
    "HelmRelease": ("helmreleases.helm.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io/v2"),
}
REVISION = "main@sha1:" + hashlib.sha1(b"taltasks-simulated-repository").hexdigest()


def manifest(obj: FluxObjectConfig) -> dict[str, Any]:
    _, api_version = KINDS[obj.kind]
    if obj.kind == "Kustomization":
        spec: dict[str, Any] = {
            "interval": "1h",
            "path": obj.path or f"./kubernetes/apps/{obj.name}",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"},
        }
    else:
        spec = {
            "interval": "1h",
            "chart": {
                "spec": {
                    "chart": obj.chart or obj.name,
                    "version": obj.version or "1.0.0",
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": obj.chart or obj.name,
                        "namespace": "flux-system",
                    },
                }
            },
        }
    if obj.suspend:
        spec["suspend"] = True
    return {
        "apiVersion": api_version,
        "kind": obj.kind,
        "metadata": {"name": obj.name, "namespace": obj.namespace},
        "spec": spec,
    }


class FluxOperator(Controller):
    watches = tuple(resource for resource, _ in KINDS.values())

    def __init__(self, reactor: Reactor, config: FluxConfig) -> None:
        super().__init__(reactor)
        self.config = config
        self._timers: dict[str, Timer] = {}

    def start(self) -> None:
        for obj in self.config.objects:
            ensure_namespace(self.store, obj.namespace)
            resource, _ = KINDS[obj.kind]
            if self.store.try_get(resource, obj.name, obj.namespace) is None:
                self.store.create(manifest(obj))
        # reconcile() is level-triggered and coalesces a quick suspend + resume into nothing;
        # the record wants every edge, so it is kept from each committed change instead
        self.reactor.on_change(self.watches, self._record_suspend, name="FluxSuspendRecord")
        super().start()

    def _record_suspend(self, event: WatchEvent) -> None:
        if event.old is None or self.store.recorder is None:
            return
        before = bool((event.old.get("spec") or {}).get("suspend"))
        after = bool((event.object.get("spec") or {}).get("suspend"))
        if before != after:
            m = event.object["metadata"]
            self.store.recorder.record(
                "flux.suspend",
                flux_kind=event.object.get("kind", ""),
                namespace=m.get("namespace", ""),
                name=m["name"],
                suspended=after,
            )

    def reconcile(self) -> None:
        for kind, (resource, _) in KINDS.items():
            for obj in self.store.list(resource):
                if not is_deleting(obj):
                    self._sync(kind, resource, obj)

    def _sync(self, kind: str, resource: str, obj: dict[str, Any]) -> None:
        m, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        key = f"{kind}/{m['namespace']}/{m['name']}"
        if spec.get("suspend"):
            return
        requested = (m.get("annotations") or {}).get(REQUESTED_AT)
        stale = status.get("observedGeneration") != m.get("generation") or (
            requested and status.get("lastHandledReconcileAt") != requested
        )
        if stale and key not in self._timers:
            self._timers[key] = self.reactor.post(
                lambda: self._apply(kind, resource, m["namespace"], m["name"], key),
                self.config.reconcile_seconds,
            )

    def _apply(self, kind: str, resource: str, namespace: str, name: str, key: str) -> None:
        self._timers.pop(key, None)
        obj = self.store.try_get(resource, name, namespace)
        if obj is None or (obj.get("spec") or {}).get("suspend"):
            return
        m, spec = obj["metadata"], obj.get("spec") or {}
        previous = next(
            (c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None
        )
        now = rfc3339()
        if kind == "HelmRelease":
            chart = (spec.get("chart") or {}).get("spec") or {}
            revision = chart.get("version", "1.0.0")
            message = f"Helm upgrade succeeded for release {namespace}/{name}.v{m.get('generation', 1)} with chart {chart.get('chart', name)}@{revision}"
            reason = "UpgradeSucceeded"
        else:
            revision, message, reason = REVISION, f"Applied revision: {REVISION}", "ReconciliationSucceeded"
        status = {
            **(obj.get("status") or {}),
            "observedGeneration": m.get("generation", 1),
            "lastAppliedRevision": revision,
            "lastAttemptedRevision": revision,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": reason,
                    "message": message,
                    "observedGeneration": m.get("generation", 1),
                    "lastTransitionTime": previous["lastTransitionTime"]
                    if previous and previous.get("status") == "True"
                    else now,
                }
            ],
        }
        requested = (m.get("annotations") or {}).get(REQUESTED_AT)
        if requested:
            status["lastHandledReconcileAt"] = requested
        self.store.update_status(resource, name, status, namespace=namespace)
