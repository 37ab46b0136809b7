"""The object store behind the emulator, and the in-process API simulator actors use.

Everything kube-apiserver does to an object on its way into etcd happens here, under one
lock, so HTTP clients and in-process actors (kubelet, controllers, operators, the Talos
node coupling) see the same semantics: server-set metadata (uid, resourceVersion,
generation, creationTimestamp), 409 on duplicates and stale resource versions, status
subresource isolation, finalizers and ``deletionTimestamp``, graceful pod deletion, owner
garbage collection, namespace termination and the eviction subresource's budget check.

Stored objects are never modified in place (copy on write), so a committed object can be
handed to watchers and serialised without copying. Every commit gets the next resource
version and goes into a bounded history; a watch from an older version than the history
holds gets the 410 ``Expired`` a compacted etcd would give.

In-process callers name resources as ``"pods"``, ``"deployments.apps"`` or
``"cephclusters.ceph.rook.io"`` (or pass a :class:`ResourceType`); reads return deep copies.
``subscribe(callback)`` delivers every change (also HTTP ones) on the subscriber's own
thread, so a callback may call the store freely.
"""

from __future__ import annotations

import copy
import logging
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from taltasks.sim.kube import crds, disruption, patch, selectors, validation
from taltasks.sim.kube.objects import is_deleting, meta, rfc3339
from taltasks.sim.kube.resources import Registry, ResourceType
from taltasks.sim.kube.status import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    gone,
    invalid,
    namespace_not_found,
    not_found,
    unsupported_media_type,
)

log = logging.getLogger(__name__)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class WatchEvent:
    """One committed change. ``object`` is the new state (the last state for DELETED);
    ``old`` the state before, so selector watches can turn a MODIFIED into ADDED/DELETED."""

    rv: int
    type: str
    resource: ResourceType
    object: dict[str, Any]
    old: dict[str, Any] | None = None

    @property
    def namespace(self) -> str:
        return meta(self.object).get("namespace", "")

    @property
    def name(self) -> str:
        return meta(self.object).get("name", "")


class Listener:
    """A queue of events for one watch or subscription, filled in commit order."""

    def __init__(self, accept: Callable[[WatchEvent], bool]) -> None:
        self.accept = accept
        self.queue: queue.SimpleQueue[WatchEvent | None] = queue.SimpleQueue()
        self.closed = False

    def offer(self, event: WatchEvent) -> None:
        if not self.closed and self.accept(event):
            self.queue.put(event)

    def get(self, timeout: float | None) -> WatchEvent | None:
        """The next event; None on close; raises queue.Empty after ``timeout``."""
        return self.queue.get(timeout=timeout)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put(None)


class Subscription:
    """Delivers events to a callback on a dedicated thread; ``close()`` stops it."""

    def __init__(self, store: Store, listener: Listener, callback: Callable[[WatchEvent], None], name: str):
        self._store = store
        self._listener = listener
        self._callback = callback
        self._thread = threading.Thread(target=self._run, name=f"kube-sub-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            event = self._listener.get(None)
            if event is None:
                return
            try:
                self._callback(event)
            except Exception as exc:  # a broken subscriber must not stop the others
                log.exception("subscriber failed on %s %s", event.type, event.name)
                self._store.errors.append(exc)

    def close(self) -> None:
        self._store._remove_listener(self._listener)
        self._listener.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)


ResourceRef = str | ResourceType


