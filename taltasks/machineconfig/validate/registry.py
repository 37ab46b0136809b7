"""The one place rules are registered, each for the range of contracts it belongs to.

A rule is a function of a :class:`RuleContext` that reports findings through
``ctx.error`` / ``ctx.warning``. It is registered with :func:`rule`, naming the first and
last version contract it applies to (both inclusive, open-ended when left out)::

    @rule("kubelet-config-exclusive", first="1.14")
    def _kubelet_exclusive(ctx: RuleContext) -> None:
        for doc in ctx.documents("KubeletConfig"):
            if ctx.machine.get("kubelet"):
                ctx.error(ctx.v1alpha1, ("machine", "kubelet"), "…", hint="…")

Every module in :mod:`taltasks.machineconfig.validate.rules` is imported when rules are
first asked for, so a new rule module plugs in by existing — the engine does not change.
Findings are located through the node's provenance map: a rule names the document and
key path, and the context turns that into the ``file:line`` that wrote the value.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.merge import doc_id
from taltasks.machineconfig.validate.findings import Finding, KeyPath, Severity, document_label
from taltasks.machineconfig.validate.origins import Origins

Mode = Literal["metal", "cloud", "container"]
Version = tuple[int, int]


@dataclass
class RuleContext:
    """What a rule sees: one node's final documents, its contract and mode, and a way to report."""

    docs: list[dict[str, Any]]
    contract: VersionContract
    mode: Mode = "metal"
    node: str | None = None
    origins: Origins | None = None
    findings: list[Finding] = field(default_factory=list)

    # ---- documents ------------------------------------------------------------------------

    @cached_property
    def v1alpha1(self) -> dict[str, Any] | None:
        """The legacy v1alpha1 document (``None`` when the config has none)."""
        return next((d for d in self.docs if not d.get("kind")), None)

    @property
    def machine(self) -> dict[str, Any]:
        value = (self.v1alpha1 or {}).get("machine")
        return value if isinstance(value, dict) else {}

    @property
    def cluster(self) -> dict[str, Any]:
        value = (self.v1alpha1 or {}).get("cluster")
        return value if isinstance(value, dict) else {}

    @property
    def control_plane(self) -> bool:
        return self.machine.get("type") in ("controlplane", "init")

    def documents(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    # ---- reporting -------------------------------------------------------------------------

    def error(self, doc: dict[str, Any] | None, path: Sequence[str | int], message: str, **kw: Any) -> None:
        self.report("error", doc, path, message, **kw)

    def warning(self, doc: dict[str, Any] | None, path: Sequence[str | int], message: str, **kw: Any) -> None:
        self.report("warning", doc, path, message, **kw)

    def report(
        self,
        severity: Severity,
        doc: dict[str, Any] | None,
        path: Sequence[str | int],
        message: str,
        *,
        hint: str | None = None,
        document: str | None = None,
    ) -> None:
        """Add a finding about ``path`` in ``doc`` (``None``: the config as a whole)."""
        keys: KeyPath = tuple(path)
        location = None
        if self.origins is not None:
            location = self.origins.locate(doc_id(doc), keys) if doc is not None else self.origins.default
        label = document or (document_label(doc) if doc is not None else "config")
        self.findings.append(Finding(severity, message, self.node, label, keys, location, hint))

    def user_set(self, doc: dict[str, Any], path: Sequence[str | int]) -> bool:
        """True when the value at ``path`` was written by the user (talconfig or a patch),
        not by the generator."""
        return self.origins is not None and self.origins.recorded(doc_id(doc), tuple(path))


@dataclass(frozen=True)
class Rule:
    """A named check for the contracts ``first``..``last`` (inclusive; ``None`` = open)."""

    name: str
    check: Callable[[RuleContext], None]
    first: Version | None = None
    last: Version | None = None

    def applies(self, contract: VersionContract) -> bool:
        key = contract.key
        return (self.first is None or key >= self.first) and (self.last is None or key <= self.last)


_RULES: dict[str, Rule] = {}
_loaded = False


def _version(text: str | None) -> Version | None:
    if text is None:
        return None
    major, minor = text.removeprefix("v").split(".")[:2]
    return (int(major), int(minor))


def rule(name: str, *, first: str | None = None, last: str | None = None):
    """Register the decorated function as rule ``name`` for contracts ``first``..``last``."""

    def register(fn: Callable[[RuleContext], None]) -> Callable[[RuleContext], None]:
        if name in _RULES and _RULES[name].check is not fn:
            raise ValueError(f"validation rule {name!r} is registered twice")
        _RULES[name] = Rule(name, fn, _version(first), _version(last))
        return fn

    return register


def _load_rule_modules() -> None:
    global _loaded
    if _loaded:
        return
    from taltasks.machineconfig.validate import rules as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        importlib.import_module(f"{package.__name__}.{info.name}")
    _loaded = True


def all_rules() -> list[Rule]:
    _load_rule_modules()
    return list(_RULES.values())


def rules_for(contract: VersionContract) -> list[Rule]:
    """The rules that apply to ``contract``, in registration order."""
    return [r for r in all_rules() if r.applies(contract)]
