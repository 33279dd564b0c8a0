"""`load_space` and `parse_space`: a YAML file, or plain data, to a validated `SearchSpace`.

Each section has its own small reader; all of them reject unknown keys, wrong types and values
out of range with one line naming the file and the dotted key (``budget.finetune_epochs``,
``objectives[1].direction``), so a typo never silently falls back to a default.

``load_space("demo")`` finds the built-in ``demo.yaml`` so a new user's first search needs no
file of their own; an existing path always wins over a built-in of the same name, so a user's
edited copy in the working folder is the one read.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ._common import (check_keys, fail, interval, join, one_line, read_choice, read_float, read_int, read_mapping,
                      read_optional_str, read_str)
from ._pruners import parse_pruners
from ._schema import (DEFAULT_FRACTIONS, METRICS, OPS, RUNG_MODES, SAMPLERS, Constraint, DataSpec, ModelSpec, Objective,
                      Resources, Rungs, SearchSpace)

__all__ = ["TOP_KEYS", "builtin_spaces", "load_space", "parse_space", "read_budget", "read_data", "read_model",
           "read_objectives", "read_yaml"]

TOP_KEYS = ("study", "model", "data", "budget", "pruners", "objectives", "constraints", "resources", "rungs",
            "sampler", "seed", "trials", "timeout")
MAX_OBJECTIVES = 3
_STUDY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # fullmatch: "$" would let "abc\n" in
_CONSTRAINT = re.compile(r"\s*([A-Za-z_]+)\s*(>=|<=|>|<)\s*([^\s<>=]+)\s*")
# What each metric can be, so a constraint that no trial could meet (accuracy >= 2) is refused.
_METRIC_RANGE = {"accuracy": (0.0, 1.0), "sparsity": (0.0, 1.0)}  # others: >= 0
_RAY_QUANTUM = 1e-4  # Ray refuses fractional resources finer than this


def builtin_spaces() -> dict[str, Path]:
    """Name (the file's stem) -> path of every built-in space, sorted by name."""
    folder = Path(str(resources.files("snnprune.spaces")))
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def resolve_space(path_or_name: str | os.PathLike[str]) -> Path:
    """The file to read: an existing path, else a built-in named ``demo`` or ``demo.yaml``."""
    if not isinstance(path_or_name, (str, os.PathLike)):
        fail("load_space", "", f"expects a file path or a built-in space name, got {type(path_or_name).__name__} "
                               f"{path_or_name!r}")
    path = Path(os.fspath(path_or_name)).expanduser()
    if path.is_file():
        return path
    builtins = builtin_spaces()
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if path.parent == Path(".") and name in builtins:
        return builtins[name]
    if path.exists():
        fail(str(path), "", "is not a file")
    fail(str(path), "", f"no such file, and no built-in space of that name; built-in: {', '.join(builtins)}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping: PyYAML keeps the last one
    silently, so a space with ``study:`` twice ran under the second name without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                twice = key in seen
            except TypeError:  # an unhashable key: the base class says so in its own words
                break
            if twice:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {seen[key].start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> object:
    """The parsed document, or one line with the file, line and column of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        fail(str(path), "", f"cannot read it: {one_line(err)}")
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or err
        context = getattr(err, "context", None)
        detail = f"{context}, {problem}" if context else str(problem)
        fail(where, "", f"YAML syntax error: {one_line(detail)}")
    except RecursionError:  # thousands of nested brackets
        fail(str(path), "", "nested too deeply to be a search space")


def load_space(path_or_name: str | os.PathLike[str]) -> SearchSpace:
    """Read and validate a search space from a YAML file or a built-in name.

    >>> space = load_space("demo")
    >>> space.data.name, space.pruner_names[0]
    ('digits', 'criticality-unstructured')
    """
    path = resolve_space(path_or_name)
    document = read_yaml(path)
    if document is None:
        fail(str(path), "", "the file is empty; a search space needs at least pruners and objectives")
    return parse_space(document, source=str(path))


def parse_space(mapping: Any, source: str = "<dict>") -> SearchSpace:
    """Validate ``mapping`` (a parsed YAML/JSON document) into a `SearchSpace`.

    ``source`` names the file in every message. A missing ``study`` takes the file's stem.
    """
    if not isinstance(mapping, Mapping):
        fail(source, "", f"a search space must be a mapping with keys {', '.join(TOP_KEYS)}; "
                         f"got {type(mapping).__name__}")
    raw = read_mapping(mapping, source, "")
    check_keys(raw, TOP_KEYS, source, "")
    budget = read_budget(raw.get("budget"), source)
    data = read_data(raw.get("data"), source)
    return SearchSpace(
        study=_study(raw.get("study"), source),
        model=_fit_time_steps(read_model(raw.get("model"), source), raw.get("model"), data, source),
        data=data,
        budget=budget,
        pruners=parse_pruners(raw.get("pruners"), source),
        objectives=read_objectives(raw.get("objectives"), source),
        constraints=_constraints(raw.get("constraints"), source),
        resources=_resources(raw.get("resources"), source),
        rungs=_rungs(raw.get("rungs"), budget.finetune_epochs, source),
        sampler=read_choice(raw.get("sampler", "tpe"), SAMPLERS, source, "sampler", "sampler"),
        seed=read_int(raw.get("seed", 0), source, "seed", low=0, high=2**32 - 1),
        trials=read_int(raw.get("trials", 20), source, "trials", low=1),
        timeout=None if raw.get("timeout") is None else read_float(raw["timeout"], source, "timeout",
                                                                    low=0.0, low_open=True),
        source=source,
    )


def _study(raw: Any, source: str) -> str:
    if raw is None:
        if source.startswith("<"):
            fail(source, "study", "missing; give the study a name")
        raw = Path(source).stem
    if not isinstance(raw, str) or not _STUDY.fullmatch(raw):
        fail(source, "study", f"{raw!r} is not a usable name (letters, digits, '.', '_', '-'; it names "
                              "the folder runs/<study>)")
    return raw


def _fit_time_steps(model: ModelSpec, block: Any, data: DataSpec, source: str) -> ModelSpec:
    """Event data fixes T (its frames per sample): left out, T is the data's; another is refused.

    A model built for T=4 runs the data's 10 frames anyway, while its build arguments, the
    recorded config and the per-step MACs would all say 4.
    """
    from snnprune.data import dataset_info

    frames = dataset_info(data.name).time_steps
    if frames is None:
        return model
    if not (isinstance(block, Mapping) and "T" in block):
        return dataclasses.replace(model, T=frames)
    if model.T != frames:
        fail(source, "model.T", f"{data.name} holds {frames} frames per sample: T must be {frames} (or left out)")
    return model


def read_model(raw: Any, source: str) -> ModelSpec:
    """The ``model`` block of a space (or of an exported config: `snnprune apply` reads it here too)."""
    from snnprune.models import MAX_WIDTH, NEURONS, SURROGATES, list_models

    block = read_mapping(raw, source, "model")
    check_keys(block, [f.name for f in dataclasses.fields(ModelSpec)], source, "model")
    d = ModelSpec()
    neuron = read_choice(block.get("neuron", d.neuron), NEURONS, source, "model.neuron", "neuron")
    tau = read_float(block.get("tau", d.tau), source, "model.tau", low=1.0 if neuron == "lif" else 0.0,
                     low_open=True)
    return ModelSpec(
        name=read_choice(block.get("name", d.name), list_models(), source, "model.name", "model"),
        width=read_float(block.get("width", d.width), source, "model.width", low=0.0, low_open=True,
                         high=MAX_WIDTH),
        T=read_int(block.get("T", d.T), source, "model.T", low=1, high=1000),
        neuron=neuron,
        tau=tau,
        v_threshold=read_float(block.get("v_threshold", d.v_threshold), source, "model.v_threshold",
                               low=0.0, low_open=True),
        surrogate=read_choice(block.get("surrogate", d.surrogate), SURROGATES, source, "model.surrogate",
                              "surrogate"),
        alpha=read_float(block.get("alpha", d.alpha), source, "model.alpha", low=0.0, low_open=True),
    )


def read_data(raw: Any, source: str) -> DataSpec:
    """The ``data`` block; shared with `snnprune apply` so a config and a space accept the same keys."""
    from snnprune.data import list_datasets

    block = read_mapping(raw, source, "data")
    check_keys(block, [f.name for f in dataclasses.fields(DataSpec)], source, "data")
    d = DataSpec()
    subset = block.get("subset")
    if subset is not None:
        if isinstance(subset, int) and not isinstance(subset, bool):
            subset = read_int(subset, source, "data.subset", low=1)
        else:
            subset = read_float(subset, source, "data.subset", low=0.0, high=1.0, low_open=True)
            if subset == 1.0:  # the whole set, as no subset: not one sample, which is `subset: 1`
                subset = None
    return DataSpec(
        name=read_choice(block.get("name", d.name), list_datasets(), source, "data.name", "data set"),
        root=read_optional_str(block.get("root"), source, "data.root"),
        subset=subset,
        val_fraction=_val_fraction(block.get("val_fraction", d.val_fraction), source),
    )


def _val_fraction(raw: Any, source: str) -> float:
    """In (0, 0.5]: the accuracy objective and the multi-fidelity rungs read the validation split,
    and with none the search would select its front on the test set."""
    value = read_float(raw, source, "data.val_fraction", low=0.0, high=0.5)
    if value == 0:
        fail(source, "data.val_fraction", "must be > 0 (at most 0.5): a search selects on the validation split; "
                                          "with none it would select on the test set")
    return value


FLOAT32_MAX = 3.4028234663852886e38


def read_budget(raw: Any, source: str) -> Any:
    """The ``budget`` block (epochs, batch size, learning rates); shared with `snnprune apply`."""
    from snnprune.engine import OPTIMIZERS
    from snnprune.pruners import Budget

    block = read_mapping(raw, source, "budget")
    fields = dataclasses.fields(Budget)
    check_keys(block, [f.name for f in fields], source, "budget")
    values: dict[str, Any] = {}
    for f in fields:
        key, default = join("budget", f.name), getattr(Budget(), f.name)
        value = block.get(f.name, default)
        if f.name == "optimizer":
            values[f.name] = read_choice(value, OPTIMIZERS, source, key, "optimizer")
        elif isinstance(default, bool):
            values[f.name] = value if isinstance(value, bool) else fail(source, key, "must be true or false")
        elif isinstance(default, int):
            values[f.name] = read_int(value, source, key, low=1 if f.name == "batch_size" else 0)
        elif isinstance(default, float):  # learning rates: beyond float32 torch cannot even store them
            values[f.name] = read_float(value, source, key, low=0.0, low_open=True, high=FLOAT32_MAX)
        else:
            values[f.name] = read_str(value, source, key)
    return Budget(**values)


def _list(raw: Any, source: str, key: str) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, (str, Mapping)):
        return [raw]
    if not isinstance(raw, list):
        fail(source, key, f"must be a list, got {raw!r}")
    return raw


def read_objectives(raw: Any, source: str) -> tuple[Objective, ...]:
    """The ``objectives`` list: names, or mappings with a direction; shared with `snnprune apply`."""
    items = _list(raw, source, "objectives")
    if not items:
        fail(source, "objectives", f"missing; name 1 to {MAX_OBJECTIVES} of {', '.join(METRICS)}")
    if len(items) > MAX_OBJECTIVES:
        fail(source, "objectives", f"{len(items)} objectives; at most {MAX_OBJECTIVES} are allowed")
    out: list[Objective] = []
    for i, item in enumerate(items):
        key = f"objectives[{i}]"
        if isinstance(item, Mapping):
            check_keys(item, ("name", "direction"), source, key)
            name = read_choice(item.get("name"), METRICS, source, join(key, "name"), "objective")
            direction = read_choice(item.get("direction", METRICS[name]), ("maximize", "minimize"), source,
                                    join(key, "direction"), "direction")
        else:
            name = read_choice(item, METRICS, source, key, "objective")
            direction = METRICS[name]
        if any(o.name == name for o in out):
            fail(source, key, f"duplicate objective {name!r}; each metric may appear once")
        out.append(Objective(name, direction))
    return tuple(out)


def _constraints(raw: Any, source: str) -> tuple[Constraint, ...]:
    out = []
    for i, item in enumerate(_list(raw, source, "constraints")):
        key = f"constraints[{i}]"
        if isinstance(item, str):
            match = _CONSTRAINT.fullmatch(item)
            if not match:
                fail(source, key, f"{item!r} is not 'metric op value' with op one of {', '.join(OPS)}")
            metric, op, value = match.groups()
            sub = ("", "", "")
        else:
            block = read_mapping(item, source, key)
            check_keys(block, ("metric", "op", "value"), source, key)
            metric, op, value = block.get("metric"), block.get("op"), block.get("value")
            sub = (".metric", ".op", ".value")
        metric = read_choice(metric, METRICS, source, key + sub[0], "metric")
        op = read_choice(op, OPS, source, key + sub[1], "operator")
        low, high = _METRIC_RANGE.get(metric, (0.0, None))
        bound = read_float(value, source, key + sub[2])
        if not _satisfiable(op, bound, low, high):
            fail(source, key, f"no trial can meet {metric} {op} {bound:g}: {metric} lies in "
                              f"{interval(low, high)}")
        out.append(Constraint(metric, op, bound))
    return tuple(out)


def _satisfiable(op: str, bound: float, low: float, high: float | None) -> bool:
    """Whether some value in [low, high] meets ``value op bound``."""
    if op in (">=", ">"):
        return high is None or (bound <= high if op == ">=" else bound < high)
    return bound >= low if op == "<=" else bound > low


def _resources(raw: Any, source: str) -> Resources:
    block = read_mapping(raw, source, "resources")
    check_keys(block, ("cpu", "gpu"), source, "resources")
    cpu = read_float(block.get("cpu", 1.0), source, "resources.cpu", low=0.0, low_open=True)
    gpu = read_float(block.get("gpu", 0.0), source, "resources.gpu", low=0.0, high=8.0)
    if gpu > 1 and not gpu.is_integer():
        fail(source, "resources.gpu", f"{gpu} GPUs: fractions are allowed below 1 only (Ray's rule)")
    for name, amount in (("cpu", cpu), ("gpu", gpu)):
        if 0 < amount < _RAY_QUANTUM:
            fail(source, f"resources.{name}", f"{amount:g} is finer than Ray's smallest fraction "
                                              f"{_RAY_QUANTUM:g}")
    return Resources(cpu, gpu)


def _rungs(raw: Any, finetune_epochs: int, source: str) -> Rungs:
    block = {"epochs": raw} if isinstance(raw, list) else read_mapping(raw, source, "rungs")
    check_keys(block, ("epochs", "dominated_fraction", "min_trials", "mode", "margin"), source, "rungs")
    epochs_raw = block.get("epochs")
    epochs_raw = [] if epochs_raw is None else epochs_raw
    if not isinstance(epochs_raw, list):
        fail(source, "rungs.epochs", f"must be a list of fine-tune epochs, got {epochs_raw!r}")
    epochs: list[int] = []
    for i, value in enumerate(epochs_raw):
        key = f"rungs.epochs[{i}]"
        epoch = read_int(value, source, key, low=1)
        if epochs and epoch <= epochs[-1]:
            fail(source, key, f"rung epochs must increase, got {epoch} after {epochs[-1]}")
        if epoch >= finetune_epochs:
            fail(source, key, f"rung at epoch {epoch} must be < budget.finetune_epochs ({finetune_epochs})")
        epochs.append(epoch)
    d = Rungs()
    mode = read_choice(block.get("mode", d.mode), RUNG_MODES, source, "rungs.mode", "rung mode")
    return Rungs(
        epochs=tuple(epochs),
        dominated_fraction=read_float(block.get("dominated_fraction", DEFAULT_FRACTIONS[mode]), source,
                                      "rungs.dominated_fraction", low=0.0, high=1.0, low_open=True),
        min_trials=read_int(block.get("min_trials", d.min_trials), source, "rungs.min_trials", low=1),
        mode=mode,
        margin=read_margin(block.get("margin", d.margin), source),
    )


def _is_number(raw: Any) -> bool:
    try:
        float(raw)
    except (TypeError, ValueError):
        return False
    return True


def read_margin(raw: Any, source: str) -> str | float:
    """``rungs.margin``: ``auto`` or a fixed accuracy margin in [0, 1) (also what the search
    bench's ``--margin`` reads, so the two cannot drift apart)."""
    if raw == "auto":
        return "auto"
    if isinstance(raw, str) and not _is_number(raw):
        fail(source, "rungs.margin", f"must be auto or a number in [0, 1), got {raw!r}")
    return read_float(raw, source, "rungs.margin", low=0.0, high=1.0, high_open=True)
