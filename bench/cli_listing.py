"""What listing the tasks costs: ``invoke --list`` in this checkout against invoke's own floor
(an empty ``tasks.py``), the ``taltasks`` console script, and go-task's ``task --list`` on an
equivalent Taskfile.

Run: .venv/bin/python bench/cli_listing.py [--runs N] [--write-taskfile]

Every command is started as a fresh process, hyperfine-style: warm-up runs first, then the
median of N runs. The Taskfile under ``bench/fixtures/`` mirrors our namespaces as go-task
``includes`` and our tasks with their descriptions; it is generated from the task
collections (``--write-taskfile`` refreshes it; a stale one is regenerated into a temporary
directory for the run, with a note). go-task comes from PyPI ``go-task-bin``, installed on
demand into the tool cache (``taltasks.toolcache``); without it that row is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import REPO, compile_project, p50, table, timed

FIXTURE = REPO / "bench" / "fixtures"
BIN = Path(sys.executable).parent
RUNS = 20


def _taskfile_for(collection, dotted: str = "") -> dict[str, str]:
    """{relative path: text} of a Taskfile tree equivalent to ``collection``: the root
    Taskfile.yml, and one file per namespace under taskfiles/ (named by its dotted path),
    included under the namespace's name — one go-task task per task, with its description."""
    files: dict[str, str] = {}
    lines = ['version: "3"', ""]
    if collection.collections:
        lines.append("includes:")
        for name in sorted(collection.collections):
            child = f"{dotted}.{name}" if dotted else name
            # include paths are relative to the including file's directory
            lines.append(f"  {name}: ./{'' if dotted else 'taskfiles/'}{child}.yml")
            files.update(_taskfile_for(collection.collections[name], child))
        lines.append("")
    lines.append("tasks:")
    for name in sorted(collection.tasks):
        desc = (collection.tasks[name].__doc__ or name).strip().splitlines()[0]
        lines += [f"  {name}:", f"    desc: {json.dumps(desc)}", "    cmds:", f"      - echo {name}"]
    files["Taskfile.yml" if not dotted else f"taskfiles/{dotted}.yml"] = "\n".join(lines) + "\n"
    return files


def taskfile_tree() -> dict[str, str]:
    """The equivalent Taskfile tree of the current task collections."""
    from taltasks.tasks import namespace

    return _taskfile_for(namespace())


def write_tree(dest: Path, tree: dict[str, str]) -> None:
    for rel, text in tree.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)


def _fixture_is_current(tree: dict[str, str]) -> bool:
    on_disk = {str(p.relative_to(FIXTURE)) for p in FIXTURE.rglob("*.yml")} if FIXTURE.is_dir() else set()
    return on_disk == set(tree) and all((FIXTURE / rel).read_text() == text for rel, text in tree.items())


def _command(name: str) -> list[str]:
    script = BIN / name
    return [str(script)] if script.exists() else [sys.executable, "-m", name]


def _median_ms(cmd: list[str], cwd: Path, runs: int) -> float:
    env = {**os.environ, "TALTASKS_ROOT": str(REPO)}

    def once() -> None:
        subprocess.run(
            cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )

    return p50(timed(once, repeat=runs)) * 1000


def main(quick: bool = False, runs: int | None = None) -> dict[str, float | str]:
    """Print the listing table; return its figures (a str value is a note: the row was skipped)."""
    from taltasks.toolcache import ToolUnavailable, ensure_go_task

    compile_project()
    runs = runs or (5 if quick else RUNS)
    figures: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        (empty / "tasks.py").write_text("")
        figures["empty_list_ms"] = _median_ms([*_command("invoke"), "--list"], empty, runs)
        figures["invoke_list_ms"] = _median_ms([*_command("invoke"), "--list"], REPO, runs)
        figures["taltasks_list_ms"] = _median_ms([*_command("taltasks"), "--list"], Path(tmp), runs)

        tree = taskfile_tree()
        where = FIXTURE
        if not _fixture_is_current(tree):
            where = Path(tmp) / "taskfile"
            write_tree(where, tree)
            figures["taskfile_note"] = (
                "bench/fixtures/ Taskfile is stale (tasks changed); used a fresh one — "
                "refresh with `python bench/cli_listing.py --write-taskfile`"
            )
        try:
            task = ensure_go_task()
            figures["task_list_ms"] = _median_ms([str(task), "--list"], where, runs)
        except ToolUnavailable as exc:
            figures["task_list_ms"] = f"go-task not available: {exc}"

    empty_ms, inv = figures["empty_list_ms"], figures["invoke_list_ms"]
    tal, task_ms = figures["taltasks_list_ms"], figures["task_list_ms"]
    assert isinstance(empty_ms, float) and isinstance(inv, float) and isinstance(tal, float)
    rows = [
        ("invoke --list, empty tasks.py", f"{empty_ms:.0f} ms", "", ""),
        ("invoke --list, this checkout", f"{inv:.0f} ms", "≤ 1.3× empty", f"{inv / empty_ms:.2f}×"),
        ("taltasks --list", f"{tal:.0f} ms", "≤ 1.3× empty", f"{tal / empty_ms:.2f}×"),
    ]
    if isinstance(task_ms, float):
        rows.append(("task --list, equivalent Taskfile", f"{task_ms:.0f} ms", "", ""))
        rows.append(("invoke --list against task --list", "", "", f"{inv / task_ms:.2f}×"))
    table(f"Task listing (median of {runs} fresh processes)", rows)
    for note in (v for v in figures.values() if isinstance(v, str)):
        print(f"  note: {note}")
    return figures


if __name__ == "__main__":
    if "--write-taskfile" in sys.argv:
        write_tree(FIXTURE, taskfile_tree())
        print(f"wrote {FIXTURE}")
    else:
        runs_arg = sys.argv[sys.argv.index("--runs") + 1] if "--runs" in sys.argv else None
        main(runs=int(runs_arg) if runs_arg else None)
