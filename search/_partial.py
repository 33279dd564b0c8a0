"""What a sampler learns from in a search with rungs: every configuration once, by its latest vector.

A trial stopped or paused at a rung is stored PRUNED with its partial objective vector (user
attributes ``partial_values`` and, per rung, `rung_attr`; both backends). Optuna's samplers read
a PRUNED multi-objective trial as a result with no values: TPE ranks every such trial alike,
last, and puts it in its "above" group whatever it measured, so the MACs it cost and the
accuracy it reached teach the sampler nothing. In a search with rungs most trials end that way, and the sampler modelled the
front on a handful of complete trials (bench/search.py, digits, promote arm, seed 1: after its
first complete trials, SCA at 45-60 % of channels, TPE proposed four more SCA trials there and
reached GMP above 96 % sparsity at its 19th trial; the no-stop search tried it as its 9th).
Shown the partial vectors, that search proposed the no-stop search's 16 configurations in the
same order, and its fine-tune epochs to 95 % of the no-stop hypervolume went from 0.722 to 0.521
of the no-stop search's (2 seeds; Fashion-MNIST 0.968 to 0.741).

`PartialVectors` shows the sampler such a trial as COMPLETE with its vector at the rung where it
stopped: MACs, parameters, sparsity and SOPs are final at any rung (pruning is done), and rung
accuracy ranks final accuracy well (Spearman 0.83 at fine-tune epoch 1 of 9, over 2 x 24 random
configurations of the every-method space on digits). It is a pessimistic stand-in (accuracy
still rises after the rung), so a dominated pause stays in the sampler's worse group, as it
should. A paused trial that went on is left out once the trial
that resumed it has finished: that trial stands for the configuration. The study itself is not
changed: reports, ``best_trials`` and the rule see the stored states.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from ._promote import promoted_numbers, rung_attr, rung_of

__all__ = ["PartialVectors", "partial_vector", "sampler_trials"]

def partial_vector(trial: FrozenTrial, objectives: int) -> list[float] | None:
    """The objective vector a PRUNED trial was stored with where it stopped or paused
    (``partial_values``, both backends; else its rung record there, else its last one); None
    without ``objectives`` numbers (a pruned trial of another origin)."""
    if trial.state != TrialState.PRUNED:
        return None
    attrs = trial.user_attrs
    rung = attrs.get("stopped_at_rung")
    recorded = [r for r in (rung_of(k) for k in attrs) if r is not None]
    for key in ("partial_values", rung_attr(rung) if isinstance(rung, int) else None,
                rung_attr(max(recorded)) if recorded else None):
        vector = _numbers(attrs.get(key) if key else None, objectives)
        if vector is not None:
            return vector
    return None


def _numbers(value: Any, length: int) -> list[float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        return None
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return None


def sampler_trials(trials: Iterable[FrozenTrial], objectives: int) -> list[FrozenTrial]:
    """``trials`` as a sampler should see them: a pause whose resuming trial has finished left
    out, every other PRUNED trial with a rung record shown COMPLETE with `partial_vector`
    (a copy: the study's trials are untouched); all else as stored."""
    trials = list(trials)
    went_on = promoted_numbers(trials, resumed_by=(TrialState.COMPLETE, TrialState.PRUNED))
    out = []
    for t in trials:
        if t.number in went_on:
            continue
        vector = partial_vector(t, objectives)
        if vector is not None:
            t = copy.copy(t)
            t.state = TrialState.COMPLETE
            t.values = vector
        out.append(t)
    return out


class _PartialView:
    """A study whose trials are `sampler_trials` of its own; everything else is the study."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        stored = self._study._get_trials(deepcopy=deepcopy, states=None, use_cache=use_cache)
        shown = sampler_trials(stored, len(self._study.directions))
        return shown if states is None else [t for t in shown if t.state in states]

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class PartialVectors(BaseSampler):
    """A sampler that proposes from `sampler_trials` (a search with rungs, either mode); it leaves
    recording (``before_trial``, ``after_trial``: constraints) to the sampler it wraps, on the
    study itself."""

    def __init__(self, sampler: BaseSampler) -> None:
        self.sampler = sampler

    def _view(self, study: optuna.Study) -> optuna.Study:
        return _PartialView(study)  # type: ignore[return-value]  # a study to the sampler

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(self._view(study), trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.sampler.sample_relative(self._view(study), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.sampler.sample_independent(self._view(study), trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()
