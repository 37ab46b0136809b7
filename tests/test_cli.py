"""The ``taltasks`` console script and shell completion, run as a user runs them: in a child
process, from a directory that is not a checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import taltasks
from configure_support import copy_demo
from taltasks.tasks import namespace
from testpaths import REPO_ROOT

BIN = Path(sys.executable).parent
TALTASKS = BIN / "taltasks"
INVOKE = BIN / "invoke"


@pytest.fixture(autouse=True)
def _installed():
    if not TALTASKS.exists():
        pytest.fail(f"{TALTASKS} missing: reinstall with `pip install -e .[dev]` (python3 dev.py test does)")


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, exe: Path = TALTASKS):
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def all_task_names() -> set[str]:
    return set(namespace().task_names)


def test_version_is_the_package_version(tmp_path):
    out = run("--version", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"taltasks {taltasks.__version__}"
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in meta["dynamic"]  # one source: taltasks.__version__
    module = subprocess.run(
        [sys.executable, "-m", "taltasks", "-V"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert module.stdout == out.stdout


def test_lists_the_same_tasks_as_invoke_in_the_checkout(tmp_path):
    listed = json.loads(run("--list", "--list-format", "json", cwd=tmp_path).stdout)
    via_invoke = json.loads(run("--list", "--list-format", "json", cwd=REPO_ROOT, exe=INVOKE).stdout)

    def names(coll: dict, prefix: str = "") -> set[str]:
        own = {prefix + t["name"] for t in coll["tasks"]}
        return own.union(*(names(c, f"{prefix}{c['name']}.") for c in coll["collections"]))

    assert names(listed) == names(via_invoke) == all_task_names()


def test_root_runs_tasks_on_a_checkout_from_elsewhere(tmp_path):
    demo = copy_demo(tmp_path / "home-ops")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # an inherited TALOSCONFIG (another checkout's direnv) must not win over an explicit --root
    stray = {"TALOSCONFIG": str(tmp_path / "other" / "talosconfig")}
    first = run("--root", str(demo), "configure", "--json", cwd=elsewhere, env=stray)
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)
    assert {r["node"] for r in rows} >= {"cp-1", "worker-3"} and len(rows) == 6
    assert (demo / "talos" / "clusterconfig" / "talosconfig").is_file()
    assert not list(elsewhere.iterdir()), "nothing may be written to the working directory"
    # the generated talosconfig is found through --root, as .envrc would point at it
    ctx = run("-r", str(demo), "talos.config.contexts", "--json", cwd=elsewhere, env=stray)
    assert ctx.returncode == 0, ctx.stderr
    assert "demo" in ctx.stdout


def test_root_that_does_not_exist_is_a_one_line_error(tmp_path):
    out = run("--root", str(tmp_path / "nowhere"), "configure", cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"--root {tmp_path / 'nowhere'}: no such directory" in out.stderr
    assert "hint:" in out.stderr


def test_outside_a_checkout_without_root_says_what_is_missing(tmp_path):
    out = run("configure", "--dry-run", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "talos/talconfig.yaml" in out.stderr


def test_listing_into_a_closed_pipe_has_no_traceback(tmp_path):
    proc = subprocess.Popen(
        [str(TALTASKS), "--list"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()  # the reader goes away, like `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141)
    assert "Traceback" not in err and "BrokenPipe" not in err


# --- completion ------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize(("exe", "names"), [(TALTASKS, ["taltasks"]), (INVOKE, ["invoke", "inv"])])
def test_completion_script_is_printed(tmp_path, shell, exe, names):
    out = run("--print-completion-script", shell, cwd=REPO_ROOT, exe=exe)
    assert out.returncode == 0, out.stderr
    # the script asks the program itself for candidates (zsh passes a collection flag between)
    assert re.search(rf"\b{names[0]} .*--complete -- ", out.stdout), out.stdout
    registration = {
        "bash": f"complete -F _complete_{names[0]} -o default {' '.join(names)}",
        "zsh": f"compctl -K _complete_{names[0]} + -f {' '.join(names)}",
        "fish": f"complete --command {names[0]} ",
    }
    assert registration[shell] in out.stdout


def test_complete_lists_task_names(tmp_path):
    expected = all_task_names()
    via_invoke = run("--complete", "--", "invoke", "ta", cwd=REPO_ROOT, exe=INVOKE)
    assert set(via_invoke.stdout.split()) == expected
    via_taltasks = run("--complete", "--", "taltasks", "--root", str(REPO_ROOT), "co", cwd=tmp_path)
    assert set(via_taltasks.stdout.split()) == expected
    flags = run("--complete", "--", "taltasks", "configure", "--", cwd=tmp_path).stdout.split()
    assert {"--dry-run", "--json", "--yes"} <= set(flags)


SHELL_PROBES = {
    # bash hands the function the words and filters with compgen itself
    "bash": (
        "source ./completion\n"
        "COMP_WORDS=(taltasks talos.ver); COMP_CWORD=1\n"
        '_complete_taltasks taltasks talos.ver; printf "%s\\n" "${COMPREPLY[@]}"; echo ---\n'
        "COMP_WORDS=(taltasks configure --dr); COMP_CWORD=2\n"
        '_complete_taltasks taltasks --dr; printf "%s\\n" "${COMPREPLY[@]}"\n'
    ),
    # zsh's compctl filters `reply` after the function; the function gets `words`
    "zsh": (
        "source ./completion\n"
        "words=(taltasks talos.ver); _complete_taltasks; print -l -- $reply; echo ---\n"
        "words=(taltasks configure --dr); _complete_taltasks; print -l -- $reply\n"
    ),
}


@pytest.mark.parametrize("shell", sorted(SHELL_PROBES))
def test_shell_completes_through_the_printed_script(tmp_path, shell):
    """Source the script in the real shell and call its completion function as the shell would."""
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")
    (tmp_path / "completion").write_text(run("--print-completion-script", shell, cwd=tmp_path).stdout)
    flags = ["--norc", "--noprofile"] if shell == "bash" else ["-f"]
    out = subprocess.run(
        [exe, *flags, "-c", SHELL_PROBES[shell]],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    tasks, _, options = out.stdout.partition("---\n")
    if shell == "bash":
        assert (tasks.split(), options.split()) == (["talos.version"], ["--dry-run"]), out.stdout + out.stderr
    else:
        assert set(tasks.split()) == all_task_names(), out.stdout + out.stderr
        assert {"--dry-run", "--json", "--yes"} <= set(options.split())
