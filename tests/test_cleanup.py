"""The cleanup stack: reverse undo with journaling, and real signals sent to a subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from taltasks.errors import OperationFailed
from taltasks.events import Collector, Emitter
from taltasks.workflows.cleanup import CleanupStack
from taltasks.workflows.journal import Journal, read_journal


def test_undo_runs_in_reverse_and_is_journaled(tmp_path):
    done: list[str] = []
    events = Collector()
    with Journal.open(tmp_path, "upgrade-all") as journal:
        with CleanupStack(journal, Emitter(events)) as stack:
            stack.push("flux-suspend", "apps", lambda: done.append("resume flux"), data={"objects": ["apps"]})
            cordon = stack.push("cordon", "w1", lambda: done.append("uncordon w1"), node="w1")
            stack.push("cnpg-maintenance", "db", lambda: done.append("end maintenance"))
            stack.undo(cordon)  # the normal path undoes the cordon itself
            assert done == ["uncordon w1"]
            assert [c.target for c in stack.pending] == ["db", "apps"]
        assert done == ["uncordon w1", "end maintenance", "resume flux"]
        state = journal.state()
        assert state.pending == []
        assert [e["change"] for e in state.entries if e["type"] == "undo"] == ["c2", "c3", "c1"]
    assert [e.message for e in events.of("cleanup")] == [
        "undoing: cordon w1",
        "undoing: cnpg-maintenance db",
        "undoing: flux-suspend apps",
    ]


def test_a_failing_undo_does_not_stop_the_others(tmp_path):
    done: list[str] = []

    def broken():
        raise ConnectionError("API server unreachable")

    journal = Journal.open(tmp_path, "upgrade-all")
    with pytest.raises(OperationFailed) as info, CleanupStack(journal) as stack:
        stack.push("flux-suspend", "apps", lambda: done.append("resume flux"))
        stack.push("cordon", "w1", broken, description="cordon w1")
    assert done == ["resume flux"]
    assert info.value.message == "cleanup could not undo: cordon w1: API server unreachable"
    pending = journal.state().pending
    assert [c.target for c in pending] == ["w1"]  # the journal still lists it for the next run
    journal.close()


def test_errors_in_flight_keep_priority_and_carry_a_note(tmp_path):
    def broken():
        raise RuntimeError("still cordoned")

    with pytest.raises(ValueError) as info, CleanupStack() as stack:
        stack.push("cordon", "w1", broken, description="cordon w1")
        raise ValueError("gate failed")
    assert info.value.__notes__ == ["cleanup could not undo: cordon w1: still cordoned"]


def test_discard_keeps_a_change(tmp_path):
    done: list[str] = []
    with Journal.open(tmp_path, "x") as journal, CleanupStack(journal) as stack:
        entry = stack.push("label", "w1", lambda: done.append("unlabel"))
        stack.discard(entry)
    assert done == [] and journal.state().pending == []


def test_adopt_the_leftovers_of_a_killed_run(tmp_path):
    killed = Journal.open(tmp_path, "upgrade-all")
    killed.change("flux-suspend", "apps", {"objects": ["flux-system/apps"]})
    killed.change("cordon", "w1", {"node": "w1"}, node="w1")
    killed.close()
    undone: list[tuple[str, dict]] = []
    handlers = {
        "cordon": lambda c: undone.append(("uncordon", c.data)),
        "flux-suspend": lambda c: undone.append(("resume", c.data)),
    }
    with Journal.open(tmp_path, "upgrade-all") as journal:
        assert journal.resumed
        with CleanupStack(journal) as stack:
            adopted = stack.adopt(journal.previous, handlers)
            assert [a.change.kind for a in adopted] == ["flux-suspend", "cordon"]
        assert undone == [("uncordon", {"node": "w1"}), ("resume", {"objects": ["flux-system/apps"]})]
        assert journal.state().pending == []
    with Journal.open(tmp_path, "y") as other:
        other.change("scale-down", "volsync", {})
        other.close()
    state = read_journal(tmp_path / ".taltasks" / "y.journal.json")
    with pytest.raises(OperationFailed, match="cannot undo: scale-down"):
        CleanupStack().adopt(state, handlers)


# ---- real signals ---------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from taltasks.events import Emitter
    from taltasks.ui.reporters import PlainReporter
    from taltasks.workflows.cleanup import CleanupStack, signals_interrupt
    from taltasks.workflows.journal import Journal

    root = Path(sys.argv[1])
    log = root / "undo.log"
    pause_in_cleanup = len(sys.argv) > 2

    def undo(name, pause=False):
        def action():
            if pause:
                print("UNDOING", flush=True)
                while not (root / "go").exists():
                    time.sleep(0.01)
            with open(log, "a") as fh:
                fh.write(name + "\\n")
        return action

    emitter = Emitter(PlainReporter(sys.stdout))
    try:
        with signals_interrupt(), Journal.open(root, "upgrade-all") as journal, CleanupStack(journal, emitter) as stack:
            stack.push("flux-suspend", "apps", undo("resume flux"))
            stack.push("cnpg-maintenance", "db", undo("end maintenance", pause_in_cleanup))
            stack.push("cordon", "w1", undo("uncordon w1"), node="w1")
            print("READY", flush=True)
            time.sleep(60)
    except KeyboardInterrupt as exc:
        print(f"INTERRUPTED {type(exc).__name__}", flush=True)
        sys.exit(130)
    """
)


