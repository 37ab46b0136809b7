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

# Keys whose values are secrets (or, like certificates and the cluster id, tie a config to
# one cluster), in the v1alpha1 document and in the 1.12+ documents (DiscoveryIdentityConfig
# clusterSecret, KubeServiceAccountConfig privateKey, Wireguard keys, registry credentials…).
# The one list for everything that shows config values: diffs, change lists, hints.
SECRET_KEYS = frozenset(
    {
        "key", "token", "secret", "id", "crt", "ca", "cert",
        "secretboxEncryptionSecret", "aescbcEncryptionSecret",
        "clusterID", "clusterSecret", "privateKey", "presharedKey",
        "password", "auth", "identityToken", "apiToken", "uniqueToken",
    }
)  # fmt: skip

# `key: value`, also as a list item and as a line of a unified diff (`+`/`-`/` ` first)
_SECRET_LINE = re.compile(
    r"^([-+]?\s*(?:-\s+)?)(" + "|".join(sorted(SECRET_KEYS, key=len, reverse=True)) + r"):[ \t]+(\S.*)$"
)
_BLOCK_HEADER = re.compile(r"[|>][-+0-9]*")  # a `|`/`>` block scalar: the value is on the next lines
_DIFF_HEADER = re.compile(r"^(?:--- |\+\+\+ |@@ )")


def _fingerprint(value: str) -> str:
    return f"<redacted sha256:{hashlib.sha256(value.encode()).hexdigest()[:12]}>"


def redact(text: str) -> str:
    """Hide secret values in text shown to a terminal or log, keeping changes visible.

    Works on YAML and on a unified diff of YAML. A value on the key's line becomes a short
    fingerprint; a value continued on the following, more indented lines (a ``|`` block
    holding a PEM key, a quoted scalar spanning lines) has each of those lines replaced by
    the fingerprint of that line — a changed key still shows as a change, and no line of
    it is printed."""
    lines = text.split("\n")
    is_diff = any(line.startswith("@@ ") for line in lines)

    def indent(line: str) -> int:
        """Where the line's YAML content starts (after a diff's one-column marker)."""
        body = line[1:] if is_diff else line
        return len(line) - len(body.lstrip(" "))

    out: list[str] = []
    column: int | None = None  # the secret key's column while its value may continue
    for line in lines:
        if column is not None and not (is_diff and _DIFF_HEADER.match(line)):
            at = indent(line)
            content = line[at:]
            if not content or at > column:
                out.append(line[:at] + _fingerprint(content) if content else line)
                continue
        column = None
        m = _SECRET_LINE.match(line)
        if m is None:
            out.append(line)
            continue
        column = len(m[1])
        value = m[3].strip().strip("'\"")
        keep = not value or _BLOCK_HEADER.fullmatch(value)
        out.append(line if keep else f"{m[1]}{m[2]}: {_fingerprint(value)}")
    return "\n".join(out)


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
