"""Which resources the emulator serves, and how each behaves.

A :class:`ResourceType` is what discovery advertises (group, version, plural, kind, scope,
verbs, short names) plus the behaviour switches the store needs: whether the resource has a
``/status`` subresource (then the main endpoint ignores ``.status`` and ``/status`` changes
nothing else), whether ``metadata.generation`` is kept, whether strategic-merge patches are
allowed (built-in kinds only, as on the real server), which field selectors work, and what
a delete answers.

Built-in kinds are listed here. Custom resources are registered the way the real server
does it: by creating a ``CustomResourceDefinition`` object (see :mod:`.crds`), so a CNI or
operator install that brings its own CRDs works too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

VERBS_ALL = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
BASE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class Column:
    """A printer column (kubectl's Table output): ``json_path`` as in CRD
    ``additionalPrinterColumns``; built-in kinds compute cells in :mod:`.tables`."""

    name: str
    type: str = "string"
    json_path: str = ""
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    generation: bool = False
    builtin: bool = True
    return_deleted: bool = False
    keep_status_on_create: bool = False
    field_labels: frozenset[str] = BASE_FIELDS
    subresources: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    verbs: tuple[str, ...] = VERBS_ALL
    storage_version: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: one bucket per group and plural whatever version is asked for."""
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """``pods``, ``deployments.apps``, ``cephclusters.ceph.rook.io`` — as in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    def all_subresources(self) -> tuple[str, ...]:
        return (("status",) if self.status else ()) + self.subresources


def _core(kind: str, plural: str, namespaced: bool = True, **kw) -> ResourceType:
    return ResourceType("", "v1", kind, plural, namespaced, **kw)


def _apps(kind: str, plural: str, short: str, *, scale: bool = False) -> ResourceType:
    return ResourceType(
        "apps",
        "v1",
        kind,
        plural,
        True,
        short_names=(short,),
        categories=("all",),
        status=True,
        generation=True,
        subresources=("scale",) if scale else (),
    )


POD_FIELDS = BASE_FIELDS | {
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
}

BUILTINS: tuple[ResourceType, ...] = (
    _core(
        "Namespace",
        "namespaces",
        False,
        short_names=("ns",),
        status=True,
        return_deleted=True,
        field_labels=BASE_FIELDS | {"status.phase"},
        subresources=("finalize",),
    ),
    _core(
        "Node",
        "nodes",
        False,
        short_names=("no",),
        status=True,
        keep_status_on_create=True,
        field_labels=BASE_FIELDS | {"spec.unschedulable"},
    ),
    _core(
        "Pod",
        "pods",
        short_names=("po",),
        categories=("all",),
        status=True,
        generation=True,
        return_deleted=True,
        field_labels=POD_FIELDS,
        subresources=("eviction", "log"),
    ),
    _core("Secret", "secrets", field_labels=BASE_FIELDS | {"type"}),
    _core("ConfigMap", "configmaps", short_names=("cm",)),
    _core(
        "Service",
        "services",
        short_names=("svc",),
        categories=("all",),
        status=True,
        return_deleted=True,
    ),
    _core("ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _core("Endpoints", "endpoints", short_names=("ep",), singular="endpoints"),
    _core(
        "Event",
        "events",
        short_names=("ev",),
        field_labels=BASE_FIELDS
        | {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        },
    ),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",), status=True),
    _core("PersistentVolume", "persistentvolumes", False, short_names=("pv",), status=True),
    _apps("Deployment", "deployments", "deploy", scale=True),
    _apps("DaemonSet", "daemonsets", "ds"),
    _apps("StatefulSet", "statefulsets", "sts", scale=True),
    _apps("ReplicaSet", "replicasets", "rs", scale=True),
    ResourceType(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        True,
        short_names=("pdb",),
        status=True,
        generation=True,
    ),
    ResourceType("batch", "v1", "Job", "jobs", True, categories=("all",), status=True, generation=True),
    ResourceType(
        "batch", "v1", "CronJob", "cronjobs", True, short_names=("cj",), status=True, generation=True
    ),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short_names=("sc",)),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
        generation=True,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        False,
        generation=True,
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        short_names=("crd", "crds"),
        status=True,
        generation=True,
    ),
)

# The order kube-apiserver lists its groups in (discovery order is what kubectl prefers).
GROUP_ORDER = (
    "",
    "apps",
    "events.k8s.io",
    "batch",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
)


@dataclass
class Registry:
    """Thread-safe lookup of served resources by (group, version, plural), kind or name."""

    _types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def builtin(cls) -> Registry:
        reg = cls()
        for rt in BUILTINS:
            reg.add(rt)
        return reg

    def add(self, rt: ResourceType) -> None:
        with self._lock:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove_group_plural(self, group: str, plural: str) -> None:
        with self._lock:
            for key in [k for k in self._types if k[0] == group and k[2] == plural]:
                del self._types[key]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def for_api_version(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rt in self._types.values():
                if rt.group == group and rt.version == version and rt.kind == kind:
                    return rt
        return None

    def resolve(self, name: str) -> ResourceType:
        """``pods``, ``po``, ``deployments.apps``, ``cephclusters.ceph.rook.io`` → the
        preferred served version. For in-process callers; a name without a dot is a core
        resource. KeyError if nothing matches."""
        plural, _, group = name.partition(".")
        for rt in self.all():
            if rt.group == group and plural in (rt.plural, rt.singular_name, *rt.short_names):
                return self.preferred(rt.group, rt.plural)
        raise KeyError(f"unknown resource {name!r}")

    def preferred(self, group: str, plural: str) -> ResourceType:
        versions = [rt for rt in self.all() if rt.group == group and rt.plural == plural]
        for rt in versions:
            if rt.storage_version in ("", rt.version):
                return rt
        return versions[0]

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, versions) in discovery order; the first version is the preferred one."""
        seen: dict[str, list[str]] = {}
        for rt in self.all():
            versions = seen.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        return sorted(seen.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))

    def in_group_version(self, group: str, version: str) -> Iterator[ResourceType]:
        for rt in sorted(self.all(), key=lambda r: r.plural):
            if rt.group == group and rt.version == version:
                yield rt

    def namespaced(self) -> Iterable[ResourceType]:
        return [rt for rt in self.all() if rt.namespaced]
