"""The pruner registry: names, classes, and each pruner's hyperparameters with their ranges.

The search spaces, the CLI and the contract tests all read this one table, so a pruner's
valid ranges are written once, next to its code. Unknown names and unknown or out-of-range
hyperparameters raise `UserError` instead of being silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from snnprune.errors import UserError

__all__ = ["HyperParam", "PrunerSpec", "get_pruner", "list_pruners", "register", "registered",
           "validate_hyperparameters"]

ParamType = Literal["float", "int", "bool", "choice"]
Kind = Literal["structured", "unstructured"]


@dataclass(frozen=True)
class HyperParam:
    """One hyperparameter: its type, default and valid range (inclusive unless said)."""

    name: str
    type: ParamType
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    log: bool = False
    low_exclusive: bool = False
    high_exclusive: bool = False
    help: str = ""
    #: name of another hyperparameter this one must exceed (PQ's q > p); samplers honour it
    above: str | None = None

    def check(self, value: Any, where: str) -> Any:
        """The value coerced to the type, or a one-line `UserError` saying what is allowed."""
        if self.type == "choice":
            if value not in self.choices:
                raise UserError(f"{where}: {self.name}={value!r} is not one of {', '.join(map(str, self.choices))}")
            return value
        if self.type == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):  # `--set normalize=1` arrives as the int 1
                return bool(value)
            raise UserError(f"{where}: {self.name}={value!r} must be true or false")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{where}: {self.name}={value!r} must be a number") from None
        except OverflowError:  # an integer of hundreds of digits
            raise UserError(f"{where}: {self.name} must be finite, got an integer of "
                            f"{len(str(value))} digits") from None
        if not math.isfinite(number):
            raise UserError(f"{where}: {self.name}={value!r} must be finite")
        if self.type == "int":
            if number != int(number):
                raise UserError(f"{where}: {self.name}={value!r} must be an integer")
            number = int(number)
        if self.low is not None and (number < self.low or (self.low_exclusive and number == self.low)):
            raise UserError(f"{where}: {self.name}={value!r} is out of range {self.range_text()}")
        if self.high is not None and (number > self.high or (self.high_exclusive and number == self.high)):
            raise UserError(f"{where}: {self.name}={value!r} is out of range {self.range_text()}")
        return number

    def range_text(self) -> str:
        if self.type == "choice":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        if self.type == "bool":
            return "{true, false}"
        left = "(" if self.low_exclusive else "["
        right = ")" if self.high_exclusive else "]"
        return f"{left}{self.low}, {self.high}{right}" + (" log" if self.log else "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "default": self.default, "low": self.low,
                "high": self.high, "choices": list(self.choices), "log": self.log,
                "range": self.range_text(), "help": self.help, "above": self.above}


@dataclass(frozen=True)
class PrunerSpec:
    """What the registry knows of a pruner."""

    name: str
    factory: Callable[..., Any]
    kind: Kind
    hyperparams: tuple[HyperParam, ...]
    description: str
    has_target: bool = True          # reaches the requested sparsity exactly (PQ reports what it reached)
    training_aware: bool = True      # acts during training (else: one shot before fine-tuning)
    from_scratch: bool = False       # trains sparse from the start: no dense pre-training
    check: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)

    def param(self, name: str) -> HyperParam:
        for hp in self.hyperparams:
            if hp.name == name:
                return hp
        raise UserError(f"pruner {self.name!r} has no hyperparameter {name!r}; "
                        f"it has: {', '.join(h.name for h in self.hyperparams) or 'none'}")

    def defaults(self) -> dict[str, Any]:
        return {hp.name: hp.default for hp in self.hyperparams}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "has_target": self.has_target, "training_aware": self.training_aware,
                "from_scratch": self.from_scratch,
                "hyperparameters": [hp.to_dict() for hp in self.hyperparams]}


_REGISTRY: dict[str, PrunerSpec] = {}


def register(spec: PrunerSpec) -> PrunerSpec:
    """Add a pruner; a second pruner under the same name is a programming error."""
    if spec.name in _REGISTRY:
        raise ValueError(f"pruner {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get_pruner(name: str) -> PrunerSpec:
    """The spec of a registered pruner, or a `UserError` listing the names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown pruner {name!r}; choose one of {', '.join(_REGISTRY)}") from None


def list_pruners() -> list[PrunerSpec]:
    """Every registered pruner, in registration order."""
    return list(_REGISTRY.values())


def validate_hyperparameters(spec: PrunerSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value checked; unknown keys and cross-constraints raise."""
    known = {hp.name: hp for hp in spec.hyperparams}
    for key in values:
        if key not in known:
            raise UserError(f"pruner {spec.name!r} has no hyperparameter {key!r}; "
                            f"it has: {', '.join(known) or 'none'}")
    out = {name: hp.check(values[name], f"pruner {spec.name}") if name in values else hp.default
           for name, hp in known.items()}
    for hp in spec.hyperparams:
        if hp.above is not None and not out[hp.name] > out[hp.above]:
            raise UserError(f"pruner {spec.name}: {hp.above} must be < {hp.name}, "
                            f"got {hp.above}={out[hp.above]} and {hp.name}={out[hp.name]}")
    if spec.check is not None:
        spec.check(out)
    return out


def registered(name: str, *, kind: Kind, hyperparams: tuple[HyperParam, ...], description: str,
               **flags: Any) -> Callable[[type], type]:
    """Class decorator: register the class under ``name`` and give it its ``spec``."""
    def wrap(cls: type) -> type:
        cls.spec = register(PrunerSpec(name=name, factory=cls, kind=kind, hyperparams=hyperparams,
                                       description=description, **flags))
        return cls
    return wrap
