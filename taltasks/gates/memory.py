"""In-memory gate sources for the pure tests of the gate engine and its kinds.

These are plain implementations of the :mod:`taltasks.gates.sources` protocols holding
objects in dicts — not mocks of our clients. Changing an object wakes subscribers, so
tests exercise the engine's watch path; ``streaming=False`` makes a source that cannot
stream, to exercise polling. Marking a source or node down makes reads raise
:class:`~taltasks.errors.ConnectionFailed`, as the real adapters do.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from taltasks.errors import ConnectionFailed
from taltasks.gates.sources import EtcdView, MachineState, ResourceQuery, ResourceTypeUnknown, Unsubscribe

Key = tuple[str, str, str | None, str]
CORE_TYPES: frozenset[tuple[str, str]] = frozenset(
    {("v1", "Node"), ("v1", "Pod"), ("v1", "ConfigMap"), ("policy/v1", "PodDisruptionBudget")}
)


class _Subscribers:
    def __init__(self) -> None:
        self._subs: list[tuple[Callable[[Any], bool], threading.Event]] = []
        self._lock = threading.Lock()

    def add(self, interested: Callable[[Any], bool], wake: threading.Event) -> Unsubscribe:
        entry = (interested, wake)
        with self._lock:
            self._subs.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subs:
                    self._subs.remove(entry)

        return unsubscribe

    def notify(self, subject: Any) -> None:
        with self._lock:
            subs = list(self._subs)
        for interested, wake in subs:
            if interested(subject):
                wake.set()

    def __len__(self) -> int:
        return len(self._subs)


class MemoryKube:
    """Kubernetes objects in a dict, keyed by apiVersion, kind, namespace and name."""

    def __init__(
        self,
        objects: Iterable[Mapping[str, Any]] = (),
        *,
        streaming: bool = True,
        served: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        self._served: set[tuple[str, str]] = set(CORE_TYPES) | set(served)
        self._subs = _Subscribers()
        self._lock = threading.Lock()
        self.streaming = streaming
        self.down = False
        self.reads = 0
        for obj in objects:
            self.put(obj)

    # ---- changing the world --------------------------------------------------------------

    def serve(self, api_version: str, kind: str) -> None:
        self._served.add((api_version, kind))

    def put(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(dict(obj))
        key = _key(stored)
        with self._lock:
            self._served.add(key[:2])
            self._objects[key] = stored
        self._subs.notify(stored)
        return stored

    def patch(
        self, api_version: str, kind: str, name: str, changes: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Merge ``changes`` into the object (JSON merge patch rules: None deletes a key)."""
        with self._lock:
            current = copy.deepcopy(self._objects[(api_version, kind, namespace, name)])
        return self.put(_merge(current, changes))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        with self._lock:
            obj = self._objects.pop((api_version, kind, namespace, name))
        self._subs.notify(obj)

    # ---- KubeSource ----------------------------------------------------------------------

    def list(self, query: ResourceQuery) -> list[dict[str, Any]]:
        self._check(query)
        with self._lock:
            objs = [
                copy.deepcopy(o)
                for k, o in sorted(self._objects.items(), key=lambda kv: str(kv[0]))
                if _matches(query, k, o)
            ]
        return objs

    def get(self, query: ResourceQuery) -> dict[str, Any] | None:
        self._check(query)
        with self._lock:
            obj = self._objects.get((query.api_version, query.kind, query.namespace, query.name or ""))
        return copy.deepcopy(obj) if obj is not None else None

    def subscribe(self, queries: Sequence[ResourceQuery], wake: threading.Event) -> Unsubscribe | None:
        if not self.streaming:
            return None
        return self._subs.add(lambda obj: any(_matches(q, _key(obj), obj) for q in queries), wake)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def _check(self, query: ResourceQuery) -> None:
        self.reads += 1
        if self.down:
            raise ConnectionFailed("Kubernetes API unreachable", where="memory")
        if (query.api_version, query.kind) not in self._served:
            raise ResourceTypeUnknown(f"{query.api_version} {query.kind}")


class MemoryTalos:
    """Machine states and etcd views per node address."""

    def __init__(self, *, streaming: bool = True) -> None:
        self.machines: dict[str, MachineState] = {}
        self.etcd_views: dict[str, EtcdView] = {}
        self.unreachable: set[str] = set()
        self.streaming = streaming
        self._subs = _Subscribers()

    def set_machine(self, state: MachineState) -> None:
        self.machines[state.node] = state
        self._subs.notify(state.node)

    def update_machine(self, node: str, **changes: Any) -> None:
        self.set_machine(replace(self.machines[node], **changes))

    def set_etcd(self, view: EtcdView) -> None:
        self.etcd_views[view.node] = view
        self._subs.notify(view.node)

    def update_etcd(self, node: str, **changes: Any) -> None:
        self.set_etcd(replace(self.etcd_views[node], **changes))

    def set_reachable(self, node: str, reachable: bool) -> None:
        (self.unreachable.discard if reachable else self.unreachable.add)(node)
        self._subs.notify(node)

    def machine(self, node: str) -> MachineState:
        self._reach(node)
        return self.machines[node]

    def etcd(self, node: str) -> EtcdView:
        self._reach(node)
        return self.etcd_views[node]

    def subscribe(self, nodes: Sequence[str], wake: threading.Event) -> Unsubscribe | None:
        if not self.streaming:
            return None
        wanted = set(nodes)
        return self._subs.add(lambda node: node in wanted, wake)

    def _reach(self, node: str) -> None:
        if node in self.unreachable or node not in self.machines:
            raise ConnectionFailed("connection refused", where=f"{node}:50000")


# ---- helpers ---------------------------------------------------------------------------


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(obj["apiVersion"]), str(obj["kind"]), meta.get("namespace"), str(meta["name"]))


def _matches(query: ResourceQuery, key: Key, obj: Mapping[str, Any]) -> bool:
    if (query.api_version, query.kind) != key[:2]:
        return False
    if query.namespace is not None and key[2] != query.namespace:
        return False
    if query.name is not None and key[3] != query.name:
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return selector_matches(query.label_selector, labels)


_REQUIREMENT = re.compile(
    r"\s*(!?)\s*([\w./-]+)\s*(?:(==|=|!=)\s*([\w./-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*"
)


def selector_matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy a label selector in the API's string form."""
    if not selector:
        return True
    for part in re.split(r",(?![^()]*\))", selector):
        m = _REQUIREMENT.fullmatch(part)
        if not m:
            raise ValueError(f"unparsable label selector {selector!r}")
        negate, key, op, value, set_op, values = m.groups()
        if op in ("=", "=="):
            ok = labels.get(key) == value
        elif op == "!=":
            ok = labels.get(key) != value
        elif set_op:
            members = {v.strip() for v in values.split(",") if v.strip()}
            ok = labels.get(key) in members if set_op == "in" else labels.get(key) not in members
        else:
            ok = (key in labels) != bool(negate)
        if not ok:
            return False
    return True


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in changes.items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(base.get(k), dict):
            base[k] = _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base
