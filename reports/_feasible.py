"""Which trials may stand on the Pareto front: one rule for search, runs, report and export.

A trial records how far it breaks each of the space's constraints (user attribute
``constraint_violation``, > 0 = broken); the search's sampler hands those numbers to Optuna as
the trial's constraint values, and Optuna's ``study.best_trials`` then keeps only COMPLETE
trials whose values are all <= 0. The search summary and its progress bar show that front, so
`runs`, `report` (through the results store) and `export --pareto` take it from here rather
than each deciding feasibility their own way: one study, one front.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["breaks_constraints", "constraint_texts", "infeasible_trials", "no_front_reason", "study_front"]


def study_front(study: optuna.Study) -> list[FrozenTrial]:
    """The Pareto front every command shows: Optuna's ``best_trials`` (feasible trials only);
    empty when nothing is complete."""
    try:
        return list(study.best_trials)
    except (ValueError, RuntimeError):  # no complete trial, or values that do not fit the directions
        return []


def breaks_constraints(trial: FrozenTrial) -> bool:
    """Whether a trial is infeasible by the rule ``best_trials`` applies: a recorded constraint
    value above 0. A trial without constraint values (an unconstrained study) never is."""
    return any(float(v) > 0 for v in trial.constraints.values())


def infeasible_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The COMPLETE trials left off the front because they break a constraint."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in done if breaks_constraints(t)]


def constraint_texts(space: Any) -> list[str]:
    """The space's constraints as people wrote them (``macs >= 50000``), read from the space
    the search stores in the study's user attributes; empty when it names none."""
    items = space.get("constraints") if isinstance(space, dict) else None
    out = []
    for c in items if isinstance(items, list) else []:
        if isinstance(c, dict) and {"metric", "op", "value"} <= set(c):
            value = c["value"]
            out.append(f"{c['metric']} {c['op']} {value:g}" if isinstance(value, (int, float)) else
                       f"{c['metric']} {c['op']} {value}")
    return out


def no_front_reason(study: optuna.Study) -> str:
    """Why a study has no front to export, in one line: nothing complete yet, or every complete
    trial breaks the space's constraints (named, so the user sees which to relax)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    broken = infeasible_trials(study)
    if not complete or not broken:
        return f"study {study.study_name} has no complete trial to export"
    named = "; ".join(constraint_texts(study.user_attrs.get("space"))) or "see the space"
    return (f"study {study.study_name} has no feasible trial to export: {len(broken)} complete trial(s) break "
            f"the space's constraints ({named}) and none meets them; export one anyway with --trial N")
