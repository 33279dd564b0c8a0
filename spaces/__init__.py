"""Search spaces: what a pruning search explores, as validated, backend-neutral data.

    from snnprune.spaces import load_space
    space = load_space("demo")                 # a built-in, or a path to your own YAML
    space.pruners["sca"]["update_ratio"]       # FloatDist(low=0.0, high=0.3, log=False, step=None)
    space = space.with_overrides(trials=50, seed=1)

A space names the model, the data, the training budget, one or several pruners with the
distributions of their hyperparameters (each pruner's ``sparsity`` target always included),
1 to 3 objectives, constraints, resources per trial, multi-fidelity rungs and the sampler.
Everything is checked on load against the pruner registry, the model zoo and the data table, so
a bad space fails in one line naming the file and the key, before any training starts. The
converters to Optuna and Ray Tune live in `snnprune.search`.
"""

from __future__ import annotations

from ._dists import CategoricalDist, Distribution, Fixed, FloatDist, IntDist, parse_distribution
from ._parse import builtin_spaces, load_space, parse_space
from ._pruners import check_sample
from ._schema import (DEFAULT_FRACTIONS, DIRECTIONS, METRICS, RUNG_MODES, SAMPLERS, Constraint, DataSpec, ModelSpec,
                      Objective, Resources, Rungs, SearchSpace)

__all__ = [
    "DEFAULT_FRACTIONS",
    "DIRECTIONS",
    "METRICS",
    "RUNG_MODES",
    "SAMPLERS",
    "CategoricalDist",
    "Constraint",
    "DataSpec",
    "Distribution",
    "Fixed",
    "FloatDist",
    "IntDist",
    "ModelSpec",
    "Objective",
    "Resources",
    "Rungs",
    "SearchSpace",
    "builtin_spaces",
    "check_sample",
    "load_space",
    "parse_distribution",
    "parse_space",
]
