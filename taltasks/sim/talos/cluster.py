"""A set of simulated Talos nodes that form one cluster.

Owns what nodes share: the OS and Kubernetes CAs, the etcd cluster, the apid server with
its TLS fronts, the recorder, and hooks for the Kubernetes side (static pod status,
kubeconfig, lifecycle listeners). Nodes start either configured and running (etcd formed
by every control plane) or in maintenance mode, waiting for ``apply`` and ``bootstrap``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from taltasks.machineconfig import pki
from taltasks.sim import addresses
from taltasks.sim.record import Recorder
from taltasks.sim.talos import configview, controlplane, minconfig
from taltasks.sim.talos.apid import Apid
from taltasks.sim.talos.etcd import EtcdCluster
from taltasks.sim.talos.node import SimNode, Timings
from taltasks.talos import tlsbridge
from taltasks.talos.config import Context, TalosConfig


@dataclass
class NodeSpec:
    hostname: str
    ip: str
    control_plane: bool
    version: str | None = None
    config: bytes | None = None  # an explicit machine config; otherwise a minimal one is made
    zone: str | None = None
    omni: str | None = None  # the Omni (SideroLink) host managing this machine, if any


@dataclass
class ClusterSecrets:
    """The CAs a simulated cluster runs on (a subset of the Talos secrets bundle)."""

    os_ca: pki.KeyPair
    k8s_ca: pki.KeyPair

    @classmethod
    def generate(cls) -> ClusterSecrets:
        return cls(
            os_ca=pki.create_ca(organization="talos"),
            k8s_ca=pki.create_ca(organization="kubernetes", algorithm="ecdsa-p256"),
        )


@dataclass
class SimTalosCluster:
    name: str
    specs: list[NodeSpec]
    talos_version: str = "v1.11.5"
    kubernetes_version: str = "v1.34.3"
    timings: Timings = field(default_factory=Timings)
    recorder: Recorder = field(default_factory=Recorder)
    secrets: ClusterSecrets = field(default_factory=ClusterSecrets.generate)
    maintenance: bool = False
    etcd_db_size: int = 4 * 1024 * 1024
    snapshot_chunk: int = 256 * 1024
    api_endpoint: str | None = None  # https://host:6443 used in minimal configs

    def __post_init__(self) -> None:
        self.cluster_id = uuid.uuid4().hex
        self.etcd = EtcdCluster(db_size=self.etcd_db_size)
        self.identities: dict[str, tlsbridge.PeerIdentity] = {}  # by backend peer address
        self.stopping = threading.Event()
        self.nodes: list[SimNode] = []
        self.static_pod_publishers: list[Callable[[SimNode], None]] = []
        self.live_apply_hooks: list[
            Callable[[SimNode, configview.ConfigView, configview.ConfigView], None]
        ] = []
        self.live_apply_hooks.append(controlplane.on_live_apply)
        self.kubeconfig_provider: Callable[[SimNode], str] | None = None
        self.etcd_bootstrap_hooks: list[Callable[[SimNode], None]] = []
        self._apid: Apid | None = None
        # image references the simulated registries do not have (pulls fail NotFound)
        self.registry_missing: set[str] = set()
        for spec in self.specs:
            addresses.check_loopback(spec.ip)

    # ---- lookup --------------------------------------------------------------------------------

    def node(self, name_or_ip: str) -> SimNode:
        found = self.node_by_target(name_or_ip)
        if found is None:
            raise KeyError(f"no simulated node {name_or_ip!r}; nodes: {[n.hostname for n in self.nodes]}")
        return found

    def node_by_ip(self, ip: str) -> SimNode | None:
        return next((n for n in self.nodes if n.ip == ip), None)

    def node_by_target(self, target: str) -> SimNode | None:
        return next((n for n in self.nodes if target in (n.ip, n.hostname)), None)

    def registry_has(self, ref: str) -> bool:
        """Whether a pull of ``ref`` finds it: every well-formed reference except those in
        :attr:`registry_missing` (a test or scenario names the bad ones)."""
        return bool(ref) and ref not in self.registry_missing and not ref.startswith(("/", ":"))

    @property
    def control_planes(self) -> list[SimNode]:
        return [n for n in self.nodes if n.control_plane]

    @property
    def workers(self) -> list[SimNode]:
        return [n for n in self.nodes if not n.control_plane]

    # ---- start / stop ------------------------------------------------------------------------

    def start(self) -> SimTalosCluster:
        self._apid = Apid(self)
        self._apid.start()
        endpoint = self.api_endpoint or f"https://{self.specs[0].ip}:6443"
        for spec in self.specs:
            config = None
            if not self.maintenance:
                config = spec.config or minconfig.render(
                    cluster_name=self.name,
                    endpoint=endpoint,
                    hostname=spec.hostname,
                    ip=spec.ip,
                    control_plane=spec.control_plane,
                    version=spec.version or self.talos_version,
                    kubernetes_version=self.kubernetes_version,
                    os_ca=self.secrets.os_ca,
                    k8s_ca=self.secrets.k8s_ca,
                )
            node = SimNode(
                self,
                hostname=spec.hostname,
                ip=spec.ip,
                control_plane=spec.control_plane,
                version=spec.version or self.talos_version,
                config=config,
                timings=self.timings,
            )
            node.siderolink_host = spec.omni
            self.nodes.append(node)
        if not self.maintenance:
            # a running cluster: every control plane is an etcd member already
            cps = [n for n in self.nodes if n.control_plane]
            if cps:
                self.etcd.bootstrap(cps[0].hostname, cps[0].ip, cps[0].member_id)
                for n in cps[1:]:
                    self.etcd.join(n.hostname, n.ip, n.member_id)
        for n in self.nodes:
            n.start(immediate=True)
        self.recorder.record(
            "sim.talos_started", nodes=[n.hostname for n in self.nodes], maintenance=self.maintenance
        )
        return self

    def stop(self) -> None:
        self.stopping.set()
        for n in self.nodes:
            n.stop()
        if self._apid is not None:
            self._apid.stop()

    def make_front(self, node: SimNode, context) -> tlsbridge.TlsFront:
        from taltasks.sim.talos.apid import refuse_client_certificate

        assert self._apid is not None

        def verify(der: bytes) -> str | None:
            reason = refuse_client_certificate(der)
            if reason:
                self.recorder.record("talos.tls_refused", node=node.hostname, reason=reason)
            return reason

        return tlsbridge.TlsFront(
            node.ip,
            addresses.TALOS_PORT,
            context,
            ("127.0.0.1", self._apid.port),
            self.identities,
            verify_peer=verify,
        )

    # ---- PKI -----------------------------------------------------------------------------------

    def os_ca_for(self, node: SimNode) -> pki.KeyPair:
        """The CA that signs ``node``'s apid certificate: its config's CA when the config holds
        the key (control planes), else the cluster's (what trustd does for workers)."""
        cfg = node.config
        if cfg is not None and cfg.os_ca_crt and cfg.os_ca_key:
            return pki.KeyPair(cfg.os_ca_crt, cfg.os_ca_key)
        if cfg is not None and cfg.os_ca_crt and cfg.os_ca_crt != self.secrets.os_ca.crt:
            for other in self.nodes:
                oc = other.config
                if oc is not None and oc.os_ca_crt == cfg.os_ca_crt and oc.os_ca_key:
                    return pki.KeyPair(oc.os_ca_crt, oc.os_ca_key)
        return self.secrets.os_ca

    def talosconfig(
        self,
        *,
        roles: Iterable[str] = ("os:admin",),
        endpoints: list[str] | None = None,
        nodes: list[str] | None = None,
        context: str | None = None,
    ) -> TalosConfig:
        """A talosconfig for this cluster with a client certificate carrying ``roles``."""
        cli = pki.issue(self.secrets.os_ca, usage="client", organizations=list(roles))
        name = context or self.name
        ctx = Context(
            name=name,
            endpoints=endpoints if endpoints is not None else [n.ip for n in self.control_planes],
            nodes=nodes if nodes is not None else [],
            ca=self.secrets.os_ca.crt,
            crt=cli.crt,
            key=cli.key,
        )
        return TalosConfig(contexts={name: ctx}, current=name)

    # ---- etcd ----------------------------------------------------------------------------------

    def etcd_node_booted(self, node: SimNode) -> None:
        from taltasks.sim.talos.etcd import JoinConflict

        if self.etcd.bootstrapped:
            existing = self.etcd.by_hostname(node.hostname)
            try:
                member = self.etcd.join(node.hostname, node.ip, node.member_id)
            except JoinConflict as exc:
                node.etcd_join_pending = True  # the etcd service keeps retrying the join
                node.set_service("etcd", "Failed", False, f"failed to join etcd: {exc}")
                self.recorder.record("etcd.join_refused", node=node.hostname, reason=str(exc))
                return
            self.etcd.set_up(node.hostname, True)
            if existing is None:
                self.recorder.record("etcd.member_joined", node=node.hostname, member_id=f"{member.id:016x}")
        self.refresh_etcd_services()

    def bootstrap_etcd(self, node: SimNode) -> None:
        self.etcd.bootstrap(node.hostname, node.ip, node.member_id)
        self.recorder.record("etcd.bootstrapped", node=node.hostname)
        # control planes waiting for etcd (running or still booting) join now
        self.refresh_etcd_services()
        for hook in list(self.etcd_bootstrap_hooks):
            hook(node)

    def refresh_etcd_services(self) -> None:
        for n in self.control_planes:
            if n.maintenance or not n.reachable:
                continue
            member = self.etcd.by_hostname(n.hostname)
            waiting = (
                n.services.get("etcd") is None or n.services["etcd"].state == "Preparing"
            ) and self.etcd.bootstrapped
            if member is None and (waiting or n.etcd_join_pending):
                # the old member was removed: the retrying join now succeeds
                n.etcd_join_pending = False
                member = self.etcd.join(n.hostname, n.ip, n.member_id)
                self.recorder.record("etcd.member_joined", node=n.hostname, member_id=f"{member.id:016x}")
            if member is not None and member.machine and member.machine != n.member_id:
                n.set_service(
                    "etcd", "Failed", False, "failed to join etcd: the member belongs to another machine"
                )
                n.refresh_ready()
                continue
            if member is None:
                state = n.services.get("etcd")
                if state is not None and state.state == "Finished":
                    continue
                if not self.etcd.bootstrapped:
                    n.set_service("etcd", "Preparing", False, "Waiting for etcd to be bootstrapped")
                else:
                    n.set_service("etcd", "Failed", False, "etcd member was removed from the cluster")
            elif member.healthy:
                n.set_service("etcd", "Running", True, "Health check successful")
            else:
                n.set_service("etcd", "Running", False, "Health check failed: etcdserver: unhealthy cluster")
            self._publish_etcd_member(n, member)
            n.refresh_ready()

    def _publish_etcd_member(self, node: SimNode, member: Any) -> None:
        from taltasks.talos.api import definitions_etcd_pb2 as etcd_pb

        if member is None:
            node.resources.delete("etcd", "EtcdMembers.etcd.talos.dev", "local")
        else:
            mid = f"{member.id:016x}"
            node.resources.put(
                "etcd",
                "EtcdMembers.etcd.talos.dev",
                "local",
                {"memberID": mid},
                etcd_pb.MemberSpec(member_id=mid),
            )

    # ---- hooks for the Kubernetes side ------------------------------------------------------

    def apply_live(self, node: SimNode, new: configview.ConfigView) -> None:
        """Apply a config without a reboot: adopt it, republish resources, tell the hooks."""
        old = node.config
        node.config = new
        node._publish_static_resources()
        node.record("talos.config_applied", live=True)
        if old is not None:
            for hook in list(self.live_apply_hooks):
                hook(node, old, new)
        node.notify("config")

    def publish_static_pods(self, node: SimNode) -> None:
        for publisher in list(self.static_pod_publishers):
            publisher(node)

    def kubeconfig_for(self, node: SimNode) -> str:
        if self.kubeconfig_provider is not None:
            return self.kubeconfig_provider(node)
        return minconfig.kubeconfig(
            self.name, self.api_endpoint or f"https://{node.ip}:6443", self.secrets.k8s_ca
        )


def plan_nodes(
    subnet: str, control_planes: int, workers: int, *, cp_prefix: str = "cp-", worker_prefix: str = "worker-"
) -> list[NodeSpec]:
    """Node specs on the standard loopback address plan of ``subnet``."""
    specs = [
        NodeSpec(f"{cp_prefix}{i + 1}", addresses.control_plane_address(subnet, i), True)
        for i in range(control_planes)
    ]
    specs += [
        NodeSpec(f"{worker_prefix}{i + 1}", addresses.worker_address(subnet, i), False)
        for i in range(workers)
    ]
    return specs
