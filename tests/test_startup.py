"""`invoke --list` and `--help` must stay cheap: no heavy library may load for them."""

from __future__ import annotations

import json
import subprocess
import sys

from testpaths import REPO_ROOT

HEAVY = ("grpc", "kubernetes", "cryptography", "jsonschema", "google.protobuf", "ruamel", "celpy", "tenacity")

# the programs whose start-up is guarded: invoke over the checkout's tasks.py, and the
# stand-alone `taltasks` console script (taltasks.cli) with its bundled namespace
INVOKE = "from invoke.main import program"
TALTASKS = "from taltasks.cli import program as make; program = make()"

PROBE = """
import json, sys
args, heavy, entry = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
exec(entry)
sys.argv = ["invoke", *args]
try:
    program.run()
except SystemExit:
    pass
loaded = sorted({m for m in sys.modules for h in heavy if m == h or m.startswith(h + ".")})
print("LOADED=" + json.dumps(loaded), file=sys.stderr)
"""


def _loaded_after(args: list[str], entry: str = INVOKE) -> tuple[list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY), entry],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("LOADED="))
    return json.loads(line.removeprefix("LOADED=")), proc.stdout + proc.stderr


def test_invoke_list_imports_no_heavy_library():
    loaded, out = _loaded_after(["--list"])
    assert "Available tasks" in out or "No tasks found" in out, out  # the listing really ran
    assert loaded == [], f"invoke --list imported {loaded}"


def test_taltasks_list_and_version_import_no_heavy_library():
    loaded, out = _loaded_after(["--list"], TALTASKS)
    assert "Subcommands" in out and "configure" in out, out
    assert loaded == [], f"taltasks --list imported {loaded}"
    loaded, out = _loaded_after(["--version"], TALTASKS)
    assert "taltasks" in out and loaded == [], (out, loaded)


def test_task_help_imports_no_heavy_library():
    from taltasks.tasks import namespace

    names = namespace().task_names
    if not names:
        return  # nothing to ask for help about yet
    task = sorted(names)[0]
    loaded, out = _loaded_after(["--help", task])
    assert "Usage" in out, out
    assert loaded == [], f"invoke --help {task} imported {loaded}"


def test_every_task_builds_its_arguments():
    """invoke validates help keys and parameters lazily; do it for every task here."""
    from taltasks.tasks import namespace

    def walk(coll):
        yield from coll.tasks.values()
        for child in coll.collections.values():
            yield from walk(child)

    tasks = list(walk(namespace()))
    assert tasks
    for t in tasks:
        t.get_arguments()  # raises ValueError on help for a missing parameter
        assert t.__doc__ and t.__doc__.strip(), f"{t.name} has no docstring for --list"


def test_tests_do_not_import_conftest_by_name():
    """Several folders have a conftest.py; `from conftest import` picks whichever was imported
    first. Shared values live in tests/testpaths.py instead."""
    import re

    pattern = re.compile(r"^\s*(from conftest import|import conftest)", re.M)
    offenders = [
        str(p.relative_to(REPO_ROOT))
        for p in (REPO_ROOT / "tests").rglob("*.py")
        if pattern.search(p.read_text())
    ]
    assert offenders == []
