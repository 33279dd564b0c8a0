"""The built-in spaces: each loads against the real registry, round-trips, and is feasible.

A built-in space whose pruners are not all registered yet is skipped with the names missing,
so this file turns green by itself as the pruners land.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import yaml

from snnprune.spaces import builtin_spaces, check_sample, load_space, parse_space

EXPECTED = {"demo", "sca", "criticality", "pq", "compare", "fashion-mnist", "cifar10-vgg16"}


def _load(name: str, need):
    need(*yaml.safe_load(builtin_spaces()[name].read_text())["pruners"])
    return load_space(name)


def test_builtin_names() -> None:
    assert EXPECTED <= set(builtin_spaces())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_loads_and_round_trips(name, need) -> None:
    space = _load(name, need)
    assert space.study == name
    assert parse_space(space.to_dict()) == space
    assert parse_space(json.loads(json.dumps(space.to_dict()))) == space
    assert parse_space(yaml.safe_load(space.to_yaml())) == space
    assert load_space(f"{name}.yaml") == space == load_space(builtin_spaces()[name])
    assert all("sparsity" in dists for dists in space.pruners.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_has_a_header(name) -> None:
    lines = builtin_spaces()[name].read_text().splitlines()
    header = list(itertools.takewhile(lambda line: line.startswith("#"), lines))
    assert len(header) >= 3, "say what the space is for and how long it takes"
    assert any(word in " ".join(header) for word in ("minute", "hour", "day"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_spaces_are_feasible_everywhere(name, need) -> None:
    """Every corner of every range passes the registry and the cross-constraints, so no sample
    of a built-in space is infeasible (the constraints are monotone in each value)."""
    space = _load(name, need)
    for pruner, dists in space.pruners.items():
        names = list(dists)
        for combo in itertools.product(*(dists[n].corners() for n in names)):
            check_sample(pruner, dict(zip(names, combo)))


def test_demo_is_small(need) -> None:
    space = _load("demo", need)
    assert (space.data.name, space.model.name, space.model.width, space.model.T) == ("digits", "cnn", 1.0, 4)
    budget = space.budget
    assert (budget.pretrain_epochs, budget.prune_epochs, budget.finetune_epochs) == (4, 2, 2)
    assert {"criticality-unstructured", "sca"} <= set(space.pruner_names)
    assert space.metric_names == ("accuracy", "macs") and space.directions == ("maximize", "minimize")
    assert space.rungs.epochs == (1,) and space.trials == 12


def test_gpu_and_cpu_settings(need) -> None:
    vgg = _load("cifar10-vgg16", need)
    assert (vgg.model.name, vgg.data.name, vgg.resources.gpu) == ("vgg16", "cifar10", 0.5)
    assert vgg.model.T in (4, 5) and vgg.budget.pretrain_epochs >= 50
    fmnist = _load("fashion-mnist", need)
    assert fmnist.data.name == "fashion-mnist" and fmnist.data.subset is not None
    assert fmnist.resources.gpu == 0 and fmnist.timeout is not None and fmnist.timeout <= 3600


def test_builtins_search_every_method_knob() -> None:
    """Together the built-ins search the knobs the seed papers tune (read from the files, so this
    holds even before every pruner is registered; loading is checked above)."""
    searched: dict[tuple[str, str], Any] = {}
    for name in EXPECTED:
        for pruner, block in yaml.safe_load(builtin_spaces()[name].read_text())["pruners"].items():
            for hp, raw in block.items():
                if isinstance(raw, list) or (isinstance(raw, dict) and raw.get("type") != "fixed"):
                    searched[(pruner, hp)] = raw
    wanted = [("sca", "sparsity"), ("sca", "update_ratio"), ("criticality-unstructured", "sparsity"),
              ("criticality-unstructured", "regen_ratio"), ("criticality-unstructured", "aggregation"),
              ("criticality-unstructured", "regen"), ("criticality-structured", "sparsity"),
              ("criticality-structured", "regen_ratio"), ("criticality-structured", "aggregation"),
              ("pq-rewiring", "p"), ("pq-rewiring", "q"), ("pq-rewiring", "eta"), ("pq-rewiring", "gamma"),
              ("pq-rewiring", "beta"), ("pq-rewiring", "scope"), ("pq-rewiring", "regrow_fraction")]
    assert not [pair for pair in wanted if pair not in searched]
    assert searched[("pq-rewiring", "eta")]["log"] and searched[("pq-rewiring", "gamma")]["log"]
    assert set(searched[("criticality-unstructured", "aggregation")]["choices"]) == {"max", "mean"}
    assert set(searched[("pq-rewiring", "scope")]["choices"]) == {"neuron", "layer"}
