"""Node-local RPC behaviour: what machined (or the maintenance service) answers.

Every unary handler returns the ``…Response`` message with exactly one element in
``messages`` and no ``metadata`` (apid adds metadata on one-to-many replies only). Stream
handlers yield items. Errors are raised as :class:`RpcError` with the gRPC code Talos uses.
Routing, RBAC and fan-out happen before these run (``apid.py``).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2

from taltasks.sim.talos import configview, versions
from taltasks.sim.talos.events import StreamClosed
from taltasks.sim.talos.node import SimNode, Stage
from taltasks.talos.api import common_pb2, cosi_resource_pb2
from taltasks.talos.api import machine_pb2 as m


class RpcError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Call:
    """Who is calling and whether they are still there."""

    method: str
    roles: frozenset[str]
    is_active: Callable[[], bool]


def unavailable_stream() -> RpcError:
    return RpcError(grpc.StatusCode.UNAVAILABLE, "error reading from server: EOF (node is rebooting)")


def _cp_only(node: SimNode, api: str) -> None:
    if not node.control_plane:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, f"{api} is only available on control plane nodes")


def _running(node: SimNode) -> None:
    if node.stage not in (Stage.RUNNING, Stage.BOOTING):
        raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"node is {node.stage.text}")


# ---- simple reads ----------------------------------------------------------------------------


def Version(node: SimNode, req: empty_pb2.Empty, call: Call) -> m.VersionResponse:
    info = m.VersionInfo(
        tag=node.version, sha="simulated", built="", go_version="go1.25", os="linux", arch="amd64"
    )
    return m.VersionResponse(
        messages=[
            m.Version(
                version=info,
                platform=m.PlatformInfo(name="metal", mode="metal"),
                features=m.FeaturesInfo(rbac=not node.maintenance),
            )
        ]
    )


def Hostname(node: SimNode, req: empty_pb2.Empty, call: Call) -> m.HostnameResponse:
    return m.HostnameResponse(messages=[m.Hostname(hostname=node.hostname)])


def Memory(node: SimNode, req: empty_pb2.Empty, call: Call) -> m.MemoryResponse:
    total = (8 if node.control_plane else 16) * 1024 * 1024  # kB
    return m.MemoryResponse(
        messages=[
            m.Memory(meminfo=m.MemInfo(memtotal=total, memfree=total // 2, memavailable=total * 3 // 4))
        ]
    )


def ServiceList(node: SimNode, req: empty_pb2.Empty, call: Call) -> m.ServiceListResponse:
    from google.protobuf.timestamp_pb2 import Timestamp

    def ts(t: float) -> Timestamp:
        out = Timestamp()
        out.FromNanoseconds(int(t * 1e9))
        return out

    with node.lock:
        services = [
            m.ServiceInfo(
                id=s.id,
                state=s.state,
                events=m.ServiceEvents(
                    events=[m.ServiceEvent(msg=msg, state=st, ts=ts(t)) for msg, st, t in s.events]
                ),
                health=m.ServiceHealth(
                    healthy=s.healthy, last_message=s.message, last_change=ts(s.last_change)
                ),
            )
            for s in sorted(node.services.values(), key=lambda s: s.id)
        ]
    return m.ServiceListResponse(messages=[m.ServiceList(services=services)])


def _service_action(node: SimNode, sid: str, verb: str) -> str:
    if sid not in node.services:
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"service {sid!r} not found")
    if verb in ("stop", "restart"):
        node.set_service(sid, "Stopping", False, "Service stopping")
        if sid == "kubelet":
            node.notify("down", reason="kubelet stopped")
    if verb in ("start", "restart"):
        node.set_service(sid, "Running", True, "Health check successful")
        if sid == "kubelet":
            node.notify("up", reason="kubelet started")
    else:
        node.set_service(sid, "Finished", False, "Service finished successfully")
    node.refresh_ready()
    return f"Service {sid!r} {verb}ed".replace("stoped", "stopped").replace("'", '"')


def ServiceRestart(node: SimNode, req: m.ServiceRestartRequest, call: Call) -> m.ServiceRestartResponse:
    return m.ServiceRestartResponse(
        messages=[m.ServiceRestart(resp=_service_action(node, req.id, "restart"))]
    )


def ServiceStart(node: SimNode, req: m.ServiceStartRequest, call: Call) -> m.ServiceStartResponse:
    return m.ServiceStartResponse(messages=[m.ServiceStart(resp=_service_action(node, req.id, "start"))])


def ServiceStop(node: SimNode, req: m.ServiceStopRequest, call: Call) -> m.ServiceStopResponse:
    return m.ServiceStopResponse(messages=[m.ServiceStop(resp=_service_action(node, req.id, "stop"))])


def ImagePull(node: SimNode, req: m.ImagePullRequest, call: Call) -> m.ImagePullResponse:
    if not req.reference or (configview.image_tag(req.reference) is None and "@" not in req.reference):
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid image reference {req.reference!r}")
    where = "system" if req.namespace == 1 else "cri"
    if not node.cluster.registry_has(req.reference):
        raise RpcError(
            grpc.StatusCode.UNKNOWN,
            f'failed to resolve reference "{req.reference}": {req.reference}: not found',
        )
    node._sleep(node.timings.image_pull)
    node.image_store(where).add(req.reference)
    node.record("talos.image_pull", image=req.reference, namespace=int(req.namespace), source="api")
    return m.ImagePullResponse(messages=[m.ImagePull()])


# ---- configuration ------------------------------------------------------------------------------


def ApplyConfiguration(
    node: SimNode, req: m.ApplyConfigurationRequest, call: Call
) -> m.ApplyConfigurationResponse:
    """Apply a config the way the node's minor does (:mod:`.versions`): which modes exist,
    whether AUTO may resolve to a reboot, whether a no-reboot apply refuses a change that
    needs one (up to 1.13) or takes it with the change waiting for the next boot (1.14)."""
    Mode = m.ApplyConfigurationRequest
    try:
        new = configview.parse(req.data, node.version)
    except configview.ConfigRejected as exc:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
    if node.maintenance:
        return _apply_in_maintenance(node, req, new)
    if "os:admin" not in call.roles:
        raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "not authorized")
    old = node.config
    assert old is not None
    if new.machine_type != old.machine_type and {new.machine_type, old.machine_type} != {
        "init",
        "controlplane",
    }:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"machine type can't be changed from {old.machine_type} to {new.machine_type}",
        )
    minor = node.minor
    name = Mode.Mode.Name(req.mode)
    if name not in minor.apply_modes:
        raise RpcError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"the {name} mode is not supported, please use AUTO or NO_REBOOT modes instead",
        )
    reason = configview.needs_reboot(old, new)
    mode = req.mode
    if mode == Mode.AUTO:
        mode = Mode.REBOOT if reason and minor.auto_may_reboot else Mode.NO_REBOOT
    if mode in (Mode.NO_REBOOT, Mode.TRY) and reason and minor.live_apply_checked:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"apply configuration in {Mode.Mode.Name(mode)} mode failed: {reason}",
        )
    details = {
        Mode.REBOOT: "Applied configuration with a reboot",
        Mode.NO_REBOOT: "Applied configuration without a reboot",
        Mode.STAGED: "Staged configuration to be applied after the next reboot",
        Mode.TRY: "Applied configuration without a reboot",
    }[mode]
    if req.mode == Mode.AUTO and mode == Mode.REBOOT and reason:
        details += f": {reason}"
    timeout = req.try_mode_timeout.ToTimedelta().total_seconds() if req.HasField("try_mode_timeout") else 60.0
    if mode == Mode.TRY:
        details += f"\nThe config is applied in 'try' mode and will be automatically reverted back in {_dur(timeout)}"
    if req.dry_run:
        diff = configview.unified_diff(old.raw, req.data)
        text = f"Dry run summary:\n{details} (skipped in dry-run).\nConfig diff:\n\n{diff}"
        return m.ApplyConfigurationResponse(messages=[m.ApplyConfiguration(mode=mode, mode_details=text)])
    if not node.apply_lock.acquire(blocking=False):
        raise RpcError(
            grpc.StatusCode.FAILED_PRECONDITION, "another apply configuration is already in progress"
        )
    try:
        if node.reboot_pending:
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "configuration was already applied and node is rebooting, cannot apply more configuration changes until next reboot",
            )
        waits = reason if mode in (Mode.NO_REBOOT, Mode.TRY) else None
        node.record("talos.apply", mode=Mode.Mode.Name(mode), dry_run=False, next_boot=waits)
        if mode == Mode.STAGED:
            node.staged_config = req.data
        elif mode in (Mode.NO_REBOOT, Mode.TRY):
            node.cluster.apply_live(node, new)
            node.waiting_for_reboot = waits  # 1.14: taken, but it only acts at the next boot
            if mode == Mode.TRY:
                _schedule_revert(node, old, new, timeout)
        else:  # REBOOT
            node.staged_config = req.data
            node.reboot_pending = True
            node.run_sequence(
                "reboot",
                [("stopEverything", ["stopAllServices"]), ("reboot", ["reboot"])],
                actor=str(uuid.uuid4()),
                stage=Stage.REBOOTING,
            )
    finally:
        node.apply_lock.release()
    return m.ApplyConfigurationResponse(
        messages=[m.ApplyConfiguration(warnings=[], mode=mode, mode_details=details)]
    )


def _dur(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"


def _schedule_revert(
    node: SimNode, old: configview.ConfigView, new: configview.ConfigView, timeout: float
) -> None:
    import threading

    def revert() -> None:
        if node.config is new and not node.cluster.stopping.is_set():
            node.cluster.apply_live(node, old)
            node.record("talos.apply_reverted")

    timer = threading.Timer(timeout, revert)
    timer.daemon = True
    timer.start()


def _apply_in_maintenance(
    node: SimNode, req: m.ApplyConfigurationRequest, new: configview.ConfigView
) -> m.ApplyConfigurationResponse:
    """Up to 1.12 the maintenance service takes TRY, REBOOT or AUTO and answers with warnings
    only. From 1.13 machined serves it: REBOOT and AUTO are taken as NO_REBOOT, STAGED keeps
    the config for the next boot (the node stays in maintenance mode until then)."""
    Mode = m.ApplyConfigurationRequest
    rules = node.minor.maintenance
    name = Mode.Mode.Name(req.mode)
    if name not in rules.apply_modes:
        raise RpcError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"apply mode {name} is not supported in maintenance mode",
        )
    mode, details = 0, ""
    if rules.reboot_becomes_no_reboot:
        mode = (
            Mode.STAGED if req.mode == Mode.STAGED else (Mode.TRY if req.mode == Mode.TRY else Mode.NO_REBOOT)
        )
        details = (
            "Staged configuration to be applied after the next reboot"
            if mode == Mode.STAGED
            else "Applied configuration without a reboot"
        )
    if req.dry_run:
        text = "Dry run summary:\nNode is running in maintenance mode and does not have a config yet."
        if details:
            diff = configview.unified_diff(None, req.data)
            text = f"Dry run summary:\n{details} (skipped in dry-run).\nConfig diff:\n\n{diff}"
        return m.ApplyConfigurationResponse(messages=[m.ApplyConfiguration(mode=mode, mode_details=text)])
    if not node.apply_lock.acquire(blocking=False):
        raise RpcError(
            grpc.StatusCode.FAILED_PRECONDITION, "another apply configuration is already in progress"
        )
    try:
        if node.busy:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, "the node is already installing")
        if mode == Mode.STAGED:
            node.staged_config = req.data
            node.record("talos.apply", mode="maintenance-staged", dry_run=False)
            return m.ApplyConfigurationResponse(
                messages=[m.ApplyConfiguration(warnings=[], mode=mode, mode_details=details)]
            )
        node.record("talos.apply", mode="maintenance-install", dry_run=False)

        def install() -> None:
            node.config = new
            node._adopt_config(new)
            tag = configview.image_tag(new.install_image)
            if tag:
                node.version = tag
            node._sleep(node.timings.install)

        node.run_sequence(
            "install",
            [("install", ["install"]), ("reboot", ["reboot"])],
            actor="",
            stage=Stage.INSTALLING,
            then=install,
        )
    finally:
        node.apply_lock.release()
    return m.ApplyConfigurationResponse(
        messages=[m.ApplyConfiguration(warnings=[], mode=mode, mode_details=details)]
    )


# ---- lifecycle ------------------------------------------------------------------------------------


UPGRADE_PHASES = [
    ("drain", ["drain"]),
    ("cleanup", ["cleanup"]),
    ("dbus", ["stopDBus"]),
    ("stopServices", ["stopServicesForUpgrade"]),
    ("unmount", ["unmountPodMounts"]),
    ("unmountBind", ["unmountSystemDiskBindMounts"]),
    ("unmountSystem", ["unmountSystemDisk"]),
    ("volumeFinalize", ["volumeFinalize"]),
    ("upgrade", ["upgrade"]),
    ("meta", ["saveMeta"]),
    ("kexec", ["kexecPrepare"]),
    ("stopEverything", ["stopAllServices"]),
    ("reboot", ["reboot"]),
]


def Upgrade(node: SimNode, req: m.UpgradeRequest, call: Call) -> m.UpgradeResponse:
    """The legacy upgrade (deprecated from 1.13): pull and validate the installer, check
    etcd on a control plane — unless ``force``, or ``preserve`` on a version whose Upgrade
    skips the check for it (1.12.9+, 1.13.4+, 1.14) — reply, then run the upgrade sequence
    (a busy node publishes LOCKED instead)."""
    if node.maintenance and (req.preserve or req.stage or req.force):
        raise RpcError(
            grpc.StatusCode.UNIMPLEMENTED, "preserve, stage and force are not supported in maintenance mode"
        )
    tag = configview.image_tag(req.image)
    if tag is None:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"error validating installer image {req.image!r}: no version tag",
        )
    # the installer is pulled and validated before the reply (talos-api.md §4.2)
    node._sleep(node.timings.upgrade_pull)
    while node.faults.upgrade_hangs and call.is_active() and not node.cluster.stopping.is_set():
        node._sleep(0.1)
    if not node.cluster.registry_has(req.image):
        raise RpcError(
            grpc.StatusCode.UNKNOWN,
            f'error validating installer image "{req.image}": failed to resolve reference: {req.image}: not found',
        )
    node.system_images.add(req.image)
    _, patch = versions.parse(node.version)
    skip_etcd = req.force or (req.preserve and node.minor.preserve_skips_etcd_check(patch))
    if node.control_plane and not node.maintenance and not skip_etcd:
        etcd = node.cluster.etcd
        if not etcd.all_healthy():
            bad = sorted(mm.hostname for mm in etcd.members.values() if not mm.healthy)
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION, f"etcd is not healthy: unhealthy members {bad}"
            )
        if not etcd.quorum_ok(without=node.hostname):
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, "upgrading this node would break etcd quorum")
    node.record(
        "talos.upgrade",
        image=req.image,
        preserve=req.preserve,
        force=req.force,
        stage=req.stage,
        etcd_checked=node.control_plane and not skip_etcd,
    )
    actor = str(uuid.uuid4())
    if _locked(node, "stageUpgrade" if req.stage else "upgrade"):
        return m.UpgradeResponse(messages=[m.Upgrade(ack="Upgrade request received", actor_id=actor)])

    def install() -> None:
        node.installed_version = tag

    node.run_sequence(
        "stageUpgrade" if req.stage else "upgrade",
        UPGRADE_PHASES,
        actor,
        stage=Stage.UPGRADING,
        then=install,
    )
    return m.UpgradeResponse(messages=[m.Upgrade(ack="Upgrade request received", actor_id=actor)])


def _locked(node: SimNode, sequence: str) -> bool:
    """Talos starts a sequence only when none runs: otherwise it publishes a LOCKED
    SequenceEvent (without an actor, as upstream's controller does) and does nothing."""
    if node.busy == "boot":  # the boot sequence may be taken over: let it finish first
        deadline = time.monotonic() + 5.0
        while node.busy == "boot" and time.monotonic() < deadline:
            node._sleep(0.02)
    if not node.busy:
        return False
    node.events.publish(
        m.SequenceEvent(
            sequence=sequence,
            action=m.SequenceEvent.NOOP,
            error=common_pb2.Error(code=common_pb2.LOCKED, message="sequence not started: locked"),
        )
    )
    node.record("talos.sequence_locked", sequence=sequence, running=node.busy)
    return True


def Reboot(node: SimNode, req: m.RebootRequest, call: Call) -> m.RebootResponse:
    actor = str(uuid.uuid4())
    if _locked(node, "reboot"):
        return m.RebootResponse(messages=[m.Reboot(actor_id=actor)])
    node.record("talos.reboot", mode=int(req.mode))
    node.run_sequence(
        "reboot",
        [("stopEverything", ["stopAllServices"]), ("reboot", ["reboot"])],
        actor,
        stage=Stage.REBOOTING,
    )
    return m.RebootResponse(messages=[m.Reboot(actor_id=actor)])


def Shutdown(node: SimNode, req: m.ShutdownRequest, call: Call) -> m.ShutdownResponse:
    actor = str(uuid.uuid4())
    if _locked(node, "shutdown"):
        return m.ShutdownResponse(messages=[m.Shutdown(actor_id=actor)])
    node.record("talos.shutdown")
    node.run_sequence(
        "shutdown",
        [("stopEverything", ["stopAllServices"])],
        actor,
        stage=Stage.SHUTTING_DOWN,
        power_off=True,
    )
    return m.ShutdownResponse(messages=[m.Shutdown(actor_id=actor)])


def Reset(node: SimNode, req: m.ResetRequest, call: Call) -> m.ResetResponse:
    if req.mode == m.ResetRequest.SYSTEM_DISK and req.user_disks_to_wipe:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "user disks can't be wiped in SYSTEM_DISK mode")
    if req.mode == m.ResetRequest.USER_DISKS and req.system_partitions_to_wipe:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT, "system partitions can't be wiped in USER_DISKS mode"
        )
    for spec in req.system_partitions_to_wipe:
        if spec.label not in ("EPHEMERAL", "STATE", "META"):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown volume {spec.label!r}")
    actor = str(uuid.uuid4())
    if _locked(node, "reset"):
        return m.ResetResponse(messages=[m.Reset(actor_id=actor)])
    node.record("talos.reset", graceful=req.graceful, reboot=req.reboot)
    leave = node.control_plane and req.graceful and not node.maintenance

    def wipe() -> None:
        if leave:
            member = node.cluster.etcd.by_hostname(node.hostname)
            if member is not None:
                node.cluster.etcd.remove(member.id)
                node.record("etcd.member_removed", member_id=f"{member.id:016x}", by="reset")
        node.config = None
        node.staged_config = None

    phases = [("leave", ["leaveEtcd"])] if leave else []
    phases += [("stopEverything", ["stopAllServices"]), ("reset", ["resetSystemDisk"])]
    node.run_sequence("reset", phases, actor, stage=Stage.RESETTING, then=wipe, power_off=not req.reboot)
    return m.ResetResponse(messages=[m.Reset(actor_id=actor)])


