"""Ctrl-C during a search: the running trials fail with a reason and are queued again.

Without this, a trial cut short by Ctrl-C stays RUNNING in the study (its worker was killed
before Optuna could record anything), or becomes a FAIL that counts towards ``--trials`` and is
never run again; the heartbeat would only notice it 90 s later. Here each worker remembers the
trial it is running; on KeyboardInterrupt the trial is failed with `USER_INTERRUPT` and a copy
with the same parameters is queued (user attribute ``retry_of``), as for a worker that died, so
re-running the command runs it first and the count is unchanged.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from multiprocessing.process import BaseProcess
from typing import Self

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from ._promote import resume_attrs
from ._storage import retried_failures

__all__ = ["USER_INTERRUPT", "InterruptFlag", "requeue_interrupted", "sigint_ignored", "stop_workers", "watch_parent"]

#: The ``fail_reason`` of a trial stopped by Ctrl-C.
USER_INTERRUPT = "interrupted by the user (Ctrl-C); queued again with the same parameters"


class InterruptFlag:
    """A SIGINT handler that also remembers: call `check` at safe points.

    Python raises KeyboardInterrupt wherever the main thread is; when that is a weakref or
    garbage-collection callback (SQLAlchemy has several), the exception is printed as
    "Exception ignored" and lost, and the search would go on. The flag survives that: the next
    `check` (after each trial, in the parent's polling loop) raises again. A process that
    ignores SIGINT (started in the background) keeps ignoring it; off the main thread this does
    nothing.
    """

    def __init__(self) -> None:
        self.set = False
        self._previous: object = None

    def _handler(self, _signum: int, _frame: object) -> None:
        self.set = True
        raise KeyboardInterrupt

    def check(self, *_args: object) -> None:
        """Raise KeyboardInterrupt if SIGINT came (usable as an Optuna callback)."""
        if self.set:
            raise KeyboardInterrupt

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
            self._previous = None


def requeue_interrupted(study: optuna.Study, numbers: Iterable[int]) -> list[int]:
    """Fail the trials ``numbers`` that did not finish and queue each again, once; their numbers.

    A trial Optuna already failed (it records KeyboardInterrupt as FAIL) is queued as it is; one
    still RUNNING (the interrupt came while Optuna was recording it) is failed first.
    """
    wanted = set(numbers)
    storage = study._storage  # Optuna's own retry callback works on the storage as well
    trials = study.get_trials(deepcopy=False)
    queued = retried_failures(trials)
    requeued = []
    for trial in trials:
        if (trial.number not in wanted or trial.number in queued
                or trial.state not in (TrialState.RUNNING, TrialState.FAIL)):
            continue
        if trial.state == TrialState.RUNNING:
            try:
                storage.set_trial_user_attr(trial._trial_id, "fail_reason", USER_INTERRUPT)
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                pass  # recorded meanwhile by Optuna itself
            trial = storage.get_trial(trial._trial_id)
        if trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") == USER_INTERRUPT:
            # unlike a crash (`RetryOnce`), Ctrl-C says nothing about the configuration: a retry
            # interrupted in its turn is queued again too
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
                user_attrs={"retry_of": trial.number, **resume_attrs(trial.user_attrs)}))
            requeued.append(trial.number)
    return requeued


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored for a moment: a second Ctrl-C must not cut the bookkeeping of the first short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_workers(procs: Sequence[BaseProcess], *, forward_after: float = 1.0, wait: float = 20.0) -> None:
    """After Ctrl-C in the parent: let the worker processes record their trials, then end them.

    A terminal's Ctrl-C reaches every process of the group, so the workers are already handling
    it; one interrupted alone (``kill -INT`` on the parent) gets SIGINT forwarded after
    ``forward_after`` seconds. A worker still alive after ``wait`` seconds is terminated.
    """
    deadline = time.monotonic() + forward_after
    while time.monotonic() < deadline and any(p.is_alive() for p in procs):
        time.sleep(0.05)
    for p in procs:
        if p.is_alive() and p.pid is not None:
            try:
                os.kill(p.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + wait
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5.0)


def watch_parent(parent: int, interval: float = 1.0) -> threading.Thread:
    """In a ``--workers`` process: stop as Ctrl-C would (its trial failed and queued again) once
    the parent search is gone.

    A parent ended by SIGTERM (``kill PID``, ``docker stop``) or ``kill -9`` left its workers
    running the study on their own; re-running the command meanwhile put twice as many workers
    on it. The parent's death shows as a new parent process id; ``parent`` is the pid the parent
    passed (read here, a parent that died while the worker imported would go unseen).
    """

    def run() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=run, name="snnprune-parent-watch", daemon=True)
    thread.start()
    return thread
