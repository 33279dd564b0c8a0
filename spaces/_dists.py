"""The distributions a hyperparameter can be searched over: backend-neutral, frozen data.

Bounds are inclusive (Optuna's semantics); the Ray converter in `snnprune.search` translates
(Ray's integer upper bound is exclusive). A range must be non-empty (``low < high``): a single
value is a `Fixed`, so a typo such as swapped bounds is caught instead of collapsing a search.

YAML forms accepted by `parse_distribution` (``hint`` is the hyperparameter's registry type):

    {type: float, low: 0.1, high: 0.9, log: false, step: null}
    {type: int, low: 1, high: 8, log: false, step: 1}
    {type: categorical, choices: [max, mean]}
    {type: fixed, value: 0.5}   or a bare scalar: 0.5
    {low: 0.1, high: 0.9}       type taken from the registry (float or int hyperparameter)
    [0.1, 0.9]                  the same, for a float or int hyperparameter only
    [max, mean]                 categorical, for a choice or bool hyperparameter only

``log`` left out defaults to the registry's own ``log`` flag for that hyperparameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from snnprune.errors import UserError

from ._common import check_keys, fail, join, read_bool, read_float, read_int

__all__ = ["CategoricalDist", "Distribution", "Fixed", "FloatDist", "IntDist", "Scalar", "parse_distribution"]

Scalar = Union[str, int, float, bool]
Hint = Literal["float", "int", "choice", "bool"] | None
_KEYS = {"float": ("type", "low", "high", "log", "step"), "int": ("type", "low", "high", "log", "step"),
         "categorical": ("type", "choices"), "fixed": ("type", "value")}


def _raise(kind: str, problem: tuple[str, str] | None) -> None:
    if problem is not None:
        raise UserError(f"{kind} distribution: {problem[0]}: {problem[1]}")


def float_problem(low: float, high: float, log: bool, step: float | None) -> tuple[str, str] | None:
    """(sub-key, message) of what is wrong with a float range, or None; shared by parser and class."""
    if not low < high:
        return "low", f"low ({low}) must be < high ({high}); use a fixed value for a single one"
    if log and low <= 0:
        return "low", f"a log range needs low > 0, got {low}"
    if step is not None:
        if log:
            return "step", "step cannot be combined with log: true"
        if not step > 0 or step > high - low:
            return "step", f"step must be in (0, high - low = {high - low:g}], got {step}"
        count = (high - low) / step
        if abs(count - round(count)) > 1e-9 * max(1.0, count):
            return "step", f"step {step} does not divide high - low = {high - low:g}"
    return None


def int_problem(low: int, high: int, log: bool, step: int) -> tuple[str, str] | None:
    """(sub-key, message) of what is wrong with an int range, or None."""
    if not low < high:
        return "low", f"low ({low}) must be < high ({high}); use a fixed value for a single one"
    if log and low < 1:
        return "low", f"a log range needs low >= 1, got {low}"
    if step < 1:
        return "step", f"step must be an integer >= 1, got {step}"
    if log and step != 1:
        return "step", "step must be 1 with log: true"
    if (high - low) % step:
        return "step", f"step {step} does not divide high - low = {high - low}"
    return None


@dataclass(frozen=True)
class FloatDist:
    """A float in [low, high], uniform or log-uniform, optionally on a grid of ``step``."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        _raise("float", float_problem(self.low, self.high, self.log, self.step))

    def contains(self, value: Any) -> bool:
        """Whether a sampled value lies in the distribution (grid included)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        if self.step is None:
            return True
        count = (value - self.low) / self.step
        return abs(count - round(count)) < 1e-6

    def corners(self) -> tuple[Scalar, ...]:
        """Extreme values: enough to decide monotone cross-constraints such as p < q."""
        return (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class IntDist:
    """An integer in [low, high] (both inclusive), uniform or log-uniform, on a grid of ``step``."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        _raise("int", int_problem(self.low, self.high, self.log, self.step))

    def contains(self, value: Any) -> bool:
        return (not isinstance(value, bool) and isinstance(value, int) and self.low <= value <= self.high
                and (value - self.low) % self.step == 0)

    def corners(self) -> tuple[Scalar, ...]:
        return (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log, "step": self.step}


def _scalar_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)  # so that True and 1 stay distinct choices


@dataclass(frozen=True)
class CategoricalDist:
    """One of a non-empty tuple of distinct scalars."""

    choices: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        _raise("categorical", categorical_problem(self.choices))

    def contains(self, value: Any) -> bool:
        return _scalar_key(value) in {_scalar_key(c) for c in self.choices}

    def corners(self) -> tuple[Scalar, ...]:
        return self.choices

    def to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}