def Bootstrap(node: SimNode, req: m.BootstrapRequest, call: Call) -> m.BootstrapResponse:
    from taltasks.sim.talos import startup

    # machined's order: runtime up, control plane, clock synced (waited for), etcd data
    if node.stage not in (Stage.RUNNING, Stage.BOOTING) or node.startup.bootstrap_unavailable():
        raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, startup.NOT_AVAILABLE)
    _cp_only(node, "bootstrap")
    if not node.startup.wait_time_sync(call):
        raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, startup.TIME_NOT_SYNCED)
    if node.cluster.etcd.bootstrapped:
        raise RpcError(grpc.StatusCode.ALREADY_EXISTS, "etcd data directory is not empty")
    node.cluster.bootstrap_etcd(node)
    return m.BootstrapResponse(messages=[m.Bootstrap()])


# ---- etcd -----------------------------------------------------------------------------------------


def _local_member(node: SimNode):
    member = node.cluster.etcd.by_hostname(node.hostname)
    if member is None or not member.up:
        raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, "etcd is not running on this node")
    return member


def EtcdMemberList(node: SimNode, req: m.EtcdMemberListRequest, call: Call) -> m.EtcdMemberListResponse:
    _cp_only(node, "etcd members")
    _local_member(node)
    etcd = node.cluster.etcd
    if etcd.leader is None:
        raise RpcError(grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
    members = [
        m.EtcdMember(
            id=mm.id,
            hostname=mm.hostname,
            peer_urls=[mm.peer_url],
            client_urls=[mm.client_url],
            is_learner=mm.is_learner,
        )
        for mm in sorted(etcd.members.values(), key=lambda x: x.hostname)
    ]
    return m.EtcdMemberListResponse(messages=[m.EtcdMembers(members=members)])


def EtcdRemoveMemberByID(
    node: SimNode, req: m.EtcdRemoveMemberByIDRequest, call: Call
) -> m.EtcdRemoveMemberByIDResponse:
    _cp_only(node, "etcd remove member")
    _local_member(node)
    removed = node.cluster.etcd.remove(req.member_id)
    if removed is None:
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"etcdserver: member not found: {req.member_id:016x}")
    node.record(
        "etcd.member_removed", member_id=f"{req.member_id:016x}", member=removed.hostname, by="remove-member"
    )
    node.cluster.refresh_etcd_services()
    return m.EtcdRemoveMemberByIDResponse(messages=[m.EtcdRemoveMemberByID()])


