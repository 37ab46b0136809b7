"""Follow a list of objects through a watch that survives expiry.

:func:`follow` lists once, then watches from the list's resourceVersion and yields a
:class:`WatchUpdate` (with the full current set of objects) after every change. It always
passes both a server-side ``timeout_seconds`` and a client-side ``_request_timeout`` a bit
longer (pitfall P5: without the former the server keeps the stream open forever, without
the latter a dead connection hangs the client), re-watches from the last seen version when
a stream ends, and re-lists when the server answers 410 Gone (the version was compacted).
:func:`wait_until` builds the common "block until this holds, with a deadline" on it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from taltasks.errors import ConnectionFailed, OperationFailed
from taltasks.kube.client import KubeClient, api_error

T = TypeVar("T")

SERVER_TIMEOUT = 60  # seconds one watch request may last before we re-watch
CLIENT_SLACK = 10  # extra seconds the client waits for a server that should have ended
CONNECT_TIMEOUT = 5


def key_of(obj: dict[str, Any]) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}".lstrip("/")


@dataclass
class WatchUpdate:
    """``type`` is ADDED, MODIFIED, DELETED, or LISTED (initial list and every re-list
    after 410 Gone, with ``object`` None); ``objects`` is the current set by ``ns/name``."""

    type: str
    object: dict[str, Any] | None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_version: str = ""


def follow(
    client: KubeClient,
    list_fn: Callable[..., Any],
    *args: Any,
    deadline: float,
    server_timeout: int = SERVER_TIMEOUT,
    **kwargs: Any,
) -> Iterator[WatchUpdate]:
    """List then watch ``list_fn(*args, **kwargs)`` (a client ``list_*`` method, typed or
    custom-object) until the monotonic ``deadline``; yield after every change."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from kubernetes import watch

    def relist() -> tuple[dict[str, dict[str, Any]], str]:
        body = client.call("list objects", list_fn, *args, **kwargs)
        return {key_of(o): o for o in body.get("items") or []}, (body.get("metadata") or {}).get(
            "resourceVersion", ""
        )

    objects, rv = relist()
    yield WatchUpdate("LISTED", None, dict(objects), rv)
    while time.monotonic() < deadline:
        remaining = deadline - time.monotonic()
        timeout = max(1, min(server_timeout, math.ceil(remaining)))
        # the server counts whole seconds; the client cuts the last fraction itself
        read_timeout = min(timeout + CLIENT_SLACK, remaining + 0.05)
        w = watch.Watch()
        try:
            for event in w.stream(
                list_fn,
                *args,
                resource_version=rv,
                timeout_seconds=timeout,
                _request_timeout=(CONNECT_TIMEOUT, read_timeout),
                allow_watch_bookmarks=True,
                **kwargs,
            ):
                obj = event.get("raw_object") or {}
                kind = event.get("type")
                rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    objects.pop(key_of(obj), None)
                else:
                    objects[key_of(obj)] = obj
                yield WatchUpdate(str(kind), obj, dict(objects), rv)
                if time.monotonic() >= deadline:
                    break
        except ApiException as exc:
            if exc.status != 410:
                raise api_error(exc, "watch objects", client.server) from None
            objects, rv = relist()
            yield WatchUpdate("LISTED", None, dict(objects), rv)
        except HTTPError as exc:
            if time.monotonic() < deadline:  # not our own read timeout at the deadline
                raise ConnectionFailed(f"watch interrupted: {exc}", where=client.server) from None
        finally:
            w.stop()


def wait_until(
    client: KubeClient,
    list_fn: Callable[..., Any],
    predicate: Callable[[dict[str, dict[str, Any]]], T | None],
    *args: Any,
    timeout: float,
    what: str,
    describe: Callable[[dict[str, dict[str, Any]]], str] | None = None,
    **kwargs: Any,
) -> T:
    """Block until ``predicate(objects)`` returns something truthy and return it; after
    ``timeout`` seconds raise OperationFailed naming ``what`` and the last state seen."""
    deadline = time.monotonic() + timeout
    last: dict[str, dict[str, Any]] = {}
    for update in follow(client, list_fn, *args, deadline=deadline, **kwargs):
        last = update.objects
        result = predicate(update.objects)
        if result:
            return result
    seen = describe(last) if describe else f"{len(last)} object(s) seen"
    raise OperationFailed(f"{what} did not happen within {timeout:g}s (last seen: {seen})")
