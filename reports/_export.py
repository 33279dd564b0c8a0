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
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from snnprune.errors import UserError, make_folder

__all__ = ["export_trials", "select_trials"]

_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


def select_trials(study: optuna.Study, *, pareto: bool = False, trial: int | None = None,
                  best: str | None = None, minimize: str | None = None) -> list[FrozenTrial]:
    """The trials an export asks for: the front, one number, or the best under a condition.

    The front is the search's own (`study_front`: feasible trials only), and ``best`` picks among
    feasible trials too; a malformed condition
    or a ``minimize`` metric that is not a number per trial is a one-line `UserError`.
    """
    from ._feasible import breaks_constraints, no_front_reason, study_front

    finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    given = sum(x is not None and x is not False for x in (pareto or None, trial, best))
    if given != 1:
        raise UserError(("say which trials to export: " if given == 0 else "give only one of ")
                        + "--pareto, --trial N, or --best 'metric>=value'")
    if trial is not None:
        chosen = [t for t in finished if t.number == trial]
        if not chosen:
            every = study.get_trials(deepcopy=False)
            other = [t for t in every if t.number == trial]
            state = {TrialState.PRUNED: "was stopped early (multi-fidelity): it has no final model",
                     TrialState.FAIL: "failed", TrialState.RUNNING: "is still running",
                     TrialState.WAITING: "is waiting to run"}.get(other[0].state) if other else None
            later = _resumed_by(other[0], every) if other else None
            if later is not None:
                state = (f"was paused at a rung (multi-fidelity) and went on as trial {later.number}: "
                         f"export that one if it is complete")
            raise UserError(f"trial {trial} of study {study.study_name} {state or 'does not exist'}; "
                            "only a complete trial can be exported")
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
    feasible = [t for t in ok if not breaks_constraints(t)]  # as the front: the space's constraints hold
    if not feasible:
        raise UserError(f"every complete trial with {metric} {op} {value:g} breaks the space's constraints "
                        f"({len(ok)} of them); export one anyway with --trial N")
    ok = feasible
    return [min(ok, key=lambda t: _number(t, key))]


def as_number(value: Any) -> float | None:
    """``value`` when it is a number (not a bool, not a dict such as firing_rates, not text a
    hand-edited file may hold), as a float."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _number(trial: FrozenTrial, metric: str) -> float | None:
    """A trial's metric when it is a number."""
    return as_number((trial.user_attrs.get("metrics") or {}).get(metric))


def _config_yaml(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("pruner", "sparsity", "hyperparameters", "model", "data", "budget", "seed", "objectives", "study",
            "trial")
    out = {k: config[k] for k in keys if k in config}
    out["objectives"] = list(out.get("objectives", []))
    return out


def export_trials(trials: Sequence[FrozenTrial], out: str | Path, *, force: bool = False,
                  run_dir: str | Path | None = None) -> list[Path]:
    """Write one self-contained folder per trial under ``out``; refuse to overwrite unless ``force``.

    All or nothing: every trial's artifacts are found first, each folder is built beside its
    target under a temporary name, and only when all are built do they replace the targets (an
    old export that ``force`` replaces goes last). A damaged artifact found halfway leaves the
    earlier exports, and an older export of the same trial, as they were.

    ``run_dir`` is the study's run folder: artifacts are looked up in its ``trials/NNNNN/`` first,
    so a run folder that was moved or copied exports its own files, not those of the path the
    search recorded (which older studies stored relative to the search's working directory).
    """
    out = Path(out)
    targets = [out / f"trial-{t.number:05d}" for t in trials]
    existing = [p for p in targets if p.exists() or p.is_symlink()]
    if existing and not force:
        raise UserError(f"{existing[0]} exists; pass --force to overwrite")
    sources = [_sources(t, run_dir) for t in trials]
    make_folder(out, "--out")
    built: list[Path] = []
    try:
        for t, target, (masks, model) in zip(trials, targets, sources):
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=out))
            built.append(staging)
            _build(t, staging, masks, model)
    except BaseException:
        for folder in built:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    _swap_in(built, targets)
    return targets


