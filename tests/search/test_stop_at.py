"""When a worker starts no more trials: the running ones of other processes hold their places.

Bug: counting finished trials only, ``--trials 4 --workers 2`` ran 5 (each worker that ended a
trial while the last one still ran started another).
"""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from snnprune.search._optuna import _stop_at
from snnprune.search._storage import open_storage

DIST = FloatDistribution(0.0, 1.0)


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNPRUNE_HEARTBEAT", "1,2")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(str(tmp_path / "journal.log"))
    return optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])


def _objective(trial: optuna.Trial) -> list[float]:
    x = trial.suggest_float("x", 0.0, 1.0)
    return [x, 1.0 - x]


def _other_process_trial(study: optuna.Study) -> optuna.Trial:
    """A trial another worker runs: asked through its own handle, heartbeat recorded at start."""
    other = optuna.load_study(study_name="s", storage=study._storage)
    trial = other.ask()
    trial.suggest_float("x", 0.0, 1.0)
    return trial


def _tell_when_waiting(study: optuna.Study, other: optuna.Trial):
    """``on_wait`` for `_stop_at` that records the wait, and the other worker ending its trial
    once this one waits for it (no timing: the order is forced)."""
    waiting = threading.Event()
    told: list[int] = []

    def on_wait(running: int) -> None:
        told.append(running)
        waiting.set()

    def other_worker() -> None:
        if waiting.wait(30):
            study.tell(other, [0.5, 0.5])

    thread = threading.Thread(target=other_worker, daemon=True)
    thread.start()
    return told, thread, on_wait


def test_a_worker_does_not_start_a_trial_another_worker_is_already_running_for(study):
    other = _other_process_trial(study)
    told, thread, on_wait = _tell_when_waiting(study, other)
    study.optimize(_objective, callbacks=[_stop_at(2, poll=0.05, on_wait=on_wait)])
    thread.join(30)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE]  # not 3
    assert told == [1]  # it waited for the other trial instead of starting one more, and said so once


def test_a_dead_workers_trial_found_stale_while_waiting_is_run_again_by_this_one(study):
    dead = _other_process_trial(study)  # its process "died": no more heartbeats, never told
    study.optimize(_objective, callbacks=[_stop_at(2, poll=0.1)])  # a quick resume, within the grace
    trials = study.get_trials(deepcopy=False)
    assert trials[dead.number].state == TrialState.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2


def test_waiting_ends_at_the_deadline(study):
    _other_process_trial(study)
    start = time.monotonic()
    # the other trial keeps beating (a live worker): only the deadline ends the wait
    keep = threading.Event()

    def beat():
        while not keep.wait(0.3):
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                study._storage.record_heartbeat(t._trial_id)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        study.optimize(_objective, callbacks=[_stop_at(2, deadline=time.monotonic() + 1.0, poll=0.05)])
    finally:
        keep.set()
        thread.join()
    assert 1.0 <= time.monotonic() - start < 30  # the wait ended, not the other worker
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 1


def test_without_heartbeats_only_finished_trials_count():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.ask()  # RUNNING forever: in memory, nothing can find it stale
    study.optimize(_objective, callbacks=[_stop_at(2)])
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 2



def test_the_bar_says_why_it_waits():
    from snnprune.search._progress import StudyProgress

    bar = StudyProgress(total=2, done=1, desc="t", quiet=False)
    bar.waiting(1)
    assert bar.bar.postfix == "waiting for 1 trial running elsewhere"
    bar.waiting(2)
    assert bar.bar.postfix == "waiting for 2 trials running elsewhere"
    bar.close()
