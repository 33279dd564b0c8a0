"""The ``pruners:`` section, checked against the pruner registry.

The registry (`snnprune.pruners.get_pruner`) owns each hyperparameter's type and valid range, so
a space can only search inside what the pruner accepts: a range that pokes out of it, a choice
it does not know, or ranges that can never satisfy a cross-constraint (PQ's p < q) fail at load
time, naming the file and key, instead of as a failed trial hours into a search.

Every pruner block needs ``sparsity``, the target sparsity in [0, 1) handed to `run_pruning`
(for pq-rewiring, which trains sparse from scratch, it is the initial sparsity).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from snnprune.errors import UserError

from ._common import fail, join, one_line, read_mapping
from ._dists import CategoricalDist, Distribution, Fixed, categorical_problem, parse_distribution

if TYPE_CHECKING:
    from snnprune.pruners import HyperParam, PrunerSpec

__all__ = ["check_sample", "check_value", "parse_pruners", "sparsity_param"]

_MAX_COMBINATIONS = 20_000


def sparsity_param() -> HyperParam:
    """The target sparsity every pruner takes besides its registered hyperparameters."""
    from snnprune.pruners import HyperParam

    return HyperParam("sparsity", "float", 0.5, 0.0, 1.0, high_exclusive=True, help="target sparsity")


def _sca_budget(values: Mapping[str, Any]) -> None:
    # SCAPruner checks this in its constructor, not in its registry `check`, so repeat it here.
    if not values["sparsity"] + values["update_ratio"] < 1.0:
        raise UserError(f"pruner sca: sparsity p={values['sparsity']} plus update_ratio "
                        f"q={values['update_ratio']} must stay below 1")


#: Cross-constraints that involve the target sparsity, which the registry's `check` never sees.
EXTRA_CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {"sca": _sca_budget}


def _spec(name: str, source: str, key: str) -> PrunerSpec:
    from snnprune.pruners import list_pruners

    known = {spec.name: spec for spec in list_pruners()}
    if name not in known:
        fail(source, key, f"unknown pruner {name!r}; choose one of {', '.join(known)}")
    return known[name]


def parse_pruners(raw: Any, source: str, key: str = "pruners") -> dict[str, dict[str, Distribution]]:
    """Each pruner's distributions, in file order, checked against the registry."""
    if raw is None:
        fail(source, key, "missing; name at least one pruner with its sparsity")
    block = read_mapping(raw, source, key)
    if not block:
        fail(source, key, "empty; name at least one pruner with its sparsity")
    return {name: parse_pruner(name, value, source, join(key, name)) for name, value in block.items()}


def parse_pruner(name: str, raw: Any, source: str, key: str) -> dict[str, Distribution]:
    """One pruner's block: ``sparsity`` plus any of its registered hyperparameters."""
    spec = _spec(name, source, key)
    block = read_mapping(raw, source, key)
    params = {"sparsity": sparsity_param(), **{hp.name: hp for hp in spec.hyperparams}}
    for hp_name in block:
        if hp_name not in params:
            fail(source, join(key, hp_name), f"pruner {name} has no hyperparameter {hp_name!r}; "
                                              f"it has: {', '.join(params)}")
    if "sparsity" not in block:
        fail(source, join(key, "sparsity"), "missing; every pruner needs its target sparsity, "
                                            "a float range or value in [0, 1)")
    dists = {hp_name: _parse_one(block[hp_name], params[hp_name], name, source, join(key, hp_name))
             for hp_name in block}
    _check_feasible(spec, params, dists, source, key)
    return dists


def _parse_one(raw: Any, hp: HyperParam, pruner: str, source: str, key: str) -> Distribution:
    dist = parse_distribution(raw, source, key, hp.type, log_default=hp.log)
    if isinstance(dist, Fixed):
        return Fixed(check_value(hp, dist.value, pruner, source, key))
    if isinstance(dist, CategoricalDist):
        choices = tuple(check_value(hp, c, pruner, source, join(key, "choices")) for c in dist.choices)
        problem = categorical_problem(choices)
        if problem is not None:
            fail(source, join(key, problem[0]), problem[1])
        return CategoricalDist(choices)
    for bound in ("low", "high"):
        _check_bound(hp, getattr(dist, bound), bound, pruner, source, join(key, bound))
    return dist


