"""The validation pipeline for one node's documents: decode as Talos loads them, then rules.

:func:`validate_documents` runs on every node ``configure`` renders (and on
``talos.gen-config`` output): first the *decode* step (types, unknown keys, deprecated
fields — what Talos's loader checks), then, when decoding found no error, every rule
registered for the node's contract. Findings are located through the node's
:class:`~taltasks.machineconfig.validate.origins.Origins` map.

:func:`check_patch` runs the decode step on a strategic patch on its own, as Talos's patch
loader does, so a wrong key or type is reported at the patch's own line before any merge.
"""

from __future__ import annotations

from typing import Any

from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.validate import decode
from taltasks.machineconfig.validate.findings import Finding, document_label
from taltasks.machineconfig.validate.origins import Origins
from taltasks.machineconfig.validate.registry import Mode, RuleContext, rules_for


def validate_documents(
    docs: list[dict[str, Any]],
    contract: VersionContract,
    *,
    mode: Mode = "metal",
    node: str | None = None,
    origins: Origins | None = None,
) -> list[Finding]:
    """Every finding about ``docs`` (a node's final documents) for ``contract``."""
    findings = decode_findings(docs, contract, node=node, origins=origins)
    if any(f.is_error for f in findings):
        return findings  # as Talos: a config that does not decode is not validated further
    ctx = RuleContext(docs, contract, mode=mode, node=node, origins=origins, findings=findings)
    for r in rules_for(contract):
        r.check(ctx)
    return ctx.findings


def decode_findings(
    docs: list[dict[str, Any]],
    contract: VersionContract,
    *,
    node: str | None = None,
    origins: Origins | None = None,
    partial: bool = False,
) -> list[Finding]:
    """The decode step alone (``partial``: a patch, where only unknown keys are checked)."""
    from taltasks.machineconfig.merge import doc_id

    out: list[Finding] = []
    for index, path, message in decode.check_schema(docs, contract, only_unknown_keys=partial):
        doc = docs[index]
        location = origins.locate(doc_id(doc), path) if origins is not None else None
        out.append(Finding("error", message, node, document_label(doc), path, location))
    return out


def schema_note(contract: VersionContract) -> str | None:
    """A note to show when the decode step cannot use the contract's own schema."""
    return decode.schema_note(contract)


def check_patch(patch: Any, contract: VersionContract, *, node: str | None = None) -> list[Finding]:
    """Decode a strategic patch's documents on their own; findings name the patch's lines.

    ``patch`` is a :class:`taltasks.machineconfig.patches.Patch` (JSON patches have no
    documents to decode; their result is checked with the node's documents)."""
    from taltasks.machineconfig.merge import doc_id
    from taltasks.machineconfig.validate.origins import InPatch

    if patch.is_json or not patch.documents:
        return []
    origins = Origins(patch.where())
    for i, doc in enumerate(patch.documents):
        origins.record(doc_id(doc), (), InPatch(patch, patch.raw_index(i), ()))
    return decode_findings(patch.documents, contract, node=node, origins=origins, partial=True)
