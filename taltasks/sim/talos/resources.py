"""A node's COSI resource state: get, list, watch, as ``cosi.resource.State`` serves it.

Resources carry both spec encodings (``yaml_spec`` and ``proto_spec``), a decimal version
that increases on every change, phase ``running``, and timestamps (talos-api.md §7.3).
Watchers receive CREATED/UPDATED/DESTROYED events; a reboot ends them. The ``meta``
namespace describes every type (aliases, sensitivity) so clients can resolve short names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from google.protobuf.message import Message

from taltasks.sim.talos.events import StreamClosed


@dataclass(frozen=True)
class ResourceType:
    """What a COSI type is called and where it lives (one row of talos-api.md §7.4)."""

    type: str
    namespace: str
    aliases: tuple[str, ...] = ()
    sensitive: bool = False
    columns: tuple[tuple[str, str], ...] = ()

    @property
    def display(self) -> str:
        plural = self.type.split(".", 1)[0]
        if plural.endswith("ses"):  # Statuses → Status, Addresses → Address
            return plural[:-2]
        if plural.endswith("ies"):
            return plural[:-3] + "y"
        return plural[:-1] if plural.endswith("s") else plural

    def all_aliases(self) -> list[str]:
        """The automatic aliases Talos derives plus the explicit ones (talos-api.md §7.4)."""
        plural, _, suffix = self.type.partition(".")
        out = [self.display.lower(), plural.lower()]
        parts = suffix.split(".")
        for i in range(1, len(parts)):
            out.append(f"{plural.lower()}.{'.'.join(parts[:i])}")
        capitals = "".join(c for c in plural if c.isupper())
        if len(capitals) >= 2:
            short = capitals.lower()
            out.append(short)
            if not short.endswith("s"):
                out.append(short + "s")
        out += [a.lower() for a in self.aliases]
        return list(dict.fromkeys(out))


CATALOGUE: tuple[ResourceType, ...] = (
    ResourceType(
        "MachineStatuses.runtime.talos.dev",
        "runtime",
        columns=(("Stage", "{.stage}"), ("Ready", "{.status.ready}")),
    ),
    ResourceType("Versions.runtime.talos.dev", "runtime", columns=(("Version", "{.version}"),)),
    ResourceType("BootIDs.runtime.talos.dev", "runtime", columns=(("Boot ID", "{.bootID}"),)),  # 1.14+
    ResourceType(
        "SiderolinkStatuses.siderolink.talos.dev",
        "config",
        columns=(("Host", "{.host}"), ("Connected", "{.connected}")),
    ),
    ResourceType(
        "Services.v1alpha1.talos.dev",
        "runtime",
        ("svc",),
        columns=(("Running", "{.running}"), ("Healthy", "{.healthy}")),
    ),
    ResourceType("Diagnostics.runtime.talos.dev", "runtime"),
    ResourceType(
        "VolumeStatuses.block.talos.dev",
        "runtime",
        columns=(("Phase", "{.phase}"), ("Size", "{.prettySize}")),
    ),
    ResourceType("MachineConfigs.config.talos.dev", "config", sensitive=True),
    ResourceType(
        "Members.cluster.talos.dev",
        "cluster",
        columns=(
            ("Hostname", "{.hostname}"),
            ("Machine Type", "{.machineType}"),
            ("Addresses", "{.addresses}"),
        ),
    ),
    ResourceType("Infos.cluster.talos.dev", "cluster", ("clusterinfo",)),
    ResourceType("Nodenames.kubernetes.talos.dev", "k8s", columns=(("Nodename", "{.nodename}"),)),
    ResourceType("KubeletSpecs.kubernetes.talos.dev", "k8s", columns=(("Image", "{.image}"),)),
    ResourceType(
        "StaticPodStatuses.kubernetes.talos.dev",
        "k8s",
        ("podstatus",),
        columns=(("Ready", '{.conditions[?(@.type=="Ready")].status}'),),
    ),
    ResourceType("StaticPods.kubernetes.talos.dev", "k8s"),
    ResourceType("APIServerConfigs.kubernetes.talos.dev", "controlplane", columns=(("Image", "{.image}"),)),
    ResourceType(
        "ControllerManagerConfigs.kubernetes.talos.dev", "controlplane", columns=(("Image", "{.image}"),)
    ),
    ResourceType("SchedulerConfigs.kubernetes.talos.dev", "controlplane", columns=(("Image", "{.image}"),)),
    ResourceType("Manifests.kubernetes.talos.dev", "controlplane"),
    ResourceType(
        "EtcdMembers.etcd.talos.dev", "etcd", ("etcdmember",), columns=(("Member ID", "{.memberID}"),)
    ),
    ResourceType("HostnameStatuses.net.talos.dev", "network", columns=(("Hostname", "{.hostname}"),)),
    ResourceType("TimeStatuses.v1alpha1.talos.dev", "runtime", columns=(("Synced", "{.synced}"),)),
)
META_NAMESPACE = "meta"
RD_TYPE = "ResourceDefinitions.meta.cosi.dev"
NS_TYPE = "Namespaces.meta.cosi.dev"
NAMESPACES = (
    "runtime",
    "config",
    "cluster",
    "k8s",
    "controlplane",
    "etcd",
    "network",
    "secrets",
    META_NAMESPACE,
)
BY_TYPE = {t.type: t for t in CATALOGUE}
BOOT_ID_TYPE = "BootIDs.runtime.talos.dev"
SIDEROLINK_STATUS_TYPE = "SiderolinkStatuses.siderolink.talos.dev"


@dataclass
class Resource:
    namespace: str
    type: str
    id: str
    spec: Any  # plain data rendered into yaml_spec; a str for MachineConfig
    proto: bytes = b""
    version: int = 1
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    labels: dict[str, str] = field(default_factory=dict)
    owner: str = ""

    @property
    def yaml_spec(self) -> str:
        if isinstance(self.spec, str):
            return yaml.safe_dump(self.spec, default_style="|")
        return yaml.safe_dump(self.spec, sort_keys=False)


@dataclass(frozen=True)
class Change:
    kind: str  # CREATED | UPDATED | DESTROYED
    resource: Resource
    old: Resource | None = None


class ResourceStore:
    """All resources of one node boot. Thread-safe; watchers are woken on every change."""

    def __init__(self, *, unserved: frozenset[str] = frozenset()) -> None:
        self.unserved = unserved  # types of the catalogue this node's Talos version lacks
        self._items: dict[tuple[str, str, str], Resource] = {}
        self._log: list[tuple[int, Change]] = []
        self._seq = 0
        self._generation = 0
        self._cond = threading.Condition()
        self._seed_meta()

    def _seed_meta(self) -> None:
        with self._cond:
            self._seed_meta_locked()

    def _seed_meta_locked(self) -> None:
        from taltasks.talos.api import cosi_meta_pb2 as meta

        for rt in CATALOGUE:
            if rt.type in self.unserved:
                continue
            spec = {
                "type": rt.type,
                "displayType": rt.display,
                "defaultNamespace": rt.namespace,
                "aliases": list(rt.aliases),
                "allAliases": rt.all_aliases(),
                "printColumns": [{"name": n, "jsonPath": p} for n, p in rt.columns],
                "sensitivity": "sensitive" if rt.sensitive else "",
            }
            proto = meta.ResourceDefinitionSpec(
                resource_type=rt.type,
                display_type=rt.display,
                default_namespace=rt.namespace,
                aliases=list(rt.aliases),
                all_aliases=rt.all_aliases(),
                print_columns=[
                    meta.ResourceDefinitionSpec.PrintColumn(name=n, json_path=p) for n, p in rt.columns
                ],
                sensitivity=1 if rt.sensitive else 0,
            )
            self._put(META_NAMESPACE, RD_TYPE, rt.type.lower(), spec, proto.SerializeToString())
        for ns in NAMESPACES:
            self._put(
                META_NAMESPACE,
                NS_TYPE,
                ns,
                {"description": f"{ns} resources"},
                meta.NamespaceSpec(description=f"{ns} resources").SerializeToString(),
            )

    # ---- writes (from the simulated node) ----------------------------------------------

    def put(
        self,
        namespace: str,
        type_: str,
        id_: str,
        spec: Any,
        proto: Message | bytes | None = None,
        *,
        labels: dict[str, str] | None = None,
    ) -> Resource:
        """Create or update; an update with an identical spec is a no-op (no version bump)."""
        raw = proto.SerializeToString() if isinstance(proto, Message) else (proto or b"")
        with self._cond:
            return self._put(namespace, type_, id_, spec, raw, labels or {})

    def _put(
        self,
        namespace: str,
        type_: str,
        id_: str,
        spec: Any,
        raw: bytes,
        labels: dict[str, str] | None = None,
    ) -> Resource:
        key = (namespace, type_, id_)
        old = self._items.get(key)
        if old is not None and old.spec == spec and old.proto == raw and old.labels == (labels or {}):
            return old
        now = time.time()
        res = Resource(
            namespace,
            type_,
            id_,
            spec,
            raw,
            (old.version + 1) if old else 1,
            old.created if old else now,
            now,
            labels or {},
        )
        self._items[key] = res
        self._emit(Change("UPDATED" if old else "CREATED", res, old))
        return res

    def delete(self, namespace: str, type_: str, id_: str) -> None:
        with self._cond:
            old = self._items.pop((namespace, type_, id_), None)
            if old is not None:
                self._emit(Change("DESTROYED", old))

    def _emit(self, change: Change) -> None:
        self._seq += 1
        self._log.append((self._seq, change))
        if len(self._log) > 5000:
            del self._log[:1000]
        self._cond.notify_all()

    def close(self) -> None:
        """The node went down: every watch ends."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # ---- reads ---------------------------------------------------------------------------

    def get(self, namespace: str, type_: str, id_: str) -> Resource | None:
        with self._cond:
            return self._items.get((namespace, type_, id_))

    def list(self, namespace: str, type_: str) -> list[Resource]:
        with self._cond:
            return sorted(
                (r for (ns, t, _), r in self._items.items() if ns == namespace and t == type_),
                key=lambda r: r.id,
            )

    def known(self, namespace: str, type_: str) -> bool:
        if namespace == META_NAMESPACE:
            return type_ in (RD_TYPE, NS_TYPE)
        rt = BY_TYPE.get(type_)
        return rt is not None and type_ not in self.unserved and namespace in NAMESPACES

    def watch(
        self,
        namespace: str,
        type_: str,
        id_: str | None,
        *,
        bootstrap: bool,
        is_active: Callable[[], bool],
    ) -> Iterator[tuple[str, Resource | None, Resource | None]]:
        """Yield ``(event_type, resource, old)``. For one resource, the first event is its
        current state (CREATED, or DESTROYED as a tombstone when absent). For a kind with
        ``bootstrap``, existing resources come first as CREATED, then ``BOOTSTRAPPED``.
        The starting state is taken now, so changes after this call are never missed."""
        with self._cond:
            generation = self._generation
            seq = self._seq
            if id_ is not None:
                current = self._items.get((namespace, type_, id_))
                first: list[tuple[str, Resource | None, Resource | None]] = [
                    ("CREATED", current, None)
                    if current
                    else ("DESTROYED", Resource(namespace, type_, id_, {}, version=0), None)
                ]
            elif bootstrap:
                first = [("CREATED", r, None) for r in self.list(namespace, type_)]
                first.append(("BOOTSTRAPPED", None, None))
            else:
                first = []
        return self._follow(namespace, type_, id_, first, generation, seq, is_active)

    def _follow(
        self,
        namespace: str,
        type_: str,
        id_: str | None,
        first: list[tuple[str, Resource | None, Resource | None]],
        generation: int,
        seq: int,
        is_active: Callable[[], bool],
    ) -> Iterator[tuple[str, Resource | None, Resource | None]]:
        yield from first
        while True:
            with self._cond:
                while True:
                    if self._generation != generation:
                        raise StreamClosed
                    pending = [c for s, c in self._log if s > seq]
                    if pending or not is_active():
                        break
                    self._cond.wait(0.25)
                seq = self._seq
            if not pending:
                return
            for c in pending:
                r = c.resource
                if r.namespace != namespace or r.type != type_ or (id_ is not None and r.id != id_):
                    continue
                yield c.kind, r, c.old
