"""Typed results of Talos API calls: plain dataclasses, never raw protobufs.

One-to-many calls return one :class:`NodeResult` per node, each with either a value or the
:class:`NodeError` that node reported — errors are never swallowed, and the caller decides
whether one failing node fails the whole operation (``unwrap`` / ``raise_for_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from taltasks.errors import OperationFailed

T = TypeVar("T")


@dataclass(frozen=True)
class NodeError:
    node: str
    code: str  # gRPC status code name, e.g. "UNAVAILABLE", "PERMISSION_DENIED"
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.message} ({self.code})"


class TalosCallError(OperationFailed):
    """A Talos API call failed for a node (or as a whole)."""

    def __init__(self, method: str, error: NodeError, *, hint: str | None = None) -> None:
        super().__init__(
            f"{method} failed: {error.message} ({error.code})", where=error.node, hint=hint or _hint(error)
        )
        self.method = method
        self.error = error

    @property
    def code(self) -> str:
        return self.error.code


def _hint(error: NodeError) -> str | None:
    if error.code == "PERMISSION_DENIED" and "not authorized" in error.message:
        return (
            "the talosconfig client certificate lacks the role this call needs (most changes need os:admin)"
        )
    if error.code == "PERMISSION_DENIED" and "forwarding" in error.message:
        return "worker nodes cannot forward requests: use control-plane nodes as endpoints"
    if error.code == "UNAVAILABLE":
        return "the node is down or rebooting; retry when it is back"
    return None


@dataclass(frozen=True)
class NodeResult(Generic[T]):
    node: str
    value: T | None = None
    error: NodeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self, method: str = "call") -> T:
        if self.error is not None:
            raise TalosCallError(method, self.error)
        assert self.value is not None
        return self.value


def raise_for_errors(results: list[NodeResult[Any]], method: str) -> None:
    """Raise for the first failed node, mentioning how many failed."""
    failed = [r for r in results if r.error is not None]
    if failed:
        first = failed[0].error
        assert first is not None
        if len(failed) > 1:
            first = NodeError(
                first.node, first.code, f"{first.message} (and {len(failed) - 1} more nodes failed)"
            )
        raise TalosCallError(method, first)


@dataclass(frozen=True)
class VersionInfo:
    tag: str
    sha: str
    os: str
    arch: str
    platform: str
    platform_mode: str
    rbac: bool


@dataclass(frozen=True)
class ServiceEvent:
    message: str
    state: str
    ts: float


@dataclass(frozen=True)
class ServiceInfo:
    id: str
    state: str
    healthy: bool
    health_unknown: bool
    last_message: str
    events: tuple[ServiceEvent, ...] = ()

    @property
    def running_and_healthy(self) -> bool:
        """What ``talosctl health`` checks: the last event says Running and health is good."""
        last = self.events[-1].state if self.events else self.state
        return last == "Running" and self.healthy


@dataclass(frozen=True)
class EtcdMember:
    id: int
    hostname: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool

    @property
    def id_hex(self) -> str:
        return f"{self.id:016x}"


@dataclass(frozen=True)
class EtcdStatus:
    member_id: int
    leader: int
    raft_index: int
    raft_term: int
    db_size: int
    db_size_in_use: int
    protocol_version: str
    storage_version: str
    errors: tuple[str, ...]
    is_learner: bool

    @property
    def is_leader(self) -> bool:
        return self.member_id == self.leader and self.leader != 0

    @property
    def member_id_hex(self) -> str:
        return f"{self.member_id:016x}"


@dataclass(frozen=True)
class MemoryInfo:
    total_kib: int
    free_kib: int
    available_kib: int


@dataclass(frozen=True)
class ApplyResult:
    mode: str  # resolved mode: REBOOT, NO_REBOOT, STAGED, TRY (AUTO never comes back)
    mode_details: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class ActionAck:
    """Reply of Upgrade, Reboot, Reset, Shutdown: the actor id tags the action's events."""

    actor_id: str
    ack: str = ""


@dataclass(frozen=True)
class MachineEvent:
    """One event from the Events stream, decoded. ``type`` is the short message name
    (``MachineStatusEvent``, ``SequenceEvent``…) and ``data`` its fields as a dict."""

    node: str
    id: str
    actor_id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    # convenience views for the event kinds workflows react to
    @property
    def stage(self) -> str | None:
        return self.data.get("stage") if self.type == "MachineStatusEvent" else None

    @property
    def ready(self) -> bool:
        return bool(self.data.get("status", {}).get("ready")) if self.type == "MachineStatusEvent" else False

    @property
    def running_and_ready(self) -> bool:
        return self.stage == "RUNNING" and self.ready

    @property
    def error(self) -> str | None:
        if self.type == "SequenceEvent":
            return (self.data.get("error") or {}).get("message") or None
        return None


@dataclass(frozen=True)
class Resource:
    namespace: str
    type: str
    id: str
    version: str
    phase: str
    spec: Any
    labels: dict[str, str] = field(default_factory=dict)
    created: float | None = None
    updated: float | None = None
    proto_spec: bytes = b""


@dataclass(frozen=True)
class WatchEvent:
    type: str  # CREATED, UPDATED, DESTROYED, BOOTSTRAPPED, ERRORED
    resource: Resource | None
    old: Resource | None = None
    error: str | None = None


@dataclass(frozen=True)
class SnapshotResult:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PullProgress:
    """One layer's progress in an ``ImageService.Pull`` (Talos 1.13+)."""

    layer: str
    status: str  # DOWNLOADING, DOWNLOAD_COMPLETE, EXTRACTING, EXTRACT_COMPLETE, ALREADY_EXISTS
    offset: int
    total: int


@dataclass(frozen=True)
class ImageInfo:
    name: str
    digest: str
    size: int


@dataclass(frozen=True)
class InstallerRun:
    """What ``LifecycleService.Upgrade`` streamed: the installer's output and its exit code
    (a failed installer is a non-zero exit code, not a gRPC error)."""

    image: str
    exit_code: int
    output: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_code == 0
