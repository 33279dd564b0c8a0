"""Every validation rule, one bad file each: a `UserError` of one line naming the file and key.

Each case changes one value of the valid base space (conftest.BASE), writes it as YAML text and
loads it; the message must contain ``<file>: <dotted.key>:``.
"""

from __future__ import annotations

from typing import Any

import pytest

from snnprune.errors import UserError
from snnprune.spaces import load_space

DELETE = object()
CU = ("pruners", "criticality-unstructured")
PQ_INFEASIBLE = {"sparsity": 0.5, "p": {"type": "float", "low": 0.6, "high": 0.9},
                 "q": {"type": "float", "low": 0.2, "high": 0.6}}
SCHEDULE_INFEASIBLE = {"sparsity": 0.5, "start": {"low": 0.6, "high": 0.9}, "end": {"low": 0.1, "high": 0.5}}

# (id, path to change, new value, key the message must name, pruners the case needs)
CASES: list[tuple[str, tuple[Any, ...], Any, str, tuple[str, ...]]] = [
    # unknown keys, at every level
    ("unknown-top-key", ("studyy",), "x", "studyy", ()),
    ("unknown-model-key", ("model", "widht"), 1.0, "model.widht", ()),
    ("unknown-data-key", ("data", "sub_set"), 10, "data.sub_set", ()),
    ("unknown-budget-key", ("budget", "epochs"), 3, "budget.epochs", ()),
    ("unknown-dist-key", CU + ("regen_ratio", "lg"), True, "pruners.criticality-unstructured.regen_ratio.lg", ()),
    ("unknown-resources-key", ("resources",), {"tpu": 1}, "resources.tpu", ()),
    ("unknown-rungs-key", ("rungs",), {"epoch": [1]}, "rungs.epoch", ()),
    ("unknown-objective-key", ("objectives",), [{"name": "accuracy", "dir": "max"}], "objectives[0].dir", ()),
    ("unknown-constraint-key", ("constraints",), [{"metric": "accuracy", "op": ">=", "threshold": 1}],
     "constraints[0].threshold", ()),
    # wrong types
    ("model-not-mapping", ("model",), ["cnn"], "model", ()),
    ("pruners-not-mapping", ("pruners",), ["gmp"], "pruners", ()),
    ("T-not-int", ("model", "T"), "four", "model.T", ()),
    ("lr-not-number", ("budget", "lr"), "fast", "budget.lr", ()),
    ("lr-beyond-float32", ("budget", "finetune_lr"), 1e300, "budget.finetune_lr", ()),
    ("trials-not-int", ("trials",), 2.5, "trials", ()),
    ("seed-bool", ("seed",), True, "seed", ()),
    ("root-not-str", ("data", "root"), 5, "data.root", ()),
    ("low-not-number", CU + ("regen_ratio", "low"), "zero", "pruners.criticality-unstructured.regen_ratio.low", ()),
    ("log-not-bool", CU + ("regen_ratio", "log"), "yes", "pruners.criticality-unstructured.regen_ratio.log", ()),
    ("sparsity-bool", ("pruners", "gmp", "sparsity"), True, "pruners.gmp.sparsity", ()),
    ("dist-type-unknown", CU + ("regen_ratio", "type"), "uniform", "pruners.criticality-unstructured.regen_ratio.type", ()),
    ("dist-type-mismatch", CU + ("prune_steps", "type"), "float", "pruners.criticality-unstructured.prune_steps.type", ()),
    ("sparsity-int-range", ("pruners", "gmp", "sparsity"), {"type": "int", "low": 0, "high": 1},
     "pruners.gmp.sparsity.type", ()),
    ("list-of-three-for-float", CU + ("regen_ratio",), [0.1, 0.2, 0.3], "pruners.criticality-unstructured.regen_ratio", ()),
    ("fixed-value-list", ("pruners", "gmp", "sparsity"), {"type": "fixed", "value": [0.5]}, "pruners.gmp.sparsity.value", ()),
    # empty and inverted ranges, log, step, choices
    ("inverted-range", CU + ("sparsity", "low"), 0.99, "pruners.criticality-unstructured.sparsity.low", ()),
    ("empty-range", CU + ("regen_ratio", "high"), 0.0, "pruners.criticality-unstructured.regen_ratio.low", ()),
    ("int-inverted", CU + ("prune_steps", "low"), 12, "pruners.criticality-unstructured.prune_steps.low", ()),
    ("log-nonpositive", CU + ("regen_ratio", "log"), True, "pruners.criticality-unstructured.regen_ratio.low", ()),
    ("float-step-misfit", CU + ("sparsity", "step"), 0.3, "pruners.criticality-unstructured.sparsity.step", ()),
    ("int-step-misfit", CU + ("prune_steps", "step"), 3, "pruners.criticality-unstructured.prune_steps.step", ()),
    ("step-negative", CU + ("sparsity", "step"), -0.1, "pruners.criticality-unstructured.sparsity.step", ()),
    ("no-choices", CU + ("aggregation", "choices"), [], "pruners.criticality-unstructured.aggregation.choices", ()),
    ("duplicate-choices", CU + ("aggregation", "choices"), ["max", "max"],
     "pruners.criticality-unstructured.aggregation.choices", ()),
    ("missing-high", CU + ("regen_ratio", "high"), DELETE, "pruners.criticality-unstructured.regen_ratio.high", ()),
    # the registry
    ("unknown-pruner", ("pruners", "magic"), {"sparsity": 0.5}, "pruners.magic", ()),
    ("unknown-model", ("model", "name"), "alexnet", "model.name", ()),
    ("unknown-neuron", ("model", "neuron"), "izhikevich", "model.neuron", ()),
    ("unknown-surrogate", ("model", "surrogate"), "relu", "model.surrogate", ()),
    ("unknown-dataset", ("data", "name"), "imagenet", "data.name", ()),
    ("unknown-optimizer", ("budget", "optimizer"), "lbfgs", "budget.optimizer", ()),
    ("unknown-sampler", ("sampler",), "cmaes", "sampler", ()),
    ("hp-not-of-pruner", ("pruners", "gmp", "regen_ratio"), 0.5, "pruners.gmp.regen_ratio", ()),
    ("above-registry", CU + ("regen_ratio", "high"), 2.0, "pruners.criticality-unstructured.regen_ratio.high", ()),
    ("below-registry", CU + ("prune_steps", "low"), 0, "pruners.criticality-unstructured.prune_steps.low", ()),
    ("fixed-out-of-registry", CU + ("regen_ratio",), 0.99, "pruners.criticality-unstructured.regen_ratio", ()),
    ("choice-not-allowed", CU + ("aggregation", "choices"), ["max", "median"],
     "pruners.criticality-unstructured.aggregation.choices", ()),
    ("sparsity-high-1", CU + ("sparsity", "high"), 1.0, "pruners.criticality-unstructured.sparsity.high", ()),
    ("sparsity-negative", CU + ("sparsity", "low"), -0.1, "pruners.criticality-unstructured.sparsity.low", ()),
    ("sparsity-fixed-above", ("pruners", "gmp", "sparsity"), 1.2, "pruners.gmp.sparsity", ()),
    ("sparsity-missing", ("pruners", "gmp", "sparsity"), DELETE, "pruners.gmp.sparsity", ()),
    ("pruners-empty", ("pruners",), {}, "pruners", ()),
    ("schedule-infeasible", CU, SCHEDULE_INFEASIBLE, "pruners.criticality-unstructured", ()),
    ("pq-p-not-below-q", ("pruners", "pq-rewiring"), PQ_INFEASIBLE, "pruners.pq-rewiring.q", ("pq-rewiring",)),
    ("sca-p-plus-q", ("pruners", "sca"), {"sparsity": {"low": 0.8, "high": 0.9}, "update_ratio": {"low": 0.3, "high": 0.5}},
     "pruners.sca", ("sca",)),
    # objectives and constraints
    ("objective-unknown", ("objectives",), ["accuracy", "latency"], "objectives[1]", ()),
    ("objective-duplicate", ("objectives",), ["accuracy", {"name": "accuracy", "direction": "minimize"}],
     "objectives[1]", ()),
    ("objectives-four", ("objectives",), ["accuracy", "macs", "sops", "energy"], "objectives", ()),
    ("objectives-empty", ("objectives",), [], "objectives", ()),
    ("objective-direction", ("objectives",), [{"name": "accuracy", "direction": "up"}], "objectives[0].direction", ()),
    ("constraint-unknown-metric", ("constraints",), ["latency <= 3"], "constraints[0]", ()),
    ("constraint-bad-op", ("constraints",), ["accuracy => 0.5"], "constraints[0]", ()),
    ("constraint-map-metric", ("constraints",), [{"metric": "speed", "op": ">=", "value": 1}], "constraints[0].metric", ()),
    ("constraint-map-op", ("constraints",), [{"metric": "accuracy", "op": "==", "value": 1}], "constraints[0].op", ()),
    # rungs, resources, the rest
    ("rungs-not-increasing", ("rungs", "epochs"), [2, 1], "rungs.epochs[1]", ()),
    ("rung-at-finetune-end", ("rungs", "epochs"), [1, 4], "rungs.epochs[1]", ()),
    ("rung-zero", ("rungs", "epochs"), [0], "rungs.epochs[0]", ()),
    ("dominated-fraction-0", ("rungs", "dominated_fraction"), 0.0, "rungs.dominated_fraction", ()),
    ("min-trials-0", ("rungs", "min_trials"), 0, "rungs.min_trials", ()),
    ("rung-mode-unknown", ("rungs", "mode"), "asha", "rungs.mode", ()),
    ("rung-margin-word", ("rungs", "margin"), "noise", "rungs.margin", ()),
    ("rung-margin-negative", ("rungs", "margin"), -0.01, "rungs.margin", ()),
    ("rung-margin-one", ("rungs", "margin"), 1, "rungs.margin", ()),
    ("rung-margin-bool", ("rungs", "margin"), True, "rungs.margin", ()),
    ("rung-margin-nan", ("rungs", "margin"), "nan", "rungs.margin", ()),
    ("cpu-negative", ("resources",), {"cpu": -1}, "resources.cpu", ()),
    ("gpu-negative", ("resources",), {"gpu": -0.5}, "resources.gpu", ()),
    ("gpu-too-many", ("resources",), {"gpu": 9}, "resources.gpu", ()),
    ("gpu-fraction-above-1", ("resources",), {"gpu": 1.5}, "resources.gpu", ()),
    ("timeout-negative", ("timeout",), -5, "timeout", ()),
    ("trials-zero", ("trials",), 0, "trials", ()),
    ("study-with-slash", ("study",), "a/b", "study", ()),
    ("subset-zero", ("data", "subset"), 0, "data.subset", ()),
    ("val-fraction-high", ("data", "val_fraction"), 0.7, "data.val_fraction", ()),
    ("val-fraction-zero", ("data", "val_fraction"), 0, "data.val_fraction", ()),  # selected on the test set
    ("rung-epochs-zero", ("rungs", "epochs"), 0, "rungs.epochs", ()),  # was read as "no rungs"
    ("rung-epochs-false", ("rungs", "epochs"), False, "rungs.epochs", ()),
    ("rung-epochs-empty-string", ("rungs", "epochs"), "", "rungs.epochs", ()),
    ("tau-lif", ("model", "tau"), 1.0, "model.tau", ()),
    ("width-zero", ("model", "width"), 0, "model.width", ()),
    ("width-huge", ("model", "width"), 100, "model.width", ()),  # every trial failed on it
    ("epochs-negative", ("budget", "prune_epochs"), -1, "budget.prune_epochs", ()),
    ("batch-size-zero", ("budget", "batch_size"), 0, "budget.batch_size", ()),
    # found by probing: each was a traceback (exit 1) or was accepted and misbehaved later
    ("huge-int-sparsity", ("pruners", "gmp", "sparsity"), 10**400, "pruners.gmp.sparsity", ()),
    ("huge-int-low", CU + ("regen_ratio", "low"), -10**400, "pruners.criticality-unstructured.regen_ratio.low", ()),
    ("huge-int-width", ("model", "width"), 10**400, "model.width", ()),
    ("huge-int-lr", ("budget", "lr"), 10**400, "budget.lr", ()),
    ("huge-int-fixed", ("pruners", "gmp", "sparsity"), {"type": "fixed", "value": 10**400}, "pruners.gmp.sparsity", ()),
    ("dist-type-list", CU + ("regen_ratio", "type"), ["float"], "pruners.criticality-unstructured.regen_ratio.type", ()),
    ("dist-type-mapping", CU + ("regen_ratio", "type"), {"a": 1}, "pruners.criticality-unstructured.regen_ratio.type", ()),
    ("study-trailing-newline", ("study",), "abc\n", "study", ()),
    ("cpu-below-ray-quantum", ("resources",), {"cpu": 0.00001}, "resources.cpu", ()),
    ("gpu-below-ray-quantum", ("resources",), {"gpu": 0.00001}, "resources.gpu", ()),
    ("constraint-accuracy-above-1", ("constraints",), ["accuracy >= 2"], "constraints[0]", ()),
    ("constraint-macs-negative", ("constraints",), ["macs <= -1"], "constraints[0]", ()),
    ("constraint-sparsity-below-0", ("constraints",), [{"metric": "sparsity", "op": "<", "value": 0}],
     "constraints[0]", ()),
]


