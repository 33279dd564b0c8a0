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


@pytest.mark.parametrize("dist, grid", [
    (IntDist(1, 10, step=3), [1, 4, 7, 10]),        # qrandint gave 3, 6, 9
    (IntDist(2, 9, step=7), [2, 9]),                # qrandint gave only 7
    (FloatDist(0.05, 0.95, step=0.1), [round(0.05 + 0.1 * k, 2) for k in range(10)]),  # quniform refused
    (FloatDist(0.05, 0.95, step=0.05), [round(0.05 * k, 2) for k in range(1, 20)]),  # 0.9500000000000001
])
def test_ray_stepped_ranges_are_optunas_grid(dist, grid):
    ray_values = {to_ray(dist).sample() for _ in range(3000)}
    assert ray_values == set(grid)
    optuna_dist = to_optuna(dist)
    assert all(optuna_dist._contains(optuna_dist.to_internal_repr(v)) for v in grid)


def test_a_value_sampled_above_another_stays_on_its_grid(tiny_space):
    """The bug: PQ's q (step 0.5) sampled above p >= 0.5 came from a continuous range from
    p + 0.5, so 54 of 300 values were off the grid (1.019, 1.078) and 1.0 was never drawn."""
    import optuna

    space = tiny_space(pruners={"pq-rewiring": {"sparsity": 0.5, "p": [0.1, 0.6],
                                                "q": {"low": 0.5, "high": 2.0, "step": 0.5}}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(300):
        trial = study.ask()
        _, _, hp = suggest(trial, space)
        assert hp["q"] > hp["p"] and hp["q"] in (0.5, 1.0, 1.5, 2.0), hp
        seen.add(hp["q"])
        study.tell(trial, 0.0)
    assert 1.0 in seen
