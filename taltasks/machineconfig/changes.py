"""What changes between two machine configs, as settings rather than lines.

``talos.diff-config`` compares a node's running config with the generated one. After a
Talos 1.13 → 1.14 bump most of that difference is the *same* settings in a new place:
``machine.kubelet.extraArgs`` became ``KubeletConfig.extraArgs``. A line diff shows those
as hundreds of removed and added lines; :func:`config_changes` instead reports:

* **moved** — a v1alpha1 section whose values now sit in the 1.14 documents of the
  document map (:mod:`.docmap`), either unchanged or with the fields that changed named;
* **changed** / **added** / **removed** — values that really differ (a document added
  whole is one change, its fields listed);

and tags each real change that takes effect only at the node's next reboot
(:data:`REBOOT_ONLY`): everything else Talos 1.14 applies live. Secret values are never
shown — only that they changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from taltasks.machineconfig.diff import SECRET_KEYS
from taltasks.machineconfig.docmap import DELETE_KEY, MOVES, lookup
from taltasks.machineconfig.merge import doc_id

DocId = tuple[str, str, str]
V1 = ("", "v1alpha1", "")

# (document kind — "v1alpha1" for the legacy document —, key path prefix) → why a change there
# takes effect only at the next reboot. Sources: Talos 1.14 starts sandboxd from the boot
# sequence when SecurityProfileConfig asks for workload isolation; KernelModuleConfig
# parameters "apply after reboot"; install settings are read by the next install or upgrade;
# volumes are provisioned and mounted at boot.
REBOOT_ONLY: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("SecurityProfileConfig", (), "workload isolation (sandboxd) is set up when services start at boot"),
    ("KernelModuleConfig", ("parameters",), "module parameters apply after a reboot"),
    ("v1alpha1", ("machine", "kernel"), "module parameters apply after a reboot"),
    ("UnattendedInstallConfig", (), "read by the next install or upgrade"),
    ("v1alpha1", ("machine", "install"), "read by the next install or upgrade"),
    ("VolumeConfig", (), "volumes are provisioned and mounted at boot"),
    ("v1alpha1", ("machine", "systemDiskEncryption"), "volumes are provisioned and mounted at boot"),
    ("v1alpha1", ("machine", "disks"), "volumes are provisioned and mounted at boot"),
    ("SysfsConfig", (), "sysfs values are set at boot"),
    ("v1alpha1", ("machine", "sysfs"), "sysfs values are set at boot"),
)


@dataclass(frozen=True)
class Change:
    """One meaningful difference. ``what``: moved, changed, added or removed."""

    what: str
    subject: str  # "machine.kubelet → KubeletConfig, KubeNodeConfig" or "KubeletConfig image"
    detail: str = ""  # values (secrets masked) or the fields that changed in a move
    reboot: str | None = None  # why it takes effect only at the next reboot

    @property
    def effective(self) -> bool:
        """False for a move that changed nothing but the place."""
        return not (self.what == "moved" and not self.detail)

    def line(self) -> str:
        text = f"{self.what:<8} {self.subject}"
        if self.detail:
            text += f": {self.detail}"
        if self.reboot:
            text += f"  [next reboot: {self.reboot}]"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "subject": self.subject, "detail": self.detail, "reboot": self.reboot}


@dataclass
class ConfigChanges:
    """Every change of one node, moves first."""

    changes: list[Change] = field(default_factory=list)

    @property
    def moved(self) -> list[Change]:
        return [c for c in self.changes if c.what == "moved"]

    @property
    def reboot_only(self) -> list[Change]:
        return [c for c in self.changes if c.reboot]

    def summary(self) -> str:
        if not self.changes:
            return "no differences"
        same = sum(1 for c in self.moved if not c.effective)
        real = [c for c in self.changes if c.effective]
        parts = []
        if same:
            parts.append(f"{same} section{'s' if same != 1 else ''} moved to documents with the same values")
        if real:
            parts.append(f"{len(real)} real change{'s' if len(real) != 1 else ''}")
        if self.reboot_only:
            parts.append(f"{len(self.reboot_only)} only at the next reboot")
        return ", ".join(parts)


# ---- flattening ---------------------------------------------------------------------------------


def _label(ident: DocId) -> str:
    _api, kind, name = ident
    if ident == V1:
        return "v1alpha1"
    return f"{kind}/{name}" if name else kind


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, (*path, str(k)))
    else:
        yield path, value


def _show(path: tuple[str, ...], value: Any) -> str:
    """A value for display, masked when it is a secret (or holds one)."""
    from taltasks.machineconfig.validate import yaml_value

    if (path and path[-1] in SECRET_KEYS) or _holds_secret(value):
        return "(secret)"
    text = (value or '""') if isinstance(value, str) else yaml_value(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _holds_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k in SECRET_KEYS or _holds_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _meaningful(value: Any) -> bool:
    """Empty mappings and lists say nothing (Talos reads them as unset)."""
    return value not in ({}, [])


def _reboot(kind: str, path: tuple[str, ...]) -> str | None:
    for k, prefix, why in REBOOT_ONLY:
        if k == kind and path[: len(prefix)] == prefix:
            return why
    return None


def _docs(raw: bytes | str | list[dict[str, Any]]) -> dict[DocId, dict[str, Any]]:
    if isinstance(raw, list):
        docs = raw
    else:
        import yaml

        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    return {doc_id(d): d for d in docs}


def _body(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "name", "version")}


# ---- the comparison -----------------------------------------------------------------------------


def config_changes(
    old: bytes | str | list[dict[str, Any]], new: bytes | str | list[dict[str, Any]]
) -> ConfigChanges:
    """The changes from ``old`` (running) to ``new`` (generated)."""
    before, after = _docs(old), _docs(new)
    explained_old: set[tuple[DocId, tuple[str, ...]]] = set()
    explained_new: set[tuple[DocId, tuple[str, ...]]] = set()
    out = ConfigChanges()
    old_v1, new_v1 = before.get(V1) or {}, after.get(V1) or {}

    for moved in MOVES:
        value = lookup(old_v1, moved.old)
        if value is None or lookup(new_v1, moved.old) is not None:
            continue  # not set before, or still in the v1alpha1 document: not a move
        translation = moved.translate(value)
        targets = [d for d in translation.documents if d.get(DELETE_KEY) != "delete"]
        if not targets or not all(doc_id(d) in after for d in targets):
            continue  # its documents are not there: reported as removed/added below
        differing: list[str] = []
        reboot = None
        for tdoc in targets:
            ident = doc_id(tdoc)
            explained_new.add((ident, ()))
            for path, tvalue in _leaves(_body(tdoc)):
                if not path:
                    continue  # a document with nothing but its name
                explained_new.add((ident, path))
                nvalue = lookup(after[ident], path)
                if nvalue != tvalue:
                    where = f"{_label(ident)} {'.'.join(path)}"
                    differing.append(f"{where} {_show(path, tvalue)} → {_show(path, nvalue)}")
                    reboot = reboot or _reboot(ident[1], path)
        for path, _ in _leaves(value, moved.old):
            explained_old.add((V1, path))
        kinds = ", ".join(dict.fromkeys(_label(doc_id(d)) for d in targets))
        out.changes.append(Change("moved", f"{moved.label} → {kinds}", "; ".join(differing), reboot))

    for ident in sorted(set(before) | set(after), key=lambda i: (i != V1, i)):
        a, b = before.get(ident), after.get(ident)
        label = _label(ident)
        kind = "v1alpha1" if ident == V1 else ident[1]
        if a is None and b is not None and (ident, ()) not in explained_new:
            leaves = [
                (p, v) for p, v in _leaves(_body(b)) if (ident, p) not in explained_new and _meaningful(v)
            ]
            if leaves:
                shown = ", ".join(f"{'.'.join(p)}: {_show(p, v)}" for p, v in leaves[:4])
                shown += f", … ({len(leaves) - 4} more)" if len(leaves) > 4 else ""
                reboot = next((r for p, _ in leaves if (r := _reboot(kind, p))), None)
                out.changes.append(Change("added", f"document {label}", shown, reboot))
            continue
        if b is None and a is not None:
            leaves = [(p, v) for p, v in _leaves(_body(a)) if (ident, p) not in explained_old]
            if leaves:
                reboot = next((r for p, _ in leaves if (r := _reboot(kind, p))), None)
                out.changes.append(Change("removed", f"document {label}", "", reboot))
            continue
        old_leaves = {p: v for p, v in _leaves(_body(a or {})) if _meaningful(v)}
        new_leaves = {p: v for p, v in _leaves(_body(b or {})) if _meaningful(v)}
        for path in list(dict.fromkeys([*old_leaves, *new_leaves])):
            if (ident, path) in explained_old or (ident, path) in explained_new:
                continue
            ov, nv = old_leaves.get(path), new_leaves.get(path)
            if path in old_leaves and path in new_leaves and ov == nv:
                continue
            subject = f"{label} {'.'.join(path)}" if path else label
            reboot = _reboot(kind, path)
            if path not in old_leaves:
                out.changes.append(Change("added", subject, _show(path, nv), reboot))
            elif path not in new_leaves:
                out.changes.append(Change("removed", subject, _show(path, ov), reboot))
            else:
                out.changes.append(
                    Change("changed", subject, f"{_show(path, ov)} → {_show(path, nv)}", reboot)
                )
    return out
