"""The study bar: trials done of total, the current Pareto size.

One bar per search, in the process the user started. With one worker it moves as an Optuna
callback; where trials finish in other processes (``--workers N``, Ray's workers) the parent
polls the study and `StudyProgress.sync` moves it to the count stored there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import optuna
from tqdm.auto import tqdm

from snnprune.errors import first_line

from ._storage import redact, retried_failures

__all__ = ["StudyProgress", "polled_bar"]


class StudyProgress:
    """An Optuna callback that moves the bar after each trial of this process (quiet: no bar).

    ``count(study)``, when given, is where the bar goes: the study's own count, so the trials
    other processes (a `snnprune worker` beside the search) finished move it too; else one step.
    """

    def __init__(self, total: int, done: int, desc: str, quiet: bool,
                 count: Callable[[optuna.Study], int] | None = None) -> None:
        self.bar = tqdm(total=total, initial=min(done, total), desc=desc, unit="trial", disable=quiet,
                        position=0, leave=True, dynamic_ncols=True)
        self.count = count

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.count is not None:
            self.sync(study, self.count(study))
            return
        self._postfix(study)
        self.bar.update(1)

    def sync(self, study: optuna.Study, done: int) -> None:
        """Move the bar to ``done`` finished trials, run by other processes, and refresh its figures."""
        if done > self.bar.n and not self.bar.disable:
            self._postfix(study)
            self.bar.update(min(done, self.bar.total or done) - self.bar.n)

    def waiting(self, running: int) -> None:
        """Say why the bar stands still: the last trials run elsewhere (another worker, or a
        process that died and whose trial is failed and run again once its grace period is over)."""
        self.bar.set_postfix_str(f"waiting for {running} trial{'s' if running != 1 else ''} running elsewhere")

    def _postfix(self, study: optuna.Study) -> None:
        try:
            front = len(study.best_trials)
        except (ValueError, RuntimeError):
            front = 0
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        self.bar.set_postfix(pareto=front, pruned=states.count(optuna.trial.TrialState.PRUNED),
                             failed=states.count(optuna.trial.TrialState.FAIL) - len(retried_failures(trials)),
                             refresh=False)

    def close(self) -> None:
        self.bar.close()


@contextlib.contextmanager
def polled_bar(study: optuna.Study, finished: Callable[[optuna.Study], int], total: int, desc: str, *,
               quiet: bool, every: float = 1.0) -> Iterator[StudyProgress]:
    """A study bar that a thread of this process moves every ``every`` seconds from the storage.

    For a driver whose own thread is busy elsewhere (Ray's ``Tuner.fit``). A storage error
    while polling is skipped: the next poll may get through, and the search must not die of it.
    """
    bar = StudyProgress(total, finished(study), desc, quiet=quiet)
    stop = threading.Event()

    def poll() -> None:
        try:
            bar.sync(study, finished(study))
        except Exception as exc:  # a storage hiccup: shown on the bar, never fatal
            reason = first_line(exc)[:80]
            bar.bar.set_postfix_str(f"storage: {redact(reason)}")

    def run() -> None:
        while not stop.wait(every):
            poll()

    thread = threading.Thread(target=run, name="snnprune-study-bar", daemon=True)
    if not quiet:
        thread.start()
    try:
        yield bar
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        if not quiet:
            poll()
        bar.close()
