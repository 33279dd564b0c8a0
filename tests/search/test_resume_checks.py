"""Resuming a study with a changed space: what cannot share its front, or that Optuna cannot
sample in it, is refused in one line before any trial starts; the rest is run, and a worker
joining afterwards runs the latest space."""

from __future__ import annotations

import optuna
import pytest

from snnprune.errors import UserError
from snnprune.search import open_study
from snnprune.search._optuna import run_worker, worker_exit_note
from snnprune.search._resume import record_space
from snnprune.search._storage import sqlite_file, sqlite_url
from snnprune.search._suggest import suggest
from snnprune.spaces import parse_space

TWO = {"gmp": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9}},
       "random-unstructured": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9}}}


def _space(space_dict, **kw):
    return parse_space(space_dict(study="r", **kw), source="r.yaml")


def _with_a_trial(space, storage):
    study = open_study(space, storage)
    trial = study.ask()
    suggest(trial, space)
    study.tell(trial, [0.5, 100.0])
    return study


def test_other_objectives_in_the_same_directions_are_refused(tmp_path, space_dict):
    """[accuracy, params] resuming [accuracy, macs] stored params under the name "macs"."""
    storage = sqlite_url(tmp_path / "s.db")
    _with_a_trial(_space(space_dict), storage)
    with pytest.raises(UserError, match=r"measures accuracy, macs, not accuracy, params; choose another --study"):
        open_study(_space(space_dict, objectives=["accuracy", "params"]), storage)


def test_a_pruner_added_is_refused_before_any_trial_is_created(tmp_path, space_dict):
    """It failed inside Optuna ("CategoricalDistribution does not support dynamic value space"),
    with a traceback and a FAIL trial without parameters at each attempt."""
    storage = sqlite_url(tmp_path / "s.db")
    _with_a_trial(_space(space_dict, pruners=TWO), storage)
    three = {**TWO, "l1-filter": {"sparsity": {"type": "float", "low": 0.3, "high": 0.6}}}
    with pytest.raises(UserError, match=r"sampled pruner from \{gmp, random-unstructured\}; this space samples it "
                                        r"from \{gmp, random-unstructured, l1-filter\}"):
        open_study(_space(space_dict, pruners=three), storage)
    trials = optuna.load_study(study_name="r", storage=storage).trials
    assert len(trials) == 1
    # a new range of the same kind is fine (a note says so), as is dropping the categorical
    wider = {"gmp": {"sparsity": {"type": "float", "low": 0.1, "high": 0.95}},
             "random-unstructured": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9}}}
    open_study(_space(space_dict, pruners=wider), storage)


def test_other_constraints_are_refused(tmp_path, space_dict):
    """Old trials never recorded the new constraint and stayed on the front beside new trials
    that broke it."""
    storage = sqlite_url(tmp_path / "s.db")
    _with_a_trial(_space(space_dict), storage)
    with pytest.raises(UserError, match=r"other constraints \(none, now accuracy >= 0.19\)"):
        open_study(_space(space_dict, constraints=["accuracy >= 0.19"]), storage)


def test_a_worker_joining_after_a_resume_runs_the_latest_space(tmp_path, space_dict):
    """`snnprune worker` reads the study's space: it kept the first one (seed 0 after a resume
    with seed 1)."""
    storage = sqlite_url(tmp_path / "s.db")
    study = _with_a_trial(_space(space_dict), storage)
    record_space(study, _space(space_dict, seed=1))
    assert optuna.load_study(study_name="r", storage=storage).user_attrs["space"]["seed"] == 1


def test_a_process_starts_no_trial_while_the_running_ones_complete_the_count(tmp_path, space_dict, monkeypatch):
    """Its first trial started without asking: `--workers 3 --trials 2` ran 3, and a worker
    joining while the last trials ran started one at once."""
    monkeypatch.setenv("SNNPRUNE_HEARTBEAT", "1,30")
    space = _space(space_dict, trials=1)
    storage = sqlite_url(tmp_path / "s.db")
    study = open_study(space, storage)
    other = study.ask()  # another process's trial, running, beating
    suggest(other, space)
    run_worker(space, storage, "r", tmp_path / "run", trials=None, total=1, timeout=1.0, device="cpu")
    trials = optuna.load_study(study_name="r", storage=storage).trials
    assert len(trials) == 1 and trials[0].state == optuna.trial.TrialState.RUNNING


def test_a_dead_worker_is_one_line_not_a_traceback():
    assert worker_exit_note([0, None, 0]) is None
    note = worker_exit_note([-9, 0, 1])
    assert note.startswith("worker 1 killed by signal 9, worker 3 exit code 1;") and "\n" not in note


def test_a_run_folder_with_percent_escapes_keeps_its_study_there(tmp_path):
    """SQLAlchemy decodes %XX in a sqlite URL: runs under ``pct%41dir`` wrote to ``pctAdir``."""
    path = tmp_path / "pct%41dir" / "a?b" / "study.db"
    url = sqlite_url(path)
    assert sqlite_file(url) == path
    path.parent.mkdir(parents=True)
    optuna.create_study(study_name="p", storage=url)
    assert path.is_file() and not (tmp_path / "pctAdir").exists()


def test_worker_trials_are_this_workers_own(tmp_path, space_dict, monkeypatch):
    """`worker --trials N` counted N against the whole study: with another process's trial
    running, a worker asked for 1 ran none (two such workers ran 3 trials, not 4)."""
    monkeypatch.setenv("SNNPRUNE_HEARTBEAT", "1,30")
    space = _space(space_dict, trials=1)
    storage = sqlite_url(tmp_path / "s.db")
    study = open_study(space, storage)
    suggest(study.ask(), space)  # another worker's trial, running
    run_worker(space, storage, "r", tmp_path / "run", trials=1, total=1, timeout=None, device="cpu")
    states = [t.state for t in optuna.load_study(study_name="r", storage=storage).trials]
    assert states == [optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE]


def test_workers_count_the_timeout_from_the_search_not_from_their_own_start(monkeypatch, space_dict):
    """Each `--workers` process counted --timeout from its own start, after importing torch: with
    --timeout 5 a trial still started 19 s after the command."""
    import os
    import time

    from snnprune.search import _optuna

    seen = {}
    monkeypatch.setattr(_optuna, "run_worker", lambda *a, **k: seen.setdefault("timeout", k["timeout"]))
    space = space_dict(study="r")
    _optuna._worker_entry(space, "r.yaml", "x", "r", ".", 2, time.time() - 3.0, "cpu", 1, 1, os.getppid())
    assert seen["timeout"] == pytest.approx(1e-3)  # the deadline passed while it started: no trial
