"""RFC 6902 JSON Patch over plain data, with RFC 6901 pointers.

Small and strict: every failure says which operation (1-based) and which path, so a user
can find it in the patch file. Talos only applies JSON patches to single-document configs;
that rule lives with the caller (:mod:`taltasks.machineconfig.patches`).
"""

from __future__ import annotations

import copy
from typing import Any

OPS = ("add", "remove", "replace", "move", "copy", "test")


class JsonPatchError(ValueError):
    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(f"operation {index + 1}: {message}")


def _tokens(pointer: str, index: int) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise JsonPatchError(index, f"path {pointer!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _walk(doc: Any, tokens: list[str], index: int, pointer: str) -> Any:
    node = doc
    for tok in tokens:
        if isinstance(node, dict):
            if tok not in node:
                raise JsonPatchError(index, f"path {pointer!r} does not exist (no {tok!r})")
            node = node[tok]
        elif isinstance(node, list):
            node = node[_list_index(node, tok, index, pointer, allow_end=False)]
        else:
            raise JsonPatchError(index, f"path {pointer!r} goes through a scalar")
    return node


def _parent(doc: Any, tokens: list[str], index: int, pointer: str) -> tuple[Any, str]:
    return _walk(doc, tokens[:-1], index, pointer), tokens[-1]


def _list_index(node: list[Any], tok: str, index: int, pointer: str, *, allow_end: bool) -> int:
    if tok == "-" and allow_end:
        return len(node)
    if not tok.isdigit() or (tok != "0" and tok.startswith("0")):
        raise JsonPatchError(index, f"{tok!r} in {pointer!r} is not a list index")
    i = int(tok)
    if i > len(node) or (i == len(node) and not allow_end):
        raise JsonPatchError(index, f"index {i} in {pointer!r} is out of range (list has {len(node)} items)")
    return i


def _get(doc: Any, pointer: str, index: int) -> Any:
    return _walk(doc, _tokens(pointer, index), index, pointer)


def _add(doc: Any, pointer: str, value: Any, index: int) -> Any:
    tokens = _tokens(pointer, index)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, index, pointer)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, last, index, pointer, allow_end=True), value)
    else:
        raise JsonPatchError(index, f"cannot add below a scalar at {pointer!r}")
    return doc


def _remove(doc: Any, pointer: str, index: int) -> Any:
    tokens = _tokens(pointer, index)
    if not tokens:
        raise JsonPatchError(index, "cannot remove the whole document")
    parent, last = _parent(doc, tokens, index, pointer)
    if isinstance(parent, dict):
        if last not in parent:
            raise JsonPatchError(index, f"path {pointer!r} does not exist")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_list_index(parent, last, index, pointer, allow_end=False)]
    else:
        raise JsonPatchError(index, f"path {pointer!r} does not exist")
    return doc


def _replace(doc: Any, pointer: str, value: Any, index: int) -> Any:
    _get(doc, pointer, index)  # must exist
    tokens = _tokens(pointer, index)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, index, pointer)
    if isinstance(parent, list):
        parent[_list_index(parent, last, index, pointer, allow_end=False)] = value
    else:
        parent[last] = value  # keeps the key where it was
    return doc


def apply(doc: Any, operations: list[Any]) -> Any:
    """Apply ``operations`` to a deep copy of ``doc`` and return it."""
    out = copy.deepcopy(doc)
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or op.get("op") not in OPS:
            raise JsonPatchError(i, f"needs `op` set to one of {', '.join(OPS)}")
        if "path" not in op:
            raise JsonPatchError(i, "needs a `path`")
        name, path = op["op"], str(op["path"])
        if name in ("add", "replace", "test") and "value" not in op:
            raise JsonPatchError(i, f"`{name}` needs a `value`")
        if name == "add":
            out = _add(out, path, copy.deepcopy(op["value"]), i)
        elif name == "remove":
            out = _remove(out, path, i)
        elif name == "replace":
            out = _replace(out, path, copy.deepcopy(op["value"]), i)
        elif name in ("move", "copy"):
            if "from" not in op:
                raise JsonPatchError(i, f"`{name}` needs a `from`")
            value = copy.deepcopy(_get(out, str(op["from"]), i))
            if name == "move":
                if path.startswith(str(op["from"]) + "/"):
                    raise JsonPatchError(i, "cannot move a value into itself")
                out = _remove(out, str(op["from"]), i)
            out = _add(out, path, value, i)
        elif _get(out, path, i) != op["value"]:
            raise JsonPatchError(i, f"test failed: {path!r} is not {op['value']!r}")
    return out
