"""A run folder serves one study: the default storage is the folder's own, another storage that
would write into it is refused, and a study created again starts with no rung records."""

from __future__ import annotations

import json
import os

import optuna
import pytest

from snnprune.errors import UserError
from snnprune.search import open_study, optimize
from snnprune.search._optuna import rung_scope
from snnprune.search._rundir import MARKER, claim_run_dir, resolve_storage, run_id, storage_in_folder
from snnprune.search._storage import open_storage


def _study_in(run_dir, space, storage, *, claim=True):
    handle = open_study(space, storage)
    if claim:
        claim_run_dir(run_dir, storage, handle)
    return handle


def test_a_new_folder_gets_sqlite_for_one_worker_and_a_journal_for_several(tmp_path):
    assert resolve_storage(tmp_path, None) == f"sqlite:///{(tmp_path / 'study.db').as_posix()}"
    assert resolve_storage(tmp_path, None, workers=2) == str(tmp_path / "journal.log")


def test_the_default_storage_is_the_one_already_in_the_folder(tmp_path, tiny_space):
    journal = str(tmp_path / "journal.log")
    _study_in(tmp_path, tiny_space(), journal)
    assert resolve_storage(tmp_path, None) == journal  # one worker resumes the journal study


def test_several_workers_on_a_folder_whose_study_is_in_sqlite_are_refused_before_anything_runs(tmp_path,
                                                                                               tiny_space):
    """The bug: `--workers 2` silently started a second study (a journal file) in the folder of
    the SQLite one, whose trial folders it then overwrote."""
    space = tiny_space()
    _study_in(tmp_path, space, resolve_storage(tmp_path, None), claim=False)  # a folder from before study.json
    with pytest.raises(UserError, match="holds its study in SQLite"):
        optimize(space, run_dir=tmp_path, trials=1, workers=2, quiet=True)
    assert not (tmp_path / "journal.log").exists()
    assert not (tmp_path / "trials").exists()


def test_another_storage_is_refused_and_left_untouched(tmp_path, tiny_space):
    sqlite = resolve_storage(tmp_path, None)
    _study_in(tmp_path, tiny_space(), sqlite)
    other = tmp_path / "elsewhere.log"
    with pytest.raises(UserError, match=r"holds the trials of study 't' in sqlite:///.*study.db; resume it with"):
        resolve_storage(tmp_path, str(other))
    with pytest.raises(UserError, match="holds the trials"):
        optimize(tiny_space(), run_dir=tmp_path, storage=str(other), trials=1, quiet=True)
    assert not other.exists()


