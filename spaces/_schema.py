"""The search space as frozen, backend-neutral data: what to prune, how to score it, how to search.

A `SearchSpace` is what `snnprune.spaces.load_space` returns and what every search backend in
`snnprune.search` consumes; the converters to Optuna and Ray live there, not here. Every class
has ``to_dict()`` so that a space round-trips through JSON/YAML:
``parse_space(space.to_dict()) == space``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._dists import Distribution

if TYPE_CHECKING:
    from snnprune.pruners import Budget

__all__ = ["DEFAULT_FRACTIONS", "DIRECTIONS", "METRICS", "OPS", "RUNG_MODES", "SAMPLERS", "Constraint", "DataSpec",
           "ModelSpec", "Objective", "Resources", "Rungs", "SearchSpace", "default_budget"]

Direction = Literal["maximize", "minimize"]
Sampler = Literal["tpe", "nsga2", "random"]

#: Metrics a trial reports that a space may optimise or constrain, with their natural direction.
METRICS: dict[str, Direction] = {"accuracy": "maximize", "macs": "minimize", "params": "minimize",
                                 "sparsity": "maximize", "sops": "minimize", "energy": "minimize"}
DIRECTIONS: tuple[str, ...] = ("maximize", "minimize")
SAMPLERS: tuple[str, ...] = ("tpe", "nsga2", "random")
#: How multi-fidelity acts at a rung (`Rungs`).
RUNG_MODES: tuple[str, ...] = ("promote", "stop")

#: The rule's default bar per rung mode (`Rungs.dominated_fraction` left out). A stop is final, so
#: ``stop`` takes a lenient bar; a pause is not (a paused trial goes on once the rule lets it), so
#: ``promote`` takes a strict one. Measured in `Rungs`' docstring.
DEFAULT_FRACTIONS: dict[str, float] = {"promote": 0.1, "stop": 0.25}

OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le,
                                                  ">": operator.gt, "<": operator.lt}


def default_budget() -> Budget:
    """`snnprune.pruners.Budget()`, imported late so that reading a space needs no torch."""
    from snnprune.pruners import Budget

    return Budget()


@dataclass(frozen=True)
class ModelSpec:
    """The network every trial builds (`snnprune.models.build_model` arguments)."""

    name: str = "cnn"
    width: float = 1.0
    T: int = 4
    neuron: str = "lif"
    tau: float = 2.0
    v_threshold: float = 1.0
    surrogate: str = "atan"
    alpha: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DataSpec:
    """The data set (`snnprune.data.load_dataset` arguments); ``root`` None = its default place."""

    name: str = "digits"
    root: str | None = None
    subset: int | float | None = None
    val_fraction: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Objective:
    """A metric to optimise and its direction."""

    name: str
    direction: Direction

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction}


@dataclass(frozen=True)
class Constraint:
    """``metric op value``, e.g. accuracy >= 0.85: trials that break it are not on the front."""

    metric: str
    op: Literal[">=", "<=", ">", "<"]
    value: float

    def holds(self, measured: float) -> bool:
        """Whether a trial's measured value satisfies the constraint."""
        return OPS[self.op](measured, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Resources:
    """What one trial asks of a worker: CPU cores (> 0) and a GPU share in [0, 8]."""

    cpu: float = 1.0
    gpu: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "gpu": self.gpu}


