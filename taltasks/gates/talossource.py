"""The gate engine's ``TalosSource`` over a real :class:`~taltasks.talos.client.TalosClient`.

:mod:`taltasks.gates.sources` asks for two small observations per node — its machine
state and its etcd member's view — and a way to be woken when they change. Here they are
read from the Talos API as ``talosctl`` would: MachineStatus (COSI, ``runtime``
namespace), Version and the kernel boot id for the machine; the ``etcd`` service,
EtcdMemberList and EtcdStatus for etcd. Every failure is per node: a node that does not
answer raises :class:`TalosNodeUnreachable` naming it, which the gates turn into a failed
"reachable" check; the other nodes are unaffected.

Wake-ups come from one COSI watch of MachineStatus per node, kept open for the life of
the source. It is a single-resource watch, whose first event is the resource's current
state (COSI servers refuse ``bootstrap_contents`` for one resource). A reboot ends the
stream: the watcher reconnects with a short back-off and wakes its subscribers on every
event, on the break and on reconnect — what changed while it was away is read by the
engine's next tick. Any other refusal (a role that may not watch, a server without the
type) stops that node's watcher for good, recorded in :attr:`ApiTalosSource.watch_errors`:
the engine then polls, instead of reconnecting in a loop. :meth:`ApiTalosSource.close`
stops the watchers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, TypeVar

from taltasks.errors import ConnectionFailed, TaltasksError
from taltasks.gates.sources import EtcdMember, EtcdView, MachineState, Unsubscribe
from taltasks.talos.client import TalosClient
from taltasks.talos.results import NodeError, NodeResult, TalosCallError

T = TypeVar("T")

MACHINE_STATUS = "MachineStatuses.runtime.talos.dev"
RECONNECT_DELAY = 0.2
MAX_RECONNECT_DELAY = 2.0
# a watch that ends with these is worth opening again (the node was away or slow); any
# other code is an answer (not allowed, not supported) that reconnecting would not change
RECONNECT_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "ABORTED"})
# a watch is reopened this often: a node that vanished behind a proxy sends nothing and
# closes nothing, and only a deadline ends such a stream (the engine polls meanwhile)
WATCH_RENEW = 300.0


class TalosNodeUnreachable(ConnectionFailed):
    """One node's Talos API did not answer (down, rebooting, or refusing us)."""


