"""Search: the trial runner, the Optuna and Ray Tune backends, multi-fidelity stopping, the
dense-checkpoint cache and distributed workers."""

from __future__ import annotations

from ._cache import DenseCache, cache_digest
from ._fidelity import Pause, RungStore, dominates, noise_margin, passes, should_stop
from ._optuna import (TrialFailed, make_objective, make_runtime, make_sampler, open_study, optimize, run_worker,
                      summarize)
from ._ray import ray_optimize
from ._runner import DIRECTIONS, RungPolicy, TrialRuntime, run_trial
from ._storage import default_storage, open_storage, redact
from ._suggest import param_name, suggest, to_optuna, to_ray
from ._trial import TrialConfig, TrialResult

__all__ = [
    "DIRECTIONS",
    "DenseCache",
    "Pause",
    "RungPolicy",
    "RungStore",
    "TrialConfig",
    "TrialFailed",
    "TrialResult",
    "TrialRuntime",
    "cache_digest",
    "default_storage",
    "dominates",
    "make_objective",
    "make_runtime",
    "make_sampler",
    "noise_margin",
    "open_storage",
    "open_study",
    "optimize",
    "param_name",
    "passes",
    "ray_optimize",
    "redact",
    "run_trial",
    "run_worker",
    "should_stop",
    "suggest",
    "summarize",
    "to_optuna",
    "to_ray",
]
