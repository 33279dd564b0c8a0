"""Property tests: random spaces drawn from the registry's own ranges parse and round-trip;
random empty or inverted ranges are rejected with the key that is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from snnprune.errors import UserError
from snnprune.pruners import HyperParam, list_pruners
from snnprune.spaces import METRICS, parse_space

SPARSITY = HyperParam("sparsity", "float", 0.5, 0.0, 1.0, high_exclusive=True)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _bounds(hp: HyperParam) -> dict[str, Any]:
    return {"min_value": hp.low, "max_value": hp.high, "exclude_min": hp.low_exclusive,
            "exclude_max": hp.high_exclusive, "allow_nan": False, "allow_infinity": False}


@st.composite
def distribution(draw: st.DrawFn, hp: HyperParam) -> Any:
    """A raw YAML distribution inside the registry's range of ``hp``."""
    if hp.type in ("choice", "bool"):
        choices = list(hp.choices) if hp.type == "choice" else [True, False]
        if draw(st.booleans()):
            return draw(st.sampled_from(choices))
        return {"type": "categorical", "choices": draw(st.lists(st.sampled_from(choices), min_size=1, unique=True))}
    if hp.type == "int":
        low = int(hp.low) + (1 if hp.low_exclusive else 0)
        high = int(hp.high) - (1 if hp.high_exclusive else 0)
        a, b = sorted(draw(st.lists(st.integers(low, high), min_size=2, max_size=2, unique=True)))
        if draw(st.booleans()):
            return draw(st.sampled_from([a, b]))
        log = a >= 1 and draw(st.booleans())
        step = 1 if log else draw(st.sampled_from([d for d in range(1, min(b - a, 20) + 1) if (b - a) % d == 0]))
        return {"type": "int", "low": a, "high": b, "log": log, "step": step}
    a, b = sorted(draw(st.lists(st.floats(**_bounds(hp)), min_size=2, max_size=2, unique=True)))
    if draw(st.booleans()):
        return a
    log = a > 0 and draw(st.booleans())
    step = None if log or draw(st.booleans()) else (b - a) / draw(st.integers(1, 10))
    if step == 0.0:  # a range of subnormals (0 .. 5e-324) divided underflows: no valid step there
        step = None
    return {"type": "float", "low": a, "high": b, "log": log, "step": step}


@st.composite
def pruner_block(draw: st.DrawFn, spec: Any) -> dict[str, Any]:
    params = draw(st.lists(st.sampled_from(spec.hyperparams), unique_by=lambda h: h.name)) if spec.hyperparams else []
    return {"sparsity": draw(distribution(SPARSITY)), **{hp.name: draw(distribution(hp)) for hp in params}}


@st.composite
def space(draw: st.DrawFn) -> dict[str, Any]:
    specs = draw(st.lists(st.sampled_from(list_pruners()), min_size=1, max_size=3, unique_by=lambda s: s.name))
    names = draw(st.lists(st.sampled_from(list(METRICS)), min_size=1, max_size=3, unique=True))
    objectives = [draw(st.sampled_from([n, {"name": n}, {"name": n, "direction": "minimize"}])) for n in names]
    finetune = draw(st.integers(0, 6))
    rungs = sorted(draw(st.sets(st.integers(1, max(1, finetune - 1)), max_size=3))) if finetune > 1 else []
    return {
        "study": draw(st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)),
        "model": {"name": draw(st.sampled_from(["cnn", "vgg11"])), "T": draw(st.integers(1, 8)),
                  "width": draw(st.floats(0.1, 2.0))},
        "budget": {"finetune_epochs": finetune, "lr": draw(st.floats(1e-4, 1.0))},
        "pruners": {s.name: draw(pruner_block(s)) for s in specs},
        "objectives": objectives,
        "constraints": draw(st.lists(st.builds(lambda m, op, v: f"{m} {op} {v}", st.sampled_from(list(METRICS)),
                                               st.sampled_from([">=", "<=", ">", "<"]),
                                               st.floats(0.01, 0.99)), max_size=2)),  # meetable
        "rungs": {"epochs": rungs, "min_trials": draw(st.integers(1, 10))},
        "resources": {"cpu": draw(st.floats(0.25, 64)), "gpu": draw(st.sampled_from([0, 0.25, 0.5, 1, 2]))},
        "sampler": draw(st.sampled_from(["tpe", "nsga2", "random"])),
        "seed": draw(st.integers(0, 2**31)),
        "trials": draw(st.integers(1, 1000)),
        "timeout": draw(st.one_of(st.none(), st.floats(1, 1e6))),
    }


def _parse_or_reject(raw: dict[str, Any]):
    try:
        return parse_space(raw)
    except UserError as err:
        if "no point of these ranges satisfies" in str(err):
            reject()  # ranges drawn independently can break a cross-constraint (start < end, p < q)
        raise


@SETTINGS
@given(space())
def test_random_valid_spaces_parse_and_round_trip(raw: dict[str, Any]) -> None:
    parsed = _parse_or_reject(raw)
    assert parse_space(parsed.to_dict()) == parsed
    assert parse_space(json.loads(json.dumps(parsed.to_dict()))) == parsed
    assert parse_space(yaml.safe_load(yaml.safe_dump(parsed.to_dict()))) == parsed
    again = parse_space(yaml.safe_load(yaml.safe_dump(raw)))
    assert again == parsed and again.fingerprint() == parsed.fingerprint()


def _numeric() -> list[tuple[str, HyperParam]]:
    return [(spec.name, hp) for spec in list_pruners() for hp in (SPARSITY, *spec.hyperparams)
            if hp.type in ("float", "int")]


@SETTINGS
@given(st.data())
def test_random_empty_or_inverted_ranges_are_rejected(data: st.DataObject) -> None:
    pruner, hp = data.draw(st.sampled_from(_numeric()))
    if hp.type == "int":
        values = st.integers(int(hp.low), int(hp.high))
    else:
        values = st.floats(**_bounds(hp))
    high = data.draw(values)
    low = data.draw(values.filter(lambda v: v >= high))
    raw = {"study": "x", "objectives": ["accuracy"],
           "pruners": {pruner: {"sparsity": 0.5, hp.name: {"type": hp.type, "low": low, "high": high}}}}
    with pytest.raises(UserError) as info:
        parse_space(raw, source="inverted.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("inverted.yaml: ")
    assert f": pruners.{pruner}.{hp.name}.low: " in message, message
