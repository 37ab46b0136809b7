"""Reading Kubernetes objects held as plain dicts: the few questions every part asks."""

from __future__ import annotations

import time
from typing import Any


def rfc3339(ts: float | None = None) -> str:
    """metav1.Time: UTC, second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def is_deleting(obj: dict[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def condition_true(obj: Any, kind: str = "Ready") -> bool:
    """Whether ``status.conditions[type=kind]`` of a pod, node… is ``"True"``."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond.get("status") == "True"
    return False
