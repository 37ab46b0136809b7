"""``${VAR}`` substitution with talhelper's rules, so existing repositories render the same.

talhelper runs the whole talconfig.yaml (and ``@file`` patches) through an envsubst in
"restricted" mode before parsing it:

* YAML comments are dropped first (talhelper re-encodes the YAML without them; we blank
  them in place with YAML's own rule — a ``#`` that starts a line or follows whitespace,
  outside quoted and block scalars — so every line stays where it was and file:line stays
  true), so a ``${X}`` inside a comment does not need to be set;
* ``${NAME}`` **and** ``$NAME`` are variables; ``$$`` is a literal ``$`` — which is why
  ``$patch: delete`` must be written ``$$patch: delete`` in these files;
* an unset or empty variable is an error, unless a bash default form supplies a value:
  ``${V:-d}``, ``${V-d}``, ``${V:=d}``, ``${V=d}``, ``${V:+a}``, ``${V+a}``;
* variables come from the talenv files (``KEY: value`` lines, dotenv style), which win over
  the process environment, as talhelper exports them with ``os.Setenv``. Any of them may
  be SOPS-encrypted — talhelper decides by content, not by name, and so do we.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from taltasks.errors import InputError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = (":-", ":=", ":+", "-", "=", "+")
_BLOCK_HEADER = re.compile(r"[|>][-+0-9]*\s*$")
_SCALAR_START = re.compile(r"(?:^|[\[{,]|[-:?])\s*$")


def strip_comments(text: str) -> str:
    """Blank YAML comments; every line stays where it was.

    A ``#`` starts a comment at the start of a line or after whitespace, outside quoted
    scalars (``'…'`` and ``"…"``, which may span lines) and outside block scalars
    (``|``/``>`` and the more-indented lines that follow)."""
    out: list[str] = []
    quote = ""  # the open quote character while inside a quoted scalar
    block_indent: int | None = None  # indentation of the key owning an open block scalar
    for line in text.split("\n"):
        if block_indent is not None:
            stripped = line.strip()
            indent = len(line) - len(line.lstrip(" "))
            if not stripped or indent > block_indent:
                out.append(line)
                continue
            block_indent = None
        kept, quote = _strip_line(line, quote)
        out.append(kept)
        if not quote and _BLOCK_HEADER.search(kept.rstrip()) and _opens_block(kept):
            block_indent = len(line) - len(line.lstrip(" "))
    return "\n".join(out)


def _opens_block(line: str) -> bool:
    """True when the ``|``/``>`` ending ``line`` is a block scalar indicator (not text)."""
    body = line.rstrip()
    head = body[: _BLOCK_HEADER.search(body).start()]  # type: ignore[union-attr]
    return bool(_SCALAR_START.search(head)) or not head.strip()


def _strip_line(line: str, quote: str) -> tuple[str, str]:
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if quote:
            if quote == '"' and c == "\\":
                i += 2
                continue
            if c == quote:
                if quote == "'" and i + 1 < n and line[i + 1] == "'":
                    i += 2
                    continue
                quote = ""
            i += 1
            continue
        if c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(" \t"), ""
        if c in "'\"" and _SCALAR_START.search(line[:i]):
            quote = c
        i += 1
    return line, quote


@dataclass(frozen=True)
class Unset(Exception):
    """A variable that is unset or empty, at ``line`` (1-based) of the text."""

    name: str
    line: int
    empty: bool

    def message(self) -> str:
        state = "set but empty" if self.empty else "not set"
        return f"variable ${{{self.name}}} {state}"


def substitute(text: str, env: Mapping[str, str]) -> str:
    """Expand variables in ``text`` from ``env``; raises :class:`Unset` for the first
    unset/empty variable without a default."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        nxt = text[j + 1] if j + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end = text.find("}", j + 2)
            if end < 0:
                out.append(text[j:])
                break
            out.append(_expand(text[j + 2 : end], env, text.count("\n", 0, j) + 1, text[j : end + 1]))
            i = end + 1
        else:
            m = _NAME.match(text, j + 1)
            if not m:
                out.append("$")
                i = j + 1
                continue
            out.append(_lookup(m[0], env, text.count("\n", 0, j) + 1))
            i = m.end()
    return "".join(out)


def _lookup(name: str, env: Mapping[str, str], line: int) -> str:
    value = env.get(name)
    if value is None or value == "":
        raise Unset(name, line, value == "")
    return value


