"""Sampling a trial from a space, and the converters to each backend's distributions.

The same define-by-run function serves both backends (Ray's OptunaSearch accepts it), so a
trial means the same thing whichever runs it. With several pruners the pruner is a categorical
and each pruner's hyperparameters are conditional on it (named ``PRUNER.NAME``). A
hyperparameter that must exceed another (PQ's q > p) is sampled after it, from above it.

Converters translate semantics, not names: bounds are inclusive in the space and in Optuna,
while Ray's integer upper bound is exclusive, so `to_ray` adds one; a stepped range is the grid
``low + k * step`` in both.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from snnprune.errors import UserError
from snnprune.pruners import get_pruner
from snnprune.spaces import CategoricalDist, Fixed, FloatDist, IntDist, SearchSpace

__all__ = ["param_name", "space_distributions", "suggest", "to_optuna", "to_ray"]

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
    """The Ray Tune domain with the same values as `to_optuna`'s distribution.

    Ray's randint/lograndint exclude the upper bound: we add one. A stepped range is the grid
    ``low + k * step`` as in Optuna, which Ray's quniform/qrandint are not: they round to
    multiples of the step (a grid 1, 4, 7, 10 became 3, 6, 9), quniform refuses a low bound
    that is not a multiple of it, and its rounding can land just above the high bound. So a
    stepped range becomes a choice over its exact grid.
    """
    from ray import tune

    if isinstance(dist, FloatDist):
        if dist.log:
            return tune.loguniform(dist.low, dist.high)
        if dist.step:
            return tune.choice(step_grid(dist))
        return tune.uniform(dist.low, dist.high)
    if isinstance(dist, IntDist):
        step = int(dist.step or 1)
        if dist.log:
            return tune.lograndint(int(dist.low), int(dist.high) + 1)
        if step > 1:
            return tune.choice(step_grid(dist))
        return tune.randint(int(dist.low), int(dist.high) + 1)
    if isinstance(dist, CategoricalDist):
        return tune.choice(list(dist.choices))
    return dist.value


_MAX_GRID = 1_000_000


def step_grid(dist: FloatDist | IntDist) -> list[float] | list[int]:
    """Every value ``low + k * step`` up to ``high`` (the space checked that step divides the range)."""
    step = dist.step or 1
    count = round((dist.high - dist.low) / step) + 1
    if count > _MAX_GRID:
        raise UserError(f"a range of {count} steps is too fine to list for Ray; drop the step or "
                        "use the Optuna backend")
    if isinstance(dist, IntDist):
        return [int(dist.low) + k * int(step) for k in range(count)]
    return [min(dist.high, _clean(dist.low + k * step)) for k in range(count)]


def _clean(value: float) -> float:
    """``value`` without float noise (0.30000000000000004 -> 0.3)."""
    return float(f"{value:.12g}")


def _above(dist: FloatDist | IntDist, floor: float) -> float:
    """The smallest value of ``dist`` above ``floor``: on its step grid when it has one, so a
    hyperparameter sampled above another (PQ's q > p) stays on the grid the space declared."""
    if dist.step:
        k = math.floor((floor - dist.low) / dist.step + 1e-9) + 1
        value = _clean(dist.low + k * dist.step)
        return int(value) if isinstance(dist, IntDist) else value
    if isinstance(dist, IntDist):
        return math.floor(floor) + 1
    return floor + max(1e-6, 1e-6 * abs(floor))


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
    if floor is not None and floor >= low:  # must exceed `floor`
        low = min(_above(dist, floor), dist.high)
    if isinstance(dist, IntDist):
        return trial.suggest_int(name, int(low), int(dist.high), log=dist.log, step=int(dist.step or 1))
    return trial.suggest_float(name, low, dist.high, log=dist.log, step=dist.step)


def space_distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    """Every parameter `suggest` may ask for, with its distribution (fixed values left out); a
    lower bound raised above another parameter (PQ's q > p) keeps the distribution's kind."""
    names = list(space.pruner_names)
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    if len(names) > 1:
        out["pruner"] = optuna.distributions.CategoricalDistribution(names)
    for pruner in names:
        for name, dist in space.pruners[pruner].items():
            converted = to_optuna(dist)
            if converted is not None:
                out[param_name(pruner, name)] = converted
    return out


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
