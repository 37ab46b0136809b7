"""Validation of machine configs as Talos itself validates them.

The pipeline per node (the agreed design, docs/configure.md "Validation"):

1. the node's documents are built — base documents, node overrides, patches — while an
   :class:`Origins` map records where each value was written (:mod:`.origins`);
2. the documents are *decoded* as Talos's loader decodes them (:mod:`.decode`): types,
   unknown keys, deprecated fields;
3. every *rule* registered for the node's contract runs (:mod:`.registry`, :mod:`.rules`);
4. each problem becomes a :class:`Finding` — severity, node, document, path, message,
   location (``file:line``), hint. Errors refuse the run before anything is written
   (:class:`FindingsError`); warnings are shown and change nothing.

Strategic patches are decoded on their own first (:func:`decode_patch`), as Talos's patch
loader does, so a misspelt key is reported at the patch's line.
"""

from __future__ import annotations

from taltasks.machineconfig.validate.engine import (
    checked_documents,
    checked_patch,
    decode_patch,
    schema_note,
    validate_documents,
)
from taltasks.machineconfig.validate.findings import (
    Finding,
    Findings,
    FindingsError,
    Severity,
    document_label,
    dotted,
    yaml_value,
)
from taltasks.machineconfig.validate.origins import InPatch, Origin, Origins, Written
from taltasks.machineconfig.validate.registry import Mode, Rule, RuleContext, rule, rules_for

__all__ = [
    "Finding",
    "Findings",
    "FindingsError",
    "InPatch",
    "Mode",
    "Origin",
    "Origins",
    "Rule",
    "RuleContext",
    "Severity",
    "Written",
    "checked_documents",
    "checked_patch",
    "decode_patch",
    "document_label",
    "dotted",
    "rule",
    "rules_for",
    "schema_note",
    "validate_documents",
    "yaml_value",
]
