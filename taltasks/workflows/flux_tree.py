"""The repository's Flux tree (``kubernetes/``) read as data, for tools that act before Flux.

Bootstrap has to install the CNI before Flux can run, and it must install it the way Flux
later will — same chart, same values — or the two fight. :class:`FluxTree` reads every
manifest under ``kubernetes/`` (chart directories excluded: their templates are not YAML
yet) plus the ConfigMaps and Secrets that kustomize ``configMapGenerator`` /
``secretGenerator`` entries produce, remembering ``file:line`` for every object so errors
point into the tree. :meth:`FluxTree.namespace_of` resolves an object's namespace as Flux
would: its own, else the ``targetNamespace`` of the Flux Kustomization whose ``path`` holds
it, else the nearest ``kustomization.yaml`` ``namespace``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from taltasks.errors import InputError
from taltasks.yamlpos import YamlDoc

TREE = "kubernetes"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class TreeObject:
    """One manifest of the tree (or one a kustomize generator makes)."""

    data: dict[str, Any]
    doc: YamlDoc
    file: Path  # absolute
    keys: tuple[str | int, ...] = ()  # where inside ``doc`` (non-empty for generated objects)
    generated: bool = False

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.data.get("metadata") or {}).get("name", ""))

    def where(self, *keys: str | int) -> str:
        return self.doc.where((*self.keys, *keys))

    def error(self, keys: tuple[str | int, ...], message: str, *, hint: str | None = None) -> InputError:
        return self.doc.error((*self.keys, *keys), message, hint=hint)


@dataclass
class FluxTree:
    root: Path
    objects: list[TreeObject] = field(default_factory=list)
    kustomizations: dict[Path, TreeObject] = field(default_factory=dict)  # directory → kustomization.yaml

    @classmethod
    def load(cls, root: Path) -> FluxTree:
        root = Path(root)
        base = root / TREE
        if not base.is_dir():
            raise InputError(
                f"no {TREE}/ folder in {root}",
                hint="install-cni reads the Cilium HelmRelease from the repository's Flux tree (kubernetes/…)",
            )
        tree = cls(root)
        charts = {p.parent for p in base.rglob("Chart.yaml")}
        for path in sorted([*base.rglob("*.yaml"), *base.rglob("*.yml")]):
            if any(c == path.parent or c in path.parents for c in charts):
                continue
            display = str(path.relative_to(root))
            for doc in YamlDoc.load_all(path, display=display):
                data = doc.plain()
                if not isinstance(data, dict):
                    continue
                obj = TreeObject(data, doc, path)
                if path.name in KUSTOMIZATION_FILES and _is_kustomize(data):
                    tree.kustomizations[path.parent] = obj
                    tree.objects += tree._generated(obj)
                elif data.get("kind") and data.get("apiVersion"):
                    tree.objects.append(obj)
        return tree

    # ---- lookups ------------------------------------------------------------------------

    def find(self, kind: str, name: str | None = None, *, api_group: str | None = None) -> list[TreeObject]:
        return [
            o
            for o in self.objects
            if o.kind == kind
            and (name is None or o.name == name)
            and (api_group is None or str(o.data.get("apiVersion", "")).split("/")[0] == api_group)
        ]

    def namespace_of(self, obj: TreeObject) -> str | None:
        explicit = (obj.data.get("metadata") or {}).get("namespace")
        if explicit:
            return str(explicit)
        directory = obj.file.parent
        for ks in self.find("Kustomization", api_group="kustomize.toolkit.fluxcd.io"):
            spec = ks.data.get("spec") or {}
            target, path = spec.get("targetNamespace"), spec.get("path")
            if target and path and self._resolve(str(path)) == directory:
                return str(target)
        for candidate in (directory, *directory.parents):
            ks = self.kustomizations.get(candidate)
            if ks is not None and ks.data.get("namespace"):
                return str(ks.data["namespace"])
            if candidate == self.root:
                break
        return None

    def _resolve(self, flux_path: str) -> Path:
        """A Flux Kustomization ``spec.path`` (relative to the source root) as a directory."""
        return self.root.joinpath(*PurePosixPath(flux_path.lstrip("/")).parts).resolve()

    # ---- kustomize generators -------------------------------------------------------------

    def _generated(self, ks: TreeObject) -> list[TreeObject]:
        out = []
        for key, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
            for i, entry in enumerate(ks.data.get(key) or []):
                if not isinstance(entry, dict) or not entry.get("name"):
                    raise ks.doc.error((key, i), f"a {key} entry needs a name")
                data: dict[str, str] = {}
                for j, item in enumerate(entry.get("files") or []):
                    name, _, rel = str(item).partition("=") if "=" in str(item) else ("", "", str(item))
                    source = ks.file.parent / rel
                    try:
                        text = source.read_text(encoding="utf-8")
                    except OSError as exc:
                        raise ks.doc.error(
                            (key, i, "files", j), f"cannot read {rel}: {exc.strerror or exc}"
                        ) from None
                    data[name or Path(rel).name] = text
                for literal in entry.get("literals") or []:
                    k, _, v = str(literal).partition("=")
                    data[k] = v
                metadata: dict[str, Any] = {"name": entry["name"]}
                if entry.get("namespace") or ks.data.get("namespace"):
                    metadata["namespace"] = entry.get("namespace") or ks.data.get("namespace")
                obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
                if kind == "Secret":
                    obj["stringData"] = data
                else:
                    obj["data"] = data
                out.append(TreeObject(obj, ks.doc, ks.file, (key, i), generated=True))
        return out


def _is_kustomize(data: dict[str, Any]) -> bool:
    return str(data.get("apiVersion", "")).startswith("kustomize.config.k8s.io") or not data.get("kind")


def secret_data(obj: TreeObject, root: Path) -> dict[str, str]:
    """A Secret's values as text: ``stringData`` as is, ``data`` base64-decoded, a
    SOPS-encrypted file decrypted first (with the checkout's age key setup)."""
    data = obj.data
    if "sops" in data and not obj.generated:
        import yaml

        from taltasks.secrets import age, sops

        plain = sops.decrypt(
            obj.file, root=root, display=str(obj.file.relative_to(root)), env=age.sops_environment(root)
        )
        docs = [d for d in yaml.safe_load_all(plain) if isinstance(d, dict)]
        data = next(
            (
                d
                for d in docs
                if d.get("kind") == "Secret" and (d.get("metadata") or {}).get("name") == obj.name
            ),
            docs[0] if docs else {},
        )
    out = {str(k): str(v) for k, v in (data.get("stringData") or {}).items()}
    for k, v in (data.get("data") or {}).items():
        try:
            out[str(k)] = base64.b64decode(str(v)).decode("utf-8")
        except ValueError:
            raise obj.error(("data", k), f"Secret {obj.name}: {k} is not valid base64") from None
    return out