def EtcdLeaveCluster(node: SimNode, req: m.EtcdLeaveClusterRequest, call: Call) -> m.EtcdLeaveClusterResponse:
    _cp_only(node, "etcd leave")
    member = _local_member(node)
    etcd = node.cluster.etcd
    if len(etcd.members) == 1:
        raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, "the last etcd member can't leave the cluster")
    etcd.remove(member.id)
    node.record("etcd.member_removed", member_id=f"{member.id:016x}", member=node.hostname, by="leave")
    node.set_service("etcd", "Finished", False, "Service finished successfully")
    node.cluster.refresh_etcd_services()
    return m.EtcdLeaveClusterResponse(messages=[m.EtcdLeaveCluster()])


def EtcdForfeitLeadership(
    node: SimNode, req: m.EtcdForfeitLeadershipRequest, call: Call
) -> m.EtcdForfeitLeadershipResponse:
    """Move leadership away if this member leads; the reply names the new leader ("" when
    this member was not the leader)."""
    _cp_only(node, "etcd forfeit leadership")
    _local_member(node)
    if len(node.cluster.etcd.members) == 1:
        raise RpcError(
            grpc.StatusCode.UNKNOWN,
            "failed to forfeit leadership: cannot forfeit leadership, only one member",
        )
    new_leader = node.cluster.etcd.forfeit(node.hostname)
    if new_leader:
        node.record("etcd.leader_moved", frm=node.hostname, to=new_leader)
    return m.EtcdForfeitLeadershipResponse(messages=[m.EtcdForfeitLeadership(member=new_leader or "")])


