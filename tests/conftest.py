"""Shared fixtures. Every address used here is in 127.0.0.0/8."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testpaths import REPO_ROOT, UPSTREAM


@pytest.fixture
def loopback_subnet() -> str:
    """A free 127.X.Y.0/24 for one simulated cluster."""
    from taltasks.sim.addresses import free_subnet

    return free_subnet()


@pytest.fixture
def upstream_data() -> Path:
    """../shared/reference/upstream, or a clean skip when this checkout has no ../shared."""
    if not UPSTREAM.is_dir():
        pytest.skip(f"upstream reference data not present at {UPSTREAM}")
    return UPSTREAM


@pytest.fixture(autouse=True)
def _no_user_talos_state(tmp_path_factory, monkeypatch):
    """Never read the developer's ~/.talos/config or ~/.kube/config by accident."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("TALOSCONFIG", "KUBECONFIG", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "TALTASKS_ROOT"):
        monkeypatch.delenv(var, raising=False)
    yield


def pytest_report_header(config):
    return f"taltasks repo: {REPO_ROOT}; shared reference data: {'present' if UPSTREAM.is_dir() else 'absent'}; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}"
