"""Provenance: where each value of a node's final documents was written.

While a node's config is built — base documents, node overrides from talconfig.yaml, then
patches in talhelper's order — every writer records what it wrote in an :class:`Origins`
map keyed by (document identity, key path). The last writer wins (recording a path forgets
what earlier writers recorded below it) and deletes remove entries, so the map always
describes the final documents. A finding's location is the origin of the deepest recorded
prefix of its path; nothing recorded means "generated for this node" (the node's own line
in talconfig.yaml).

A patch records lazily: an :class:`InPatch` origin keeps the patch and the path inside it,
and the line is looked up only when a finding needs it — so a finding about
``machine.network.interfaces[0].vip.ip`` names the line of ``ip:`` in the patch, even though
the merge only recorded the whole interface it appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

KeyPath = tuple[str | int, ...]
DocId = tuple[str, str, str]  # (apiVersion, kind, name); v1alpha1 is ("", "v1alpha1", "")


class Origin(Protocol):
    def where(self, rest: KeyPath) -> str | None:
        """The location of the value at ``rest`` below the recorded path."""


@dataclass(frozen=True)
class Written:
    """A value written at a fixed place (a talconfig.yaml key, a talenv.yaml line).

    ``derived``: taltasks chose where the value lands (a talconfig field mapped into the
    config, as talhelper maps it) — the user wrote the setting but not this config key, so
    the key's deprecation is taltasks's business, not the user's."""

    location: str
    derived: bool = False

    def where(self, rest: KeyPath) -> str | None:
        return self.location


class _Located(Protocol):
    def where(self, line: int | None = None) -> str: ...

    def line_of(self, doc_index: int, path: tuple[str | int, ...]) -> int | None: ...


@dataclass(frozen=True)
class InPatch:
    """A value copied from a patch: document ``doc_index`` of ``patch``, at ``path`` in it."""

    patch: _Located
    doc_index: int
    path: KeyPath

    def where(self, rest: KeyPath) -> str | None:
        return self.patch.where(self.patch.line_of(self.doc_index, (*self.path, *rest)))

    def scalar_text(self, rest: KeyPath) -> str | None:
        """The source text of a number or boolean the patch wrote at ``rest``."""
        texts = getattr(self.patch, "scalar_text", None)
        return texts(self.doc_index, (*self.path, *rest)) if texts is not None else None


class _Node:
    __slots__ = ("children", "origin")

    def __init__(self) -> None:
        self.origin: Origin | None = None
        self.children: dict[str | int, _Node] | None = None

    def child(self, key: str | int) -> _Node:
        if self.children is None:
            self.children = {}
        node = self.children.get(key)
        if node is None:
            node = self.children[key] = _Node()
        return node


class Origins:
    """The provenance map of one node's documents (see the module docstring)."""

    def __init__(self, default: str | None = None) -> None:
        self.default = default
        self._docs: dict[DocId, _Node] = {}

    # ---- writers ----------------------------------------------------------------------------

    def record(self, doc: DocId, path: KeyPath, origin: Origin | str) -> None:
        """``origin`` wrote the value at ``path`` (and everything below it)."""
        if isinstance(origin, str):
            origin = Written(origin)
        node = self._docs.get(doc)
        if node is None:
            node = self._docs[doc] = _Node()
        for key in path:
            node = node.child(key)
        node.origin = origin
        node.children = None

    def remove(self, doc: DocId, path: KeyPath) -> None:
        """The value at ``path`` was deleted; a deleted list item shifts the items after it."""
        if not path:
            self._docs.pop(doc, None)
            return
        parent = self._walk(doc, path[:-1])
        if parent is None or parent.children is None:
            return
        last = path[-1]
        parent.children.pop(last, None)
        if isinstance(last, int):
            parent.children = {
                (k - 1 if isinstance(k, int) and k > last else k): v for k, v in parent.children.items()
            }

    def insert(self, doc: DocId, path: KeyPath, origin: Origin | str) -> None:
        """A list item was inserted at ``path`` (the items from there on move up by one)."""
        parent = self._walk(doc, path[:-1])
        last = path[-1]
        if parent is not None and parent.children and isinstance(last, int):
            parent.children = {
                (k + 1 if isinstance(k, int) and k >= last else k): v for k, v in parent.children.items()
            }
        self.record(doc, path, origin)

    # ---- readers ----------------------------------------------------------------------------

    def _deepest(self, doc: DocId, path: KeyPath) -> tuple[Origin | None, int]:
        """The origin recorded at the deepest prefix of ``path`` and that prefix's length."""
        node = self._docs.get(doc)
        found: Origin | None = node.origin if node is not None else None
        depth = 0
        for i, key in enumerate(path, start=1):
            if node is None or node.children is None or key not in node.children:
                break
            node = node.children[key]
            if node.origin is not None:
                found, depth = node.origin, i
        return found, depth

    def locate(self, doc: DocId, path: KeyPath) -> str | None:
        """Where the value at ``path`` was written: the deepest recorded prefix, else the default."""
        found, depth = self._deepest(doc, path)
        if found is None:
            return self.default
        return found.where(tuple(path[depth:])) or self.default

    def scalar_text(self, doc: DocId, path: KeyPath) -> str | None:
        """The source text of the number or boolean at ``path``, when a patch wrote it."""
        found, depth = self._deepest(doc, path)
        text = getattr(found, "scalar_text", None)
        return text(tuple(path[depth:])) if text is not None else None

    def recorded(self, doc: DocId, path: KeyPath) -> bool:
        """True when the user wrote ``path`` (or a prefix of it) as a config key: a patch,
        not the generator and not a talconfig field taltasks maps (:attr:`Written.derived`)."""
        found, _ = self._deepest(doc, path)
        return found is not None and not getattr(found, "derived", False)

    def _walk(self, doc: DocId, path: KeyPath) -> _Node | None:
        node = self._docs.get(doc)
        for key in path:
            if node is None or node.children is None:
                return None
            node = node.children.get(key)
        return node