def _expand(body: str, env: Mapping[str, str], line: int, raw: str) -> str:
    m = _NAME.match(body)
    if not m:
        return raw  # not a variable expression (e.g. "${}"): left as written
    name, rest = m[0], body[m.end() :]
    if not rest:
        return _lookup(name, env, line)
    for op in _OPS:
        if rest.startswith(op):
            word = rest[len(op) :]
            value = env.get(name)
            is_set = value is not None
            non_empty = bool(value)
            if op in (":-", ":="):
                return value if non_empty else word  # type: ignore[return-value]
            if op in ("-", "="):
                return value if is_set else word  # type: ignore[return-value]
            if op == ":+":
                return word if non_empty else ""
            return word if is_set else ""
    return raw


# ---- talenv.yaml (dotenv syntax, as godotenv reads it) ----------------------------------------


_GODOTENV_VAR = re.compile(r"(\\)?\$(?:\{([A-Z0-9_]+)\}|([A-Z0-9_]+))")


def parse_env_file(
    text: str, display: str, environ: Mapping[str, str] | None = None, *, secret: bool = False
) -> dict[str, str]:
    """``KEY: value`` / ``KEY=value`` lines; ``#`` comments, ``---`` separators, optional
    ``export``, single or double quotes. A line that is none of these is an error at its line
    (quoted in the message unless ``secret``: the text was decrypted, and a line of a
    multi-line value may be key material).

    As godotenv does, ``${NAME}``/``$NAME`` (upper-case names) inside an unquoted or
    double-quoted value expand from the keys above it, then from ``environ`` (an unknown
    name expands to nothing); ``\\$`` keeps a literal ``$``."""
    values: dict[str, str] = {}
    outer = environ or {}

    def expand(value: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m[1]:
                return m[0][1:]
            name = m[2] or m[3]
            return values.get(name, outer.get(name, ""))

        return _GODOTENV_VAR.sub(one, value)

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line == "---":
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*[:=]\s?(.*)$", line)
        if not m:
            raise InputError(
                "cannot read this line as `KEY: value`" + ("" if secret else f": {raw.strip()!r}"),
                where=f"{display}:{number}",
                hint="talenv.yaml holds one `NAME: value` pair per line (dotenv style, not nested YAML)",
            )
        key, value = m[1], m[2].strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            while quote == '"' and end > 0 and value[end - 1] == "\\":
                end = value.find(quote, end + 1)
            if end < 0:
                raise InputError(f"unterminated quote in the value of {key}", where=f"{display}:{number}")
            inner = value[1:end]
            if quote == '"':
                inner = expand(inner.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\"))
            value = inner
        else:
            value = expand(re.split(r"\s+#", value, maxsplit=1)[0].strip())
        values[key] = value
    return values


ENV_FILES = ("talenv.yaml", "talenv.sops.yaml", "talenv.yml", "talenv.sops.yml")


@dataclass
class Environment:
    """The variables a cluster definition sees: talenv files over the process environment."""

    values: dict[str, str]
    sources: dict[str, str]  # variable -> "file:line"-ish origin, for messages

    @classmethod
    def load(
        cls, directory: Path, display_dir: str = "talos", *, read: Callable[[Path, str], str] | None = None
    ) -> Environment:
        """Read the talenv files present in ``directory``, in talhelper's order.

        ``read(path, shown)`` returns the decrypted text of a file that is SOPS-encrypted
        (found by content, whatever its name). Without it an encrypted file is an error,
        since reading it needs the age key."""
        values = dict(os.environ)
        sources = {k: "environment" for k in values}
        for name in ENV_FILES:
            path = directory / name
            if not path.exists():
                continue
            shown = f"{display_dir}/{name}"
            text = path.read_text(encoding="utf-8")
            from taltasks.secrets.bycontent import is_encrypted

            encrypted = is_encrypted(text)
            if encrypted:
                if read is None:
                    raise InputError("encrypted env file needs the age key to be read", where=shown)
                text = read(path, shown)
            for key, value in parse_env_file(text, shown, values, secret=encrypted).items():
                values[key] = value
                sources[key] = shown
        return cls(values, sources)


def substitute_file(text: str, env: Mapping[str, str], display: str) -> str:
    """Strip comments and substitute, turning an unset variable into a located error."""
    try:
        return substitute(strip_comments(text), env)
    except Unset as exc:
        raise InputError(
            exc.message(),
            where=f"{display}:{exc.line}",
            hint=f"define {exc.name} in talos/talenv.yaml or the environment, give a default "
            f"(${{{exc.name}:-value}}), or write $$ for a literal $",
        ) from None