def EtcdStatus(node: SimNode, req: empty_pb2.Empty, call: Call) -> m.EtcdStatusResponse:
    _cp_only(node, "etcd status")
    member = _local_member(node)
    etcd = node.cluster.etcd
    errors = ["etcdserver: member is unhealthy (simulated fault)"] if member.fault_unhealthy else []
    status = m.EtcdMemberStatus(
        member_id=member.id,
        protocol_version=etcd.version,
        storage_version=".".join(etcd.version.split(".")[:2]) + ".0",
        db_size=etcd.db_size,
        db_size_in_use=etcd.db_size * 3 // 4,
        leader=etcd.leader or 0,
        raft_index=etcd.raft_index,
        raft_term=etcd.raft_term,
        raft_applied_index=etcd.raft_index,
        errors=errors,
        is_learner=member.is_learner,
    )
    return m.EtcdStatusResponse(messages=[m.EtcdStatus(member_status=status)])


def EtcdSnapshot(node: SimNode, req: m.EtcdSnapshotRequest, call: Call) -> Iterator[common_pb2.Data]:
    _cp_only(node, "etcd snapshot")
    _local_member(node)
    data = node.cluster.etcd.snapshot()
    chunk = node.cluster.snapshot_chunk
    node.record("etcd.snapshot", size=len(data))
    view = memoryview(data)
    for offset in range(0, len(data), chunk):
        if not call.is_active():
            return
        yield common_pb2.Data(bytes=bytes(view[offset : offset + chunk]))


