"""Differences between two machine configs, as a person should read them.

Both sides are parsed and rendered again without comments, so formatting and comments
never show up as changes; then a unified diff. ``masked`` hides secret values (keys,
tokens, certificates) behind a short fingerprint — a changed secret still shows as a
change, but its value never reaches a terminal or a CI log.
"""

from __future__ import annotations

import difflib
import hashlib
import re

_SECRET_LINE = re.compile(
    r"^(\s*(?:-\s+)?(?:key|token|secret|id|crt|ca|secretboxEncryptionSecret|aescbcEncryptionSecret)"
    r":\s+)(\S.*)$",
    re.M,
)


def redact(text: str) -> str:
    """Hide secret values in text shown to a terminal or log, keeping changes visible."""

    def fingerprint(m: re.Match[str]) -> str:
        value = m[2].strip("'\"")
        if not value:
            return m[0]
        return f"{m[1]}<redacted sha256:{hashlib.sha256(value.encode()).hexdigest()[:12]}>"

    return _SECRET_LINE.sub(fingerprint, text)


def normalized(raw: bytes | str) -> str:
    """Every document of a config, comments and formatting removed."""
    import yaml

    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    return yaml.safe_dump_all(docs, sort_keys=False)


def unified(
    old: bytes | str | None, new: bytes | str, *, fromfile: str = "a", tofile: str = "b", masked: bool = True
) -> str:
    """A unified diff of ``old`` → ``new`` ("" when they are the same config)."""
    a = normalized(old) if old else ""
    b = normalized(new)
    if masked:
        a, b = redact(a), redact(b)
    if a == b:
        return ""
    return "".join(
        difflib.unified_diff(
            a.splitlines(keepends=True), b.splitlines(keepends=True), fromfile=fromfile, tofile=tofile
        )
    )
