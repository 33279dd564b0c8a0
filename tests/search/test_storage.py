"""`open_storage` on journal files: a file that is not a journal is refused before any write."""

from __future__ import annotations

import time

import optuna
import pytest

from snnprune.errors import UserError
from snnprune.search import open_storage


@pytest.mark.parametrize("content", [b"garbage\n", b"{\"op_code\": 0}\nnot json\n", b"[1, 2]\n",
                                     b"SQLite format 3\x00" + bytes(64), bytes(range(256))])
def test_a_file_that_is_not_a_journal_is_refused_and_left_as_it_was(tmp_path, content):
    path = tmp_path / "store.log"
    path.write_bytes(content)
    with pytest.raises(UserError, match="store.log"):
        open_storage(str(path))
    with pytest.raises(UserError, match="store.log"):
        open_storage(str(path), heartbeat=False, create=False)
    assert path.read_bytes() == content


def test_a_journal_with_a_record_being_written_still_opens(tmp_path):
    path = tmp_path / "j.log"
    storage = open_storage(str(path))
    optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code": 4, "worker_id": "w", "study_i')  # another process mid-append
    loaded = optuna.load_study(study_name="s", storage=open_storage(str(path), heartbeat=False))
    assert len(loaded.directions) == 2


def test_an_empty_or_new_journal_opens(tmp_path):
    (tmp_path / "empty.log").write_bytes(b"")
    open_storage(str(tmp_path / "empty.log"))
    open_storage(str(tmp_path / "sub" / "new.log"))
    assert (tmp_path / "sub" / "new.log").exists()


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_trial_killed_before_its_first_heartbeat_is_still_found_stale(tmp_path, kind, monkeypatch):
    """Optuna samples a trial's parameters (TPE: up to a second) after the trial is RUNNING and
    before its heartbeat thread beats; a process killed in that window left a trial RUNNING
    forever. The storage now beats once when it creates (or resumes) a running trial."""
    monkeypatch.setenv("SNNPRUNE_HEARTBEAT", "1,2")
    spec = str(tmp_path / "j.log") if kind == "journal" else f"sqlite:///{tmp_path / 'x.db'}"
    study = optuna.create_study(study_name="s", storage=open_storage(spec), directions=["maximize"])
    dead = study.ask()  # no heartbeat thread ever runs for it: its process "dies" here
    time.sleep(3.2)  # past the grace period
    survivor = optuna.load_study(study_name="s", storage=open_storage(spec))
    optuna.storages.fail_stale_trials(survivor)
    trials = survivor.get_trials(deepcopy=False)
    assert trials[dead.number].state == optuna.trial.TrialState.FAIL
    assert [t.user_attrs.get("retry_of") for t in trials] == [None, dead.number]


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_trial_killed_before_the_storage_beat_for_it_is_found_stale_by_its_start(tmp_path, kind, monkeypatch):
    """The storage beats right after it creates a running trial; a process killed between the two
    (what a kill timed by watching the study for a new running trial hits) left a trial no check
    took for stale, and the resumed search waited for it for ever, silently under ``-q`` (the CI
    failure of test_kill_minus_9_then_rerun_resumes[journal]). A trial that never beat is taken
    for dead once it started more than the grace period ago, and not before."""
    monkeypatch.setenv("SNNPRUNE_HEARTBEAT", "1,2")
    spec = str(tmp_path / "j.log") if kind == "journal" else f"sqlite:///{tmp_path / 'x.db'}"
    optuna.create_study(study_name="s", storage=open_storage(spec), directions=["maximize"])
    plain = (optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(spec)) if kind == "journal"
             else optuna.storages.RDBStorage(spec))
    dead = optuna.load_study(study_name="s", storage=plain).ask()  # created, never beaten: killed here
    survivor = optuna.load_study(study_name="s", storage=open_storage(spec))
    optuna.storages.fail_stale_trials(survivor)
    assert survivor.get_trials(deepcopy=False)[dead.number].state == optuna.trial.TrialState.RUNNING  # not yet
    time.sleep(3.2)  # past the grace period
    optuna.storages.fail_stale_trials(survivor)
    trials = survivor.get_trials(deepcopy=False)
    assert trials[dead.number].state == optuna.trial.TrialState.FAIL
    assert "interrupted" in trials[dead.number].user_attrs["fail_reason"]
    assert [t.user_attrs.get("retry_of") for t in trials] == [None, dead.number]


def test_a_record_torn_by_a_killed_writer_is_dropped_before_anything_is_appended(tmp_path):
    """A writer killed mid-append leaves an incomplete last line; Optuna's next append went on
    after it, the two made one line that is not JSON, and every later read of the study raised
    JSONDecodeError. A process that runs trials drops the torn record (under the journal's lock)
    before it writes; the study reads as it stood, and new trials land after it."""
    path = tmp_path / "j.log"
    study = optuna.create_study(study_name="s", storage=open_storage(str(path)), directions=["maximize"])
    study.tell(study.ask(), 0.5)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code":5,"worker_id":"w","trial_id":0,"par')  # killed mid-append
    reader = optuna.load_study(study_name="s", storage=open_storage(str(path), heartbeat=False, create=False))
    assert len(reader.get_trials()) == 1 and path.read_bytes() != whole  # readers leave it alone
    resumed = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    assert path.read_bytes() == whole and not (tmp_path / "j.log.lock").exists()
    resumed.tell(resumed.ask(), 0.7)
    again = optuna.load_study(study_name="s", storage=open_storage(str(path), heartbeat=False, create=False))
    assert [t.value for t in again.get_trials()] == [0.5, 0.7]
