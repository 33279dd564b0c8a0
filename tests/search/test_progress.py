"""The study bar moved by a poller: other processes (workers, Ray) finish the trials."""

from __future__ import annotations

import time

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from snnprune.search._optuna import _finished
from snnprune.search._progress import StudyProgress, polled_bar

DIST = {"x": FloatDistribution(0.0, 1.0)}


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["maximize", "minimize"])


def _add(study: optuna.Study, values: list[float], state: TrialState = TrialState.COMPLETE) -> None:
    study.add_trial(create_trial(state=state, values=values if state == TrialState.COMPLETE else None,
                                 params={"x": 0.5}, distributions=DIST))


def test_sync_moves_to_the_stored_count_with_the_front_and_never_past_the_total():
    study = _study()
    bar = StudyProgress(total=3, done=0, desc="t", quiet=False)
    _add(study, [0.9, 10.0])
    _add(study, [0.8, 5.0])
    _add(study, [0.7, 20.0])  # dominated by the first
    bar.sync(study, _finished(study))
    assert bar.bar.n == 3
    assert bar.bar.postfix == "failed=0, pareto=2, pruned=0"
    _add(study, [0.95, 1.0])
    bar.sync(study, _finished(study))  # a fourth trial (a retry's count) stays within the total
    assert bar.bar.n == 3
    bar.sync(study, 1)  # never backwards
    assert bar.bar.n == 3
    bar.close()


def test_polled_bar_follows_trials_finished_elsewhere_and_survives_a_storage_error():
    study = _study()
    calls = {"n": 0}

    def finished(s: optuna.Study) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database is locked")
        return _finished(s)

    with polled_bar(study, finished, 2, "t", quiet=False, every=0.05) as bar:
        _add(study, [0.9, 10.0])
        deadline = time.monotonic() + 30
        while bar.bar.n < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bar.bar.n == 1
        _add(study, [0.8, 5.0])
    assert bar.bar.n == 2  # the last poll, on the way out
    assert calls["n"] >= 3


def test_a_quiet_polled_bar_reads_nothing():
    study = _study()

    def finished(s: optuna.Study) -> int:
        finished.calls += 1
        return 0

    finished.calls = 0
    with polled_bar(study, finished, 2, "t", quiet=True, every=0.01):
        time.sleep(0.1)
    assert finished.calls == 1  # the starting count only


def test_a_workers_bar_counts_the_trials_other_processes_finished():
    # bug: a search with a `snnprune worker` beside it ended its bar at 3/4 on a 4-trial study
    study = _study()
    bar = StudyProgress(total=4, done=0, desc="t", quiet=False, count=_finished)
    _add(study, [0.9, 10.0])  # another process's
    _add(study, [0.8, 5.0])  # this one's, whose callback moves the bar
    bar(study, study.trials[-1])
    assert bar.bar.n == 2
    bar.close()
