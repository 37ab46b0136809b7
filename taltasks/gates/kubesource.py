"""The gate engine's ``KubeSource`` over a real API connection.

:mod:`taltasks.gates.sources` declares what gates read: any kind by ``apiVersion`` and
``kind`` as plain dicts, plus a ``subscribe`` that wakes the engine on changes.
:class:`ApiKubeSource` provides exactly that over a :class:`~taltasks.kube.client.KubeClient`:
kinds are resolved through API discovery (cached; a kind the server does not serve raises
``ResourceTypeUnknown``, which gates count as a failed check), objects are read through the
client's generic custom-object calls (named groups) or its core calls, and every
distinct query is followed by one :func:`~taltasks.kube.watch.follow` loop on a daemon thread
for the life of the source, setting every subscriber's wake event after each change, re-list
included; :meth:`ApiKubeSource.close` ends them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from taltasks.kube.client import KubeApiError, KubeClient
from taltasks.kube.discovery import ApiResource, Discovery, KindNotServed
from taltasks.kube.watch import follow

SUBSCRIPTION_WATCH_SECONDS = 30  # a subscription re-watches this often (and notices unsubscribe)


class ApiKubeSource:
    """``KubeSource`` for the gate engine, backed by the Kubernetes API."""

    def __init__(self, client: KubeClient, *, watch_seconds: int = SUBSCRIPTION_WATCH_SECONDS) -> None:
        self.client = client
        self.watch_seconds = watch_seconds
        self._discovery = Discovery(client)
        self._lock = threading.RLock()
        self._wakes: dict[Any, list[threading.Event]] = {}
        self._watchers: dict[Any, threading.Thread] = {}
        self._stop = threading.Event()

    # ---- discovery --------------------------------------------------------------------------

    def _resource(self, api_version: str, kind: str) -> ApiResource:
        try:
            return self._discovery.resource(api_version, kind)
        except KindNotServed as exc:
            from taltasks.gates.sources import ResourceTypeUnknown

            raise ResourceTypeUnknown(exc.message) from None

    def _list_call(
        self, res: ApiResource, namespace: str | None
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        custom, core = self.client.custom, self.client.core
        ns = namespace if res.namespaced else None
        if res.group:
            if ns:
                return custom.list_namespaced_custom_object, (res.group, res.version, ns, res.plural)
            return custom.list_cluster_custom_object, (res.group, res.version, res.plural)
        if not res.namespaced:
            return getattr(core, f"list_{res.snake}"), ()
        if ns:
            return getattr(core, f"list_namespaced_{res.snake}"), (ns,)
        return getattr(core, f"list_{res.snake}_for_all_namespaces"), ()

    # ---- KubeSource -------------------------------------------------------------------------

    def list(self, query: Any) -> list[dict[str, Any]]:
        res = self._resource(query.api_version, query.kind)
        fn, args = self._list_call(res, query.namespace)
        kwargs = {"label_selector": query.label_selector} if query.label_selector else {}
        body = self.client.call(f"list {query.describe()}", fn, *args, **kwargs)
        items = list((body or {}).get("items") or [])
        for item in items:  # typed lists leave these out of their items
            item.setdefault("apiVersion", query.api_version)
            item.setdefault("kind", query.kind)
        return items

    def get(self, query: Any) -> dict[str, Any] | None:
        res = self._resource(query.api_version, query.kind)
        custom, core = self.client.custom, self.client.core
        ns = query.namespace if res.namespaced else None
        if res.group:
            fn, args = (
                (custom.get_namespaced_custom_object, (res.group, res.version, ns, res.plural, query.name))
                if ns
                else (custom.get_cluster_custom_object, (res.group, res.version, res.plural, query.name))
            )
        elif ns:
            fn, args = getattr(core, f"read_namespaced_{res.snake}"), (query.name, ns)
        else:
            fn, args = getattr(core, f"read_{res.snake}"), (query.name,)
        try:
            obj = self.client.call(f"read {query.describe()}", fn, *args)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        obj.setdefault("apiVersion", query.api_version)
        obj.setdefault("kind", query.kind)
        return obj

    def subscribe(self, queries: Sequence[Any], wake: threading.Event) -> Callable[[], None]:
        """Wake ``wake`` on every change to what ``queries`` select (and once at once, for
        the first look). One watcher per distinct query serves every subscriber for the
        life of the source, so a workflow waiting many times opens few watches."""
        wanted = list(dict.fromkeys(queries))
        with self._lock:
            for query in wanted:
                self._wakes.setdefault(query, []).append(wake)
                if query not in self._watchers:
                    res = self._resource(query.api_version, query.kind)
                    fn, args = self._list_call(res, query.namespace)
                    kwargs: dict[str, Any] = {}
                    if query.label_selector:
                        kwargs["label_selector"] = query.label_selector
                    if query.name:
                        kwargs["field_selector"] = f"metadata.name={query.name}"
                    thread = threading.Thread(
                        target=self._follow,
                        args=(query, fn, args, kwargs),
                        name=f"gate-watch-{query.kind}",
                        daemon=True,
                    )
                    self._watchers[query] = thread
                    thread.start()
        wake.set()

        def unsubscribe() -> None:
            with self._lock:
                for query in wanted:
                    events = self._wakes.get(query, [])
                    if wake in events:
                        events.remove(wake)

        return unsubscribe

    def close(self) -> None:
        """Stop the watchers (each ends at its next event or within ``watch_seconds``)."""
        self._stop.set()

    def _notify(self, query: Any) -> None:
        with self._lock:
            events = list(self._wakes.get(query, ()))
        for event in events:
            event.set()

    def _follow(
        self, query: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        import time

        while not self._stop.is_set():
            try:
                deadline = time.monotonic() + self.watch_seconds
                for _ in follow(
                    self.client, fn, *args, deadline=deadline, server_timeout=self.watch_seconds, **kwargs
                ):
                    if self._stop.is_set():
                        return
                    self._notify(query)
            except Exception:  # the API went away or the client closed: the engine's reads say why
                self._notify(query)
                self._stop.wait(1.0)
