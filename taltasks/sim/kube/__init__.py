"""A strict kube-apiserver emulator for the simulated cluster.

Layers, bottom up: :mod:`.resources` (which kinds exist and how they behave),
:mod:`.selectors` and :mod:`.patch` (pure helpers), :mod:`.store` (objects, resource
versions, watches, deletion, eviction — the in-process API simulator actors use),
:mod:`.server` (HTTPS, client-certificate auth, discovery, tables, watch streams, request
log), :mod:`.nodes` and :mod:`.controllers` (kubelet, scheduler, DaemonSet, Deployment and
PodDisruptionBudget behaviour). :class:`KubeEmulator` is the public entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taltasks.sim.kube.server import KubeEmulator

__all__ = ["KubeEmulator"]


def __getattr__(name: str):
    if name == "KubeEmulator":
        from taltasks.sim.kube.server import KubeEmulator

        return KubeEmulator
    raise AttributeError(name)
