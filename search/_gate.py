"""When a search process may start another trial: the study's count of finished
configurations against ``--trials``, the trials running in other processes, ``--timeout``, and
(promote mode) the promotions that always run first."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from ._promote import is_resume, waiting_resumes
from ._storage import retried_failures

__all__ = ["COUNTED"]

#: What counts towards --trials: failed trials too, or a study where every trial fails would
#: never reach its total and run forever; but not a trial whose process died and that was queued
#: again (its retry counts instead), see `_finished`.
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _finished(study: optuna.Study) -> int:
    """Trials that count towards the total: COUNTED states, less the dead trials that were retried
    (heartbeat-stale, failed and queued again with ``retry_of``), so a crash costs no trial."""
    return _counted(study.get_trials(deepcopy=False))


def _counted(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Configurations finished: a promotion's trial goes on with one already counted."""
    retried = retried_failures(trials)
    return sum(1 for t in trials if t.state in COUNTED and t.number not in retried and not is_resume(t))


def _stop_at(total: int, deadline: float | None = None, poll: float | None = None,
             on_wait: Callable[[int], None] | None = None, promote: Callable[[], bool] | None = None):
    """After each trial: start another only while the trials that count, plus those running in
    other processes, stay below ``total``.

    Counting finished trials alone (Optuna's MaxTrialsCallback), every worker that ends a trial
    while the last ones still run starts one more: ``--trials 4 --workers 2`` ran 5. When the
    running trials would complete the count, the worker waits (every ``poll`` seconds) for them
    instead of leaving: one may still fail, or be a trial whose process died and that is only
    found stale (failed, queued again) once its grace period is over; then the worker runs the
    retry, so a quick resume after a crash still ends with ``total``. It stops waiting at
    ``deadline`` (``--timeout``); ``on_wait(running)`` is told when it starts waiting. Two
    workers ending trials in the same instant can still both start one: nothing is lost, one
    trial is extra. Without heartbeats nothing can be found stale, and only finished trials count.
    In promote mode a promotion (``promote()`` queues one) or a queued one is always run first,
    also once ``total`` configurations have finished: the search ends when none is left.
    """
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial | None) -> None:
        if not _room(study, total, deadline, poll, on_wait, promote):
            study.stop()
    return callback


def _room(study: optuna.Study, total: int, deadline: float | None = None, poll: float | None = None,
          on_wait: Callable[[int], None] | None = None, promote: Callable[[], bool] | None = None) -> bool:
    """Whether this process may start another trial (see `_stop_at`), waiting while the running
    trials of other processes would complete the count. Also asked before a process's first
    trial: a worker joining while the last trials ran started one at once (``--workers 3
    --trials 2`` ran 3)."""
    storage = study._storage  # as Optuna's own heartbeat helpers take it
    if not is_heartbeat_enabled(storage):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if (promote is not None and promote()) or waiting_resumes(study.get_trials(deepcopy=False)):
            return True
        return _finished(study) < total
    every = poll if poll is not None else min(5.0, float(storage.get_heartbeat_interval()))
    told = False
    while True:
        with warnings.catch_warnings():  # "experimental" since 2.9; Study.optimize calls it too
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if promote is not None and promote():
            return True  # Optuna's ask takes the queued promotion first
        trials = study.get_trials(deepcopy=False)
        if waiting_resumes(trials):
            return True
        done = _counted(trials)
        if done >= total:
            return False
        # configurations running elsewhere: a promotion's trial goes on with one already counted
        running = sum(1 for t in trials if t.state == TrialState.RUNNING and not is_resume(t))
        if done + running < total:
            return True  # room for one more (a queued retry first)
        if on_wait is not None and not told:
            on_wait(running)
            told = True
        time.sleep(every)