# ---- streams ---------------------------------------------------------------------------------------


def Events(node: SimNode, req: m.EventsRequest, call: Call) -> Iterator[m.Event]:
    # the first message is an empty "hello" event, so the client knows the stream is live
    from google.protobuf import any_pb2

    log = node.events
    hello = m.Event(data=any_pb2.Any(), id=_new_id(), actor_id=req.with_actor_id)
    subscription = log.subscribe(
        tail_events=req.tail_events,
        tail_id=req.tail_id,
        tail_seconds=req.tail_seconds,
        actor_id=req.with_actor_id,
        is_active=call.is_active,
    )
    yield hello
    try:
        for e in subscription:
            yield m.Event(data=e.data, id=e.id, actor_id=e.actor_id)
    except StreamClosed:
        raise unavailable_stream() from None


def _new_id() -> str:
    from taltasks.sim.talos.events import new_xid

    return new_xid()


def _tail(lines: list[str], tail: int) -> list[str]:
    if tail < 0:
        return lines
    if tail == 0:
        return []
    return lines[-tail:]


def Logs(node: SimNode, req: m.LogsRequest, call: Call) -> Iterator[common_pb2.Data]:
    if req.namespace not in ("system", "k8s.io", ""):
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown namespace {req.namespace!r}")
    lines = node.logs.get(req.id)
    if lines is None:
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"log {req.id!r} not found")
    yield from _log_stream(node, lines, _tail(lines, req.tail_lines), follow=req.follow, call=call)