def categorical_problem(choices: Any) -> tuple[str, str] | None:
    """(sub-key, message) of what is wrong with a list of choices, or None."""
    if not isinstance(choices, (list, tuple)) or not choices:
        return "choices", f"must be a non-empty list, got {choices!r}"
    for value in choices:
        if not isinstance(value, (str, int, float, bool)):
            return "choices", f"choices must be scalars (string, number, boolean), got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return "choices", f"choices must be finite, got {value!r}"
    if len({_scalar_key(c) for c in choices}) != len(choices):
        return "choices", f"choices must be distinct, got {list(choices)!r}"
    return None


@dataclass(frozen=True)
class Fixed:
    """A constant: the hyperparameter is set, not searched."""

    value: Scalar

    def __post_init__(self) -> None:
        if not isinstance(self.value, (str, int, float, bool)):
            raise UserError(f"fixed value must be a scalar, got {self.value!r}")

    def contains(self, value: Any) -> bool:
        return _scalar_key(value) == _scalar_key(self.value)

    def corners(self) -> tuple[Scalar, ...]:
        return (self.value,)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "fixed", "value": self.value}


Distribution = Union[FloatDist, IntDist, CategoricalDist, Fixed]


def parse_distribution(raw: Any, source: str, key: str, hint: Hint, log_default: bool = False) -> Distribution:
    """A distribution from its YAML form (see the module docstring); errors name ``key``."""
    if isinstance(raw, list):
        raw = _from_list(raw, source, key, hint)
    if not isinstance(raw, Mapping):
        if not isinstance(raw, (str, int, float, bool)):
            fail(source, key, f"must be a scalar, a [low, high] list or a mapping with type, got {raw!r}")
        if isinstance(raw, float) and not math.isfinite(raw):
            fail(source, key, f"must be finite, got {raw!r}")
        return Fixed(raw)
    kind = raw.get("type")
    if kind is None:
        kind = _infer(raw, source, key, hint)
    if not isinstance(kind, str) or kind not in _KEYS:  # a list or mapping is unhashable
        fail(source, join(key, "type"), f"unknown type {kind!r}; choose one of {', '.join(_KEYS)}")
    _check_hint(kind, hint, source, key)
    check_keys(raw, _KEYS[kind], source, key)
    if kind == "fixed":
        if "value" not in raw:
            fail(source, join(key, "value"), "missing; a fixed distribution needs a value")
        if isinstance(raw["value"], (list, Mapping)):
            fail(source, join(key, "value"), f"must be a scalar, got {raw['value']!r}")
        return parse_distribution(raw["value"], source, join(key, "value"), hint)
    if kind == "categorical":
        choices = raw.get("choices")
        problem = categorical_problem(choices)
        if problem is not None:
            fail(source, join(key, problem[0]), problem[1])
        return CategoricalDist(tuple(choices))
    for bound in ("low", "high"):
        if bound not in raw:
            fail(source, join(key, bound), f"missing; a {kind} range needs low and high")
    log = read_bool(raw.get("log", log_default), source, join(key, "log"))
    if kind == "float":
        low, high = (read_float(raw[b], source, join(key, b)) for b in ("low", "high"))
        step = raw.get("step")
        step = None if step is None else read_float(step, source, join(key, "step"))
        problem = float_problem(low, high, log, step)
        if problem is not None:
            fail(source, join(key, problem[0]), problem[1])
        return FloatDist(low, high, log, step)
    low, high = (read_int(raw[b], source, join(key, b)) for b in ("low", "high"))
    step = 1 if raw.get("step") is None else read_int(raw["step"], source, join(key, "step"))
    problem = int_problem(low, high, log, step)
    if problem is not None:
        fail(source, join(key, problem[0]), problem[1])
    return IntDist(low, high, log, step)


def _from_list(raw: list[Any], source: str, key: str, hint: Hint) -> dict[str, Any]:
    if hint in ("choice", "bool"):
        return {"type": "categorical", "choices": raw}
    if hint in ("float", "int") and len(raw) == 2:
        return {"low": raw[0], "high": raw[1]}
    fail(source, key, "a list is a [low, high] range for a float or int hyperparameter, or the choices of "
                      "a choice/bool one; write {type: categorical, choices: [...]} for a set of numbers")


def _infer(raw: Mapping[str, Any], source: str, key: str, hint: Hint) -> str:
    if "choices" in raw:
        return "categorical"
    if "value" in raw:
        return "fixed"
    if hint in ("float", "int"):
        return hint
    fail(source, join(key, "type"), "missing; say type: float, int, categorical or fixed")


def _check_hint(kind: str, hint: Hint, source: str, key: str) -> None:
    """A range's type must match the hyperparameter's (categorical and fixed fit any type)."""
    if hint is None or kind in ("categorical", "fixed") or kind == hint:
        return
    wanted = "type: categorical" if hint in ("choice", "bool") else f"type: {hint}"
    fail(source, join(key, "type"), f"a range of type {kind} does not fit a hyperparameter of type {hint}; "
                                    f"use {wanted}")