class Store:
    """Objects of every served resource, with kube-apiserver write semantics."""

    def __init__(self, registry: Registry | None = None, *, history_limit: int = 5000) -> None:
        self.registry = registry or Registry.builtin()
        self._lock = threading.RLock()
        self._buckets: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._uids: dict[str, tuple[ResourceType, str, str]] = {}
        self._rv = 0
        self._history: deque[WatchEvent] = deque()
        self._history_limit = history_limit
        self._floor = 0  # every event with rv > floor is still in the history
        self._listeners: list[Listener] = []
        self.errors: list[BaseException] = []
        self.recorder: Any = None  # a sim Recorder, set by whoever owns the simulated world
        for name in DEFAULT_NAMESPACES:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # ---- naming ---------------------------------------------------------------------------

    def resource(self, ref: ResourceRef) -> ResourceType:
        if isinstance(ref, ResourceType):
            return ref
        try:
            return self.registry.resolve(ref)
        except KeyError:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({ref})"
            ) from None

    def _storage(self, rt: ResourceType) -> ResourceType:
        return self.registry.preferred(rt.group, rt.plural)

    def _bucket(self, rt: ResourceType) -> dict[tuple[str, str], dict[str, Any]]:
        return self._buckets.setdefault(rt.key, {})

    @staticmethod
    def _ns(rt: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rt.namespaced else ""

    @property
    def resource_version(self) -> int:
        return self._rv

    # ---- reads ----------------------------------------------------------------------------

    def _current(self, rt: ResourceType, name: str, namespace: str | None) -> dict[str, Any]:
        obj = self._bucket(rt).get((self._ns(rt, namespace), name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def get(self, resource: ResourceRef, name: str, namespace: str | None = None) -> dict[str, Any]:
        rt = self.resource(resource)
        with self._lock:
            return copy.deepcopy(self._current(rt, name, namespace))

    def try_get(
        self, resource: ResourceRef, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            return self.get(resource, name, namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def get_raw(self, rt: ResourceType, name: str, namespace: str | None) -> dict[str, Any]:
        """The committed object itself (no copy): for serialisers that only read it."""
        with self._lock:
            return self._current(rt, name, namespace)

    def list_raw(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        accept: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Committed objects (no copies), sorted like etcd keys, and the list's version."""
        with self._lock:
            bucket = self._bucket(rt)
            items = [
                obj
                for (ns, _), obj in sorted(bucket.items())
                if (not namespace or ns == namespace) and (accept is None or accept(obj))
            ]
            return items, self._rv

    def list(
        self,
        resource: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        rt = self.resource(resource)
        accept = selectors.compile_filter(label_selector, field_selector, rt.field_labels)
        items, _ = self.list_raw(rt, namespace, lambda o: accept(o) and (where is None or where(o)))
        return copy.deepcopy(items)

    # ---- commit ---------------------------------------------------------------------------

    def _commit(
        self, rt: ResourceType, obj: dict[str, Any], type_: str, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        m = obj["metadata"]
        key = (m.get("namespace", ""), m["name"])
        if type_ == "DELETED":
            self._bucket(rt).pop(key, None)
            self._uids.pop(m.get("uid", ""), None)
        else:
            self._bucket(rt)[key] = obj
            self._uids[m["uid"]] = (rt, key[0], key[1])
        event = WatchEvent(self._rv, type_, rt, obj, old)
        self._history.append(event)
        if len(self._history) > self._history_limit:
            self._floor = self._history.popleft().rv
        for listener in self._listeners:
            listener.offer(event)
        return obj

    def compact(self) -> int:
        """Forget the watch history, as an etcd compaction does; returns the new floor."""
        with self._lock:
            self._history.clear()
            self._floor = self._rv
            return self._floor

    # ---- create ---------------------------------------------------------------------------

    def create(
        self,
        obj: dict[str, Any],
        *,
        namespace: str | None = None,
        resource: ResourceRef | None = None,
        dry_run: bool = False,
        managed_fields: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        if resource is not None:
            rt = self.resource(resource)
        else:
            found = self.registry.for_api_version(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
            if found is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'no matches for kind "{obj.get("kind")}" in version "{obj.get("apiVersion")}"',
                )
            rt = found
        storage = self._storage(rt)
        new = copy.deepcopy(obj)
        m = new.get("metadata")
        if not isinstance(m, dict):
            m = new["metadata"] = {}
        with self._lock:
            if rt.namespaced:
                ns = namespace or m.get("namespace") or "default"
                if m.get("namespace") and m["namespace"] != ns:
                    raise bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request"
                    )
                m["namespace"] = ns
                ns_obj = self._bucket(self.registry.resolve("namespaces")).get(("", ns))
                if ns_obj is None:
                    raise namespace_not_found(ns)
                if is_deleting(ns_obj):
                    raise ApiError(
                        403,
                        "Forbidden",
                        f'{rt.qualified} "{m.get("name") or m.get("generateName", "")}" is forbidden: unable to '
                        f"create new content in namespace {ns} because it is being terminated",
                        details={
                            "name": m.get("name", ""),
                            "kind": rt.plural,
                            "causes": [
                                {
                                    "reason": "NamespaceTerminating",
                                    "message": f"namespace {ns} is being terminated",
                                    "field": "metadata.namespace",
                                }
                            ],
                        },
                    )
            else:
                m.pop("namespace", None)
            bucket = self._bucket(rt)
            if not m.get("name"):
                if not m.get("generateName"):
                    raise invalid(
                        rt,
                        "",
                        [
                            (
                                "metadata.name",
                                "FieldValueRequired",
                                "Required value: name or generateName is required",
                            )
                        ],
                    )
                while True:
                    candidate = m["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
                    if (m.get("namespace", ""), candidate) not in bucket:
                        m["name"] = candidate
                        break
            if (m.get("namespace", ""), m["name"]) in bucket:
                raise already_exists(rt, m["name"])
            for server_field in (
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
                "managedFields",
            ):
                m.pop(server_field, None)
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = rfc3339()
            if rt.generation:
                m["generation"] = 1
            else:
                m.pop("generation", None)
            if managed_fields:
                m["managedFields"] = managed_fields
            new["apiVersion"], new["kind"] = storage.api_version, storage.kind
            if rt.status and not rt.keep_status_on_create:
                new.pop("status", None)
            _defaults(rt, new)
            validation.validate(rt, new)
            if rt.group == "apiextensions.k8s.io":
                crds.accept_definition(self.registry, new)
            if dry_run:
                return copy.deepcopy(new)
            self._commit(storage, new, "ADDED", None)
            return copy.deepcopy(new)

    # ---- update ---------------------------------------------------------------------------

    def _updated(
        self, rt: ResourceType, current: dict[str, Any], candidate: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        """``candidate`` as it would be stored over ``current``: server fields kept, the
        status subresource isolated, generation bumped when the spec changed."""
        cm = current["metadata"]
        if subresource == "status":
            new = copy.deepcopy(current)
            if "status" in candidate:
                new["status"] = copy.deepcopy(candidate["status"])
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(candidate)
            m = new.get("metadata")
            if not isinstance(m, dict):
                m = new["metadata"] = {}
            if m.get("name", cm["name"]) != cm["name"]:
                raise bad_request(
                    f"the name of the object ({m.get('name')}) does not match the name on the URL ({cm['name']})"
                )
            if rt.namespaced and m.get("namespace", cm.get("namespace")) != cm.get("namespace"):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            for server_field in (
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ):
                if server_field in cm:
                    m[server_field] = cm[server_field]
                else:
                    m.pop(server_field, None)
            if "managedFields" not in m and "managedFields" in cm:
                m["managedFields"] = cm["managedFields"]
            if rt.status:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        storage = self._storage(rt)
        new["apiVersion"], new["kind"] = storage.api_version, storage.kind
        new["metadata"]["resourceVersion"] = cm["resourceVersion"]
        if rt.generation and _spec_part(rt, new) != _spec_part(rt, current):
            new["metadata"]["generation"] = int(cm.get("generation", 1)) + 1
        validation.validate(rt, new, current)
        return new

    def _store_update(
        self, rt: ResourceType, current: dict[str, Any], new: dict[str, Any], dry_run: bool
    ) -> dict[str, Any]:
        if new == current:  # no-op writes do not reach etcd: same resourceVersion, no event
            return copy.deepcopy(current)
        if rt.group == "apiextensions.k8s.io":
            crds.accept_definition(self.registry, new)
        if dry_run:
            return copy.deepcopy(new)
        storage = self._storage(rt)
        nm = new["metadata"]
        if nm.get("deletionTimestamp") and not nm.get("finalizers") and meta(current).get("finalizers"):
            pending_grace = (
                rt.kind == "Pod" and not rt.group and int(nm.get("deletionGracePeriodSeconds") or 0) > 0
            )
            if not pending_grace:
                self._commit(storage, new, "DELETED", current)
                self._after_removal(storage, new, None)
                return copy.deepcopy(new)
        self._commit(storage, new, "MODIFIED", current)
        return copy.deepcopy(new)

    def replace(
        self,
        obj: dict[str, Any],
        *,
        resource: ResourceRef | None = None,
        name: str | None = None,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """PUT semantics: the whole object, with an optimistic-concurrency check when the
        body carries ``metadata.resourceVersion`` (required for custom resources)."""
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        m = obj.get("metadata") or {}
        rt = self.resource(resource) if resource is not None else self._rt_of(obj)
        name = name or m.get("name")
        if not name:
            raise bad_request("the name of the object is required")
        if m.get("name") and m["name"] != name:
            raise bad_request(
                f"the name of the object ({m['name']}) does not match the name on the URL ({name})"
            )
        namespace = namespace or m.get("namespace")
        with self._lock:
            current = self._current(rt, name, namespace)
            given = m.get("resourceVersion")
            if given:
                if given != current["metadata"]["resourceVersion"]:
                    raise conflict(rt, name)
            elif not rt.builtin:
                raise invalid(
                    rt,
                    name,
                    [
                        (
                            "metadata.resourceVersion",
                            "FieldValueInvalid",
                            "Invalid value: 0x0: must be specified for an update",
                        )
                    ],
                )
            new = self._updated(rt, current, obj, subresource)
            return self._store_update(rt, current, new, dry_run)

    def _rt_of(self, obj: dict[str, Any]) -> ResourceType:
        rt = self.registry.for_api_version(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if rt is None:
            raise ApiError(
                404,
                "NotFound",
                f'no matches for kind "{obj.get("kind")}" in version "{obj.get("apiVersion")}"',
            )
        return rt

    def patch(
        self,
        resource: ResourceRef,
        name: str,
        body: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        force: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Apply a patch; returns (object, created). ``patch_type`` is ``merge``, ``json``,
        ``strategic`` or ``apply`` (only apply can create)."""
        rt = self.resource(resource)
        if patch_type == "apply":
            return self._apply(rt, name, namespace, body, subresource, dry_run, field_manager, force)
        with self._lock:
            current = self._current(rt, name, namespace)
            if patch_type == "merge":
                patched = patch.merge_patch(current, patch.check_merge_patch_body(body))
            elif patch_type == "json":
                patched = patch.json_patch(current, body)
            elif patch_type == "strategic":
                if not rt.builtin:
                    raise unsupported_media_type(
                        "application/strategic-merge-patch+json",
                        [
                            "application/json-patch+json",
                            "application/merge-patch+json",
                            "application/apply-patch+yaml",
                        ],
                    )
                patched = patch.strategic_merge(current, body, rt.kind)
            else:
                raise bad_request(f"unknown patch type {patch_type!r}")
            if not isinstance(patched, dict):
                raise bad_request("the patch must leave an object")
            if (patched.get("metadata") or {}).get(
                "resourceVersion", current["metadata"]["resourceVersion"]
            ) != current["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            new = self._updated(rt, current, patched, subresource)
            return self._store_update(rt, current, new, dry_run), False

    def _apply(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        body: Any,
        subresource: str | None,
        dry_run: bool,
        field_manager: str | None,
        force: bool,
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply, simplified: fields are tracked per Apply manager (lists are
        atomic), conflicts with other Apply managers are 409 unless ``force``, fields a
        manager stops applying are removed when nobody else applies them."""
        if not field_manager:
            raise bad_request("PATCH /apply requires a fieldManager (query parameter fieldManager=...)")
        if not isinstance(body, dict):
            raise bad_request("an apply patch must be an object (YAML or JSON)")
        if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
            raise bad_request(
                f"the apiVersion/kind of the apply configuration ({body.get('apiVersion')}/{body.get('kind')}) "
                f"do not match the request ({rt.api_version}/{rt.kind})"
            )
        bm = body.get("metadata") or {}
        if bm.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({bm.get('name')}) does not match the name on the URL ({name})"
            )
        config_paths = {p for p in patch.leaf_paths(body) if p not in patch.IDENTITY}
        if subresource == "status":
            config_paths = {p for p in config_paths if p[0] == "status"}
        elif rt.status:
            config_paths = {p for p in config_paths if p[0] != "status"}
        config_paths = {p for p in config_paths if p[:2] != ("metadata", "resourceVersion")}
        entry = {
            "manager": field_manager,
            "operation": "Apply",
            "apiVersion": rt.api_version,
            "time": rfc3339(),
            "fieldsType": "FieldsV1",
            "fieldsV1": patch.fields_v1(config_paths),
        }
        if subresource:
            entry["subresource"] = subresource
        with self._lock:
            current = self._bucket(rt).get((self._ns(rt, namespace), name))
            if current is None:
                if subresource:
                    raise not_found(rt, name)
                created = self.create(
                    body, namespace=namespace, resource=rt, dry_run=dry_run, managed_fields=[entry]
                )
                return created, True
            owners: list[dict[str, Any]] = [dict(e) for e in meta(current).get("managedFields") or []]
            mine = next(
                (
                    e
                    for e in owners
                    if e.get("manager") == field_manager
                    and e.get("operation") == "Apply"
                    and e.get("subresource") == subresource
                ),
                None,
            )
            others = [e for e in owners if e is not mine]
            conflicts: list[tuple[str, str]] = []
            for other in others:
                if other.get("operation") != "Apply":
                    continue
                owned = patch.paths_from_fields_v1(other.get("fieldsV1") or {})
                keep = set(owned)
                for path in config_paths:
                    for theirs in owned:
                        if patch.overlaps(path, theirs) and patch.value_at(current, path) != patch.value_at(
                            body, path
                        ):
                            conflicts.append((other["manager"], "." + ".".join(path)))
                            keep.discard(theirs)
                if force:
                    other["fieldsV1"] = patch.fields_v1(keep)
            if conflicts and not force:
                causes = [
                    {"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": f}
                    for m, f in conflicts
                ]
                listing = "\n".join(f"- {m}: {f}" for m, f in conflicts)
                raise ApiError(
                    409,
                    "Conflict",
                    f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: conflict with {listing}",
                    details={"name": name, "kind": rt.plural, "group": rt.group, "causes": causes},
                )
            merged = (
                patch.strategic_merge(current, body, rt.kind)
                if rt.builtin
                else patch.merge_patch(current, body)
            )
            if mine is not None:
                others_paths = (
                    set().union(*(patch.paths_from_fields_v1(e.get("fieldsV1") or {}) for e in others))
                    if others
                    else set()
                )
                for gone_path in patch.paths_from_fields_v1(mine.get("fieldsV1") or {}) - config_paths:
                    if not any(patch.overlaps(gone_path, p) for p in others_paths):
                        patch.remove_path(merged, gone_path)
            merged.setdefault("metadata", {})["managedFields"] = [e for e in others if e.get("fieldsV1")] + [
                entry
            ]
            new = self._updated(rt, current, merged, subresource)
            new["metadata"]["managedFields"] = merged["metadata"]["managedFields"]
            if mine is not None and mine.get("time") and mine.get("fieldsV1") == entry["fieldsV1"]:
                # kube-apiserver ignores managedFields timestamps when deciding whether an
                # apply changed anything: a repeated, identical apply is a no-op
                now, entry["time"] = entry["time"], mine["time"]
                if new != current:
                    entry["time"] = now
            return self._store_update(rt, current, new, dry_run), False

    def mutate(
        self,
        resource: ResourceRef,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """In-process read-modify-write under the store lock (no conflicts possible):
        ``change`` edits a copy in place (or returns a replacement). Keep it quick."""
        rt = self.resource(resource)
        with self._lock:
            current = self._current(rt, name, namespace)
            work = copy.deepcopy(current)
            result = change(work)
            new = self._updated(rt, current, result if result is not None else work, subresource)
            return self._store_update(rt, current, new, False)

    def update_status(
        self, resource: ResourceRef, name: str, status: dict[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        """Replace ``.status`` (in-process, unconditional)."""

        def put(obj: dict[str, Any]) -> None:
            obj["status"] = copy.deepcopy(status)

        return self.mutate(resource, name, put, namespace=namespace, subresource="status")

    def upsert(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj``, or make the stored one match it (labels, annotations and
        everything but status); for simulator actors that own an object outright."""
        rt = self._rt_of(obj)
        m = obj.get("metadata") or {}
        with self._lock:
            current = self._bucket(rt).get((self._ns(rt, m.get("namespace")), m.get("name", "")))
            if current is None:
                return self.create(obj, resource=rt)
            candidate = copy.deepcopy(obj)
            cm = candidate.setdefault("metadata", {})
            for keep in ("finalizers", "ownerReferences", "managedFields"):
                if keep not in cm and keep in current["metadata"]:
                    cm[keep] = current["metadata"][keep]
            new = self._updated(rt, current, candidate, None)
            return self._store_update(rt, current, new, False)

    def bind(self, name: str, namespace: str, node: str) -> dict[str, Any]:
        """What ``pods/binding`` does for the scheduler: assign an unscheduled pod to a node
        (the only way ``spec.nodeName`` changes after creation); 409 if already bound."""
        pods = self.registry.resolve("pods")
        with self._lock:
            current = self._current(pods, name, namespace)
            bound = (current.get("spec") or {}).get("nodeName")
            if bound:
                raise conflict(pods, name, f'pod {name} is already assigned to node "{bound}"')
            new = copy.deepcopy(current)
            new["spec"]["nodeName"] = node
            status = new.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(),
                }
            )
            status["conditions"] = conditions
            self._commit(pods, new, "MODIFIED", current)
            return copy.deepcopy(new)

    # ---- delete ---------------------------------------------------------------------------

    def delete(
        self,
        resource: ResourceRef,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, Any] | None = None,
        propagation_policy: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete, or start deleting: returns (object, gone_now). Objects with finalizers
        get a ``deletionTimestamp``; scheduled pods are deleted gracefully (the kubelet
        finishes the job); namespaces terminate their content first."""
        rt = self.resource(resource)
        with self._lock:
            current = self._current(rt, name, namespace)
            for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted = (preconditions or {}).get(field)
                if wanted and wanted != current["metadata"].get(field):
                    raise conflict(
                        rt,
                        name,
                        f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {current['metadata'].get(field)}",
                    )
            if dry_run:
                return copy.deepcopy(current), False
            obj, gone_now = self._delete_locked(rt, current, grace_period_seconds, propagation_policy)
            return copy.deepcopy(obj), gone_now

    def _delete_locked(
        self, rt: ResourceType, current: dict[str, Any], grace: int | None, propagation: str | None
    ) -> tuple[dict[str, Any], bool]:
        rt = self._storage(rt)
        m = current["metadata"]
        now = time.time()
        if rt.kind == "Namespace" and not rt.group:
            return self._delete_namespace(rt, current)
        if m.get("finalizers"):
            if m.get("deletionTimestamp"):
                return current, False
            new = copy.deepcopy(current)
            new["metadata"]["deletionTimestamp"] = rfc3339(now)
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._commit(rt, new, "MODIFIED", current), False
        if rt.kind == "Pod" and not rt.group:
            spec, phase = current.get("spec") or {}, (current.get("status") or {}).get("phase")
            if grace is None:
                grace = int(spec.get("terminationGracePeriodSeconds", 30))
            if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
                grace = 0
            if grace > 0:
                pending = m.get("deletionGracePeriodSeconds")
                if pending is not None and int(pending) <= grace:
                    return current, False
                new = copy.deepcopy(current)
                new["metadata"]["deletionTimestamp"] = rfc3339(now + grace)
                new["metadata"]["deletionGracePeriodSeconds"] = grace
                return self._commit(rt, new, "MODIFIED", current), False
        final = copy.deepcopy(current)
        self._commit(rt, final, "DELETED", current)
        self._after_removal(rt, final, propagation)
        return final, True

    def _after_removal(self, rt: ResourceType, removed: dict[str, Any], propagation: str | None) -> None:
        uid = removed["metadata"].get("uid")
        if rt.group == "apiextensions.k8s.io":
            crds.forget_definition(self.registry, removed)
        # garbage collection of dependents
        for bucket_key, bucket in list(self._buckets.items()):
            for key, obj in list(bucket.items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                dep_rt = self.registry.preferred(*bucket_key)
                if propagation == "Orphan":
                    new = copy.deepcopy(obj)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    self._commit(dep_rt, new, "MODIFIED", obj)
                elif all(r.get("uid") not in self._uids for r in refs) and bucket.get(key) is obj:
                    self._delete_locked(dep_rt, obj, None, propagation)
        ns = removed["metadata"].get("namespace")
        if ns:
            self._finish_namespace(ns)

    def _delete_namespace(self, rt: ResourceType, current: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        name = current["metadata"]["name"]
        if not current["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(current)
            new["metadata"]["deletionTimestamp"] = rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            self._commit(rt, new, "MODIFIED", current)
            for res in self.registry.namespaced():
                if res is not self._storage(res):
                    continue
                for (ns, _), obj in list(self._bucket(res).items()):
                    if ns == name and not is_deleting(obj):
                        self._delete_locked(res, obj, None, None)
        self._finish_namespace(name)
        latest = self._bucket(rt).get(("", name))
        return (latest, False) if latest is not None else (current, True)

    def _finish_namespace(self, name: str) -> None:
        ns_rt = self.registry.resolve("namespaces")
        ns_obj = self._bucket(ns_rt).get(("", name))
        if ns_obj is None or not is_deleting(ns_obj):
            return
        for res in self.registry.namespaced():
            if any(ns == name for ns, _ in self._bucket(res)):
                return
        new = copy.deepcopy(ns_obj)
        new.setdefault("spec", {})["finalizers"] = [
            f for f in (new.get("spec") or {}).get("finalizers", []) if f != "kubernetes"
        ]
        if new["metadata"].get("finalizers") or new["spec"]["finalizers"]:
            if new != ns_obj:
                self._commit(ns_rt, new, "MODIFIED", ns_obj)
            return
        self._commit(ns_rt, new, "DELETED", ns_obj)

    def delete_collection(
        self,
        resource: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        rt = self.resource(resource)
        accept = selectors.compile_filter(label_selector, field_selector, rt.field_labels)
        with self._lock:
            items, _ = self.list_raw(rt, namespace, accept)
            out = []
            for obj in items:
                if dry_run:
                    out.append(copy.deepcopy(obj))
                    continue
                if (
                    self._bucket(rt).get((obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
                    is obj
                ):
                    out.append(copy.deepcopy(self._delete_locked(rt, obj, grace_period_seconds, None)[0]))
            return out

    # ---- eviction -------------------------------------------------------------------------

    def evict(
        self, name: str, namespace: str, eviction: dict[str, Any] | None = None, *, dry_run: bool = False
    ) -> None:
        """The ``pods/eviction`` subresource: delete the pod unless a PodDisruptionBudget
        forbids it (429 TooManyRequests naming the budget)."""
        eviction = eviction or {}
        if eviction.get("kind", "Eviction") != "Eviction" or eviction.get("apiVersion", "policy/v1") not in (
            "policy/v1",
            "policy/v1beta1",
        ):
            raise bad_request(
                f"the body must be a policy/v1 Eviction, not {eviction.get('apiVersion')}/{eviction.get('kind')}"
            )
        em = eviction.get("metadata") or {}
        if em.get("name", name) != name:
            raise bad_request("name in URL does not match name in Eviction object")
        if em.get("namespace", namespace) != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        options = eviction.get("deleteOptions") or {}
        pods = self.registry.resolve("pods")
        pdbs = self.registry.resolve("poddisruptionbudgets.policy")
        with self._lock:
            pod = self._current(pods, name, namespace)
            phase = (pod.get("status") or {}).get("phase")
            can_ignore = phase in ("Succeeded", "Failed", "Pending") or is_deleting(pod)
            if not can_ignore:
                matching = [
                    b
                    for b in self._bucket(pdbs).values()
                    if b["metadata"].get("namespace") == namespace
                    and selectors.selects(
                        (b.get("spec") or {}).get("selector"), pod["metadata"].get("labels")
                    )
                ]
                if len(matching) > 1:
                    raise ApiError(
                        500,
                        "InternalError",
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                    )
                if matching:
                    self._check_budget(matching[0], pod, namespace)
            if dry_run or options.get("dryRun"):
                return
            self._delete_locked(
                pods, pod, options.get("gracePeriodSeconds"), options.get("propagationPolicy")
            )

    def _check_budget(self, pdb: dict[str, Any], pod: dict[str, Any], namespace: str) -> None:
        pods = [p for (ns, _), p in self._bucket(self.registry.resolve("pods")).items() if ns == namespace]
        budget = disruption.evaluate(pdb, pods, self.controller_scale)
        policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
        if not disruption.pod_ready(pod):
            if policy == "AlwaysAllow":
                return
            if budget.current_healthy >= budget.desired_healthy and budget.desired_healthy > 0:
                return
        elif budget.disruptions_allowed > 0:
            return
        pdb_name = pdb["metadata"]["name"]
        raise ApiError(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            details={
                "causes": [
                    {
                        "reason": "DisruptionBudget",
                        "message": f"The disruption budget {pdb_name} needs {budget.desired_healthy} healthy pods and has {budget.current_healthy} currently",
                    }
                ]
            },
        )

    def controller_scale(self, namespace: str, ref: dict[str, Any]) -> int | None:
        """Desired replicas of a controller (for budgets with percentages or maxUnavailable)."""
        with self._lock:
            found = self._uids.get(ref.get("uid", ""))
            if found is None:
                return None
            rt, ns, name = found
            obj = self._bucket(rt).get((ns, name))
        if obj is None:
            return None
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if rt.kind == "DaemonSet":
            return int(status.get("desiredNumberScheduled", 0))
        if rt.kind == "Cluster" and rt.group == "postgresql.cnpg.io":
            return int(spec.get("instances", 1))
        if "replicas" in spec or rt.kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            return int(spec.get("replicas", 1))
        return None

    # ---- watch ----------------------------------------------------------------------------

    def watch(
        self, rt: ResourceType, namespace: str | None, resource_version: str | None
    ) -> tuple[Listener, list[WatchEvent]]:
        """Register a watch and return it with the events to replay first: every current
        object as ADDED when no (or ``"0"``) resourceVersion is given, else every event after
        it. Raises the 410 ``Expired`` error when that version is no longer in the history."""
        key = rt.key

        def accept(ev: WatchEvent) -> bool:
            return ev.resource.key == key and (not namespace or ev.namespace == namespace)

        with self._lock:
            if resource_version in (None, "", "0"):
                initial = [
                    WatchEvent(int(o["metadata"]["resourceVersion"]), "ADDED", rt, o)
                    for (ns, _), o in sorted(self._bucket(rt).items())
                    if not namespace or ns == namespace
                ]
            else:
                try:
                    since = int(resource_version)
                except ValueError:
                    raise bad_request(f"invalid resource version: {resource_version!r}") from None
                if since < self._floor:
                    raise gone(f"too old resource version: {since} ({self._floor + 1})")
                initial = [ev for ev in self._history if ev.rv > since and accept(ev)]
            listener = Listener(accept)
            self._listeners.append(listener)
            return listener, initial

    def stop_watch(self, listener: Listener) -> None:
        self._remove_listener(listener)
        listener.close()

    def _remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def subscribe(
        self,
        callback: Callable[[WatchEvent], None],
        *,
        resources: Iterable[ResourceRef] | None = None,
        name: str = "subscriber",
    ) -> Subscription:
        """Call ``callback(event)`` for every later change (of ``resources`` if given), in
        commit order, on a dedicated thread."""
        keys = {self.resource(r).key for r in resources} if resources is not None else None
        listener = Listener(lambda ev: keys is None or ev.resource.key in keys)
        with self._lock:
            self._listeners.append(listener)
        return Subscription(self, listener, callback, name)

    def close(self) -> None:
        """End every watch and subscription."""
        with self._lock:
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()


def _spec_part(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What counts for ``metadata.generation``: everything but metadata (and status when
    the resource has a status subresource)."""
    return {
        k: v
        for k, v in obj.items()
        if k not in ("metadata", "apiVersion", "kind") and not (rt.status and k == "status")
    }


def _defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """The defaulting the real API server applies to the fields simulator code reads."""
    if rt.group == "" and rt.kind == "Pod":
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rt.group == "" and rt.kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    elif rt.group == "apps" and rt.kind == "Deployment":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault(
            "strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        obj.setdefault("status", {})
    elif rt.group == "apps" and rt.kind == "DaemonSet":
        spec = obj.setdefault("spec", {})
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        obj.setdefault(
            "status",
            {
                "currentNumberScheduled": 0,
                "desiredNumberScheduled": 0,
                "numberMisscheduled": 0,
                "numberReady": 0,
            },
        )
    elif rt.group == "policy" and rt.kind == "PodDisruptionBudget":
        obj.setdefault(
            "status", {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}
        )
    elif rt.group == "" and rt.kind == "Secret":
        obj.setdefault("type", "Opaque")


__all__ = ["PATCH_TYPES", "ApiError", "Listener", "Store", "Subscription", "WatchEvent", "rfc3339"]
