from __future__ import annotations

import optuna
import pytest

from snnprune.search import suggest, to_optuna, to_ray
from snnprune.spaces import CategoricalDist, Fixed, FloatDist, IntDist


def test_optuna_converter_keeps_inclusive_bounds():
    d = to_optuna(IntDist(1, 8))
    assert (d.low, d.high) == (1, 8)
    f = to_optuna(FloatDist(1e-4, 1.0, log=True))
    assert f.log and f.low == 1e-4
    assert to_optuna(CategoricalDist(("max", "mean"))).choices == ("max", "mean")
    assert to_optuna(Fixed(0.5)) is None


def test_ray_integer_upper_bound_is_exclusive():
    pytest.importorskip("ray")
    d = to_ray(IntDist(1, 8))
    assert (d.lower, d.upper) == (1, 9)  # Ray: [1, 9) == Optuna: [1, 8]
    samples = {d.sample() for _ in range(400)}
    assert samples == set(range(1, 9))
    assert to_ray(FloatDist(0.1, 0.9)).lower == 0.1
    assert to_ray(Fixed("max")) == "max"


def test_suggest_conditional_pruner_parameters(tiny_space):
    space = tiny_space(pruners={
        "gmp": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9}},
        "criticality-unstructured": {"sparsity": 0.8, "regen_ratio": {"type": "float", "low": 0.1, "high": 0.5},
                                     "aggregation": {"type": "categorical", "choices": ["max", "mean"]}},
    })
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        pruner, sparsity, hp = suggest(trial, space)
        seen.add(pruner)
        if pruner == "gmp":
            assert hp == {} and 0.3 <= sparsity <= 0.9
            assert set(trial.params) == {"pruner", "gmp.sparsity"}
        else:
            assert sparsity == 0.8 and set(hp) == {"regen_ratio", "aggregation"}
        study.tell(trial, [0.5, 1.0])
    assert seen == {"gmp", "criticality-unstructured"}
