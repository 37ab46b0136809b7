"""The run journal with real files: records, read-back, resume, archive, atomicity, locking."""

from __future__ import annotations

import json
import os
import stat

import pytest

from taltasks.errors import InputError, OperationFailed
from taltasks.workflows import journal as journal_mod
from taltasks.workflows.journal import Journal, journal_path, read_journal


def interrupted_run(root):
    """A run that cordoned w1 and suspended Flux, finished cp1, then stopped mid-w1."""
    j = Journal.open(root, "upgrade-all", meta={"desired": "v1.12.2"})
    j.step(None, "preflight", "done")
    flux = j.change(
        "flux-suspend", "2 Kustomizations", {"objects": ["flux-system/apps", "flux-system/infra"]}
    )
    j.node("cp1", "started")
    cordon_cp1 = j.change("cordon", "cp1", {"node": "cp1"}, node="cp1")
    j.undone(cordon_cp1)
    j.node("cp1", "done", version="v1.12.2")
    j.node("w1", "started")
    j.change("cordon", "w1", {"node": "w1"}, node="w1", description="cordon w1")
    j.step("w1", "drain", "started")
    return j, flux


def test_read_back_what_needs_undoing_and_which_nodes_are_done(tmp_path):
    j, flux = interrupted_run(tmp_path)
    j.close()  # the process died: nothing finished the journal
    state = read_journal(journal_path(tmp_path, "upgrade-all"))
    assert state.status == "running" and not state.finished
    assert [c.target for c in state.pending] == ["w1", "2 Kustomizations"]  # newest first
    assert state.pending[1] == flux and state.pending[0].data == {"node": "w1"}
    assert state.pending[0].label() == "cordon w1"
    assert state.done_nodes == ["cp1"] and state.in_progress == ["w1"]
    assert state.meta == {"desired": "v1.12.2"}
    assert [e["step"] for e in state.steps("w1")] == ["drain"]
    assert [e["seq"] for e in state.entries] == list(range(1, len(state.entries) + 1))


def test_resume_continues_the_same_journal(tmp_path):
    j, _ = interrupted_run(tmp_path)
    run = j.state().run
    j.close()
    again = Journal.open(tmp_path, "upgrade-all")
    assert again.resumed and again.previous is not None
    assert again.state().run == run and again.previous.in_progress == ["w1"]
    assert again.state().resumptions() == 1
    for change in again.previous.pending:
        again.undone(change)
    again.node("w1", "done")
    again.finish()
    again.close()
    state = read_journal(again.path)
    assert state.status == "completed" and state.pending == [] and state.in_progress == []
    assert state.done_nodes == ["cp1", "w1"]


def test_a_finished_journal_is_archived_and_a_new_run_starts(tmp_path):
    with Journal.open(tmp_path, "upgrade-all") as j:
        j.node("w1", "done")
        first = j.state().run
    assert read_journal(j.path).status == "completed"
    os.utime(j.path, None)
    with Journal.open(tmp_path, "upgrade-all", clock=lambda: 2_000_000_000.0) as k:
        assert not k.resumed and k.state().run != first and k.state().done_nodes == []
    archived = list((tmp_path / ".taltasks" / "history").glob("upgrade-all-*.json"))
    assert [p.name for p in archived] == [f"upgrade-all-{first}.json"]
    assert read_journal(archived[0]).done_nodes == ["w1"]


@pytest.mark.parametrize(
    ("exc", "status"), [(None, "completed"), (RuntimeError, "failed"), (KeyboardInterrupt, "interrupted")]
)
def test_context_manager_records_how_the_run_ended(tmp_path, exc, status):
    try:
        with Journal.open(tmp_path, "upgrade-all"):
            if exc is not None:
                raise exc()
    except (RuntimeError, KeyboardInterrupt):
        pass
    assert read_journal(journal_path(tmp_path, "upgrade-all")).status == status


def test_writes_are_atomic_a_failed_write_leaves_the_previous_journal(tmp_path, monkeypatch):
    j = Journal.open(tmp_path, "upgrade-all")
    j.node("cp1", "started")
    before = j.path.read_bytes()

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_mod.os, "replace", crash)
    with pytest.raises(OSError):
        j.node("cp1", "done")
    monkeypatch.undo()
    assert j.path.read_bytes() == before
    assert read_journal(j.path).in_progress == ["cp1"]
    j.close()


def test_every_record_is_on_disk_at_once_and_no_temporary_files_remain(tmp_path):
    j = Journal.open(tmp_path, "upgrade-all")
    for i in range(5):
        j.step("w1", f"s{i}", "done")
        on_disk = json.loads(j.path.read_text())
        assert on_disk["entries"][-1]["step"] == f"s{i}"
    j.close()
    names = sorted(p.name for p in (tmp_path / ".taltasks").iterdir())
    assert names == [".gitignore", "upgrade-all.journal.json", "upgrade-all.lock"]
    assert (tmp_path / ".taltasks" / ".gitignore").read_text() == "*\n"
    assert stat.S_IMODE((tmp_path / ".taltasks").stat().st_mode) == 0o700


def test_a_second_run_of_the_same_operation_is_refused(tmp_path):
    first = Journal.open(tmp_path, "upgrade-all")
    with pytest.raises(OperationFailed) as info:
        Journal.open(tmp_path, "upgrade-all")
    assert info.value.message == f"another upgrade-all run is in progress (pid {os.getpid()})"
    Journal.open(tmp_path, "apply-node").close()  # other operations are independent
    first.close()
    Journal.open(tmp_path, "upgrade-all").close()  # the lock is free again


def test_an_unreadable_journal_is_a_clear_error(tmp_path):
    path = journal_path(tmp_path, "upgrade-all")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(InputError) as info:
        Journal.open(tmp_path, "upgrade-all")
    assert info.value.where == str(path) and "unreadable" in info.value.message
    assert path.read_text() == "{not json"  # left as it was for inspection
    Journal.open(tmp_path, "other").close()  # and its lock was released: other runs still work
