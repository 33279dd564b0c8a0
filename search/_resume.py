"""Resuming a study with a changed space: what must match its trials, and the space a joining
worker runs."""

from __future__ import annotations

import json
from typing import Any

import optuna

from snnprune.errors import UserError
from snnprune.spaces import SearchSpace

from ._suggest import space_distributions

__all__ = ["check_resumable", "record_space"]


def check_resumable(handle: optuna.Study, space: SearchSpace, what: str) -> None:
    """Refuse, in one line and before any trial starts, a space its study's trials cannot share
    a front with, or that Optuna cannot sample in that study.

    - Other objectives in the same directions (``[accuracy, params]`` resuming ``[accuracy,
      macs]``) stored params under the name "macs": one front compared MACs with params.
    - Other choices of a categorical (a pruner added) or another kind of distribution made every
      trial fail inside Optuna with a traceback, each leaving a FAIL trial without parameters.
    - Other constraints judged new trials by them and old ones (which never recorded them) as
      feasible, so the front mixed the two rules.
    Settings that only change what later trials run (budget, ranges, seed) are allowed, with a
    note (`resume_note`).
    """
    if handle.metric_names is not None and list(handle.metric_names) != list(space.metric_names):
        raise UserError(f"{what} measures {', '.join(handle.metric_names)}, not {', '.join(space.metric_names)}; "
                        "choose another --study")
    trials = handle.get_trials(deepcopy=False)
    if not trials:
        return
    stored = handle.user_attrs.get("space")
    old = stored.get("constraints") if isinstance(stored, dict) else None
    new = space.to_dict()["constraints"]
    if isinstance(old, list) and json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True):
        raise UserError(f"{what} was searched with other constraints ({_constraints(old)}, now {_constraints(new)}): "
                        "its trials would be judged by two rules; choose another --study")
    wanted = space_distributions(space)
    seen: set[str] = set()
    for trial in trials:
        for param, dist in trial.distributions.items():
            if param in seen or param not in wanted:
                continue
            seen.add(param)
            try:
                optuna.distributions.check_distribution_compatibility(dist, wanted[param])
            except ValueError:
                raise UserError(f"{what} sampled {param} from {_shown(dist)}; this space samples it from "
                                f"{_shown(wanted[param])}; choose another --study") from None


def _constraints(items: list[Any]) -> str:
    texts = [f"{c.get('metric')} {c.get('op')} {c.get('value')}" if isinstance(c, dict) else str(c) for c in items]
    return "; ".join(texts) if texts else "none"


def _shown(dist: optuna.distributions.BaseDistribution) -> str:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return "{" + ", ".join(str(c) for c in dist.choices) + "}"
    return type(dist).__name__.replace("Distribution", "").lower() + " values"


def record_space(study: optuna.Study, space: SearchSpace) -> None:
    """Keep the space of the latest search in the study: a worker joining it runs that space
    (an edited budget or seed), not the one the study was created with."""
    current = space.to_dict()
    if json.dumps(study.user_attrs.get("space"), sort_keys=True, default=str) != \
            json.dumps(current, sort_keys=True, default=str):
        study.set_user_attr("space", current)