@pytest.fixture
def start(tmp_path):
    """Start the script; whatever happens in the test, no child outlives it."""
    children: list[subprocess.Popen] = []

    def run(*extra: str) -> subprocess.Popen:
        script = tmp_path / "run.py"
        script.write_text(SCRIPT)
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        children.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", line + proc.stdout.read()
        return proc

    yield run
    for proc in children:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("signum", "name"),
    [(signal.SIGTERM, "Interrupted"), (signal.SIGINT, "KeyboardInterrupt"), (signal.SIGHUP, "Interrupted")],
)
def test_a_signal_mid_run_undoes_everything_and_leaves_a_consistent_journal(tmp_path, start, signum, name):
    proc = start()
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130, out
    assert f"INTERRUPTED {name}" in out
    assert (tmp_path / "undo.log").read_text().splitlines() == [
        "uncordon w1",
        "end maintenance",
        "resume flux",
    ]
    state = read_journal(tmp_path / ".taltasks" / "upgrade-all.journal.json")
    assert state.status == "interrupted" and state.pending == []


@pytest.mark.timeout(60)
def test_a_second_signal_during_cleanup_does_not_abandon_it(tmp_path, start):
    proc = start("pause")
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None
    lines = []
    while (line := proc.stdout.readline()) and "UNDOING" not in line:
        lines.append(line)
    assert "UNDOING" in line, "".join(lines)
    for signum in (signal.SIGINT, signal.SIGTERM):
        proc.send_signal(signum)
        expected = f"{signal.Signals(signum).name} received: finishing cleanup first"
        deadline = time.monotonic() + 10
        while expected not in "".join(lines) and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        assert expected in "".join(lines), "".join(lines)
    (tmp_path / "go").touch()
    out, _ = proc.communicate(timeout=20)
    out = "".join(lines) + out
    assert proc.returncode == 130, out
    assert "SIGINT, SIGTERM received during cleanup: cleanup finished first" in out
    assert (tmp_path / "undo.log").read_text().splitlines() == [
        "uncordon w1",
        "end maintenance",
        "resume flux",
    ]
    assert read_journal(tmp_path / ".taltasks" / "upgrade-all.journal.json").pending == []


def test_sigkill_leaves_a_journal_the_next_run_rolls_back(tmp_path, start):
    proc = start()
    proc.kill()
    proc.communicate(timeout=20)
    assert not (tmp_path / "undo.log").exists()  # nothing could run
    state = read_journal(tmp_path / ".taltasks" / "upgrade-all.journal.json")
    assert state.status == "running" and [c.kind for c in state.pending] == [
        "cordon",
        "cnpg-maintenance",
        "flux-suspend",
    ]
    undone: list[str] = []
    with Journal.open(tmp_path, "upgrade-all") as journal, CleanupStack(journal) as stack:
        stack.adopt(
            journal.previous,
            {k: (lambda c: undone.append(c.target)) for k in ("cordon", "cnpg-maintenance", "flux-suspend")},
        )
    assert undone == ["w1", "db", "apps"]
    assert read_journal(journal.path).pending == []
