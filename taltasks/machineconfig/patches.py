"""Config patches: strategic merge (with ``$patch: delete``) and RFC 6902, Talos-style.

A patch text is read the way ``configpatcher.LoadPatch`` reads it: YAML mappings (one or
more documents) are a strategic merge patch; a YAML/JSON list is a JSON Patch. Errors
name the patch file and the line of the offending key or operation.

Strategic patches (talos-config-gen.md §3.2–3.4):

* documents are matched by apiVersion/kind/name (the legacy document has no kind); a
  document without a match is appended; one patch may not hold the same document twice;
* ``key: {$patch: delete}`` removes a key; a list item holding ``$patch: delete`` removes the
  first item whose first other key has the same value; a document holding only
  apiVersion/kind/(name) and ``$patch: delete`` removes that document (never the v1alpha1 one);
* deleting something that is not there is an error, as in Talos (deletes are not idempotent).

JSON patches apply only to single-document configs — since contract 1.12 every generated
config has a HostnameConfig document, so they are refused there with a hint to rewrite them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from taltasks.errors import InputError
from taltasks.machineconfig import jsonpatch
from taltasks.machineconfig.merge import FREE_FORM, MergeError, describe, doc_id, merge_documents
from taltasks.machineconfig.validate.origins import InPatch, Origins

DELETE_KEY = "$patch"


@dataclass(frozen=True)
class Delete:
    """One ``$patch: delete`` directive."""

    ident: tuple[str, str, str]  # document identity
    path: tuple[str, ...]  # keys down to the mapping key, or to the list for item deletes
    item: tuple[str, str] | None  # (key, value) selecting a list item
    line: int | None

    def describe(self) -> str:
        target = ".".join(self.path) or "the document"
        if self.item:
            target += f"[{self.item[0]}={self.item[1]}]"
        return target


@dataclass
class Patch:
    """A parsed patch. ``source`` is what errors show (``talos/patches/x.yaml``)."""

    source: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    operations: list[dict[str, Any]] | None = None  # JSON patch
    lines: dict[tuple[int, tuple[str | int, ...]], int] = field(default_factory=dict)
    line_offset: int = 0
    first_line: int | None = None
    doc_indexes: list[int] = field(default_factory=list)  # raw document index of each of `documents`
    texts: dict[tuple[int, tuple[str | int, ...]], str] = field(
        default_factory=dict
    )  # non-string scalars as written

    @property
    def is_json(self) -> bool:
        return self.operations is not None

    def where(self, line: int | None = None) -> str:
        line = line if line is not None else self.first_line
        return f"{self.source}:{line + self.line_offset}" if line else self.source

    def raw_index(self, i: int) -> int:
        """The index in the patch file of ``documents[i]`` (delete-only documents are dropped)."""
        return self.doc_indexes[i] if i < len(self.doc_indexes) else i

    def scalar_text(self, doc_index: int, path: tuple[str | int, ...]) -> str | None:
        """The source text of the number/boolean/date at ``path`` (``1`` → ``"1"``, ``0x10``)."""
        return self.texts.get((doc_index, tuple(path)))

    def line_of(self, doc_index: int, path: tuple[str | int, ...]) -> int | None:
        """Line of the deepest existing key of ``path`` in document ``doc_index``."""
        for n in range(len(path), -1, -1):
            line = self.lines.get((doc_index, tuple(path[:n])))
            if line is not None:
                return line
        return None


def _positions(
    data: Any,
    doc_index: int,
    out: dict,
    texts: dict,
    source: list[str],
    path: tuple[str | int, ...] = (),
) -> None:
    """Record the line of every key and list item, and the text of every non-string scalar
    (a string field takes a number or boolean as written: ``0x10`` stays ``"0x10"``)."""
    lc = getattr(data, "lc", None)
    if isinstance(data, dict):
        for k, v in data.items():
            sub = (*path, str(k))
            if lc is not None:
                with contextlib.suppress(KeyError, TypeError):
                    out[(doc_index, sub)] = lc.key(k)[0] + 1
                if _needs_text(v):
                    with contextlib.suppress(KeyError, TypeError, IndexError):
                        _text_at(texts, (doc_index, sub), source, *lc.value(k))
            _positions(v, doc_index, out, texts, source, sub)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            if lc is not None:
                with contextlib.suppress(KeyError, TypeError, IndexError):
                    out[(doc_index, (*path, i))] = lc.item(i)[0] + 1
                    if _needs_text(v):
                        _text_at(texts, (doc_index, (*path, i)), source, *lc.item(i))
            _positions(v, doc_index, out, texts, source, (*path, i))


def _needs_text(value: Any) -> bool:
    return value is not None and not isinstance(value, str | dict | list)


_TOKEN = re.compile(r"[^\s,\]\}#]+")


def _text_at(texts: dict, key: tuple, source: list[str], line: int, col: int) -> None:
    """The plain scalar starting at ``line``/``col`` (numbers and booleans hold no spaces)."""
    m = _TOKEN.match(source[line], col)
    if m and m.group()[0] not in "&!*|>'\"":
        texts[key] = m.group()


def parse_patch(text: str, source: str, *, line_offset: int = 0) -> Patch | None:
    """Parse one patch; ``None`` for an empty one (talhelper skips empty patch files)."""
    from taltasks.yamlpos import parse_all, to_plain

    patch = Patch(source=source, line_offset=line_offset)
    if not text.strip():
        return None
    try:
        raw_docs = parse_all(text, source)
    except InputError as exc:
        # re-locate with the offset of an inline patch inside talconfig.yaml
        where = exc.where or source
        if line_offset and ":" in where:
            name, _, line = where.rpartition(":")
            if line.isdigit():
                where = f"{name}:{int(line) + line_offset}"
        raise InputError(
            f"malformed patch: {exc.message.removeprefix('malformed YAML: ')}",
            where=where,
            hint="a patch is a YAML mapping (strategic merge) or a list of JSON Patch operations",
        ) from None
    if not raw_docs:
        return None
    source = text.splitlines()
    for i, d in enumerate(raw_docs):
        _positions(d, i, patch.lines, patch.texts, source)
        start = getattr(getattr(d, "lc", None), "line", None)
        if start is not None:
            patch.lines[(i, ())] = start + 1
    patch.first_line = patch.line_of(0, ()) or 1
    if len(raw_docs) == 1 and isinstance(raw_docs[0], list):
        patch.operations = to_plain(raw_docs[0])
        for i, op in enumerate(patch.operations):
            if not isinstance(op, dict) or op.get("op") not in jsonpatch.OPS or "path" not in op:
                raise InputError(
                    f"malformed patch: item {i + 1} is not a JSON Patch operation (needs `op` and `path`)",
                    where=patch.where(patch.lines.get((0, (i,)))),
                    hint="JSON Patch ops look like `- op: add` / `path: /machine/...` / `value: ...`",
                )
        return patch
    seen: dict[tuple[str, str, str], int] = {}
    for i, raw in enumerate(raw_docs):
        if not isinstance(raw, dict):
            raise InputError(
                "malformed patch: a document must be a mapping (strategic merge) or the whole "
                "patch a list of JSON Patch operations",
                where=patch.where(patch.line_of(i, ())),
            )
        doc = to_plain(raw)
        ident = doc_id(doc)
        if ident in seen:
            raise InputError(
                f"malformed patch: document {describe(ident)} appears twice in one patch",
                where=patch.where(patch.line_of(i, ())),
                hint="merge the two documents into one",
            )
        seen[ident] = i
        keep = _extract_deletes(doc, ident, patch, i)
        if keep is not None:
            patch.documents.append(keep)
            patch.doc_indexes.append(i)
    return patch


def _extract_deletes(
    doc: dict[str, Any], ident: tuple[str, str, str], patch: Patch, index: int
) -> dict | None:
    """Collect the delete directives of ``doc`` and return it without them (``None`` when
    nothing but its identity is left)."""

    def fail(path: tuple[str | int, ...], message: str) -> InputError:
        return InputError(f"malformed patch: {message}", where=patch.where(patch.line_of(index, path)))

    if doc.get(DELETE_KEY) == "delete":
        if ident[1] == "v1alpha1" and not ident[0]:
            raise fail((DELETE_KEY,), "the v1alpha1 document cannot be deleted")
        if not doc.get("apiVersion"):
            raise fail((DELETE_KEY,), "deleting a document needs its apiVersion and kind")
        patch.deletes.append(Delete(ident, (), None, patch.line_of(index, (DELETE_KEY,))))
        return None

    def walk(node: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k, v in node.items():
                sub = (*path, k)
                if isinstance(v, dict) and v.get(DELETE_KEY) == "delete":
                    if any(isinstance(p, int) for p in path):
                        raise fail(sub, f"cannot delete an inner key in {_dotted(sub)} (inside a list)")
                    line = patch.line_of(index, (*sub, DELETE_KEY))
                    patch.deletes.append(Delete(ident, tuple(map(str, sub)), None, line))
                    continue
                kept = walk(v, sub)
                if kept is _DROP:
                    continue
                out[k] = kept
            if node and not out:
                return _DROP
            return out
        if isinstance(node, list):
            items: list[Any] = []
            for i, v in enumerate(node):
                sub = (*path, i)
                if isinstance(v, dict) and v.get(DELETE_KEY) == "delete":
                    if any(isinstance(p, int) for p in path):
                        raise fail(sub, f"cannot delete items of a list inside a list ({_dotted(path)})")
                    selector = next(((str(a), str(b)) for a, b in v.items() if a != DELETE_KEY), None)
                    if selector is None:
                        raise fail(
                            sub, f"a list item with $patch: delete needs a key to select it ({_dotted(path)})"
                        )
                    patch.deletes.append(
                        Delete(
                            ident, tuple(map(str, path)), selector, patch.line_of(index, (*sub, DELETE_KEY))
                        )
                    )
                    continue
                kept = walk(v, sub)
                if kept is not _DROP:
                    items.append(kept)
            if node and not items:
                return _DROP
            return items
        return node

    kept = walk(doc, ())
    if kept is _DROP:
        return None
    identity_keys = {"version", "apiVersion", "kind", "name"}
    if patch.deletes and set(kept) <= identity_keys and not (set(kept) - {"version"}):
        return None
    return kept


_DROP = object()


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


# ---- applying ----------------------------------------------------------------------------------


def apply_patch(
    docs: list[dict[str, Any]],
    patch: Patch,
    *,
    node: str | None = None,
    origins: Origins | None = None,
    elsewhere: Collection[tuple[str, str, str]] = (),
) -> list[dict[str, Any]]:
    """Apply ``patch`` to ``docs`` (modified in place where possible; the result is returned).

    With ``origins`` every value the patch writes is recorded there (provenance), and
    every value it deletes is forgotten. ``elsewhere``: identities of documents other
    nodes of the cluster have (the other role's); a delete aimed at one of them is skipped
    here, as Talos skips a delete of a document the config does not hold — so one global
    patch can delete a control-plane-only document. A delete aimed at a document no node
    has is an error (a misspelt kind or name would otherwise delete nothing, silently)."""
    for_node = f" (node {node})" if node else ""
    if patch.is_json:
        if len(docs) != 1:
            kinds = ", ".join(describe(doc_id(d)) for d in docs)
            raise InputError(
                f"JSON6902 patches are not supported for multi-document machine configuration{for_node}; "
                f"this config has {len(docs)} documents ({kinds})",
                where=patch.where(),
                hint="rewrite it as a strategic merge patch; remove keys with `key: {$$patch: delete}`",
            )
        try:
            result = [jsonpatch.apply(docs[0], patch.operations or [])]
        except jsonpatch.JsonPatchError as exc:
            raise InputError(
                f"JSON patch failed{for_node}: {exc}", where=patch.where(patch.lines.get((0, (exc.index,))))
            ) from None
        if origins is not None:
            _record_json(origins, doc_id(result[0]), patch, result[0])
        return result
    for d in patch.deletes:
        if d.ident in elsewhere and not any(doc_id(doc) == d.ident for doc in docs):
            continue
        docs, removed = _apply_delete(docs, d, patch, for_node)
        if origins is not None:
            origins.remove(d.ident, removed)
    record = None
    if origins is not None:

        def record(ident: tuple[str, str, str], n: int, rp: tuple, pp: tuple) -> None:
            origins.record(ident, rp, InPatch(patch, patch.raw_index(n), pp))

    try:
        return merge_documents(docs, patch.documents, record)
    except MergeError as exc:
        index = next((i for i, d in enumerate(patch.documents)), 0)
        raise InputError(
            f"patch does not fit the config{for_node}: {exc}",
            where=patch.where(patch.line_of(index, exc.path)),
        ) from None


def _record_json(origins: Origins, ident: tuple[str, str, str], patch: Patch, result: Any) -> None:
    """Each JSON Patch operation wrote at its ``path``; removals and moves forget the old place."""
    for i, op in enumerate(patch.operations or []):
        name = op.get("op")
        path = _pointer(str(op.get("path", "")), result)
        origin = InPatch(patch, 0, (i, "value") if "value" in op else (i,))
        if name == "remove":
            origins.remove(ident, path)
        elif name in ("add", "copy", "move"):
            if name == "move":
                origins.remove(ident, _pointer(str(op.get("from", "")), result))
            if path and isinstance(path[-1], int):
                origins.insert(ident, path, origin)
            else:
                origins.record(ident, path, origin)
        elif name == "replace":
            origins.record(ident, path, origin)


def _pointer(pointer: str, doc: Any) -> tuple[str | int, ...]:
    """An RFC 6901 pointer as a key path (``-`` resolved against the list in ``doc``)."""
    parts: list[str | int] = []
    node = doc
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        key: str | int = token
        if isinstance(node, list):
            key = len(node) - 1 if token == "-" else int(token) if token.isdigit() else token
        parts.append(key)
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return tuple(parts)


def _apply_delete(
    docs: list[dict[str, Any]], d: Delete, patch: Patch, for_node: str
) -> tuple[list[dict[str, Any]], tuple[str | int, ...]]:
    """Apply one delete; returns the documents and the key path that was removed."""
    target = next((i for i, doc in enumerate(docs) if doc_id(doc) == d.ident), None)

    def missing(what: str) -> InputError:
        hint = "the path is not in the generated config; drop this delete (deletes are not idempotent)"
        moved = _moved_to_document(docs, d)
        if moved:
            hint = moved
        return InputError(
            f"$patch: delete of {d.describe()} in document {describe(d.ident)}{for_node}: {what}",
            where=patch.where(d.line),
            hint=hint,
        )

    if target is None:
        from taltasks.model.suggest import did_you_mean

        kinds = [describe(doc_id(doc)) for doc in docs]
        raise InputError(
            f"$patch: delete of document {describe(d.ident)}{for_node}: no such document in the config"
            f"{did_you_mean(describe(d.ident), kinds)}",
            where=patch.where(d.line),
            hint=f"the config holds {', '.join(kinds)}; fix the kind/name or drop this delete",
        )
    if not d.path:
        return [doc for i, doc in enumerate(docs) if i != target], ()
    node: Any = docs[target]
    keys = d.path if d.item else d.path[:-1]
    for key in keys:
        if not isinstance(node, dict) or node.get(key) is None:
            raise missing(f"lookup failed at {key!r}")
        node = node[key]
    if d.item:
        if not isinstance(node, list):
            raise missing("not a list")
        key, value = d.item
        for i, item in enumerate(node):
            if isinstance(item, dict) and key in item and str(item[key]) == value:
                del node[i]
                return docs, (*d.path, i)
        raise missing(f"no item with {key}: {value}")
    last = d.path[-1]
    if not isinstance(node, dict):
        raise missing("lookup failed")
    if last in node:
        del node[last]
    elif len(d.path) >= 2 and d.path[-2] in FREE_FORM:
        # a key of a free-form map must exist; an unset field of an existing struct is
        # fine (Talos zeroes the field), which the loop above already checked
        raise missing(f"lookup failed at {last!r}")
    return docs, d.path


def _moved_to_document(docs: list[dict[str, Any]], d: Delete) -> str | None:
    """A hint when ``d`` deletes a v1alpha1 setting this config holds as a document (1.14)."""
    from taltasks.machineconfig.docmap import moved_at

    if d.ident != ("", "v1alpha1", ""):
        return None
    moved = moved_at(d.path)
    held = {str(doc.get("kind")) for doc in docs}
    if moved is None or not held & set(moved.kinds):
        return None
    kinds = " / ".join(k for k in moved.kinds if k in held)
    return (
        f"this config holds {moved.label} as the {kinds} document: delete or change it there "
        f"(apiVersion: v1alpha1, kind: {kinds.split(' / ')[0]}, with `$patch: delete` or the key to remove)"
    )