def _sources(trial: FrozenTrial, run_dir: str | Path | None) -> tuple[Path, Path]:
    """(masks, model) files of a trial, checked before anything is written."""
    config = trial.user_attrs.get("config")
    artifacts = trial.user_attrs.get("artifacts") or {}
    if not config:
        raise UserError(f"trial {trial.number} has no config (not an snnprune trial)")
    found = {k: _artifact(artifacts.get(k), run_dir) for k in ("masks", "model")}
    missing = [k for k, path in found.items() if path is None]
    if missing:
        raise UserError(f"trial {trial.number}: its artifacts are not on this machine ({', '.join(missing)}); "
                        f"re-create them with `snnprune apply` on its config")
    return found["masks"], found["model"]  # type: ignore[return-value]


def _artifact(recorded: Any, run_dir: str | Path | None) -> Path | None:
    """The recorded artifact, in the run folder's ``trials/NNNNN/`` when it is there."""
    if not isinstance(recorded, str) or not recorded:
        return None
    path = Path(recorded)
    if run_dir is not None:
        local = Path(run_dir) / "trials" / path.parent.name / path.name
        if local.is_file():
            return local
    return path if path.is_file() else None


def _build(trial: FrozenTrial, folder: Path, masks: Path, model: Path) -> None:
    """The export of one trial, written into ``folder`` (a fresh staging folder)."""
    import torch

    from snnprune.compaction import load_compact, load_sparse, save_compact
    from snnprune.engine import atomic_write_bytes
    from snnprune.pruners import default_config_list, get_pruner

    config = trial.user_attrs["config"]
    structured = get_pruner(config["pruner"]).kind == "structured"
    atomic_write_bytes(folder / "config.yaml", yaml.safe_dump(_config_yaml(config), sort_keys=False).encode())
    atomic_write_bytes(folder / "nni_config_list.json", json.dumps(
        default_config_list(config["sparsity"], structured=structured), indent=2).encode())
    try:
        torch.load(masks, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (unpickling a damaged file can raise almost anything)
        raise UserError(f"trial {trial.number}: cannot read {masks} ({type(exc).__name__}); re-create it "
                        "with `snnprune apply` on its config") from None
    shutil.copyfile(masks, folder / "masks.pt")
    if model.name == "model_compact.pt":
        load_compact(model)  # a damaged file is refused here, not handed on in an export
        shutil.copyfile(model, folder / "model_compact.pt")
    else:
        net, _masks = load_sparse(model)
        save_compact(folder / "model_compact.pt", net)
        shutil.copyfile(model, folder / "model_sparse.pt")
    metrics = {"trial": trial.number, "values": trial.values, "metrics": trial.user_attrs.get("metrics", {}),
               "dense": trial.user_attrs.get("dense", {})}
    atomic_write_bytes(folder / "metrics.json", json.dumps(metrics, indent=2, default=float).encode())


def _swap_in(built: list[Path], targets: list[Path]) -> None:
    """Rename each built folder onto its target; what they replace is removed only afterwards."""
    old: list[Path] = []
    for staging, target in zip(built, targets):
        if target.exists() or target.is_symlink():
            aside = target.with_name(f"{staging.name}.old")
            target.rename(aside)  # a file or a folder alike
            old.append(aside)
        staging.rename(target)
    for aside in old:
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)


def _resumed_by(trial: FrozenTrial, trials: list[FrozenTrial]) -> FrozenTrial | None:
    """The trial that went on from a paused one (promote mode), if any."""
    checkpoint = trial.user_attrs.get("paused_checkpoint")
    if not checkpoint:
        return None
    return next((t for t in trials if t.user_attrs.get("resume_checkpoint") == checkpoint), None)
