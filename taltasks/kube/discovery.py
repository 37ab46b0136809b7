"""Which REST resource serves an ``apiVersion`` + ``kind``, found through API discovery.

Generic code — health gates reading any kind, server-side apply of rendered charts — knows
objects by ``apiVersion`` and ``kind`` only. :class:`Discovery` asks the server (``/api/v1``
or ``/apis/<group>/<version>``) for the resource's plural name and scope, caches the answer,
and builds the object's URL path. A kind the server does not serve raises
:class:`KindNotServed`; :meth:`Discovery.forget` drops the cache after CRDs were installed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from taltasks.errors import OperationFailed
from taltasks.kube.client import KubeApiError, KubeClient


class KindNotServed(OperationFailed):
    """The API server does not serve this apiVersion/kind (no CRD, wrong version)."""


@dataclass(frozen=True)
class ApiResource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def snake(self) -> str:
        """``PersistentVolumeClaim`` → ``persistent_volume_claim`` (the typed client's names)."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.kind).lower()

    def path(self, name: str | None = None, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


class Discovery:
    """Cached discovery for one client; thread-safe."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._cache: dict[tuple[str, str], ApiResource] = {}
        self._lock = threading.Lock()

    def resource(self, api_version: str, kind: str) -> ApiResource:
        with self._lock:
            cached = self._cache.get((api_version, kind))
        if cached is not None:
            return cached
        group, _, version = api_version.rpartition("/")
        try:
            if group:
                doc = self.client.call(
                    f"discover {api_version}", self.client.custom.get_api_resources, group, version
                )
            else:
                doc = self.client.call(f"discover {api_version}", self.client.core.get_api_resources)
        except KubeApiError as exc:
            if exc.status == 404:
                raise KindNotServed(f"the API server does not serve {api_version}") from None
            raise
        for entry in (doc or {}).get("resources") or []:
            if entry.get("kind") == kind and "/" not in entry.get("name", ""):
                found = ApiResource(group, version, kind, entry["name"], bool(entry.get("namespaced")))
                with self._lock:
                    self._cache[(api_version, kind)] = found
                return found
        raise KindNotServed(f"the API server does not serve {kind} in {api_version}")

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
