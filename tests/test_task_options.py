"""Number options are numbers (issue 12, point 4): shown as INT in ``--help``, checked while
the command line is parsed — a bad value is one line naming the option, exit 1, and
nothing has happened yet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from taltasks.tasks import namespace
from taltasks.tasks._cli import Whole

TALTASKS = Path(sys.executable).parent / "taltasks"
# help texts that describe a number: such an option must not be typed as a string
NUMERIC_HELP = re.compile(r"\bseconds\b|\bnumber of\b|\bport\b|\blast N\b|\bhow many\b", re.I)


def _shown(kind: type) -> str | None:
    """What invoke's --help prints for an option's value (its own lookup)."""
    return {str: "STRING", int: "INT"}.get(kind)


def _arguments():
    def walk(coll, prefix=""):
        for name, task in coll.tasks.items():
            for arg in task.get_arguments():
                yield prefix + name, task, arg
        for cname, sub in coll.collections.items():
            yield from walk(sub, prefix + cname + ".")

    return list(walk(namespace()))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TALTASKS), *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=os.environ
    )


def test_every_number_option_is_typed_and_checked():
    untyped, unchecked = [], []
    for task_name, _, arg in _arguments():
        if arg.kind in (bool, list):
            continue
        numeric = isinstance(arg.default, int) or NUMERIC_HELP.search(arg.help or "")
        if numeric and _shown(arg.kind) != "INT":
            untyped.append(f"{task_name} --{arg.name} ({arg.kind.__name__})")
        if arg.kind is int:  # invoke's own int: "abc" ends in a traceback
            unchecked.append(f"{task_name} --{arg.name}")
    assert untyped == [] and unchecked == []


def test_help_shows_int_for_sim_up_sizes(tmp_path):
    out = run("--help", "sim.up", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "--control-planes=INT" in out.stdout and "--workers=INT" in out.stdout
    assert "--timeout=INT" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--control-planes", "three"], "--control-planes 'three': expected a whole number from 1 to 9"),
        (["--control-planes", "0"], "--control-planes 0: expected a whole number from 1 to 9"),
        (["--control-planes", "10"], "--control-planes 10: expected a whole number from 1 to 9"),
        (["--workers", "-1"], "--workers -1: expected a whole number from 0 to 200"),
        (["--workers", "2.5"], "--workers '2.5': expected a whole number from 0 to 200"),
        (["--timeout", "0"], "--timeout 0: expected a whole number ≥ 1"),
    ],
)
def test_bad_sim_up_numbers_are_refused_before_anything_starts(tmp_path, args, message):
    target = tmp_path / "sim"
    out = run("sim.up", "--dir", str(target), *args, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == message
    assert "Traceback" not in out.stderr
    assert not target.exists()  # not even the directory


def test_other_tasks_refuse_bad_numbers_the_same_way(tmp_path):
    out = run("talos.logs", "--tail", "lots", "--node", "x", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (1, "--tail 'lots': expected a whole number ≥ -1")
    out = run("talos.health", "--wait", "-3", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (1, "--wait -3: expected a whole number ≥ 0")
    out = run(
        "talos.gen-config", "demo", "https://192.0.2.1:6443", "--local-api-server-port", "70000", cwd=tmp_path
    )
    assert (
        out.returncode == 1
        and "--local-api-server-port 70000: expected a whole number from 1 to 65535" in out.stderr
    )
    assert list(tmp_path.iterdir()) == []  # gen-config wrote nothing


def test_whole_number_kind_gives_plain_ints():
    kind = Whole(0, 5).kind("--n")
    assert kind("3") == 3 and type(kind("3")) is int and type(kind(" 4 ")) is int
    assert _shown(kind) == "INT"


def test_every_list_option_says_in_its_help_that_it_takes_values(tmp_path):
    # invoke prints a list option as a bare flag (`-n, --node`): the help names the value
    lists = [(task_name, arg) for task_name, _, arg in _arguments() if arg.kind is list]
    assert len(lists) >= 10
    flags = [(task_name, arg, "--" + arg.name.replace("_", "-")) for task_name, arg in lists]
    missing = [
        f"{task_name} {flag}"
        for task_name, arg, flag in flags
        if f"[value: a,b or {flag} a {flag} b]" not in arg.help
    ]
    assert missing == []
    out = run("--help", "talos.upgrade-node", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "[value: a,b or --node a --node b]" in " ".join(out.stdout.split())
