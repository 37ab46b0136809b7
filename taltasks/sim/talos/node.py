"""One simulated Talos node: identity, lifecycle and the state machined would report.

Lifecycle::

    maintenance ──apply──► installing ──reboot──► booting ──► running (ready)
    running ──reboot / upgrade / apply(reboot)──► rebooting ── down for R s ──► booting ──► running
    running ──reset──► resetting ──► maintenance (reboot) or off

"Down" is literal: the node's TLS listener is closed, open connections are cut, streams end
and calls proxied to it fail with UNAVAILABLE. It returns with a new boot id (and, after an
upgrade, the version of the installer image's tag). Lifecycle listeners (the Kubernetes
coupling) hear ``down``, ``up`` and ``config`` so Node objects follow the machine.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from taltasks.machineconfig import pki
from taltasks.sim.talos import configview, controlplane, versions
from taltasks.sim.talos.events import EventLog
from taltasks.sim.talos.resources import ResourceStore
from taltasks.sim.talos.startup import RuntimeStartup
from taltasks.talos import tlsbridge
from taltasks.talos.api import machine_pb2 as m

if TYPE_CHECKING:
    from taltasks.sim.talos.cluster import SimTalosCluster


class Stage(IntEnum):
    """Same numbers as ``MachineStatusEvent.MachineStage`` and ``RuntimeMachineStage``."""

    UNKNOWN = 0
    BOOTING = 1
    INSTALLING = 2
    MAINTENANCE = 3
    RUNNING = 4
    REBOOTING = 5
    SHUTTING_DOWN = 6
    RESETTING = 7
    UPGRADING = 8

    @property
    def text(self) -> str:
        return self.name.lower().replace("_", " ")


@dataclass
class Timings:
    """Seconds each simulated action takes (scenario ``timings``)."""

    reboot: float = 1.0  # unreachable while rebooting
    shutdown: float = 0.2  # stopping services before going down (replies get out first)
    boot: float = 0.2  # listening again → running and ready
    install: float = 0.3  # maintenance apply → reboot into the installed system
    upgrade_pull: float = 0.2  # Upgrade pulls the installer before it replies
    image_pull: float = 0.05
    kubelet_restart: float = 0.2
    cri_start: float = 0.0  # after apid answers: CRI up (Bootstrap "not available yet" until then)
    time_sync: float = 0.0  # after apid answers: clock synced (Bootstrap "time is not in sync yet")
    time_sync_wait: float = 5.0  # how long Bootstrap waits for time sync before refusing (Talos: 5 s)
    # how long a node takes to answer a call (the network and machined): spent waiting, not
    # computing, so separate nodes answer in parallel as real machines do (every simulated
    # node shares one process, whose own work is serialized)
    api_latency: float = 0.0


@dataclass
class NodeFaults:
    """Per-node fault injection (scenario ``faults`` / control API)."""

    never_returns: bool = False  # the next reboot never comes back (until cleared)
    keeps_old_version: bool = False  # an upgrade reboots into the old version
    etcd_unhealthy: bool = False
    unreachable: bool = False  # listener closed without a reboot
    upgrade_hangs: bool = False  # the Upgrade call itself never replies (pull hangs)
    cri_stalled: bool = False  # CRI does not come up: Bootstrap refused "not available yet"
    time_unsynced: bool = False  # the clock never syncs: Bootstrap refused "time is not in sync yet"
    vanished: bool = False  # power loss / partition: answers nothing, closes nothing (until cleared)
    drain_stuck: bool = False  # Talos's own drain (legacy upgrade sequence) waits, as on a PDB

    def as_dict(self) -> dict[str, bool]:
        return dict(self.__dict__)


@dataclass
class Service:
    id: str
    state: str = "Initialized"
    healthy: bool = False
    message: str = ""
    events: list[tuple[str, str, float]] = field(default_factory=list)  # (msg, state, ts)
    last_change: float = field(default_factory=time.time)


BASE_SERVICES = ("machined", "apid", "containerd", "udevd", "syslogd", "auditd", "cri")
CP_SERVICES = ("trustd", "etcd")


class SimNode:
    def __init__(
        self,
        cluster: SimTalosCluster,
        *,
        hostname: str,
        ip: str,
        control_plane: bool,
        version: str,
        config: bytes | None,
        timings: Timings,
    ) -> None:
        self.cluster = cluster
        self.hostname = hostname
        self.ip = ip
        self.control_plane = control_plane
        self.version = version
        self.timings = timings
        self.faults = NodeFaults()
        self.config: configview.ConfigView | None = configview.parse(config) if config else None
        self.staged_config: bytes | None = None
        self.boot_id = str(uuid.uuid4())
        self.stage = Stage.UNKNOWN
        self.ready = False
        self.reachable = False
        self.events = EventLog()
        self.resources = ResourceStore(unserved=self._unserved_types())
        self.services: dict[str, Service] = {}
        self.images: set[str] = set()  # containerd namespace k8s.io (CRI): Kubernetes images
        self.system_images: set[str] = set()  # namespace system: etcd, kubelet, installers
        self.installed_version: str | None = None  # written by an upgrade, booted next
        self.lifecycle_lock = threading.Lock()  # LifecycleService: one install/upgrade at a time
        self.siderolink_host: str | None = None  # set: the machine is managed by Omni
        self.logs: dict[str, list[str]] = {}
        self.dmesg: list[str] = []
        self.listeners: list[Callable[[SimNode, str, dict[str, Any]], None]] = []
        self.lock = threading.RLock()
        self.apply_lock = threading.Lock()
        self.reboot_pending = False  # after a REBOOT-mode apply, until the node is down
        self.waiting_for_reboot: str | None = None  # 1.14: an applied change acting at next boot
        self.busy: str | None = None  # a sequence in progress ("upgrade", "reboot", …)
        self._front: tlsbridge.TlsFront | None = None
        self._fault_changed = threading.Condition()
        self.member_id = uuid.uuid4().hex[:22]  # cluster discovery identity (Members resource)
        self.etcd_join_pending = False  # etcd refused this machine's join; it keeps retrying
        self.startup = RuntimeStartup(self)  # CRI and time sync after apid answers
        if self.config is not None:
            self._adopt_config(self.config)

    # ---- identity ----------------------------------------------------------------------------

    @property
    def maintenance(self) -> bool:
        return self.config is None

    @property
    def minor(self) -> versions.Minor:
        """How this node's Talos minor behaves on the API (:mod:`.versions`)."""
        return versions.minor(self.version)

    @property
    def role(self) -> str:
        return "controlplane" if self.control_plane else "worker"

    def image_store(self, namespace: str) -> set[str]:
        """The images pulled into containerd namespace ``system`` or ``cri``."""
        return self.system_images if namespace == "system" else self.images

    def _adopt_config(self, view: configview.ConfigView) -> None:
        self.control_plane = view.control_plane
        if view.hostname:
            self.hostname = view.hostname

    def _unserved_types(self) -> frozenset[str]:
        """COSI types this node's minor does not have."""
        from taltasks.sim.talos.resources import BOOT_ID_TYPE

        return frozenset() if self.minor.boot_id_resource else frozenset({BOOT_ID_TYPE})

    def __repr__(self) -> str:
        return f"SimNode({self.hostname} {self.ip} {self.role} {self.version} {self.stage.name})"

    def notify(self, what: str, **data: Any) -> None:
        for listener in list(self.listeners):
            listener(self, what, data)

    def record(self, kind: str, **data: Any) -> None:
        self.cluster.recorder.record(kind, node=self.hostname, ip=self.ip, **data)

    # ---- TLS -----------------------------------------------------------------------------------

    def _tls_context(self):
        """Configured: apid cert from the OS CA, client certificates required. Maintenance:
        a per-boot self-signed Ed25519 CA, server-only TLS (talos-api.md §9.4)."""
        sans_dns = [
            self.hostname,
            *[s for s in (self.config.cert_sans if self.config else []) if not _is_ip(s)],
        ]
        sans_ip = [self.ip, *[s for s in (self.config.cert_sans if self.config else []) if _is_ip(s)]]
        if self.config is None:
            ca = pki.create_ca(organization="talos", validity=pki.ONE_DAY)
            leaf = pki.issue(
                ca,
                usage="server",
                common_name=self.hostname,
                ip_sans=[self.ip],
                dns_sans=[self.hostname],
                validity=pki.ONE_DAY,
            )
            return tlsbridge.server_context(cert_pem=leaf.crt, key_pem=leaf.key, client_ca_pem=None)
        ca = self.cluster.os_ca_for(self)
        leaf = pki.issue(
            ca,
            usage="server",
            common_name=self.hostname,
            ip_sans=dict.fromkeys(sans_ip),
            dns_sans=dict.fromkeys(sans_dns),
            validity=pki.ONE_DAY,
        )
        return tlsbridge.server_context(
            cert_pem=leaf.crt, key_pem=leaf.key, client_ca_pem=self.config.os_ca_crt or ca.crt
        )

    def _listen(self) -> None:
        if self.faults.unreachable:
            return
        ctx = self._tls_context()
        self._front = self.cluster.make_front(self, ctx)
        if self.faults.vanished:
            self._front.hold()  # listens, but answers nothing
        self._front.start()
        self.reachable = True

    def _unlisten(self) -> None:
        self.reachable = False
        if self._front is not None:
            self._front.stop(drop_connections=True)
            self._front = None

    # ---- state publication ----------------------------------------------------------------------

    def set_stage(self, stage: Stage, ready: bool | None = None, actor: str = "") -> None:
        from taltasks.talos.api import definitions_runtime_pb2 as rt

        with self.lock:
            self.stage = stage
            if ready is not None:
                self.ready = ready
            unmet = self._unmet_conditions()
            status = m.MachineStatusEvent.MachineStatus(
                ready=self.ready,
                unmet_conditions=[
                    m.MachineStatusEvent.MachineStatus.UnmetCondition(name=n, reason=r) for n, r in unmet
                ],
            )
            self.events.publish(m.MachineStatusEvent(stage=int(stage), status=status), actor)
            spec = {
                "stage": stage.text,
                "status": {
                    "ready": self.ready,
                    "unmetConditions": [{"name": n, "reason": r} for n, r in unmet],
                },
            }
            proto = rt.MachineStatusSpec(
                stage=int(stage),
                status=rt.MachineStatusStatus(
                    ready=self.ready, unmet_conditions=[rt.UnmetCondition(name=n, reason=r) for n, r in unmet]
                ),
            )
            self.resources.put("runtime", "MachineStatuses.runtime.talos.dev", "machine", spec, proto)
        self.record(
            "talos.stage", stage=stage.text, ready=self.ready, boot_id=self.boot_id, version=self.version
        )
        self.notify("stage", stage=stage)

    def _unmet_conditions(self) -> list[tuple[str, str]]:
        if self.stage in (Stage.MAINTENANCE, Stage.UNKNOWN):
            return []
        bad = [s.id for s in self.services.values() if not s.healthy and s.state != "Finished"]
        return [("services", f"service {', '.join(sorted(bad))} not healthy")] if bad else []

    def set_service(self, sid: str, state: str, healthy: bool, message: str = "", actor: str = "") -> None:
        from taltasks.talos.api import definitions_v1alpha1_pb2 as v1

        with self.lock:
            self._service_state(sid, state, healthy, message, actor)
            running = state == "Running"
            self.resources.put(
                "runtime", "Services.v1alpha1.talos.dev", sid,
                {"running": running, "healthy": healthy, "unknown": False},
                v1.ServiceSpec(running=running, healthy=healthy),
            )  # fmt: skip

    def withdraw_service(self, sid: str, state: str, message: str = "", actor: str = "") -> None:
        """A service stops (a restart's first half): its state event is published and its
        ``Services`` resource is destroyed, as machined tears it down."""
        with self.lock:
            self._service_state(sid, state, False, message, actor)
            self.resources.delete("runtime", "Services.v1alpha1.talos.dev", sid)

    def _service_state(self, sid: str, state: str, healthy: bool, message: str, actor: str) -> None:
        actions = {
            "Initialized": 0, "Preparing": 1, "Waiting": 2, "Running": 3, "Stopping": 4,
            "Finished": 5, "Failed": 6, "Skipped": 7, "Starting": 8,
        }  # fmt: skip
        svc = self.services.setdefault(sid, Service(sid))
        now = time.time()
        if svc.healthy != healthy:
            svc.last_change = now
        svc.state, svc.healthy, svc.message = state, healthy, message
        svc.events.append((message or state, state, now))
        del svc.events[:-20]
        self.logs.setdefault(sid, []).append(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {sid}: {message or state}"
        )
        health = m.ServiceHealth(healthy=healthy, last_message=message)
        self.events.publish(
            m.ServiceStateEvent(service=sid, action=actions.get(state, 0), message=message, health=health),
            actor,
        )

    def _publish_static_resources(self) -> None:
        """Resources that only change with config or version: Version, Nodename, Hostname,
        KubeletSpec, control-plane component configs, MachineConfig, cluster discovery."""
        from taltasks.talos.api import (
            definitions_cluster_pb2 as cl,
        )
        from taltasks.talos.api import (
            definitions_k8s_pb2 as k8s,
        )
        from taltasks.talos.api import (
            definitions_network_pb2 as net,
        )
        from taltasks.talos.api import (
            definitions_runtime_pb2 as rt,
        )
        from taltasks.talos.api import (
            resource_config_pb2 as rc,
        )

        r = self.resources
        r.put(
            "runtime",
            "Versions.runtime.talos.dev",
            "version",
            {"version": self.version},
            rt.VersionSpec(version=self.version),
        )
        if self.minor.boot_id_resource:
            r.put(
                "runtime",
                "BootIDs.runtime.talos.dev",
                "boot-id",
                {"bootID": self.boot_id},
                rt.BootIDSpec(boot_id=self.boot_id),
            )
        if self.siderolink_host:  # a machine Omni manages: connected to it over SideroLink
            r.put(
                "config",
                "SiderolinkStatuses.siderolink.talos.dev",
                "siderolink-status",
                {
                    "host": self.siderolink_host,
                    "connected": True,
                    "linkName": "siderolink",
                    "grpcTunnel": False,
                },
            )
        r.put(
            "network",
            "HostnameStatuses.net.talos.dev",
            "hostname",
            {"hostname": self.hostname, "domainname": ""},
            net.HostnameStatusSpec(hostname=self.hostname),
        )
        r.put(
            "runtime", "VolumeStatuses.block.talos.dev", "EPHEMERAL",
            {"phase": "ready", "location": "/dev/sda6", "size": 100 * 1024**3, "prettySize": "100 GB"},
        )  # fmt: skip
        if self.config is None:
            return
        cfg = self.config
        r.put(
            "config",
            "MachineConfigs.config.talos.dev",
            "v1alpha1",
            cfg.raw.decode(),
            rc.MachineConfigSpec(yaml_marshalled=cfg.raw),
        )
        r.put(
            "k8s",
            "Nodenames.kubernetes.talos.dev",
            "nodename",
            {"nodename": self.hostname, "hostnameVersion": "1", "skipNodeRegistration": False},
            k8s.NodenameSpec(nodename=self.hostname, hostname_version="1"),
        )
        kubelet_image = cfg.kubelet_image or f"ghcr.io/siderolabs/kubelet:{self.cluster.kubernetes_version}"
        r.put(
            "k8s",
            "KubeletSpecs.kubernetes.talos.dev",
            "kubelet",
            {"image": kubelet_image, "args": [], "expectedNodename": self.hostname},
            k8s.KubeletSpecSpec(image=kubelet_image, expected_nodename=self.hostname),
        )
        r.put(
            "cluster",
            "Infos.cluster.talos.dev",
            "current",
            {"clusterId": self.cluster.cluster_id, "clusterName": cfg.cluster_name or self.cluster.name},
            cl.InfoSpec(
                cluster_id=self.cluster.cluster_id, cluster_name=cfg.cluster_name or self.cluster.name
            ),
        )
        for other in self.cluster.nodes:
            if other.maintenance:
                continue
            import ipaddress

            mtype = 2 if other.control_plane else 3
            spec = {
                "nodeId": other.member_id,
                "addresses": [other.ip],
                "hostname": other.hostname,
                "machineType": other.role,
                "operatingSystem": f"Talos ({other.version})",
            }
            proto = cl.MemberSpec(
                node_id=other.member_id,
                addresses=[_netip(ipaddress.ip_address(other.ip).packed)],
                hostname=other.hostname,
                machine_type=mtype,
                operating_system=f"Talos ({other.version})",
            )
            if other.control_plane:
                spec["controlPlane"] = {"apiServerPort": 6443}
                proto.control_plane.api_server_port = 6443
            r.put("cluster", "Members.cluster.talos.dev", other.member_id, spec, proto)
        if self.control_plane:
            controlplane.publish_configs(self)
            self.cluster.publish_static_pods(self)

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, *, immediate: bool = True) -> None:
        """First power-on: straight to maintenance or to a running configured system."""
        self._boot(delays=not immediate, actor="")

    def _boot(self, *, delays: bool, actor: str) -> None:
        with self.lock:
            self.boot_id = str(uuid.uuid4())
            if self.installed_version is not None:
                if not self.faults.keeps_old_version:
                    self.version = self.installed_version
                self.installed_version = None
            self.events = EventLog()
            self.resources = ResourceStore(unserved=self._unserved_types())
            self.services = {}
            self.reboot_pending = False
            self.waiting_for_reboot = None
            self.busy = "boot"
            if self.staged_config is not None and self.config is not None:
                self.config = configview.parse(self.staged_config)
                self._adopt_config(self.config)
                self.staged_config = None
        self.dmesg.append(f"[    0.000000] Linux version 6.12 (talos {self.version}) boot_id={self.boot_id}")
        self._listen()
        self.record("talos.boot", boot_id=self.boot_id, version=self.version, maintenance=self.maintenance)
        if self.maintenance:
            self.set_stage(Stage.MAINTENANCE, ready=False)
            self._publish_static_resources()
            self.busy = None
            self.notify("maintenance")
            return
        self.set_stage(Stage.BOOTING, ready=False)
        self.events.publish(m.SequenceEvent(sequence="boot", action=m.SequenceEvent.START))
        self._publish_static_resources()
        for sid in BASE_SERVICES + (CP_SERVICES if self.control_plane else ()):
            if sid not in ("etcd", "cri"):
                self.set_service(sid, "Running", True, "Health check successful")
        self.startup.begin(delays=delays)
        if self.control_plane:
            self.cluster.etcd_node_booted(self)
        if delays:
            self._sleep(self.timings.boot)
        self.set_service("kubelet", "Running", True, "Health check successful")
        self.events.publish(m.SequenceEvent(sequence="boot", action=m.SequenceEvent.STOP))
        self.set_stage(Stage.RUNNING, ready=self._services_healthy())
        self.busy = None
        self.notify("up")

    def _services_healthy(self) -> bool:
        return all(s.healthy for s in self.services.values())

    def refresh_ready(self) -> None:
        """Recompute readiness after a service changed health (etcd joined, fault set…)."""
        if self.stage == Stage.RUNNING:
            ready = self._services_healthy()
            if ready != self.ready or self._unmet_conditions():
                self.set_stage(Stage.RUNNING, ready=ready)

    def _sleep(self, seconds: float) -> None:
        self.cluster.stopping.wait(seconds)

    def _go_down(self, stage: Stage, actor: str) -> None:
        """Stop services and disappear from the network (kubelet stops first, like Talos)."""
        self.set_stage(stage, ready=False, actor=actor)
        self.set_service("kubelet", "Finished", False, "Service finished successfully", actor)
        self.notify("down")
        if self.control_plane:
            self.cluster.etcd.set_up(self.hostname, False)
        self._unlisten()
        self.events.reset()
        self.resources.close()
        self.record("talos.down", boot_id=self.boot_id, stage=stage.text)

    def _hold_while(self, fault: str) -> None:
        """Stay at this point of a sequence while ``fault`` is set (cleared, or the world stops)."""
        with self._fault_changed:
            while getattr(self.faults, fault) and not self.cluster.stopping.is_set():
                self._fault_changed.wait(0.2)

    def _stay_down(self, seconds: float) -> None:
        """Wait out a reboot; a ``never_returns`` fault holds the node down until cleared."""
        self._sleep(seconds)
        with self._fault_changed:
            while self.faults.never_returns and not self.cluster.stopping.is_set():
                self._fault_changed.wait(0.2)

    def run_sequence(
        self,
        sequence: str,
        phases: list[tuple[str, list[str]]],
        actor: str,
        *,
        stage: Stage,
        then: Callable[[], None] | None = None,
        power_off: bool = False,
    ) -> None:
        """Publish a sequence's events, go down, come back (unless ``power_off``)."""

        def run() -> None:
            try:
                self.events.publish(m.SequenceEvent(sequence=sequence, action=m.SequenceEvent.START), actor)
                self.set_stage(stage, ready=False, actor=actor)
                for phase, tasks in phases:
                    self.events.publish(m.PhaseEvent(phase=phase, action=m.PhaseEvent.START), actor)
                    if phase == "drain":
                        self._hold_while("drain_stuck")
                    for task in tasks:
                        self.events.publish(m.TaskEvent(task=task, action=m.TaskEvent.START), actor)
                        self.events.publish(m.TaskEvent(task=task, action=m.TaskEvent.STOP), actor)
                    self.events.publish(m.PhaseEvent(phase=phase, action=m.PhaseEvent.STOP), actor)
                if then is not None:
                    then()
                self._sleep(self.timings.shutdown)
                self._go_down(Stage.REBOOTING if not power_off else Stage.SHUTTING_DOWN, actor)
                if power_off:
                    self.busy = None
                    self.record("talos.off")
                    return
                self._stay_down(self.timings.reboot)
                if self.cluster.stopping.is_set():
                    return
                self._boot(delays=True, actor="")
            except Exception as exc:  # a bug in the simulator: make it visible in the record
                self.record("sim.error", where=f"sequence {sequence}", error=repr(exc))
                raise

        self.busy = sequence
        threading.Thread(target=run, name=f"sim-{self.hostname}-{sequence}", daemon=True).start()

    # ---- faults ---------------------------------------------------------------------------------

    def set_faults(self, **changes: bool) -> None:
        unknown = set(changes) - set(NodeFaults().__dict__)
        if unknown:
            raise ValueError(f"unknown node faults {sorted(unknown)}; known: {sorted(NodeFaults().__dict__)}")
        with self._fault_changed:
            for k, v in changes.items():
                setattr(self.faults, k, bool(v))
            self._fault_changed.notify_all()
        self.record("talos.fault", faults=self.faults.as_dict())
        if "time_unsynced" in changes or "cri_stalled" in changes:
            self.startup.fault_changed()
        if "vanished" in changes:
            if self.faults.vanished:
                self._vanish()
            else:
                self._reappear()
        if "unreachable" in changes:
            if self.faults.unreachable and self.reachable:
                self._unlisten()
            elif (
                not self.faults.unreachable
                and not self.reachable
                and self.stage not in (Stage.REBOOTING, Stage.SHUTTING_DOWN)
            ):
                self._listen()
        if "etcd_unhealthy" in changes and self.control_plane:
            member = self.cluster.etcd.by_hostname(self.hostname)
            if member is not None:
                member.fault_unhealthy = self.faults.etcd_unhealthy
                if member.fault_unhealthy and self.cluster.etcd.leader == member.id:
                    self.cluster.etcd.forfeit(self.hostname)
            self.cluster.refresh_etcd_services()

    def _vanish(self) -> None:
        """Power loss or a partition: the machine stops answering, but no connection is
        closed — open streams go quiet, new connections are never answered, and calls
        proxied to it through another node hang until their callers give up. Its etcd
        member and its Kubernetes Node lose it as they would."""
        if self._front is not None:
            self._front.hold()
        self.record("talos.vanished", stage=self.stage.text)
        if self.control_plane and self.cluster.etcd.by_hostname(self.hostname) is not None:
            self.cluster.etcd.set_up(self.hostname, False)
            self.cluster.refresh_etcd_services()
        if self.stage == Stage.RUNNING:
            self.notify("down")

    def _reappear(self) -> None:
        """The partition heals (or power returns to the same boot): everything flows again."""
        if self._front is not None:
            self._front.release()
        self.record("talos.reappeared", stage=self.stage.text)
        if self.stage != Stage.RUNNING:
            return  # it went down meanwhile: its boot brings it back
        if self.control_plane and self.cluster.etcd.by_hostname(self.hostname) is not None:
            self.cluster.etcd.set_up(self.hostname, True)
            self.cluster.refresh_etcd_services()
        self.notify("up")

    def hold_while_vanished(self, alive: Callable[[], bool]) -> bool:
        """Block a call proxied to this node while it is vanished; True when it is back
        and ``alive()`` still holds (the caller has not given up)."""
        with self._fault_changed:
            while self.faults.vanished and alive() and not self.cluster.stopping.is_set():
                self._fault_changed.wait(0.1)
        return not self.faults.vanished and alive()

    def manage_by_omni(self, host: str | None) -> None:
        """Connect the machine to Omni over SideroLink (``host``), or disconnect it (None):
        its ``SiderolinkStatuses`` resource appears or goes, as Talos publishes it."""
        self.siderolink_host = host
        if host is None:
            self.resources.delete("config", "SiderolinkStatuses.siderolink.talos.dev", "siderolink-status")
        else:
            self._publish_static_resources()
        self.record("talos.omni", host=host)

    def replace_hardware(self, version: str | None = None) -> None:
        """The machine at this address is swapped for a new one that boots the installer ISO
        into maintenance mode: no config, no faults, a new identity. What the old machine
        was (an etcd member, a Node) stays in the cluster until someone removes it."""
        self._unlisten()
        self.events.reset()
        self.resources.close()
        with self._fault_changed:
            self.faults = NodeFaults()
            self._fault_changed.notify_all()
        self.config = None
        self.staged_config = None
        self.busy = None
        self.version = version or self.cluster.talos_version
        self.member_id = uuid.uuid4().hex[:22]
        self.record("talos.hardware_replaced", version=self.version)
        self._boot(delays=False, actor="")

    def stop(self) -> None:
        self._unlisten()
        self.events.reset()
        self.resources.close()


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _netip(packed: bytes):
    from taltasks.talos.api import common_pb2

    return common_pb2.NetIP(ip=packed)
