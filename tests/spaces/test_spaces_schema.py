"""The schema's behaviour: shorthand, defaults, fingerprint, overrides, distributions, samples."""

from __future__ import annotations

import pytest

from snnprune.errors import UserError
from snnprune.spaces import (CategoricalDist, Constraint, Fixed, FloatDist, IntDist, Objective, SearchSpace,
                             check_sample, load_space, parse_space)


def test_base_space_parses(base) -> None:
    space = parse_space(base)
    cu = space.pruners["criticality-unstructured"]
    assert cu["sparsity"] == FloatDist(0.5, 0.95)
    assert cu["prune_steps"] == IntDist(2, 10, step=2)
    assert cu["aggregation"] == CategoricalDist(("max", "mean"))
    assert space.pruners["gmp"] == {"sparsity": Fixed(0.9)}
    assert space.objectives == (Objective("accuracy", "maximize"), Objective("macs", "minimize"))
    assert space.constraints == (Constraint("accuracy", ">=", 0.5),)
    assert (space.sampler, space.seed, space.trials, space.timeout) == ("tpe", 0, 20, None)
    assert space.budget.lr == 0.1 and space.data.val_fraction == 0.1
    assert parse_space(space.to_dict()) == space


def test_shorthand_forms(base) -> None:
    base["pruners"]["criticality-unstructured"] = {
        "sparsity": [0.5, 0.9],                    # [low, high] of a float hyperparameter
        "prune_steps": [2, 8],                     # [low, high] of an int hyperparameter
        "regen_ratio": {"low": 0.1, "high": 0.5},  # type from the registry
        "aggregation": ["max", "mean"],            # choices of a choice hyperparameter
        "regen": "random",                         # a bare scalar is fixed
        "start": {"type": "fixed", "value": 0.1},
        "initial_sparsity": {"choices": [0.0, 0.2]},
    }
    base["objectives"] = "accuracy"
    base["constraints"] = {"metric": "macs", "op": "<", "value": "1e6"}  # PyYAML reads 1e6 as a string
    base["rungs"] = [1, 3]
    dists = parse_space(base).pruners["criticality-unstructured"]
    assert dists["sparsity"] == FloatDist(0.5, 0.9) and dists["prune_steps"] == IntDist(2, 8)
    assert dists["regen_ratio"] == FloatDist(0.1, 0.5) and dists["aggregation"] == CategoricalDist(("max", "mean"))
    assert dists["regen"] == Fixed("random") and dists["start"] == Fixed(0.1)
    assert dists["initial_sparsity"] == CategoricalDist((0.0, 0.2))
    space = parse_space(base)
    assert space.constraints[0].value == 1e6 and space.rungs.epochs == (1, 3)
    assert parse_space(space.to_dict()) == space


def test_log_defaults_to_the_registry(need) -> None:
    need("pq-rewiring")
    space = parse_space({"study": "x", "pruners": {"pq-rewiring": {"sparsity": 0.5, "eta": [1e-4, 1e-1],
                                                                   "beta": [0.2, 0.9]}},
                         "objectives": ["accuracy"]})
    assert space.pruners["pq-rewiring"]["eta"].log and not space.pruners["pq-rewiring"]["beta"].log


def test_fixed_values_are_coerced_to_the_hyperparameter_type(base) -> None:
    base["pruners"]["gmp"] = {"sparsity": 0, "prune_steps": 4.0}
    dists = parse_space(base).pruners["gmp"]
    assert dists["sparsity"] == Fixed(0.0) and isinstance(dists["sparsity"].value, float)
    assert dists["prune_steps"] == Fixed(4) and isinstance(dists["prune_steps"].value, int)


def test_objective_direction_override(base) -> None:
    base["objectives"] = [{"name": "accuracy"}, {"name": "sparsity", "direction": "minimize"}, "sops"]
    assert parse_space(base).directions == ("maximize", "minimize", "minimize")


def test_constraint_holds() -> None:
    c = Constraint("accuracy", ">=", 0.85)
    assert c.holds(0.9) and not c.holds(0.8) and str(c) == "accuracy >= 0.85"