def test_a_relative_and_an_absolute_path_to_one_file_are_the_same_storage(tmp_path, tiny_space, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("run")
    _study_in(tmp_path / "run", tiny_space(), "sqlite:///run/study.db")
    assert resolve_storage(tmp_path / "run", f"sqlite:///{(tmp_path / 'run' / 'study.db').as_posix()}")


def test_a_folder_whose_study_storage_is_gone_is_free_again(tmp_path, tiny_space):
    sqlite = resolve_storage(tmp_path, None)
    _study_in(tmp_path, tiny_space(), sqlite)
    (tmp_path / "study.db").unlink()
    journal = str(tmp_path / "journal.log")
    assert resolve_storage(tmp_path, None, workers=2) == journal
    _study_in(tmp_path, tiny_space(), journal)
    assert json.loads((tmp_path / MARKER).read_text())["storage"] == str((tmp_path / "journal.log").resolve())
    assert storage_in_folder(tmp_path) == journal


def test_the_marker_names_the_study_and_its_run_id_and_hides_passwords(tmp_path, tiny_space):
    handle = _study_in(tmp_path, tiny_space(), resolve_storage(tmp_path, None))
    marker = json.loads((tmp_path / MARKER).read_text())
    assert marker["study"] == "t" and marker["run_id"] == handle.user_attrs["run_id"] == run_id(handle)
    claim_run_dir(tmp_path / "pg", "postgresql://me:secret@db/x", handle)
    assert "secret" not in (tmp_path / "pg" / MARKER).read_text()


def test_a_study_created_again_under_its_name_has_a_new_rung_scope(tmp_path, tiny_space):
    """The bug: rung records were keyed by the study name, so a study deleted and created again
    (or one in another storage) was judged against the old one's trials."""
    storage = resolve_storage(tmp_path, None)
    first = rung_scope(_study_in(tmp_path, tiny_space(), storage))
    assert rung_scope(optuna.load_study(study_name="t", storage=open_storage(storage, heartbeat=False))) == first
    optuna.delete_study(study_name="t", storage=open_storage(storage, heartbeat=False))
    second = rung_scope(_study_in(tmp_path, tiny_space(), storage))
    assert second != first and second.startswith("t/")


def test_a_rerun_after_deleting_the_study_stops_nothing_on_the_old_rung_records(tmp_path, tiny_space):
    """End to end: the same seeded search, run twice with the study deleted in between, stops the
    same trials (before, the second run stopped more: the first run's rung records counted)."""
    space = tiny_space(trials=3, rungs={"epochs": [1], "min_trials": 2, "dominated_fraction": 0.01, "mode": "stop"})
    first = optimize(space, run_dir=tmp_path, trials=3, quiet=True)
    (tmp_path / "study.db").unlink()
    second = optimize(space, run_dir=tmp_path, trials=3, quiet=True)
    assert (second["complete"], second["pruned"]) == (first["complete"], first["pruned"])


def test_report_and_runs_read_the_storage_the_folder_serves_not_the_newest_file(tmp_path, tiny_space):
    """Before, `report` and `runs` took the newer of study.db and journal.log, which after the fork
    bug was the second study; the folder's study.json now names the one it serves."""
    from snnprune.reports import resolve_run

    _study_in(tmp_path, tiny_space(), resolve_storage(tmp_path, None))
    (tmp_path / "journal.log").write_text("")  # a newer, stray journal
    assert resolve_run(str(tmp_path)).storage.startswith("sqlite:///")


def test_a_study_kept_outside_its_folder_is_found_by_every_command_that_takes_the_folder(tmp_path, tiny_space):
    """`search --storage /elsewhere/x.log` printed 'inspect with: snnprune dashboard runs/x', yet
    report, export, runs and dashboard said the folder held no study.db or journal.log, and
    `runs` left the study out."""
    from snnprune.reports import list_runs, resolve_run

    journal = tmp_path / "elsewhere" / "x.log"
    journal.parent.mkdir()
    folder = tmp_path / "runs" / "t"
    handle = _study_in(folder, tiny_space(), str(journal))
    handle.enqueue_trial({})  # one trial, so that the listing has something to count
    ref = resolve_run(folder)
    assert (ref.storage, ref.study) == (str(journal.resolve()), "t")
    assert [(r["run"], r.get("error"), r["trials"]) for r in list_runs(tmp_path / "runs")] == [("t", None, 1)]
    assert resolve_storage(folder, None) == str(journal.resolve())  # the search resumes it, as its files


def test_a_study_elsewhere_that_cannot_be_opened_is_named_in_one_line(tmp_path, tiny_space):
    from snnprune.reports import resolve_run

    journal = tmp_path / "gone.log"
    folder = tmp_path / "runs" / "t"
    _study_in(folder, tiny_space(), str(journal))
    journal.unlink()
    with pytest.raises(UserError, match=r"keeps its study in .*gone.log, which cannot be opened"):
        resolve_run(folder)
    marker = json.loads((folder / MARKER).read_text())
    marker.update(storage="postgresql://u:***@db/x", identity="postgresql://u:***@db/x")
    (folder / MARKER).write_text(json.dumps(marker))
    with pytest.raises(UserError, match=r"postgresql://u:\*\*\*@db/x, which cannot be opened .* password"):
        resolve_run(folder)