def check_value(hp: HyperParam, value: Any, pruner: str, source: str, key: str) -> Any:
    """The value coerced to the hyperparameter's type, or the registry's one-line reason."""
    if hp.type in ("float", "int") and isinstance(value, bool):
        fail(source, key, f"{value!r} is not a number; {pruner} allows {hp.name} in {hp.range_text()}")
    try:
        return hp.check(value, f"pruner {pruner}")
    except UserError as err:
        text = one_line(err)
        fail(source, key, text if hp.range_text() in text else f"{text}; allowed: {hp.range_text()}")


def _check_bound(hp: HyperParam, value: float, bound: str, pruner: str, source: str, key: str) -> None:
    low_bad = hp.low is not None and (value < hp.low or (hp.low_exclusive and value == hp.low))
    high_bad = hp.high is not None and (value > hp.high or (hp.high_exclusive and value == hp.high))
    if low_bad or high_bad:
        fail(source, key, f"{value} is outside {hp.range_text()}, the range {pruner} allows for {hp.name}")


def _check_feasible(spec: PrunerSpec, params: Mapping[str, HyperParam], dists: Mapping[str, Distribution],
                    source: str, key: str) -> None:
    """Fail when no point of the space passes the pruner's cross-constraints.

    The extremes of every range (and every choice) are tried: enough for monotone constraints
    such as p < q or sparsity + update_ratio < 1. A space that is only partly feasible passes;
    `check_sample` rejects the infeasible samples at run time.
    """
    ordered = [hp for hp in spec.hyperparams if getattr(hp, "above", None)]
    for hp in ordered:
        _check_above(hp, params[hp.above], dists, source, key)
    if spec.check is None and not ordered and spec.name not in EXTRA_CHECKS:
        return
    names = list(params)
    corners = [dists[n].corners() if n in dists else (params[n].default,) for n in names]
    if math.prod(len(c) for c in corners) > _MAX_COMBINATIONS:
        return
    reason = ""
    for combo in itertools.product(*corners):
        try:
            _validate(spec, dict(zip(names, combo)))
        except UserError as err:
            reason = one_line(err)
            continue
        return
    searched = [n for n in names if n in dists and not isinstance(dists[n], Fixed)]
    fail(source, key, f"no point of these ranges satisfies the pruner's constraint ({reason}); "
                      f"adjust {', '.join(searched) or 'the values'}")


def _check_above(hp: HyperParam, other: HyperParam, dists: Mapping[str, Distribution], source: str,
                 key: str) -> None:
    """The registry's declarative order (``q`` above ``p``): some value of one must exceed the other."""
    top = max(dists[hp.name].corners()) if hp.name in dists else hp.default
    bottom = min(dists[other.name].corners()) if other.name in dists else other.default
    if not top > bottom:
        fail(source, join(key, hp.name), f"no point of these ranges satisfies {other.name} < {hp.name}: the largest "
                                         f"{hp.name} ({top}) is not above the smallest {other.name} ({bottom})")


def _validate(spec: PrunerSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Registry ranges, orders and checks, then the sparsity-dependent extra check."""
    from snnprune.pruners import validate_hyperparameters

    hps = validate_hyperparameters(spec, {k: v for k, v in values.items() if k != "sparsity"})
    out = {"sparsity": values["sparsity"], **hps}
    extra = EXTRA_CHECKS.get(spec.name)
    if extra is not None:
        extra(out)
    return out


def check_sample(pruner: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A sampled configuration (``sparsity`` plus hyperparameters) checked and completed.

    Returns every hyperparameter with defaults filled in and ``sparsity``; raises `UserError`
    when the sample breaks a range or a cross-constraint (a backend marks that trial infeasible).
    """
    from snnprune.pruners import get_pruner

    spec = get_pruner(pruner)
    if "sparsity" not in values:
        raise UserError(f"pruner {pruner}: a sample needs its sparsity")
    sparsity = sparsity_param().check(values["sparsity"], f"pruner {pruner}")
    return _validate(spec, {**values, "sparsity": sparsity})