@dataclass(frozen=True)
class Rungs:
    """Multi-fidelity stopping: at each fine-tune epoch in ``epochs`` a trial stops when its
    partial (accuracy, cost) is dominated by at least ``dominated_fraction`` of the trials that
    reached that rung, once ``min_trials`` have. No epochs = no stopping.

    ``mode``: ``promote`` (the default; asynchronous successive halving, as ASHA) pauses a trial
    the rule stops or that fewer than ``min_trials`` trials can judge yet, its weights and
    optimizer saved: it goes on, as a new trial that resumes it, once the same rule no longer
    stops it (more trials reached the rung, or worse ones did), and stays stopped if that never
    happens. The first trials of a search then cost a rung's epochs, not a whole fine-tune,
    before anything compares them. ``stop`` decides once, when the trial reaches the rung: a
    trial too few can judge goes on to the end, a dominated one ends. Measured side by side
    (`bench/search.py` part 2, same rungs, both at a quarter), ``promote`` reached 95 % of the
    no-stop search's hypervolume with 0.923 / 0.802 of its fine-tune epochs on digits /
    Fashion-MNIST (``stop``: 0.932 / 0.889) and ended with 1.002x / 1.073x its hypervolume at
    equal compute (``stop``: 1.002x / 1.004x): never behind, and ahead where accuracy is not
    saturated.

    ``margin``: how much better another trial's rung accuracy must be before it counts as
    dominating (it must also be no worse in every cost). 0 (the default) is plain Pareto
    dominance; a number is a fixed margin in accuracy (0.01 = one point); ``auto`` takes the
    judged trial's standard error, sqrt(p(1-p)/n) on its n validation images
    (`snnprune.search.noise_margin`). A rung's accuracy comes from a few hundred images, so
    without a margin a trial of the same accuracy and a few per cent fewer MACs dominates.
    Measured on Fashion-MNIST (`bench/search.py --parts 2 --mf-data fashion-mnist --arms promote
    --margin M`, 2 seeds, promote at a tenth; fine-tune epochs to 95 % of the no-stop
    hypervolume): at 0, 0.968 (per seed 2.29, 0.56). ``auto`` is worse: about 2 points is wider
    than most differences between configurations at fine-tune epoch 1, so few trials paused (16
    configurations ran per seed in the same compute, against 29 and 24 at 0); one seed took 1.00,
    the other never reached 95 %, and the final hypervolume at equal compute fell to 0.968x
    (1.050x at 0). A margin under one validation image (0.001 of 400: equal accuracy no longer
    dominates, one image more does) took 0.598 (0.84, 0.52), with 31 and 26 configurations and
    0.987x the final hypervolume. But on the every-method space (seed 0, where 0 takes 0.58) it
    took 0.78: fewer trials paused, 40 configurations against 54 in the same compute. So the
    default stays 0.

    ``dominated_fraction`` left out takes the mode's default (`DEFAULT_FRACTIONS`). ``stop``: a
    quarter. Replaying recorded searches (demo space, 9 fine-tune epochs, every rung recorded)
    through the rule, a half stopped 0-4 of 32 trials, so the feature did nothing, while a
    quarter stopped 6-10 with the final hypervolume within 0.3 %. ``promote``: a tenth. A pause
    is undone once the rule lets the trial go on, so a strict bar costs little, and at a quarter
    a promote-mode trial cost 0.64 of a full fine-tune on average on the every-method space.
    There (``compare``, 32 trials, 2 seeds, rungs at 1 and 3 of 9 epochs) a tenth reached 95 % of
    the no-stop hypervolume with 0.492 of its fine-tune epochs, against 0.667 at a quarter
    (a twentieth: 0.492 too, with fewer trials promoted), at 1.006x its hypervolume at equal
    compute; the rungs cut fine-tuning only, so with every trial's pruning counted in it is
    0.695, and 0.898 in trial seconds. Checked afterwards: on digits (the demo's methods) 0.735
    against 0.923 at a quarter; on the every-method space over 4 seeds 0.504 (per seed 0.58,
    0.37, 0.52, 0.51); on Fashion-MNIST 0.968 against 0.802 at a quarter, where a tenth is too
    strict (a front configuration paused by two trials of equal validation accuracy and a few
    per cent fewer MACs never went on)."""

    epochs: tuple[int, ...] = ()
    dominated_fraction: float = math.nan  # nan: the mode's default, `DEFAULT_FRACTIONS`
    min_trials: int = 4
    mode: str = "promote"
    margin: str | float = 0.0  # "auto": the standard error of each rung accuracy; a float: fixed

    def __post_init__(self) -> None:
        if math.isnan(self.dominated_fraction):
            default = DEFAULT_FRACTIONS.get(self.mode, DEFAULT_FRACTIONS["promote"])
            object.__setattr__(self, "dominated_fraction", default)

    @property
    def enabled(self) -> bool:
        return bool(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs), "dominated_fraction": self.dominated_fraction,
                "min_trials": self.min_trials, "mode": self.mode, "margin": self.margin}


