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

__all__ = ["apply_config", "export_trials", "select_trials"]

_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


def select_trials(study: optuna.Study, *, pareto: bool = False, trial: int | None = None,
                  best: str | None = None, minimize: str | None = None) -> list[FrozenTrial]:
    """The trials an export asks for: the front, one number, or the best under a condition."""
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
        front = study.best_trials
        if not front:
            raise UserError(f"study {study.study_name} has no complete trial to export")
        return sorted(front, key=lambda t: t.number)
    match = _CONDITION.match(best or "")
    if not match:
        raise UserError(f"--best expects 'metric>=value' (or <=, >, <), got {best!r}")
    metric, op, value = match.group(1), match.group(2), float(match.group(3))
    ops = {">=": float.__ge__, "<=": float.__le__, ">": float.__gt__, "<": float.__lt__}
    known = sorted({m for t in finished for m, v in t.user_attrs.get("metrics", {}).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if finished and metric not in known:
        raise UserError(f"--best {metric}: trials have no such metric; known: {', '.join(known)}")
    ok = [t for t in finished if metric in t.user_attrs.get("metrics", {})
          and ops[op](float(t.user_attrs["metrics"][metric]), value)]
    if not ok:
        raise UserError(f"no complete trial has {metric} {op} {value:g}")
    key = minimize or "macs"
    if key not in ok[0].user_attrs["metrics"]:
        raise UserError(f"--minimize {key}: trials have no such metric")
    return [min(ok, key=lambda t: float(t.user_attrs["metrics"][key]))]


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


def apply_config(path: str | Path, *, out: str | Path | None = None, device: str = "auto",
                 quiet: bool = True) -> dict[str, Any]:
    """Re-run an exported (or hand-written) config.yaml; compare with its metrics.json if present."""
    from snnprune.search import DenseCache, TrialConfig, TrialRuntime, run_trial

    path = Path(path)
    if not path.is_file():
        raise UserError(f"config {path} does not exist")
    try:
        payload = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML") from None
    required = ("pruner", "sparsity", "model", "data", "budget")
    if not isinstance(payload, dict) or any(k not in payload for k in required):
        raise UserError(f"{path}: a config needs the keys {', '.join(required)}")
    payload.setdefault("hyperparameters", {})
    config = TrialConfig.from_dict(payload)
    run_dir = Path(out) if out else path.parent / "applied"
    runtime = TrialRuntime(run_dir=run_dir, cache=DenseCache(run_dir / ".cache"), device=device, quiet=quiet)
    result = run_trial(config, runtime)
    report: dict[str, Any] = {"config": str(path), "run_dir": str(run_dir), "metrics": result.metrics,
                              "artifacts": result.artifacts}
    reference = path.parent / "metrics.json"
    if reference.is_file():
        before = json.loads(reference.read_text()).get("metrics", {})
        report["reference"] = {k: before.get(k) for k in ("accuracy", "test_accuracy", "macs", "sparsity")}
        report["same_macs"] = before.get("macs") == result.metrics.get("macs")
        report["same_sparsity"] = before.get("sparsity") == result.metrics.get("sparsity")
        if before.get("test_accuracy") is not None:
            report["accuracy_delta"] = float(result.metrics["test_accuracy"]) - float(before["test_accuracy"])
    return report