def _mutate(space: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    node = space
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise AssertionError(f"bad test path {path}")
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return space


def _check(path, key: str) -> str:
    with pytest.raises(UserError) as info:
        load_space(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert f": {key}: " in message, message
    return message


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_invalid_space_is_rejected(case, base, write, need) -> None:
    name, path, value, key, needs = case
    need(*needs)
    _check(write(_mutate(base, path, value), f"{name}.yaml"), key)


def test_yaml_syntax_error_names_file_and_line(write) -> None:
    path = write("study: t\nmodel: {name: cnn\npruners:\n  gmp: {sparsity: 0.5}\n", "broken.yaml")
    with pytest.raises(UserError) as info:
        load_space(path)
    message = str(info.value)
    assert "\n" not in message and "YAML syntax error" in message
    assert f"{path}:3:" in message or f"{path}:2:" in message, message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_document_not_a_mapping(text, write) -> None:
    path = write(text, "list.yaml")
    with pytest.raises(UserError, match="must be a mapping") as info:
        load_space(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_empty_file(write) -> None:
    path = write("# nothing\n", "empty.yaml")
    with pytest.raises(UserError, match="empty") as info:
        load_space(path)
    assert str(path) in str(info.value)


def test_missing_file_lists_builtins(tmp_path) -> None:
    with pytest.raises(UserError, match="demo") as info:
        load_space(tmp_path / "nope.yaml")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, line", [("study: a\nstudy: b\n", 2), ("model:\n  width: 1\n  width: 2\n", 3)])
def test_a_key_given_twice_is_refused_with_its_line(text, line, write) -> None:
    """PyYAML keeps the last of two equal keys: `study:` twice ran under the second name, silently."""
    path = write(text, "twice.yaml")
    with pytest.raises(UserError, match=rf"{path}:{line}:.*is given twice \(first on line {line - 1}\)") as info:
        load_space(path)
    assert "\n" not in str(info.value)


def test_a_boolean_key_says_how_yaml_read_it(write) -> None:
    path = write("yes: 1\n", "yes.yaml")
    with pytest.raises(UserError, match="keys must be strings, got True .*quote it"):
        load_space(path)


@pytest.mark.parametrize("value", [None, 5, 1.5, ["demo"]])
def test_load_space_of_something_not_a_path_is_one_line(value) -> None:
    with pytest.raises(UserError, match="expects a file path or a built-in space name"):
        load_space(value)


def test_a_missing_constraint_value_names_what_is_missing(base, write) -> None:
    """It said "must be a number, got '='": the pattern read '>' as the operator."""
    message = _check(write(_mutate(base, ("constraints",), ["accuracy >= "]), "c.yaml"), "constraints[0]")
    assert "is not 'metric op value'" in message


def test_brackets_nested_too_deeply_are_one_line(write) -> None:
    """A RecursionError traceback of 3000 lines."""
    path = write("study: t\nconstraints: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    with pytest.raises(UserError) as info:
        load_space(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
