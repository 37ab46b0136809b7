"""What validation reports: one :class:`Finding` per problem, errors and warnings alike.

A finding says how bad it is, for which node, in which document (``v1alpha1`` or
``Kind[/name]``), at which key path, what is wrong, where the value was written
(``file:line`` — a patch's own line when a patch wrote it) and how to fix it. Values in
messages are printed as YAML (``true``, not Python's ``True``) so they read like the file
the user wrote.

:class:`FindingsError` turns the errors of a run into one :class:`InputError` (nothing is
written when it is raised); warnings travel separately and never stop a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from taltasks.errors import InputError

Severity = Literal["error", "warning"]
KeyPath = tuple[str | int, ...]

# A config holds a handful of documents; more than this many errors are summarised.
MAX_LISTED = 20


def yaml_value(value: Any) -> str:
    """``value`` as YAML writes it, on one line: ``true``, ``null``, ``"1"``, ``[a, b]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _yaml_string(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{yaml_value(k)}: {yaml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return _yaml_string(str(value))


_PLAIN_UNSAFE = frozenset(":#{}[],&*!|>'\"%@`")
_RESERVED = frozenset({"true", "false", "null", "~", ""})  # YAML 1.2, as go-yaml reads it


def _yaml_string(text: str) -> str:
    """A string quoted only when YAML would read it as something else."""
    looks_scalar = text.lower() in _RESERVED or _is_number(text)
    if (
        looks_scalar
        or text != text.strip()
        or any(c in _PLAIN_UNSAFE for c in text[:1])
        or ": " in text
        or " #" in text
        or "\n" in text
        or len(text) > 60
    ):
        if len(text) > 60:
            text = text[:57] + "..."
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def _is_number(text: str) -> bool:
    try:
        float(text.replace("_", ""))
    except ValueError:
        return text.lower().startswith(("0x", "0o")) and len(text) > 2
    return True


def dotted(path: Sequence[str | int]) -> str:
    """``machine.network.interfaces[0].vip`` for a key path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def document_label(doc: dict[str, Any]) -> str:
    """``v1alpha1`` for the legacy document, else ``Kind`` or ``Kind/name``."""
    kind = doc.get("kind")
    if not kind:
        return "v1alpha1"
    name = doc.get("name")
    return f"{kind}/{name}" if name else str(kind)


@dataclass(frozen=True)
class Finding:
    """One problem (``error``) or notice (``warning``) about a machine config."""

    severity: Severity
    message: str
    node: str | None = None
    document: str = "v1alpha1"
    path: KeyPath = ()
    location: str | None = None  # file:line where the value was written
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def subject(self) -> str:
        """``v1alpha1 machine.sysctls.foo`` — what the finding is about."""
        return f"{self.document} {dotted(self.path)}" if self.path else self.document

    def line(self, *, with_node: bool = True) -> str:
        """One line: ``file:line: node cp-1: v1alpha1 machine.x: message``."""
        parts = []
        if self.location:
            parts.append(self.location)
        if with_node and self.node:
            parts.append(f"node {self.node}")
        parts.append(self.subject)
        return ": ".join(parts) + f": {self.message}"

    def render(self, *, with_node: bool = True) -> str:
        text = self.line(with_node=with_node)
        return f"{text}\n  hint: {self.hint}" if self.hint else text


def group_by_node(findings: Iterable[Finding]) -> list[tuple[Finding, list[str]]]:
    """Each distinct finding once, with the nodes it holds for, in the order found: a patch
    or a talconfig line that a group of nodes shares is one problem, not one per node."""
    grouped: dict[tuple, tuple[Finding, list[str]]] = {}
    for f in findings:
        key = (f.severity, f.location, f.subject, f.message, f.hint)
        _, nodes = grouped.setdefault(key, (f, []))
        if f.node and f.node not in nodes:
            nodes.append(f.node)
    return list(grouped.values())


def nodes_label(nodes: Sequence[str], all_nodes: Sequence[str] = ()) -> str:
    """``node cp-1``, ``nodes cp-1, cp-2``, ``all 6 nodes`` (``all_nodes``: the run's nodes)."""
    if len(nodes) > 1 and set(nodes) == set(all_nodes):
        return f"all {len(nodes)} nodes"
    shown = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
    return f"node{'s' if len(nodes) > 1 else ''} {shown}"


def grouped_lines(findings: Iterable[Finding], all_nodes: Sequence[str] = ()) -> list[str]:
    """``findings`` for display, each distinct one once (:func:`group_by_node`) followed by
    the nodes it holds for."""
    return [_group_line(f, nodes, all_nodes) for f, nodes in group_by_node(findings)]


def _group_line(f: Finding, nodes: Sequence[str], all_nodes: Sequence[str]) -> str:
    text = f.line(with_node=False) + (f" ({nodes_label(nodes, all_nodes)})" if nodes else "")
    return text + (f"\n  hint: {f.hint}" if f.hint else "")


@dataclass
class Findings:
    """Findings of one run, in the order found, with duplicates across nodes merged."""

    items: list[Finding] = field(default_factory=list)
    _seen: set[tuple] = field(default_factory=set, repr=False)

    def add(self, finding: Finding) -> None:
        key = (finding.severity, finding.node, finding.location, finding.subject, finding.message)
        if key not in self._seen:
            self._seen.add(key)
            self.items.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self.add(f)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.items if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.items if not f.is_error]

    def warning_lines(self, all_nodes: Sequence[str] = ()) -> list[str]:
        """Warnings for display; one that holds for several nodes is shown once, naming them
        (or saying "all N nodes" when it holds for every node of ``all_nodes``)."""
        return grouped_lines(self.warnings, all_nodes)

    def raise_errors(self, title: str) -> None:
        """Raise :class:`FindingsError` when there is at least one error."""
        if self.errors:
            raise FindingsError(self.errors, title)


class FindingsError(InputError):
    """The errors that refuse a run; ``findings`` keeps them for callers and tests."""

    def __init__(self, findings: list[Finding], title: str, *, all_nodes: Sequence[str] = ()) -> None:
        self.findings = findings
        self.title = title
        groups = group_by_node(findings)
        if len(groups) == 1:
            f, nodes = groups[0]
            node = f"{nodes_label(nodes, all_nodes)}: " if nodes else ""
            super().__init__(f"{node}{title}: {f.subject}: {f.message}", where=f.location, hint=f.hint)
            return
        nodes = sorted({f.node for f in findings if f.node})
        if len(nodes) > 1:
            texts = [_group_line(f, group_nodes, all_nodes) for f, group_nodes in groups]
        else:
            texts = [f.render() for f in findings]
        shown = texts[:MAX_LISTED]
        lines = "\n".join("    " + t.replace("\n", "\n    ") for t in shown)
        more = f"\n    … and {len(texts) - MAX_LISTED} more" if len(texts) > MAX_LISTED else ""
        prefix = f"node {nodes[0]}: " if len(nodes) == 1 else ""
        super().__init__(f"{prefix}{title} ({len(texts)} problems):\n{lines}{more}")

    @classmethod
    def of_nodes(cls, refusals: Sequence[FindingsError], all_nodes: Sequence[str]) -> FindingsError:
        """One refusal for all the nodes refused in a run, so one ``configure`` shows
        everything that is wrong instead of stopping at the first node."""
        if len(refusals) == 1:
            return refusals[0]
        titles = {r.title for r in refusals}
        title = titles.pop() if len(titles) == 1 else f"the configs of {len(refusals)} nodes are not valid"
        merged = Findings()  # a patch's own problem is found again for each node using it
        for r in refusals:
            merged.extend(r.findings)
        return cls(merged.items, title, all_nodes=all_nodes)
