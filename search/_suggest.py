"""Sampling a trial from a space, and the converters to each backend's distributions.

The same define-by-run function serves both backends (Ray's OptunaSearch accepts it), so a
trial means the same thing whichever runs it. With several pruners the pruner is a categorical
and each pruner's hyperparameters are conditional on it (named ``PRUNER.NAME``). A
hyperparameter that must exceed another (PQ's q > p) is sampled after it, from above it.

Converters translate semantics, not names: bounds are inclusive in the space and in Optuna,
while Ray's integer upper bound is exclusive, so `to_ray` adds one.
"""

from __future__ import annotations

from typing import Any

import optuna

from snnprune.pruners import get_pruner
from snnprune.spaces import CategoricalDist, Fixed, FloatDist, IntDist, SearchSpace

__all__ = ["param_name", "suggest", "to_optuna", "to_ray"]

Distribution = FloatDist | IntDist | CategoricalDist | Fixed


def param_name(pruner: str, name: str) -> str:
    """Optuna parameter name of a pruner's hyperparameter (conditional on the pruner)."""
    return f"{pruner}.{name}"


def to_optuna(dist: Distribution) -> optuna.distributions.BaseDistribution | None:
    """The Optuna distribution (None for a fixed value: nothing to sample)."""
    if isinstance(dist, FloatDist):
        return optuna.distributions.FloatDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDist):
        return optuna.distributions.IntDistribution(int(dist.low), int(dist.high), log=dist.log,
                                                    step=int(dist.step or 1))
    if isinstance(dist, CategoricalDist):
        return optuna.distributions.CategoricalDistribution(list(dist.choices))
    return None


def to_ray(dist: Distribution) -> Any:
    """The Ray Tune domain. Ray's randint/qrandint exclude the upper bound: we add one."""
    from ray import tune

    if isinstance(dist, FloatDist):
        if dist.log:
            return tune.loguniform(dist.low, dist.high)
        if dist.step:
            return tune.quniform(dist.low, dist.high, dist.step)
        return tune.uniform(dist.low, dist.high)
    if isinstance(dist, IntDist):
        step = int(dist.step or 1)
        if dist.log:
            return tune.lograndint(int(dist.low), int(dist.high) + 1)
        if step > 1:
            return tune.qrandint(int(dist.low), int(dist.high), step)  # qrandint's upper bound is inclusive
        return tune.randint(int(dist.low), int(dist.high) + 1)
    if isinstance(dist, CategoricalDist):
        return tune.choice(list(dist.choices))
    return dist.value


def _ordered(dists: dict[str, Distribution], pruner: str) -> list[str]:
    spec = get_pruner(pruner)
    above = {hp.name: hp.above for hp in spec.hyperparams if hp.above}
    names = [n for n in dists if n not in above] + [n for n in dists if n in above]
    return names


def _sample(trial: optuna.Trial, name: str, dist: Distribution, floor: float | None) -> Any:
    if isinstance(dist, Fixed):
        return dist.value
    if isinstance(dist, CategoricalDist):
        return trial.suggest_categorical(name, list(dist.choices))
    low = dist.low
    if floor is not None and floor >= low:
        # must exceed `floor`: the smallest representable step above it
        low = floor + (dist.step or (1 if isinstance(dist, IntDist) else max(1e-6, 1e-6 * abs(floor))))
        low = min(low, dist.high)
    if isinstance(dist, IntDist):
        return trial.suggest_int(name, int(low), int(dist.high), log=dist.log, step=int(dist.step or 1))
    step = dist.step if low == dist.low else None
    return trial.suggest_float(name, low, dist.high, log=dist.log, step=step)


def suggest(trial: optuna.Trial, space: SearchSpace) -> tuple[str, float, dict[str, Any]]:
    """(pruner, target sparsity, hyperparameters) for this trial."""
    names = list(space.pruner_names)
    pruner = names[0] if len(names) == 1 else trial.suggest_categorical("pruner", names)
    spec = get_pruner(pruner)
    above = {hp.name: hp.above for hp in spec.hyperparams if hp.above}
    values: dict[str, Any] = {}
    dists = space.pruners[pruner]
    for name in _ordered(dists, pruner):
        floor = values.get(above[name]) if name in above else None
        values[name] = _sample(trial, param_name(pruner, name), dists[name], floor)
    sparsity = float(values.pop("sparsity"))
    return pruner, sparsity, values
