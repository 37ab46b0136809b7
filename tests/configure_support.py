"""Shared helpers for the configure tests: a throw-away copy of the shipped demo repository
and a snapshot of a tree to prove that nothing was written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from testpaths import REPO_ROOT

DEMO_FILES = (".sops.yaml", "talos", "kubernetes")
# The demo repository as it was before its move to Talos 1.14: patches in the v1alpha1 form
# (what contracts 1.8-1.13 read) and the pins most tests were written for. `invoke demo`
# starts from the same patches (taltasks.workflows.demo.BEFORE_1_14).
BEFORE_1_14 = REPO_ROOT / "tests" / "scenarios" / "demo-before-1.14"
PINS_BEFORE_1_14 = {"talosVersion": "v1.11.5", "kubernetesVersion": "v1.34.3"}


def copy_demo(dest: Path, *, with_secrets: bool = True, shipped: bool = False) -> Path:
    """The demo's talos/ folder and .sops.yaml, without generated output: as it was before
    Talos 1.14 (v1alpha1-form patches, Talos v1.11.5 / Kubernetes v1.34.3) unless
    ``shipped`` asks for the repository as shipped (Talos 1.14, its documents)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in DEMO_FILES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("clusterconfig"))
        else:
            shutil.copy2(src, dest / name)
    if not shipped:
        shutil.rmtree(dest / "talos" / "patches")
        shutil.copytree(BEFORE_1_14 / "patches", dest / "talos" / "patches")
        set_pins(dest, PINS_BEFORE_1_14)
    if not with_secrets:
        (dest / "talos" / "talsecret.sops.yaml").unlink()
    return dest


def set_pins(repo: Path, pins: dict[str, str]) -> None:
    """Set ``NAME: value`` pins in talos/talenv.yaml, keeping comments and order."""
    import re

    path = repo / "talos" / "talenv.yaml"
    text = path.read_text()
    for key, value in pins.items():
        text, n = re.subn(rf"^({re.escape(key)}:\s*)\S+", rf"\g<1>{value}", text, flags=re.M)
        assert n == 1, f"no {key} pin in {path}"
    path.write_text(text)


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its mtime (ns) and size."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing ``needle``."""
    seen = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found in {path}")


def run_invoke(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``invoke -r <this checkout> ARGS`` in a child process, as a user runs it."""
    cmd = [
        sys.executable,
        "-c",
        "from invoke.main import program; program.run()",
        "-r",
        str(REPO_ROOT),
        *args,
    ]
    return subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120
    )


def move_to_subnet(repo: Path, subnet: str) -> Path:
    """Rewrite the demo's 127.0.10.x addresses to a free loopback /24 so a test cluster never
    collides with a demo (or another test) running on this machine."""
    from taltasks.sim.addresses import subnet_base

    base = subnet_base(subnet)
    for path in (repo / "talos").rglob("*.yaml"):
        text = path.read_text()
        if "127.0.10." in text:
            path.write_text(text.replace("127.0.10.", base + "."))
    return repo


# Numbers and booleans where Talos wants strings: accepted by Talos (test_validation_*).
LENIENT_PATCH = """\
machine:
  sysctls:
    vm.max_map_count: 262144
  kubelet:
    extraArgs:
      rotate-server-certificates: true
cluster:
  apiServer:
    extraArgs:
      enable-aggregator-routing: true
"""


def add_global_patch(root: Path, name: str, text: str) -> str:
    """A patch file applied to every node (after the demo's own global patches); returns
    its repo-relative path."""
    (root / "talos/patches/global" / name).write_text(text)
    edit(
        root / "talos/talconfig.yaml",
        '  - "@./patches/global/machine-sysctls.yaml"',
        f'  - "@./patches/global/machine-sysctls.yaml"\n  - "@./patches/global/{name}"',
    )
    return f"talos/patches/global/{name}"


def refused(root: Path):
    """Run configure (allowed to create secrets) on bad input: the InputError it raises,
    after checking that nothing under ``root`` was written."""
    import pytest

    from taltasks.errors import InputError
    from taltasks.workflows.configure import configure

    before = snapshot(root)
    with pytest.raises(InputError) as info:
        configure(root, confirm_new_secrets=lambda _path: True)
    assert snapshot(root) == before, "configure wrote something although the input was bad"
    assert not (root / "talos" / "clusterconfig").exists()
    return info.value