class ApiTalosSource:
    """``TalosSource`` for the gate engine, backed by the Talos API.

    ``watch=False`` makes :meth:`subscribe` return None, so the engine polls."""

    def __init__(self, client: TalosClient, *, watch: bool = True) -> None:
        self.client = client
        self.watch = watch
        self._lock = threading.Lock()
        self._wakes: dict[str, list[threading.Event]] = {}
        self._watchers: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self.watch_events: dict[str, int] = {}  # node → MachineStatus events delivered
        self.watch_errors: dict[str, str] = {}  # node → why its watcher gave up

    # ---- observations -----------------------------------------------------------------------

    def machine(self, node: str) -> MachineState:
        [version] = self.client.version([node])
        if not version.ok or version.value is None:
            raise _unreachable(node, _why(version.error))
        try:
            status = self.client.get(MACHINE_STATUS, "machine", namespace="runtime", node=node)
            boot_id = self._boot_id(node)
        except TaltasksError as exc:
            raise _unreachable(node, exc.message) from None
        spec = status.spec if isinstance(status.spec, dict) else {}
        state = spec.get("status") or {}
        unmet = tuple(f"{u.get('name')}: {u.get('reason')}" for u in state.get("unmetConditions") or [] if u)
        return MachineState(
            node=node,
            stage=str(spec.get("stage") or "unknown").lower(),
            ready=bool(state.get("ready")),
            version=version.value.tag,
            boot_id=boot_id,
            unmet=unmet,
        )

    def etcd(self, node: str) -> EtcdView:
        [services] = self.client.services([node])
        if not services.ok or services.value is None:
            raise _unreachable(node, _why(services.error))
        service = next((s for s in services.value if s.id == "etcd"), None)
        if service is None:
            return EtcdView(node, "absent", False, errors=("no etcd service on this node",))
        errors: list[str] = []
        members: tuple[EtcdMember, ...] = ()
        [listed] = _unless_cut(self.client.etcd_members([node]), "EtcdMemberList")
        if listed.ok and listed.value is not None:
            members = tuple(EtcdMember(m.id, m.hostname, m.is_learner) for m in listed.value)
        else:
            errors.append(f"member list: {listed.error.message if listed.error else 'no reply'}")
        member_id = leader_id = None
        learner = False
        [status] = _unless_cut(self.client.etcd_status([node]), "EtcdStatus")
        if status.ok and status.value is not None:
            member_id, leader_id = status.value.member_id, status.value.leader
            learner = status.value.is_learner
            errors.extend(status.value.errors)
        else:
            errors.append(f"status: {status.error.message if status.error else 'no reply'}")
        return EtcdView(
            node=node,
            service_state=service.state,
            service_healthy=service.healthy,
            members=members,
            member_id=member_id,
            leader_id=leader_id,
            errors=tuple(errors),
            is_learner=learner,
        )

    def _boot_id(self, node: str) -> str:
        """The kernel boot id, or "" when this talosconfig's role may not read it (Talos
        before 1.14 has it only behind the admin-only Read; the gates then fall back to
        the Kubernetes Node's ``nodeInfo.bootID``)."""

        try:
            return self.client.boot_id(node)
        except TalosCallError as exc:
            if exc.code == "PERMISSION_DENIED":
                return ""
            raise

    # ---- change notification ---------------------------------------------------------------

    def subscribe(self, nodes: Sequence[str], wake: threading.Event) -> Unsubscribe | None:
        if not self.watch:
            return None
        wanted = list(dict.fromkeys(nodes))
        with self._lock:
            for node in wanted:
                self._wakes.setdefault(node, []).append(wake)
                if node not in self._watchers:
                    thread = threading.Thread(
                        target=self._follow, args=(node,), name=f"talos-watch-{node}", daemon=True
                    )
                    self._watchers[node] = thread
                    thread.start()

        def unsubscribe() -> None:
            with self._lock:
                for node in wanted:
                    events = self._wakes.get(node, [])
                    if wake in events:
                        events.remove(wake)

        return unsubscribe

    def close(self) -> None:
        """Stop the watchers (their streams end when the client's channels close)."""
        self._stop.set()

    def __enter__(self) -> ApiTalosSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _notify(self, node: str) -> None:
        with self._lock:
            events = list(self._wakes.get(node, ()))
        for event in events:
            event.set()

    def _follow(self, node: str) -> None:
        from taltasks.talos.client import StreamInterrupted

        delay = RECONNECT_DELAY
        while not self._stop.is_set():
            try:
                for _ in self.client.watch(
                    MACHINE_STATUS, "machine", namespace="runtime", node=node, timeout=WATCH_RENEW
                ):
                    if self._stop.is_set():
                        return
                    delay = RECONNECT_DELAY
                    with self._lock:
                        self.watch_events[node] = self.watch_events.get(node, 0) + 1
                    self._notify(node)
            except (StreamInterrupted, ConnectionFailed):
                pass  # a reboot cut the stream, or the node is not back yet: reconnect
            except TalosCallError as exc:
                if exc.code not in RECONNECT_CODES:
                    self.watch_errors[node] = str(exc)
                    self._notify(node)  # the engine reads (and polls) from here on
                    return
            self._notify(node)
            self._stop.wait(delay)
            delay = min(MAX_RECONNECT_DELAY, delay * 2)


def _why(error: NodeError | None) -> str:
    """A node's error with its code, so a read the wait's deadline cut short says so."""
    return f"{error.message} ({error.code})" if error is not None else "no reply"


def _unless_cut(results: list[NodeResult[T]], method: str) -> list[NodeResult[T]]:
    """A per-node read the wait's deadline cut short is no observation: raise it, as the
    whole call's failure, instead of reporting it as what etcd said."""
    for r in results:
        if r.error is not None and r.error.code == "DEADLINE_EXCEEDED":
            raise TalosCallError(method, r.error)
    return results


def _unreachable(node: str, why: Any) -> TalosNodeUnreachable:
    return TalosNodeUnreachable(
        f"the Talos API did not answer: {why}",
        where=node,
        hint="the node is down or rebooting, or the talosconfig does not match it",
    )