def Dmesg(node: SimNode, req: m.DmesgRequest, call: Call) -> Iterator[common_pb2.Data]:
    lines = node.dmesg
    yield from _log_stream(node, lines, [] if req.tail else lines, follow=req.follow, call=call)


def _log_stream(
    node: SimNode, lines: list[str], backlog: list[str], *, follow: bool, call: Call
) -> Iterator[common_pb2.Data]:
    """``backlog`` at once, then (with ``follow``) lines appended to ``lines`` as they come,
    until the client leaves or the node reboots (UNAVAILABLE, as a real stream breaks)."""
    sent = len(lines)
    if backlog:
        yield common_pb2.Data(bytes="".join(line + "\n" for line in backlog).encode())
    boot = node.boot_id
    while follow and call.is_active():
        if node.boot_id != boot or not node.reachable:
            raise unavailable_stream()
        if len(lines) > sent:
            new, sent = lines[sent:], len(lines)
            yield common_pb2.Data(bytes="".join(x + "\n" for x in new).encode())
        time.sleep(0.1)


def Read(node: SimNode, req: m.ReadRequest, call: Call) -> Iterator[common_pb2.Data]:
    files = {
        "/proc/sys/kernel/random/boot_id": node.boot_id + "\n",
        "/etc/os-release": f'NAME="Talos"\nID=talos\nVERSION_ID={node.version}\nPRETTY_NAME="Talos ({node.version})"\n',
        "/proc/sys/kernel/hostname": node.hostname + "\n",
    }
    if req.path not in files:
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"open {req.path}: no such file or directory")
    yield common_pb2.Data(bytes=files[req.path].encode())


