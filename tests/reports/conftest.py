"""A tiny constrained study in a run folder, recorded as the search records one (no training).

Each trial gets the user attributes `search._optuna.make_objective` writes (config, metrics
with the dict-valued ``firing_rates``, ``constraint_violation``), and the sampler is given the
same ``constraints_func`` as `search._optuna.make_sampler`, so Optuna records the constraint
values itself on ``tell`` and ``study.best_trials`` is the front the search prints.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from snnprune.search._storage import default_storage, open_storage

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
#: (accuracy, macs, sparsity): trial 0 has the best accuracy and the fewest MACs, so without
#: constraints it alone is the front; with macs >= 50000 it is infeasible and 1, 2 are the front.
POINTS = ((0.90, 40_000.0, 0.8), (0.80, 60_000.0, 0.6), (0.85, 80_000.0, 0.4), (0.70, 90_000.0, 0.3))


def record_run(folder: Path, constraints: Sequence[tuple[str, str, float]] = (("macs", ">=", 50_000.0),),
             points: Sequence[tuple[float, float, float]] = POINTS, failed: bool = True) -> str:
    """A run folder ``folder`` holding study "tiny" (accuracy max, macs min); returns its storage."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = default_storage(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constraints_func is experimental
        sampler = optuna.samplers.TPESampler(
            seed=0, constraints_func=lambda t: list(t.user_attrs.get("constraint_violation", [0.0])) or [0.0])
        study = optuna.create_study(study_name="tiny", storage=open_storage(spec, heartbeat=False),
                                    directions=["maximize", "minimize"], sampler=sampler)
        study.set_metric_names(["accuracy", "macs"])
    study.set_user_attr("space", {"study": "tiny", "objectives": [{"name": "accuracy", "direction": "maximize"},
                                                                  {"name": "macs", "direction": "minimize"}],
                                  "constraints": [{"metric": m, "op": op, "value": v} for m, op, v in constraints]})
    for i, (acc, macs, sparsity) in enumerate(points):
        trial = study.ask()
        metrics = {"accuracy": acc, "test_accuracy": acc - 0.01, "macs": macs, "sparsity": sparsity,
                   "sops": macs / 3, "firing_rates": {"features.2": 0.1 * (i + 1)}}
        trial.set_user_attr("config", {"pruner": ("gmp", "sca")[i % 2], "sparsity": sparsity,
                                       "hyperparameters": {"lr": 0.01 * (i + 1)}, "model": {"name": "cnn"},
                                       "data": {"name": "digits"}, "seed": 0})
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("dense", {"accuracy": 0.95, "macs": 100_000.0})
        trial.set_user_attr("constraint_violation", [
            0.0 if OPS[op](metrics[m], v) else abs(metrics[m] - v) + 1e-9 for m, op, v in constraints])
        study.tell(trial, [acc, macs])
    if failed:
        trial = study.ask()
        trial.set_user_attr("fail_reason", "TrainingDiverged: loss is nan")
        study.tell(trial, state=TrialState.FAIL)
    return spec


@pytest.fixture
def make_run():
    """`record_run`, for tests that need another study than `run_folder`'s."""
    return record_run


@pytest.fixture
def run_folder(tmp_path):
    """The default constrained run: ``tmp_path/runs/tiny``."""
    folder = tmp_path / "runs" / "tiny"
    record_run(folder)
    return folder
