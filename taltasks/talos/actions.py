"""Actions that reboot a node, followed to the end the way ``talosctl upgrade --wait`` does.

1. Open the node's event stream (tail 0) *before* acting, so nothing is missed.
2. Read the boot id.
3. Act (Upgrade, Reboot…) and keep the actor id.
4. Read events: the actor's phases and tasks are progress; a sequence error fails; the
   stream ending (the node went down) means reconnect — with ``tail_events=-1`` and no actor
   filter, because events after the reboot carry no actor id.
5. Done when, after the node went down, MachineStatus says running and ready **and** the
   boot id has changed. Anything else before the deadline is a failure naming what was
   last seen.

The deadline covers everything, also a node that stops answering without closing its
connections: every call and stream inside is cut to the time left
(:mod:`taltasks.deadline`), so the wait ends on time even when no event ever comes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from taltasks import deadline as deadlines
from taltasks.errors import OperationFailed
from taltasks.talos.client import StreamInterrupted, TalosClient
from taltasks.talos.results import ActionAck, InstallerRun, MachineEvent, TalosCallError


@dataclass
class RebootOutcome:
    node: str
    actor_id: str
    boot_id_before: str
    boot_id_after: str
    version_after: str | None
    seconds: float
    events: list[MachineEvent] = field(default_factory=list)


class NodeDidNotReturn(OperationFailed):
    """The node did not come back running, ready and with a new boot id in time."""


def _still_active(deadline: float, cancel: threading.Event | None) -> bool:
    return time.monotonic() < deadline and not (cancel and cancel.is_set())


def follow_reboot(
    client: TalosClient,
    node: str,
    act: Callable[[], ActionAck],
    *,
    timeout: float = 30 * 60,
    on_event: Callable[[MachineEvent], None] | None = None,
    cancel: threading.Event | None = None,
    poll: float = 0.2,
) -> RebootOutcome:
    """Run ``act`` (which must make ``node`` reboot) and wait until the node is back."""
    started = time.monotonic()
    deadline = started + timeout
    with deadlines.until(deadline):
        return _follow(client, node, act, started, deadline, timeout, on_event, cancel, poll)


def _follow(
    client: TalosClient,
    node: str,
    act: Callable[[], ActionAck],
    started: float,
    deadline: float,
    timeout: float,
    on_event: Callable[[MachineEvent], None] | None,
    cancel: threading.Event | None,
    poll: float,
) -> RebootOutcome:
    def out_of_time(last: str) -> NodeDidNotReturn:
        return NodeDidNotReturn(
            f"did not come back running and ready within {timeout:.0f}s (last seen: {last})", where=node
        )

    try:
        stream = client.events(node=node, tail_events=0)
    except TalosCallError as exc:
        if exc.code != "DEADLINE_EXCEEDED":
            raise
        raise out_of_time("no answer to the event stream: the node is not reachable") from None
    try:
        before = client.boot_id(node)
    except TalosCallError as exc:
        if exc.code == "DEADLINE_EXCEEDED":
            raise out_of_time("no answer to the boot id read: the node is not reachable") from None
        if exc.code != "PERMISSION_DENIED":
            raise
        before = ""  # talosctl skips the boot-id check when Read is not allowed
    try:
        ack = act()
    except TalosCallError as exc:
        if exc.code != "DEADLINE_EXCEEDED":
            raise
        raise NodeDidNotReturn(
            f"did not answer the request within {timeout:.0f}s; whether it started is unknown",
            where=node,
            hint="the node stopped answering (power, network?): check it, then run the same command again",
        ) from None
    seen: list[MachineEvent] = []
    went_down = False
    back = False
    last = "no event yet"
    while _still_active(deadline, cancel) and not back:
        try:
            for ev in stream:
                seen.append(ev)
                if on_event:
                    on_event(ev)
                if ev.error and (not ev.actor_id or ev.actor_id == ack.actor_id):
                    locked = (ev.data.get("error") or {}).get("code") == "LOCKED"
                    raise OperationFailed(
                        f"{ev.data.get('sequence', 'sequence')} failed: {ev.error}",
                        where=node,
                        hint="the node is busy with another sequence (an upgrade, reboot or reset someone "
                        "else started): wait for it to finish, then try again"
                        if locked
                        else None,
                    )
                if ev.type == "TaskEvent" and ev.data.get("task") == "stopAllServices":
                    went_down = True
                if ev.type == "SequenceEvent" and ev.data.get("sequence") == "reboot":
                    went_down = True
                if ev.type == "MachineStatusEvent":
                    last = f"stage {ev.stage}, ready {ev.ready}"
                    if went_down and ev.running_and_ready:
                        back = True
                        break
                if not _still_active(deadline, cancel):
                    break
            else:
                went_down = True  # the stream ended: the node went away
        except StreamInterrupted:
            went_down = True
        except TalosCallError as exc:
            if exc.code != "DEADLINE_EXCEEDED":
                raise
            break  # the deadline passed while the stream was quiet
        if back or not _still_active(deadline, cancel):
            break
        stream = _reconnect(client, node, deadline, cancel, poll)
        if stream is None:
            break
        last = "node reachable again, waiting for it to be running and ready"
    if cancel and cancel.is_set():
        raise KeyboardInterrupt
    if not back:
        raise out_of_time(last)
    after = _wait_new_boot_id(client, node, before, deadline, poll)
    version = None
    for r in client.version([node]):
        if r.ok and r.value is not None:
            version = r.value.tag
    return RebootOutcome(node, ack.actor_id, before, after, version, time.monotonic() - started, seen)


def _reconnect(client: TalosClient, node: str, deadline: float, cancel: threading.Event | None, poll: float):
    """Reopen the event stream once the node answers again, replaying everything buffered
    since it booted (``tail_events=-1``)."""
    from taltasks.errors import ConnectionFailed

    while _still_active(deadline, cancel):
        try:
            return client.events(node=node, tail_events=-1)
        except (StreamInterrupted, TalosCallError, ConnectionFailed):
            time.sleep(poll)
    return None


def _wait_new_boot_id(client: TalosClient, node: str, before: str, deadline: float, poll: float) -> str:
    from taltasks.errors import ConnectionFailed

    if not before:
        return ""  # unreadable for this role before the action (talosctl skips the check too)
    last = before
    while True:
        try:
            last = client.boot_id(node)
            if not before or last != before:
                return last
        except (StreamInterrupted, TalosCallError, ConnectionFailed):
            pass
        if time.monotonic() >= deadline:
            raise NodeDidNotReturn(f"came back but the boot id did not change ({last})", where=node)
        time.sleep(poll)


class InstallerFailed(OperationFailed):
    """LifecycleService.Upgrade ran the installer and it exited non-zero (nothing rebooted)."""


@dataclass
class NodeUpgrade:
    """One node's Talos upgrade, step by step, on the path the version it runs calls for
    (:mod:`taltasks.talos.generations`), so a workflow can put its own steps between them:

    ============  =========================================  ==============================
    step          Talos 1.13+ (``lifecycle``)                 older (``legacy``)
    ============  =========================================  ==============================
    ``pull``      ``ImageService.Pull`` (system containerd)  ``MachineService.ImagePull``
    ``install``   ``LifecycleService.Upgrade`` (exit code)    — (Upgrade installs)
    ``reboot``    ``MachineService.Reboot``, followed         ``MachineService.Upgrade``, followed
    ============  =========================================  ==============================

    ``pull`` changes nothing: a bad image fails there. Every call goes to the node with
    ``node`` metadata. The legacy ``Upgrade`` is sent without ``preserve`` (it preserves
    nothing since 1.8 and would switch off Talos's etcd check from 1.12.9 / 1.13.4);
    ``force`` is passed on only there (the lifecycle path has no etcd check to skip).
    """

    client: TalosClient
    node: str
    image: str
    force: bool = False
    path: str = ""

    def __post_init__(self) -> None:
        if not self.path:
            self.path = self.client.generation(self.node).upgrade_path

    def pull(self) -> str:
        """The installer, pulled onto the node; its reference as pulled."""
        if self.path == "lifecycle":
            return self.client.pull_image(self.image, node=self.node)
        [pulled] = self.client.image_pull(self.image, nodes=[self.node], cri=False)
        if pulled.error is not None:
            raise TalosCallError("ImagePull", pulled.error)
        return self.image

    def install(self, on_output: Callable[[str], None] | None = None) -> InstallerRun | None:
        """Run the installer (lifecycle path); raises :class:`InstallerFailed` on a non-zero
        exit code. Nothing on the legacy path, whose Upgrade installs and reboots at once."""
        if self.path != "lifecycle":
            return None
        run = self.client.lifecycle_upgrade(self.image, node=self.node, on_output=on_output)
        if not run.ok:
            tail = "; ".join(run.output[-3:]) or "no output"
            raise InstallerFailed(
                f"the installer {self.image} exited with code {run.exit_code} ({tail})",
                where=self.node,
                hint="nothing was rebooted; check the image (invoke talos.plan) and the node's logs",
            )
        return run

    def reboot(
        self,
        *,
        timeout: float = 30 * 60,
        on_event: Callable[[MachineEvent], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RebootOutcome:
        """Boot into the new version and wait until the node is back (new boot id, running,
        ready)."""
        if self.path == "lifecycle":
            act = lambda: self.client.reboot(node=self.node)  # noqa: E731
        else:
            act = lambda: self.client.upgrade(self.image, node=self.node, force=self.force)  # noqa: E731
        return follow_reboot(self.client, self.node, act, timeout=timeout, on_event=on_event, cancel=cancel)


def upgrade(
    client: TalosClient,
    node: str,
    image: str,
    *,
    force: bool = False,
    timeout: float = 30 * 60,
    on_event: Callable[[MachineEvent], None] | None = None,
    cancel: threading.Event | None = None,
) -> RebootOutcome:
    """Upgrade ``node`` to ``image`` (pull, install, reboot on the path its version calls
    for) and wait until it runs again with a new boot id."""
    steps = NodeUpgrade(client, node, image, force=force)
    steps.pull()
    steps.install()
    return steps.reboot(timeout=timeout, on_event=on_event, cancel=cancel)


def reboot(
    client: TalosClient,
    node: str,
    *,
    timeout: float = 15 * 60,
    on_event: Callable[[MachineEvent], None] | None = None,
    cancel: threading.Event | None = None,
) -> RebootOutcome:
    return follow_reboot(
        client, node, lambda: client.reboot(node=node), timeout=timeout, on_event=on_event, cancel=cancel
    )