def Kubeconfig(node: SimNode, req: empty_pb2.Empty, call: Call) -> Iterator[common_pb2.Data]:
    _cp_only(node, "kubeconfig")
    text = node.cluster.kubeconfig_for(node)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("kubeconfig")
        info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    yield common_pb2.Data(bytes=buf.getvalue())


# ---- COSI -----------------------------------------------------------------------------------------


def _resource_pb(r: Any) -> cosi_resource_pb2.Resource:
    from google.protobuf.timestamp_pb2 import Timestamp

    def ts(t: float) -> Timestamp:
        out = Timestamp()
        out.FromNanoseconds(int(t * 1e9))
        return out

    meta = cosi_resource_pb2.Metadata(
        namespace=r.namespace,
        type=r.type,
        id=r.id,
        version=str(r.version) if r.version else "undefined",
        owner=r.owner,
        phase="running",
        created=ts(r.created),
        updated=ts(r.updated),
        labels=r.labels,
    )
    if isinstance(r.spec, str):
        meta.annotations["talos.dev/yaml-spec"] = "1"
    return cosi_resource_pb2.Resource(
        metadata=meta,
        spec=cosi_resource_pb2.Spec(
            proto_spec=r.proto, yaml_spec=r.yaml_spec if r.spec != {} or r.version else ""
        ),
    )


