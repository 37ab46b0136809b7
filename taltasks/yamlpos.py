"""YAML that remembers where each value came from, for errors that name ``file:line``.

Repository files (talconfig.yaml, talenv.yaml, patches, the upgrade policy, scenarios) are
parsed with ruamel's round-trip loader, which records the line and column of every mapping
key and sequence item. :class:`YamlDoc` keeps the parsed data together with its file and
turns a key path such as ``("nodes", 2, "ipAddress")`` into ``talos/talconfig.yaml:14``.
Validation code reports through :meth:`YamlDoc.error` so every message carries a location.

ruamel is imported lazily (it costs ~40 ms and ``invoke --list`` must stay cheap).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taltasks.errors import InputError

KeyPath = Sequence[str | int]


class YamlDoc:
    """Parsed YAML plus the ability to say where a key path is."""

    def __init__(self, data: Any, path: Path | str | None, text: str | None = None) -> None:
        self.data = data
        self.path = Path(path) if path else None
        self.text = text

    # ---- loading ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str, *, text: str | None = None, display: str | None = None) -> YamlDoc:
        """Parse ``path`` (or ``text`` as if it came from ``path``); malformed YAML is an
        :class:`InputError` at the line ruamel stopped on. ``display`` overrides the name
        shown in messages (e.g. a path relative to the repository)."""
        p = Path(path)
        shown = display or str(p)
        if text is None:
            try:
                text = p.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InputError("file not found", where=shown) from None
            except OSError as exc:
                raise InputError(f"cannot read file: {exc.strerror}", where=shown) from None
        return cls(parse(text, shown), shown, text)

    @classmethod
    def load_all(
        cls, path: Path | str, *, text: str | None = None, display: str | None = None
    ) -> list[YamlDoc]:
        """Every document of a multi-document file, each with the same file name."""
        p = Path(path)
        shown = display or str(p)
        if text is None:
            try:
                text = p.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(f"cannot read file: {exc.strerror}", where=shown) from None
        return [cls(d, shown, text) for d in parse_all(text, shown)]

    # ---- locating -----------------------------------------------------------------------

    def line_of(self, keys: KeyPath) -> int | None:
        """1-based line of the deepest key in ``keys`` that exists in the document."""
        node = self.data
        line: int | None = None
        for key in keys:
            lc = getattr(node, "lc", None)
            try:
                if isinstance(key, int):
                    if lc is not None:
                        line = lc.item(key)[0] + 1
                    node = node[key]
                else:
                    if lc is not None and key in node:
                        line = lc.key(key)[0] + 1
                    node = node[key]
            except (KeyError, IndexError, TypeError, AttributeError):
                break
        if line is None:
            lc = getattr(self.data, "lc", None)
            if lc is not None and getattr(lc, "line", None) is not None:
                line = lc.line + 1
        return line

    def where(self, keys: KeyPath = ()) -> str:
        name = str(self.path) if self.path else "<input>"
        line = self.line_of(keys)
        return f"{name}:{line}" if line else name

    def error(self, keys: KeyPath, message: str, *, hint: str | None = None) -> InputError:
        """An :class:`InputError` located at ``keys``; the caller raises or collects it."""
        return InputError(message, where=self.where(keys), hint=hint)

    def get(self, keys: KeyPath, default: Any = None) -> Any:
        node = self.data
        for key in keys:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return default
        return node

    def plain(self) -> Any:
        return to_plain(self.data)


def _yaml():
    import warnings

    from ruamel.yaml import YAML
    from ruamel.yaml.error import ReusedAnchorWarning

    # YAML allows an anchor to be defined again (an alias means the latest one), and Go's
    # yaml.v3 — which Talos and talhelper read with — accepts it silently; so do we
    warnings.filterwarnings("ignore", category=ReusedAnchorWarning)
    y = YAML(typ="rt")
    y.preserve_quotes = False
    return y


_DUPLICATE_VALUES = re.compile(r"(found duplicate key .*?) with value .*$", re.S)


def _parse_error(exc: Exception, shown: str) -> InputError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    # ruamel adds both values of a duplicate key; the file may be a decrypted one
    problem = _DUPLICATE_VALUES.sub(r"\1", problem)
    where = f"{shown}:{mark.line + 1}" if mark is not None else shown
    return InputError(f"malformed YAML: {problem}", where=where)


def parse(text: str, shown: str = "<input>") -> Any:
    from ruamel.yaml.error import YAMLError

    try:
        return _yaml().load(text)
    except YAMLError as exc:
        raise _parse_error(exc, shown) from None


def parse_all(text: str, shown: str = "<input>") -> list[Any]:
    from ruamel.yaml.error import YAMLError

    try:
        return [d for d in _yaml().load_all(text) if d is not None]
    except YAMLError as exc:
        raise _parse_error(exc, shown) from None


def to_plain(value: Any) -> Any:
    """ruamel's CommentedMap/Seq and scalar subclasses → dict/list/str/int/float/bool."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, int | bool) else k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
