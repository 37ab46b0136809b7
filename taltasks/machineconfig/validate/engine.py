"""The validation pipeline for one node's documents: decode as Talos loads them, then rules.

:func:`validate_documents` runs on every node ``configure`` renders (and on
``talos.gen-config`` output): first the *decode* step (types, unknown keys, deprecated
fields — what Talos's loader checks), then, when decoding found no error, every rule
registered for the node's contract. Findings are located through the node's
:class:`~taltasks.machineconfig.validate.origins.Origins` map.

:func:`decode_patch` runs the decode step on a strategic patch on its own, as Talos's patch
loader does: a wrong key or type is reported at the patch's own line before any merge, and
the patch's values are coerced (``1`` into a string field becomes ``"1"``) before they are
merged.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.merge import doc_id
from taltasks.machineconfig.validate.decode import Decoder
from taltasks.machineconfig.validate.findings import Finding, Findings, KeyPath, Severity, document_label
from taltasks.machineconfig.validate.origins import InPatch, Origins
from taltasks.machineconfig.validate.typemodel import model, model_note

if TYPE_CHECKING:
    from taltasks.machineconfig.patches import Patch
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
    raw_text: Callable[[int, KeyPath], str | None] | None = None,
) -> list[Finding]:
    """The decode step alone; ``docs`` are coerced in place to what Talos would load.

    ``partial``: the documents are a patch (no deprecation warnings: the node's final
    documents report those, where provenance tells user input from generated values)."""
    idents = [doc_id(d) for d in docs]
    out: list[Finding] = []

    def report(index: int, severity: Severity, path: KeyPath, message: str, hint: str | None) -> None:
        location = origins.locate(idents[index], path) if origins is not None else None
        out.append(Finding(severity, message, node, document_label(docs[index]), path, location, hint))

    user_set = None
    as_written = raw_text is not None
    if origins is not None:

        def user_set(index: int, path: KeyPath) -> bool:
            return origins.recorded(idents[index], path)

        if raw_text is None:  # values JSON patches wrote, as go-yaml resolved them

            def raw_text(index: int, path: KeyPath) -> str | None:
                return origins.scalar_text(idents[index], path)

    decoder = Decoder(
        model(contract.key),
        report,
        partial=partial,
        user_set=user_set,
        raw_text=raw_text,
        as_written=as_written,
    )
    decoder.documents(docs)
    return out


def decode_patch(patch: Patch, contract: VersionContract) -> tuple[Patch, list[Finding]]:
    """A strategic patch decoded on its own for ``contract``, as Talos's patch loader does:
    the returned copy holds coerced values; findings name the patch's own lines. JSON
    patches have no documents to decode (their result is checked with the node's config)."""
    if patch.is_json or not patch.documents:
        return patch, []
    docs = copy.deepcopy(patch.documents)
    origins = Origins(patch.where())
    for i, doc in enumerate(docs):
        origins.record(doc_id(doc), (), InPatch(patch, patch.raw_index(i), ()))

    def raw_text(index: int, path: KeyPath) -> str | None:
        return patch.scalar_text(patch.raw_index(index), path)

    findings = decode_findings(docs, contract, origins=origins, partial=True, raw_text=raw_text)
    return dataclasses.replace(patch, documents=docs), findings


def checked_patch(patch: Patch, contract: VersionContract) -> Patch:
    """:func:`decode_patch`'s coerced copy; :class:`FindingsError` (at the patch's own
    lines) when the patch does not decode for ``contract``."""
    decoded, findings = decode_patch(patch, contract)
    found = Findings()
    found.extend(findings)
    found.raise_errors(f"patch for Talos {contract}")
    return decoded


def checked_documents(
    docs: list[dict[str, Any]],
    contract: VersionContract,
    *,
    title: str,
    mode: Mode = "metal",
    node: str | None = None,
    origins: Origins | None = None,
) -> list[Finding]:
    """:func:`validate_documents` for a config about to be written: its errors refuse
    (:class:`FindingsError` headed ``title``), its warnings are returned."""
    found = Findings()
    found.extend(validate_documents(docs, contract, mode=mode, node=node, origins=origins))
    found.raise_errors(title)
    return found.warnings


def schema_note(contract: VersionContract) -> str | None:
    """A note to show when the contract has no schema of its own in the package."""
    return model_note(contract.key)
