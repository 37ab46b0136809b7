"""Reading a repository file that may be SOPS-encrypted, whatever its name.

talhelper decides by content, not by file name: ``talenv.yaml``, a patch, a machine file or
a manifest is decrypted whenever it carries SOPS metadata (a top-level ``sops`` mapping).
So taltasks does the same — a ``talenv.yaml`` encrypted in place is read like a
``talenv.sops.yaml``. The check is cheap (a text scan; YAML is parsed only when the scan
finds SOPS markers), and the plaintext never touches the disk (:mod:`.sops`).
"""

from __future__ import annotations

import re
from pathlib import Path

_TOP_SOPS = re.compile(r"""^(?:sops|["']sops["'])\s*:|^\s*"sops"\s*:\s*\{""", re.M)


def is_encrypted(text: str) -> bool:
    """True when ``text`` is a SOPS document: YAML or JSON with a non-empty top-level ``sops``
    mapping (SOPS's own test)."""
    if not _TOP_SOPS.search(text):
        return False
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and isinstance(data.get("sops"), dict) and bool(data["sops"])


def read_text(path: Path, *, root: Path, display: str | None = None) -> str:
    """The file's text, decrypted with the repository's age keys when it is SOPS-encrypted.
    A file that fails to decrypt is an error naming it (with the sops hint)."""
    raw = path.read_text(encoding="utf-8")
    if not is_encrypted(raw):
        return raw
    from taltasks.secrets import age, sops

    shown = display or str(path)
    return sops.decrypt(path, root=root, display=shown, env=age.sops_environment(root)).decode()