@dataclass(frozen=True)
class SearchSpace:
    """A validated search: model, data, budget, the pruners with their hyperparameter
    distributions (several pruners = a categorical over pruners with conditional
    hyperparameters), the objectives and constraints, resources, stopping rungs and sampler.

    ``pruners`` maps each pruner name to its distributions, ``sparsity`` (the target) always
    among them; treat it as read-only. ``source`` names the file for messages and is not part of
    equality or of ``to_dict()``.
    """

    study: str
    pruners: dict[str, dict[str, Distribution]]
    objectives: tuple[Objective, ...]
    model: ModelSpec = ModelSpec()
    data: DataSpec = DataSpec()
    budget: Budget = field(default_factory=default_budget)
    constraints: tuple[Constraint, ...] = ()
    resources: Resources = Resources()
    rungs: Rungs = Rungs()
    sampler: Sampler = "tpe"
    seed: int = 0
    trials: int = 20
    timeout: float | None = None
    source: str = field(default="<dict>", compare=False)

    @property
    def pruner_names(self) -> tuple[str, ...]:
        return tuple(self.pruners)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.objectives)

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(o.direction for o in self.objectives)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the YAML layout (every value explicit): ``parse_space`` reads it back."""
        return {
            "study": self.study,
            "model": self.model.to_dict(),
            "data": self.data.to_dict(),
            "budget": dataclasses.asdict(self.budget),
            "pruners": {name: {hp: dist.to_dict() for hp, dist in dists.items()}
                        for name, dists in self.pruners.items()},
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.to_dict() for c in self.constraints],
            "resources": self.resources.to_dict(),
            "rungs": self.rungs.to_dict(),
            "sampler": self.sampler,
            "seed": self.seed,
            "trials": self.trials,
            "timeout": self.timeout,
        }

    def to_yaml(self) -> str:
        """The space as YAML text (for `snnprune search --show-space` and exported runs)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def fingerprint(self) -> str:
        """sha256 of what defines a trial's starting point and results: model, data, budget, seed.

        Key order and int/float spelling (``1`` vs ``1.0``) do not change it; the data root does
        not either (the same data set read from another folder is the same data), so caches
        keyed by it can be shared between machines.
        """
        data = self.data.to_dict()
        data.pop("root")
        payload = {"model": self.model.to_dict(), "data": data,
                   "budget": dataclasses.asdict(self.budget), "seed": self.seed}
        text = json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_overrides(self, **overrides: Any) -> SearchSpace:
        """A new, re-validated space with top-level fields replaced (``study``, ``seed``,
        ``trials``, ``timeout``, ``sampler``) or ``data_root``: what the CLI flags change.

        A bad overriding value is named as an override (``study (overriding demo.yaml): ...``):
        the error used to blame the space file for a value typed on the command line."""
        from snnprune.errors import UserError

        from ._common import fail
        from ._parse import parse_space

        allowed = ("study", "seed", "trials", "timeout", "sampler", "data_root")
        raw = self.to_dict()
        for key, value in overrides.items():
            if key not in allowed:
                fail(self.source, key, f"cannot be overridden; allowed: {', '.join(allowed)}")
            if key == "data_root":
                raw["data"]["root"] = value
            else:
                raw[key] = value
        try:
            return parse_space(raw, source=self.source)
        except UserError as exc:
            for key in overrides:
                where = f"{self.source}: {'data.root' if key == 'data_root' else key}"
                if str(exc).startswith(where + ":") or str(exc).startswith(where + "."):
                    field_name = where[len(self.source) + 2:]
                    raise UserError(f"{field_name} (overriding {self.source}){str(exc)[len(where):]}") from None
            raise


def _canonical(value: Any) -> Any:
    """Integral floats as ints, recursively, so 1 and 1.0 hash alike."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