def test_fingerprint_stable_across_key_order(base) -> None:
    reordered = dict(reversed(list(base.items())))
    reordered["model"] = dict(reversed(list(base["model"].items())))
    assert parse_space(reordered).fingerprint() == parse_space(base).fingerprint()
    base["model"]["width"] = 1  # int or float spelling
    assert parse_space(base).fingerprint() == parse_space(reordered).fingerprint()


def test_fingerprint_tracks_what_defines_results(base) -> None:
    first = parse_space(base).fingerprint()
    assert len(first) == 64
    base["trials"], base["study"], base["objectives"] = 99, "other", ["accuracy"]
    base["data"]["root"] = "/elsewhere"
    assert parse_space(base).fingerprint() == first
    for section, key, value in [("budget", "finetune_epochs", 5), ("budget", "lr", 0.05), ("model", "T", 2),
                                ("data", "subset", 100)]:
        changed = {**base, section: {**base[section], key: value}}
        assert parse_space(changed).fingerprint() != first, (section, key)
    assert parse_space({**base, "seed": 1}).fingerprint() != first


def test_with_overrides(base) -> None:
    space = parse_space(base, source="base.yaml")
    other = space.with_overrides(study="s2", seed=3, trials=7, timeout=60, data_root="/data")
    assert (other.study, other.seed, other.trials, other.timeout, other.data.root) == ("s2", 3, 7, 60.0, "/data")
    assert space.trials == 20 and other.pruners == space.pruners
    with pytest.raises(UserError, match=r"^trials \(overriding base.yaml\): "):
        space.with_overrides(trials=0)
    with pytest.raises(UserError, match="cannot be overridden"):
        space.with_overrides(pruners={})


def test_a_bad_override_is_named_as_one_not_as_the_files_value(base, cli_error, tmp_path) -> None:
    """``search demo.yaml --study a/b`` said "demo.yaml: study: 'a/b' is not a usable name", as if
    the file held it."""
    space = parse_space(base, source="base.yaml")
    with pytest.raises(UserError, match=r"^study \(overriding base.yaml\): 'a/b' is not a usable name"):
        space.with_overrides(study="a/b")
    line = cli_error(["search", "demo", "--study", "a/b", "--out", str(tmp_path)])
    assert "study (overriding " in line and "demo.yaml): 'a/b'" in line


def test_study_defaults_to_the_file_stem(base, write) -> None:
    del base["study"]
    assert load_space(write(base, "my-study.yaml")).study == "my-study"
    with pytest.raises(UserError, match="study"):
        parse_space(base)


def test_existing_file_wins_over_builtin(base, write, tmp_path, monkeypatch, need) -> None:
    base["study"] = "mine"
    write(base, "demo.yaml")
    monkeypatch.chdir(tmp_path)
    assert load_space("demo.yaml").study == "mine"
    need("criticality-unstructured", "sca", "gmp")
    assert load_space("demo").study == "demo"


def test_source_is_not_part_of_equality(base) -> None:
    assert parse_space(base, source="a.yaml") == parse_space(base, source="b.yaml")
    assert "source" not in parse_space(base).to_dict()


@pytest.mark.parametrize("make", [lambda: FloatDist(0.5, 0.5), lambda: FloatDist(0.0, 1.0, log=True),
                                  lambda: FloatDist(0.0, 1.0, step=0.3), lambda: IntDist(3, 1),
                                  lambda: IntDist(0, 4, log=True), lambda: IntDist(0, 5, step=2),
                                  lambda: CategoricalDist(()), lambda: CategoricalDist((1, 1)),
                                  lambda: Fixed([1])])
def test_distributions_check_themselves(make) -> None:
    with pytest.raises(UserError):
        make()


def test_distribution_contains() -> None:
    assert FloatDist(0.0, 1.0, step=0.25).contains(0.75) and not FloatDist(0.0, 1.0, step=0.25).contains(0.7)
    assert IntDist(2, 10, step=2).contains(6) and not IntDist(2, 10, step=2).contains(5)
    assert CategoricalDist((True, "a")).contains(True) and not CategoricalDist((True, "a")).contains(1)
    assert Fixed(3).contains(3) and not Fixed(3).contains(True)


