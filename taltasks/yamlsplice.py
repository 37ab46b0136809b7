"""Change a few keys of a YAML file and leave every other byte exactly as it was.

Some files belong to other tools as much as to us: a talosconfig carries ``auth`` blocks
written by Omni, proxy settings of newer talosctl releases, keys we have never heard of,
and the indentation style of whoever wrote it. Loading such a file into plain data and
dumping it again reorders, re-indents and drops what we do not model. Here each change is
spliced into the original text instead: the lines of the one entry that changes are
replaced (or inserted, or removed) and nothing else is touched.

Only block-style mappings are edited this way; when a change lands inside flow style
(``{...}``) or anything else this module does not handle, :func:`splice` raises
:class:`CannotSplice` and the caller falls back to writing the whole document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

KeyPath = Sequence[str]
DELETE = object()  # value that removes a key


class CannotSplice(Exception):
    """The change cannot be made by editing lines; write the whole document instead."""


@dataclass(frozen=True)
class Style:
    """How the file indents: nested mappings by ``step``, sequence dashes by ``dash``
    columns past their key (0 = ``key:\\n- item``, 2 or 4 = indented items)."""

    step: int = 2
    dash: int = 0


def detect_style(text: str) -> Style:
    """The indentation the file already uses (talosctl writes 4 and 4, PyYAML 2 and 0)."""
    import yaml

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return Style()
    steps: list[int] = []
    dashes: list[int] = []

    def walk(node: Any) -> None:
        if isinstance(node, yaml.MappingNode) and not node.flow_style:
            for key, value in node.value:
                if isinstance(value, yaml.MappingNode) and not value.flow_style and value.value:
                    child = value.value[0][0]
                    if child.start_mark.line > key.start_mark.line:
                        steps.append(child.start_mark.column - key.start_mark.column)
                if isinstance(value, yaml.SequenceNode) and not value.flow_style and value.value:
                    item = value.value[0]
                    if item.start_mark.line > key.start_mark.line:
                        dashes.append(item.start_mark.column - 2 - key.start_mark.column)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    walk(root)
    step = steps[0] if steps and steps[0] > 0 else 2
    dash = dashes[0] if dashes and dashes[0] >= 0 else 0
    return Style(step, dash)


def scalar(value: Any) -> str:
    """One YAML scalar as it would appear after ``key: `` (quoted only when it must be)."""
    import yaml

    if value is None:
        return "null"
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, allow_unicode=True)
    text = text.rstrip("\n")
    return text.removesuffix("\n...").rstrip("\n")


def render_entry(key: str, value: Any, column: int, style: Style) -> list[str]:
    """Lines (each ending in a newline) for ``key: value`` with the key at ``column``."""
    pad = " " * column
    k = scalar(key)
    if isinstance(value, dict):
        if not value:
            return [f"{pad}{k}: {{}}\n"]
        lines = [f"{pad}{k}:\n"]
        for sub_key, sub_value in value.items():
            lines += render_entry(str(sub_key), sub_value, column + style.step, style)
        return lines
    if isinstance(value, list | tuple):
        if not value:
            return [f"{pad}{k}: []\n"]
        lines = [f"{pad}{k}:\n"]
        dash = " " * (column + style.dash)
        for item in value:
            if isinstance(item, dict | list | tuple):
                raise CannotSplice("nested collections inside a sequence")
            lines.append(f"{dash}- {scalar(item)}\n")
        return lines
    return [f"{pad}{k}: {scalar(value)}\n"]


def _last_line(node: Any) -> int:
    """The last line (0-based) that belongs to ``node``'s value."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        end = node.end_mark
        # block scalars (| >) end at column 0 of the line after their last one
        if node.style in ("|", ">") and end.column == 0 and end.line > node.start_mark.line:
            return end.line - 1
        return end.line
    if node.flow_style or not node.value:
        return node.end_mark.line
    last = node.value[-1]
    return _last_line(last[1] if isinstance(node, yaml.MappingNode) else last)


def _owns_line(text_lines: list[str], node: Any) -> bool:
    """True when ``node`` is the first thing on its line (so the whole line is its entry)."""
    line = text_lines[node.start_mark.line]
    return line[: node.start_mark.column].strip() == ""


def _find(root: Any, path: KeyPath) -> Any:
    import yaml

    node = root
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            raise CannotSplice(f"{'.'.join(path)}: not a mapping")
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                node = v
                break
        else:
            raise CannotSplice(f"{'.'.join(path)}: no such mapping")
    return node


def set_key(text: str, path: KeyPath, value: Any, *, style: Style | None = None) -> str:
    """``text`` with the mapping at ``path[:-1]`` holding ``path[-1]: value`` (or without
    the key when ``value`` is :data:`DELETE`). Raises :class:`CannotSplice`."""
    import yaml

    style = style or detect_style(text)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise CannotSplice(f"not valid YAML: {exc}") from None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    parent = _find(root, path[:-1]) if root is not None else None
    if not isinstance(parent, yaml.MappingNode) or parent.flow_style or not parent.value:
        raise CannotSplice(f"{'.'.join(path[:-1]) or 'the document'} is not a non-empty block mapping")
    name = path[-1]
    for k, v in parent.value:
        if isinstance(k, yaml.ScalarNode) and k.value == name:
            if not _owns_line(lines, k):
                raise CannotSplice(f"{'.'.join(path)} shares its line with something else")
            first, last = k.start_mark.line, _last_line(v)
            new = [] if value is DELETE else render_entry(name, value, k.start_mark.column, style)
            lines[first : last + 1] = new
            return "".join(lines)
    if value is DELETE:
        return text
    first_key = parent.value[0][0]
    if not _owns_line(lines, first_key):
        raise CannotSplice(f"{'.'.join(path[:-1])} does not start on its own line")
    after = _last_line(parent.value[-1][1])
    lines[after + 1 : after + 1] = render_entry(name, value, first_key.start_mark.column, style)
    return "".join(lines)


def splice(text: str, changes: Sequence[tuple[KeyPath, Any]], *, expected: Any) -> str:
    """Apply every ``(path, value)`` in order, then check that the result parses to
    ``expected``; :class:`CannotSplice` when any step or the check fails."""
    import yaml

    style = detect_style(text)
    out = text
    for path, value in changes:
        out = set_key(out, path, value, style=style)
    try:
        parsed = yaml.safe_load(out)
    except yaml.YAMLError as exc:
        raise CannotSplice(f"the edited text does not parse: {exc}") from None
    if parsed != expected:
        raise CannotSplice("the edited text does not hold the expected data")
    return out
