"""Export the best pruned configurations of a study, and re-apply one to reproduce its model.

An exported trial is a folder that stands on its own: ``config.yaml`` (model, data, pruner,
hyperparameters, budget, seed), ``nni_config_list.json``, ``masks.pt``, ``model_compact.pt``
(loads with `snnprune.load_compact` alone), ``metrics.json``. `apply_config` re-runs the trial
from ``config.yaml``: the runner is a pure function of the config and its seed, so the same
machine gives the same masks, MACs and sparsity.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from snnprune.errors import UserError

__all__ = ["export_trials", "select_trials"]

_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


def select_trials(study: optuna.Study, *, pareto: bool = False, trial: int | None = None,
                  best: str | None = None, minimize: str | None = None) -> list[FrozenTrial]:
    """The trials an export asks for: the front, one number, or the best under a condition.

    The front is the search's own (`study_front`: feasible trials only); a malformed condition
    or a ``minimize`` metric that is not a number per trial is a one-line `UserError`.
    """
    from ._feasible import no_front_reason, study_front

    finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    given = sum(x is not None and x is not False for x in (pareto or None, trial, best))
    if given != 1:
        raise UserError(("say which trials to export: " if given == 0 else "give only one of ")
                        + "--pareto, --trial N, or --best 'metric>=value'")
    if trial is not None:
        chosen = [t for t in finished if t.number == trial]
        if not chosen:
            raise UserError(f"trial {trial} is not a complete trial of study {study.study_name}")
        return chosen
    if pareto:
        front = study_front(study)
        if not front:
            raise UserError(no_front_reason(study))
        return sorted(front, key=lambda t: t.number)
    match = _CONDITION.match(best or "")
    if not match:
        raise UserError(f"--best expects 'metric>=value' (or <=, >, <), got {best!r}")
    metric, op = match.group(1), match.group(2)
    try:
        value = float(match.group(3))  # the pattern lets through ".", "-", "e", "1.2.3"
    except ValueError:
        raise UserError(f"--best expects 'metric>=value' with a number as value, got {best!r}") from None
    ops = {">=": float.__ge__, "<=": float.__le__, ">": float.__gt__, "<": float.__lt__}
    known = sorted({m for t in finished for m in t.user_attrs.get("metrics", {}) if _number(t, m) is not None})
    key = minimize or "macs"
    for flag, name in (("--best", metric), ("--minimize", key)):
        if finished and name not in known:  # absent, or not a number (firing_rates is a dict per layer)
            present = any(name in (t.user_attrs.get("metrics") or {}) for t in finished)
            why = "not a number per trial" if present else "trials have no such metric"
            raise UserError(f"{flag} {name}: {why}; known: {', '.join(known)}")
    ok = [t for t in finished if _number(t, metric) is not None and ops[op](_number(t, metric), value)]
    ok = [t for t in ok if _number(t, key) is not None]
    if not ok:
        raise UserError(f"no complete trial has {metric} {op} {value:g}")
    return [min(ok, key=lambda t: _number(t, key))]


def _number(trial: FrozenTrial, metric: str) -> float | None:
    """A trial's metric when it is a number (not a bool, not a dict such as firing_rates)."""
    value = (trial.user_attrs.get("metrics") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _config_yaml(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("pruner", "sparsity", "hyperparameters", "model", "data", "budget", "seed", "objectives", "study",
            "trial")
    out = {k: config[k] for k in keys if k in config}
    out["objectives"] = list(out.get("objectives", []))
    return out


def export_trials(trials: Sequence[FrozenTrial], out: str | Path, *, force: bool = False) -> list[Path]:
    """Write one self-contained folder per trial under ``out``; refuse to overwrite unless ``force``."""
    from snnprune.compaction import load_sparse, save_compact
    from snnprune.engine import atomic_write_bytes
    from snnprune.pruners import default_config_list, get_pruner

    out = Path(out)
    targets = [out / f"trial-{t.number:05d}" for t in trials]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise UserError(f"{existing[0]} exists; pass --force to overwrite")
    written = []
    for t, folder in zip(trials, targets):
        config = t.user_attrs.get("config")
        artifacts = t.user_attrs.get("artifacts") or {}
        if not config:
            raise UserError(f"trial {t.number} has no config (not an snnprune trial)")
        missing = [k for k in ("masks", "model") if not Path(artifacts.get(k, "")).is_file()]
        if missing:
            raise UserError(f"trial {t.number}: its artifacts are not on this machine ({', '.join(missing)}); "
                            f"re-create them with `snnprune apply` on its config")
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        spec = get_pruner(config["pruner"])
        structured = spec.kind == "structured"
        atomic_write_bytes(folder / "config.yaml", yaml.safe_dump(_config_yaml(config), sort_keys=False).encode())
        atomic_write_bytes(folder / "nni_config_list.json", json.dumps(
            default_config_list(config["sparsity"], structured=structured), indent=2).encode())
        shutil.copyfile(artifacts["masks"], folder / "masks.pt")
        if artifacts["model"].endswith("model_compact.pt"):
            shutil.copyfile(artifacts["model"], folder / "model_compact.pt")
        else:
            model, _masks = load_sparse(artifacts["model"])
            save_compact(folder / "model_compact.pt", model)
            shutil.copyfile(artifacts["model"], folder / "model_sparse.pt")
        metrics = {"trial": t.number, "values": t.values, "metrics": t.user_attrs.get("metrics", {}),
                   "dense": t.user_attrs.get("dense", {})}
        atomic_write_bytes(folder / "metrics.json", json.dumps(metrics, indent=2, default=float).encode())
        written.append(folder)
    return written