def test_check_sample(need) -> None:
    out = check_sample("criticality-unstructured", {"sparsity": 0.9, "regen_ratio": 0.2})
    assert out["sparsity"] == 0.9 and out["regen_ratio"] == 0.2 and out["aggregation"] == "max"
    with pytest.raises(UserError, match="sparsity"):
        check_sample("gmp", {"sparsity": 1.0})
    with pytest.raises(UserError, match="start"):
        check_sample("gmp", {"sparsity": 0.5, "start": 0.8, "end": 0.5})
    need("sca")
    with pytest.raises(UserError, match="below 1"):
        check_sample("sca", {"sparsity": 0.8, "update_ratio": 0.3})


def test_space_is_frozen(base) -> None:
    space = parse_space(base)
    with pytest.raises(AttributeError):
        space.seed = 2  # type: ignore[misc]
    assert isinstance(space, SearchSpace)


def test_subset_one_point_zero_is_the_whole_set_not_one_sample(base) -> None:
    """`subset: 1` (one sample) and `subset: 1.0` (the whole set) compared equal and shared a
    fingerprint, so they shared a dense cache entry and a resume noted nothing."""
    one, whole, unset = (parse_space(dict(base, data={"name": "digits", **extra}))
                         for extra in ({"subset": 1}, {"subset": 1.0}, {}))
    assert whole.data.subset is None and whole == unset and whole.fingerprint() == unset.fingerprint()
    assert one.data.subset == 1 and one != whole and one.fingerprint() != whole.fingerprint()


def test_event_data_fixes_T(base) -> None:
    """A cnn built for T=4 ran cifar10-dvs's 10 frames while its config and MACs said 4."""
    base["data"] = {"name": "cifar10-dvs"}
    assert parse_space({**base, "model": {"name": "cnn"}}).model.T == 10  # left out: the data's
    assert parse_space(base | {"model": {"name": "cnn", "T": 10}}).model.T == 10
    with pytest.raises(UserError, match=r"model\.T: cifar10-dvs holds 10 frames per sample: T must be 10"):
        parse_space(base)  # the base space says T: 4


def test_numeric_strings_are_read_as_integers_where_one_is_expected(base) -> None:
    """PyYAML reads 1e3 (no dot) as a string: `timeout: 1e3` loaded but `trials: 1e3` did not."""
    space = parse_space(dict(base, trials="1e3", model={"name": "cnn", "T": "2"}))
    assert space.trials == 1000 and space.model.T == 2
    with pytest.raises(UserError, match="trials: must be an integer, got 2.5"):
        parse_space(dict(base, trials="2.5"))


def test_rung_mode_round_trips_and_an_older_study_reads_as_stop(base) -> None:
    from snnprune.search._notes import space_changes

    base["rungs"] = {"epochs": [1]}
    space = parse_space(base)
    assert space.rungs.mode == "promote" and parse_space(space.to_dict()) == space  # the default
    base["rungs"] = {"epochs": [1], "mode": "stop"}
    stop = parse_space(base)
    old = stop.to_dict()
    del old["rungs"]["mode"]  # what a study recorded before rung modes existed
    assert space_changes(old, stop) == []  # its trials stopped, as "stop" does: nothing changed
    # each mode has its own default fraction, so the note names both
    assert space_changes(old, space) == ["rungs.dominated_fraction: 0.25 -> 0.1", "rungs.mode: stop -> promote"]


def test_rung_margin_reads_auto_or_a_number_and_round_trips(base) -> None:
    from snnprune.search._notes import space_changes

    base["rungs"] = {"epochs": [1]}
    space = parse_space(base)
    assert space.rungs.margin == 0 and parse_space(space.to_dict()) == space  # the default: plain dominance
    for raw, expected in ((0, 0.0), (0.015, 0.015), ("0.02", 0.02), ("auto", "auto")):
        base["rungs"] = {"epochs": [1], "margin": raw}
        read = parse_space(base)
        assert read.rungs.margin == expected and parse_space(read.to_dict()) == read
    old = space.to_dict()
    del old["rungs"]["margin"]  # what a study recorded before margins: plain dominance
    assert space_changes(old, space) == []
    assert space_changes(old, parse_space({**base, "rungs": {"epochs": [1], "margin": "auto"}})) == [
        "rungs.margin: 0 -> auto"]
