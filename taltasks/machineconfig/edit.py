"""Change a few fields of a node's running machine config, keeping the rest as written.

``talosctl upgrade-k8s`` reads the node's config (COSI ``MachineConfig``), sets one image
and applies the result without a reboot. Re-encoding the whole config from plain data
would drop its comments and reorder keys, and the node's next dry-run diff would be noise,
so :func:`set_fields` edits one document — the ``v1alpha1`` one, or a contract-1.14
document such as ``KubeAPIServerConfig`` named by ``kind`` — through ruamel's round-trip
mode and leaves every other document and comment alone. It then re-reads the result and checks
that nothing but the requested fields changed — an edit that would alter anything else is
refused rather than applied.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from taltasks.errors import OperationFailed

FieldPath = tuple[str, ...]


def _is(doc: Any, kind: str | None) -> bool:
    if not isinstance(doc, dict):
        return False
    return doc.get("kind") == kind if kind else doc.get("version") == "v1alpha1"


def has_document(raw: bytes, kind: str) -> bool:
    """True when the config holds a document of ``kind``."""
    import yaml

    return any(_is(doc, kind) for doc in yaml.safe_load_all(raw.decode("utf-8")))


def get_field(raw: bytes, path: FieldPath, *, kind: str | None = None) -> Any:
    """The value at ``path`` in the ``v1alpha1`` document, or in the first document of
    ``kind`` (None when absent)."""
    import yaml

    from taltasks.machineconfig.docmap import lookup

    for doc in yaml.safe_load_all(raw.decode("utf-8")):
        if _is(doc, kind):
            return lookup(doc, path)
    return None


def set_fields(
    raw: bytes, changes: Mapping[FieldPath, Any], *, where: str | None = None, kind: str | None = None
) -> bytes:
    """``raw`` with each ``path → value`` of ``changes`` set in the ``v1alpha1`` document (or
    the first document of ``kind``; missing mappings on the way are created).
    :class:`OperationFailed` when the config has no such document or the edit would change
    anything else."""
    import yaml
    from ruamel.yaml import YAML

    rt = YAML(typ="rt")
    rt.width = 1 << 16  # never fold long lines (certificates, tokens)
    rt.preserve_quotes = True
    docs = list(rt.load_all(raw.decode("utf-8")))
    target = next((d for d in docs if _is(d, kind)), None)
    if target is None:
        raise OperationFailed(f"the running config has no {kind or 'v1alpha1'} document", where=where)
    for path, value in changes.items():
        set_in(target, path, value)
    out = io.StringIO()
    if len(docs) == 1:
        rt.dump(docs[0], out)
    else:
        rt.explicit_start = raw.lstrip().startswith(b"---")
        rt.dump_all(docs, out)
    result = out.getvalue().encode("utf-8")

    expected = [d for d in yaml.safe_load_all(raw.decode("utf-8")) if d is not None]
    for doc in expected:
        if _is(doc, kind):
            for path, value in changes.items():
                set_in(doc, path, value)
            break
    actual = [d for d in yaml.safe_load_all(result.decode("utf-8")) if d is not None]
    if actual != expected:
        raise OperationFailed(
            "editing the running config would change more than the requested fields; nothing was applied",
            where=where,
            hint="report this with the node's config (`talosctl get mc -o yaml`, secrets removed)",
        )
    return result


def set_in(doc: Any, path: FieldPath, value: Any) -> None:
    """Set ``doc[path[0]][path[1]]… = value``, creating (or replacing non-mapping) levels."""
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
