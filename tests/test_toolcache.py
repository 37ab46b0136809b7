"""The on-demand tool cache: where it lives, and that a tool that cannot be had gives a reason
(and leaves nothing half-installed) instead of an exception from deep inside pip or npm."""

from __future__ import annotations

import pytest

from taltasks import toolcache
from taltasks.toolcache import ToolUnavailable, cache_root, ensure_go_task, ensure_renovate


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TALTASKS_CACHE": "/c/tt", "XDG_CACHE_HOME": "/c/xdg"}, "/c/tt"),
        ({"XDG_CACHE_HOME": "/c/xdg"}, "/c/xdg/taltasks"),
        ({}, "HOME/.cache/taltasks"),
    ],
)
def test_cache_root(monkeypatch, tmp_path, env, expected):
    for var in ("TALTASKS_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert str(cache_root()) == expected.replace("HOME", str(tmp_path))


def test_not_installed_without_install_says_where(tmp_path):
    with pytest.raises(ToolUnavailable, match=str(tmp_path / "renovate")):
        ensure_renovate(tmp_path, install=False)
    with pytest.raises(ToolUnavailable, match="go-task is not installed"):
        ensure_go_task(tmp_path, install=False)


def test_without_npm_renovate_is_unavailable_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ToolUnavailable, match="npm is not installed"):
        ensure_renovate(tmp_path / "cache")
    assert not (tmp_path / "cache" / "renovate").exists()


def test_failed_install_leaves_nothing_behind(tmp_path, monkeypatch):
    # a package that cannot be found: pip fails at once, without touching the network
    monkeypatch.setattr(toolcache, "GO_TASK_PACKAGE", str(tmp_path / "no-such-package.whl"))
    cache = tmp_path / "cache"
    with pytest.raises(ToolUnavailable, match=r"go-task: .* failed with exit \d+"):
        ensure_go_task(cache)
    assert list(cache.iterdir()) == []  # no go-task/, no go-task.partial-*
