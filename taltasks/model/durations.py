"""Durations as people write them in YAML (``90s``, ``10m``, ``1h30m``) and as we print them.

The syntax is the one tuppr's CRD and Go's ``time.ParseDuration`` share for whole units,
plus ``ms`` and decimals, so a value copied from a tuppr ``healthChecks`` entry means the
same here. A bare number is seconds.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")


def parse_duration(value: object) -> float:
    """Seconds for ``value``; :class:`ValueError` with a readable reason otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 10m or 1h30m, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 10m or 1h30m, got {type(value).__name__}")
    text = value.strip()
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 10m, 1h30m or 500ms")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``500ms``, ``45s``, ``2.5s``, ``15m``, ``1h30m``."""
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 1):g}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs or not out:
        out += f"{secs}s"
    return out
