"""The study bar: trials done of total, the current Pareto size."""

from __future__ import annotations

import optuna
from tqdm.auto import tqdm

from ._storage import retried_failures

__all__ = ["StudyProgress"]


class StudyProgress:
    """An Optuna callback that moves one bar per finished trial (quiet: no bar)."""

    def __init__(self, total: int, done: int, desc: str, quiet: bool) -> None:
        self.bar = tqdm(total=total, initial=min(done, total), desc=desc, unit="trial", disable=quiet,
                        position=0, leave=True, dynamic_ncols=True)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        try:
            front = len(study.best_trials)
        except (ValueError, RuntimeError):
            front = 0
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        self.bar.set_postfix(pareto=front, pruned=states.count(optuna.trial.TrialState.PRUNED),
                             failed=states.count(optuna.trial.TrialState.FAIL) - len(retried_failures(trials)),
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
