#!/usr/bin/env python3
"""Set up a local environment and run the demo or the test suite.

    python3 dev.py demo          # install into .venv, then run `invoke demo` on a simulated cluster
    python3 dev.py test [ARGS]   # install into .venv, then run the whole test suite (ARGS go to pytest)
    python3 dev.py invoke ARGS   # install into .venv, then run any invoke task

Only the Python standard library is used here, so this works on a fresh machine with nothing
but Python >= 3.11. When the interpreter lacks `ensurepip` (Debian without python3-venv), the
virtualenv is created without pip and pip is fetched as a zipapp from bootstrap.pypa.io.
The install is skipped when pyproject.toml has not changed since the last one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("TALTASKS_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".taltasks-installed"
PIP_ZIPAPP = "https://bootstrap.pypa.io/pip/pip.pyz"


def _say(msg: str) -> None:
    print(f"dev.py: {msg}", file=sys.stderr, flush=True)


def _install_fingerprint() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def _pip(*args: str) -> None:
    """Run pip inside the virtualenv, using the zipapp when the venv has no pip of its own."""
    if (BIN / "pip").exists():
        cmd = [str(PY), "-m", "pip", *args]
    else:
        pyz = VENV / "pip.pyz"
        if not pyz.exists():
            _say(f"this Python has no ensurepip; fetching pip from {PIP_ZIPAPP}")
            urllib.request.urlretrieve(PIP_ZIPAPP, pyz)
        cmd = [str(PY), str(pyz), *args]
    proc = subprocess.run(
        [*cmd, "--disable-pip-version-check", "--quiet"], stderr=subprocess.PIPE, text=True, check=False
    )
    # some machines configure pip with mirror folders that do not exist; pip warns about each
    # one on every install, which buries the messages that matter
    noise = "is ignored: it is neither a file nor a directory"
    sys.stderr.write("".join(line for line in proc.stderr.splitlines(keepends=True) if noise not in line))
    if proc.returncode != 0:
        raise SystemExit(f"dev.py: pip failed (exit {proc.returncode}); see the messages above")


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"dev.py: taltasks needs Python >= 3.11, this is {sys.version.split()[0]}")
    if not PY.exists():
        _say(f"creating virtualenv {VENV}")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except (subprocess.CalledProcessError, OSError):
            venv.EnvBuilder(with_pip=False, clear=True).create(VENV)
    fingerprint = _install_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    _say("installing taltasks and its test tools (first run only)")
    _pip("install", "-e", f"{ROOT}[dev]")
    STAMP.write_text(fingerprint)


def compile_bytecode() -> None:
    """Precompile the project: with PYTHONDONTWRITEBYTECODE=1 nothing else would, and every run
    would pay for compiling every module again (see python-ecosystem notes, pitfall P1)."""
    subprocess.run(
        [str(PY), "-m", "compileall", "-q", "-j", "0", str(ROOT / "taltasks"), str(ROOT / "tasks.py")],
        check=False,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "invoke"}:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ensure_environment()
    compile_bytecode()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command, rest = argv[0], argv[1:]
    if command == "demo":
        cmd = [str(BIN / "invoke"), "demo", *rest]
    elif command == "invoke":
        cmd = [str(BIN / "invoke"), *rest]
    else:
        cmd = [str(PY), "-m", "pytest", *rest]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
