"""How a simulated node's runtime comes up after apid already answers: CRI, then the clock.

On a real node apid listens early in the boot; the container runtime (CRI) and time
synchronisation follow. Until they are there, machined refuses ``Bootstrap`` with
FailedPrecondition — the same two messages from Talos 1.8 through 1.14 (machined's
``Bootstrap`` handler, ``Runtime.IsBootstrapAllowed``):

* ``bootstrap is not available yet`` — the ``cri`` service is not running and healthy (or,
  1.14, a reboot is pending);
* ``time is not in sync yet`` — the TimeStatus resource did not say ``synced`` within 5 s
  (the handler waits that long before refusing).

The simulator follows it with two timings (``criStart``, ``timeSync``: seconds after the
node starts listening; 0 = at once) and two faults that hold the runtime back until they
are cleared: ``criStalled`` (the ``cri`` service stays Preparing) and ``timeUnsynced``.
The ``cri`` service and ``TimeStatuses.v1alpha1.talos.dev/node`` show the state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taltasks.sim.talos.machined import Call
    from taltasks.sim.talos.node import SimNode

NOT_AVAILABLE = "bootstrap is not available yet"
TIME_NOT_SYNCED = "time is not in sync yet"
TIME_STATUS = "TimeStatuses.v1alpha1.talos.dev"


class RuntimeStartup:
    """The part of one node's boot that happens after apid answers."""

    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.started = time.monotonic()
        self.cri_after = 0.0
        self.sync_after = 0.0
        self._synced_published: bool | None = None

    def begin(self, *, delays: bool) -> None:
        """Called as the node starts listening: CRI comes up after ``cri_start`` and the
        clock syncs after ``time_sync`` (both at once when ``delays`` is False), unless the
        ``criStalled`` / ``timeUnsynced`` faults hold them back."""
        node = self.node
        self.started = time.monotonic()
        self._synced_published = None
        boot_id = node.boot_id
        self.cri_after = node.timings.cri_start if delays else 0.0
        self.sync_after = node.timings.time_sync if delays else 0.0
        node.set_service("cri", "Preparing", False, "Waiting for containerd")
        self._maybe_cri_up()
        if not self.cri_ready() and self.cri_after > 0:
            self._later(self.cri_after, boot_id, self._maybe_cri_up)
        self._publish_time()
        if self.sync_after > 0:
            self._later(self.sync_after, boot_id, self._publish_time)

    def _later(self, seconds: float, boot_id: str, then: Callable[[], None]) -> None:
        def run() -> None:
            if self.node.cluster.stopping.wait(seconds):
                return
            if self.node.boot_id == boot_id and self.node.reachable:
                then()

        threading.Thread(target=run, name=f"sim-{self.node.hostname}-startup", daemon=True).start()

    def _maybe_cri_up(self) -> None:
        node = self.node
        due = time.monotonic() - self.started >= self.cri_after
        if due and not node.faults.cri_stalled and not self.cri_ready() and "cri" in node.services:
            node.set_service("cri", "Running", True, "Health check successful")
            node.refresh_ready()

    # ---- state ---------------------------------------------------------------------------

    def cri_ready(self) -> bool:
        svc = self.node.services.get("cri")
        return svc is not None and svc.state == "Running" and svc.healthy

    def time_synced(self) -> bool:
        node = self.node
        if node.faults.time_unsynced:
            return False
        return time.monotonic() - self.started >= self.sync_after

    def _publish_time(self) -> None:
        """TimeStatus as Talos publishes it (``runtime`` namespace, id ``node``)."""
        synced = self.time_synced()
        if synced == self._synced_published:
            return
        self._synced_published = synced
        self.node.resources.put(
            "runtime", TIME_STATUS, "node", {"synced": synced, "epoch": 1, "syncDisabled": False}
        )

    def fault_changed(self) -> None:
        """``criStalled`` / ``timeUnsynced`` was set or cleared: catch up with it."""
        if self.node.reachable and not self.node.maintenance:
            self._maybe_cri_up()
            self._publish_time()

    # ---- Bootstrap -----------------------------------------------------------------------

    def bootstrap_unavailable(self) -> bool:
        """machined's ``IsBootstrapAllowed`` is false: CRI not up, or a reboot pending."""
        return not self.cri_ready() or self.node.reboot_pending

    def wait_time_sync(self, call: Call) -> bool:
        """Wait for the clock as the handler does (``timeSyncWait``, Talos: 5 s); synced?"""
        wait_until = time.monotonic() + self.node.timings.time_sync_wait
        while not self.time_synced():
            if time.monotonic() >= wait_until or not call.is_active():
                return False
            time.sleep(0.02)
        self._publish_time()
        return True
