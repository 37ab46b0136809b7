"""Save a kubeconfig fetched from Talos: merged into the user's, or as a new file.

Merging replaces entries (cluster, user, context) of the same name — re-fetching after a
re-bootstrap must update them, not pile up ``admin@cluster-1`` copies — keeps everything
else, and makes the fetched context current. Files are written 0600 atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taltasks.errors import InputError


def default_path() -> Path:
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path.home() / ".kube" / "config"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_new(text: str, out: str | Path, *, force: bool = False) -> Path:
    path = Path(out)
    if path.exists() and not force:
        raise InputError(
            "file exists", where=str(path), hint="pass --force to overwrite, or omit --out to merge"
        )
    _write(path, text)
    return path


def merge(existing: dict[str, Any], fetched: dict[str, Any]) -> dict[str, Any]:
    out = dict(existing) if existing else {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    for section in ("clusters", "users", "contexts"):
        new = fetched.get(section) or []
        names = {e["name"] for e in new}
        out[section] = [e for e in (out.get(section) or []) if e.get("name") not in names] + list(new)
    if fetched.get("current-context"):
        out["current-context"] = fetched["current-context"]
    return out


def merge_into(text: str, path: Path | None = None) -> Path:
    import yaml

    target = path or default_path()
    fetched = yaml.safe_load(text) or {}
    existing: dict[str, Any] = {}
    if target.exists():
        try:
            existing = yaml.safe_load(target.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"existing kubeconfig is not valid YAML ({exc})", where=str(target)) from None
    _write(target, yaml.safe_dump(merge(existing, fetched), sort_keys=False))
    return target