def _cosi_access(node: SimNode, namespace: str, type_: str, call: Call) -> None:
    from taltasks.sim.talos.resources import BY_TYPE

    if not node.resources.known(namespace, type_):
        if (type_ not in BY_TYPE or type_ in node.resources.unserved) and namespace != "meta":
            raise RpcError(grpc.StatusCode.PERMISSION_DENIED, f"resource type {type_!r} is not supported")
        raise RpcError(grpc.StatusCode.PERMISSION_DENIED, f"namespace {namespace!r} is not supported")
    rt = BY_TYPE.get(type_)
    if rt is not None and rt.sensitive and "os:admin" not in call.roles:
        raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "not authorized")


def COSIGet(node: SimNode, req: cosi_resource_pb2.GetRequest, call: Call) -> cosi_resource_pb2.GetResponse:
    _cosi_access(node, req.namespace, req.type, call)
    r = node.resources.get(req.namespace, req.type, req.id)
    if r is None:
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"resource {req.type}/{req.id} doesn't exist")
    return cosi_resource_pb2.GetResponse(resource=_resource_pb(r))


def COSIList(
    node: SimNode, req: cosi_resource_pb2.ListRequest, call: Call
) -> Iterator[cosi_resource_pb2.ListResponse]:
    _cosi_access(node, req.namespace, req.type, call)
    for r in node.resources.list(req.namespace, req.type):
        yield cosi_resource_pb2.ListResponse(resource=_resource_pb(r))


def COSIWatch(
    node: SimNode, req: cosi_resource_pb2.WatchRequest, call: Call
) -> Iterator[cosi_resource_pb2.WatchResponse]:
    _cosi_access(node, req.namespace, req.type, call)
    single = req.HasField("id")
    # cosi-project/runtime's server refuses both for a single-resource watch (whose first
    # event is the resource's current state anyway)
    if single and req.options.bootstrap_contents:
        raise RpcError(
            grpc.StatusCode.UNIMPLEMENTED, "bootstrap contents is not implemented for resource watch"
        )
    if single and req.options.label_query:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, "label query is not implemented for resource watch")
    kinds = {"CREATED": 0, "UPDATED": 1, "DESTROYED": 2, "BOOTSTRAPPED": 3}
    watch = node.resources.watch(
        req.namespace,
        req.type,
        req.id if single else None,
        bootstrap=req.options.bootstrap_contents,
        is_active=call.is_active,
    )
    yield cosi_resource_pb2.WatchResponse()  # "watch is ready"
    try:
        for kind, res, old in watch:
            if kind == "BOOTSTRAPPED" and req.api_version < 1:
                continue
            event = cosi_resource_pb2.Event(event_type=kinds[kind])
            if res is not None:
                event.resource.CopyFrom(_resource_pb(res))
            if old is not None:
                event.old.CopyFrom(_resource_pb(old))
            yield cosi_resource_pb2.WatchResponse(event=[event])
    except StreamClosed:
        raise unavailable_stream() from None


COSI_WRITES = {"Create", "Update", "Destroy"}
