"""`run_trial`: one config in, every metric out.

Builds the network and the data, takes the dense pre-trained weights from the cache (training
them once per key), prunes through the engine, fine-tunes with the multi-fidelity checks at the
rungs, compacts, measures, and writes the trial's artifacts. Deterministic for the config's
seed: every trial of a study shares the seed, so they share the dense network too.

In ``promote`` mode a trial the rule would stop at a rung (or that too few trials judge yet)
pauses: its weights and the fine-tune's own state are saved beside its artifacts
(``paused_at_<rung>.pt``) and the pause is recorded in the rung store. A trial run with
``resume=`` that checkpoint goes on from there and ends as the paused trial would have, never
paused (`snnprune.engine.fit` restores the optimizer, the schedule and the data order).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from snnprune.compaction import save_compact, save_sparse
from snnprune.data import DataSplits, load_dataset
from snnprune.engine import Callback, FitContext, atomic_torch_save, atomic_write_bytes, fit, fit_state
from snnprune.errors import UserError, first_line
from snnprune.metrics import ModelMetrics, measure_activity
from snnprune.models import build_model, seeded
from snnprune.pruners import Budget, PausedRun, PruneOutcome, get_pruner, resume_pruning, run_pruning
from snnprune.spaces import Rungs

from ._cache import DenseCache
from ._fidelity import RungStore, noise_margin, passes, should_stop
from ._trial import TrialConfig, TrialResult

__all__ = ["DIRECTIONS", "RungPolicy", "TrialRuntime", "run_trial"]

#: Default direction of every objective a space may name.
DIRECTIONS = {"accuracy": "maximize", "sparsity": "maximize", "macs": "minimize", "params": "minimize",
              "sops": "minimize", "energy": "minimize"}


@dataclass(frozen=True)
class RungPolicy:
    """Where and how multi-fidelity stopping checks (see `_fidelity`)."""

    epochs: tuple[int, ...] = ()
    dominated_fraction: float = math.nan  # the space schema's defaults (nan: the mode's, as `Rungs`)
    min_trials: int = Rungs.min_trials
    mode: str = Rungs.mode
    margin: str | float = Rungs.margin

    def __post_init__(self) -> None:
        if math.isnan(self.dominated_fraction):
            object.__setattr__(self, "dominated_fraction", Rungs(mode=self.mode).dominated_fraction)

    def tolerance(self, objectives: Sequence[str], partial: Sequence[float], n_val: int) -> list[float]:
        """A rung record's noise per objective: its accuracy's margin (``auto``: the standard
        error on ``n_val`` images, `noise_margin`), 0 for the costs."""
        def margin(value: float) -> float:
            return noise_margin(value, n_val) if self.margin == "auto" else float(self.margin)
        return [margin(v) if name == "accuracy" else 0.0 for name, v in zip(objectives, partial)]


@dataclass
class TrialRuntime:
    """What trials of one process share: loaded data, the cache, the rung store, the run folder."""

    run_dir: Path
    cache: DenseCache | None = None
    rung_store: RungStore | None = None
    rungs: RungPolicy = RungPolicy()
    #: Whose rung records a trial is judged against: the study's name and run id (see
    #: `search._rundir`); None falls back to the config's study name.
    scope: str | None = None
    directions: Sequence[str] = ("maximize", "minimize")
    device: str = "auto"
    quiet: bool = True
    save_artifacts: bool = True
    _data: dict[str, DataSplits] = field(default_factory=dict)

    def data(self, spec: dict[str, Any], seed: int) -> DataSplits:
        key = json.dumps([spec, seed], sort_keys=True, default=str)
        if key not in self._data:
            self._data[key] = load_dataset(spec["name"], spec.get("root"), subset=spec.get("subset"),
                                           val_fraction=spec.get("val_fraction", 0.1), seed=seed)
        return self._data[key]


class _RungCheck(Callback):
    """At each rung epoch: record the partial objective vector; stop if enough trials dominate
    it, or (``promote``) pause unless enough trials judge it and none of that many dominates it."""

    def __init__(self, config: TrialConfig, static: ModelMetrics, runtime: TrialRuntime, data: DataSplits,
                 trial_key: str, on_rung: Callable[[int, list[float]], None] | None) -> None:
        self.config, self.static, self.runtime, self.data = config, static, runtime, data
        self.trial_key, self.on_rung = trial_key, on_rung
        self.stopped_at: int | None = None
        #: promote mode, when it paused: the weights and the fit's state at that epoch's end
        self.snapshot: tuple[dict[str, Any], dict[str, Any]] | None = None
        #: ... and whether it paused because too few trials had reached the rung to judge it
        self.unjudged = False

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None:
        epoch = ctx.epoch + 1
        if epoch not in self.runtime.rungs.epochs or self.runtime.rung_store is None:
            return
        vector = self._partial(ctx, record)
        store = self.runtime.rung_store
        scope = self.runtime.scope or self.config.study
        policy, directions = self.runtime.rungs, self.runtime.directions
        tolerance = policy.tolerance(self.config.objectives, vector, len(self.data.val))
        others = store.others(scope, self.trial_key, epoch)
        store.record(scope, self.trial_key, epoch, vector, tolerance)
        if self.on_rung is not None:
            self.on_rung(epoch, vector)
        fraction, least = policy.dominated_fraction, policy.min_trials
        if policy.mode == "promote":
            if not passes(vector, others, directions, dominated_fraction=fraction, min_trials=least,
                          tolerance=tolerance):
                self.stopped_at, self.unjudged = epoch, len(others) < max(1, least)
                self.snapshot = ({k: v.detach().cpu().clone() for k, v in ctx.model.state_dict().items()},
                                 fit_state(ctx))
                ctx.stop = True
        elif should_stop(vector, others, directions, dominated_fraction=fraction, min_trials=least,
                         tolerance=tolerance):
            self.stopped_at = epoch
            ctx.stop = True

    def _partial(self, ctx: FitContext, record: dict[str, Any]) -> list[float]:
        values = []
        activity = None
        for name in self.config.objectives:
            if name == "accuracy":
                values.append(float(record["val_accuracy"]))  # run_trial refuses an empty val split
            elif name in ("sops", "energy"):
                if activity is None:
                    activity = measure_activity(ctx.model, self.data.val, max_batches=2, device=ctx.device)
                values.append(activity.sops if name == "sops" else activity.energy_pj * 1e-6)
            else:
                values.append(float(getattr(self.static, {"params": "nonzero_weights"}.get(name, name))))
        return values


_NO_VALIDATION = ("the validation split is empty (raise data.subset or data.val_fraction): "
                  "a search selects on validation accuracy, never on the test set")


def _objective_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Objectives read validation accuracy (model selection must not see the test set)."""
    if metrics.get("val_accuracy") is None:
        raise UserError(_NO_VALIDATION)
    out = dict(metrics)
    out["test_accuracy"] = metrics["accuracy"]
    out["accuracy"] = metrics["val_accuracy"]
    out["energy"] = metrics.get("energy_uj")
    out["params"] = metrics.get("nonzero_weights")
    return out


def run_trial(config: TrialConfig, runtime: TrialRuntime, *, trial_key: str | None = None,
              on_rung: Callable[[int, list[float]], None] | None = None,
              on_phase: Callable[[str], None] | None = None,
              resume: str | Path | None = None) -> TrialResult:
    """Run one trial; see the module docstring. ``resume``: the checkpoint of a paused trial of
    the same config to go on from (``trial_key`` then names the paused trial's line)."""
    start = time.perf_counter()
    spec = get_pruner(config.pruner)
    data = runtime.data(config.data, config.seed)
    if len(data.val) == 0:  # refused before any training, not after the whole trial
        raise UserError(_NO_VALIDATION)
    info = data.info
    budget = Budget(**config.budget)
    model_args = dict(config.model)
    name = model_args.pop("name")

    def fresh() -> torch.nn.Module:
        with seeded(config.seed):
            return build_model(name, num_classes=info.num_classes, in_channels=info.in_channels,
                               image_size=info.image_size, **model_args)

    key = trial_key or f"{config.trial}"
    checks: list[_RungCheck] = []

    def callbacks(static: ModelMetrics) -> list[Callback]:
        if not runtime.rungs.epochs:
            return []
        checks.append(_RungCheck(config, static, runtime, data, key, on_rung))
        return [checks[-1]]

    cache_hit = False
    if resume is not None:
        paused = load_paused(resume)
        outcome = resume_pruning(fresh(), paused, data, budget=budget, seed=config.seed, device=runtime.device,
                                 quiet=runtime.quiet, finetune_callbacks=callbacks, on_phase=on_phase)
    else:
        outcome, cache_hit = _prune(config, runtime, spec, data, budget, fresh, callbacks, on_phase)
    metrics = _objective_metrics(outcome.metrics)
    metrics["seconds"] = time.perf_counter() - start
    artifacts = _save(config, outcome, runtime) if runtime.save_artifacts else {}
    check = checks[0] if checks else None
    paused_at = None
    if check is not None and check.snapshot is not None and check.stopped_at is not None:
        paused_at = _pause(config, outcome, check.stopped_at, check.snapshot, runtime, key)
    return TrialResult(config=config, metrics=metrics, dense=outcome.dense, history=outcome.history,
                       artifacts=artifacts, stopped_at=check.stopped_at if check else None,
                       cache_hit=cache_hit, paused_checkpoint=paused_at,
                       paused_unjudged=bool(paused_at and check is not None and check.unjudged))


def _prune(config: TrialConfig, runtime: TrialRuntime, spec: Any, data: DataSplits, budget: Budget,
           fresh: Callable[[], torch.nn.Module], callbacks: Callable[[ModelMetrics], list[Callback]],
           on_phase: Callable[[str], None] | None) -> tuple[PruneOutcome, bool]:
    """The dense network from the cache (trained once per key), then `run_pruning`."""
    model = fresh()
    pretrained, cache_hit = False, False
    cache_key = config.cache_key()
    if not spec.from_scratch and budget.pretrain_epochs > 0 and runtime.cache is not None:
        def pretrain() -> torch.nn.Module:
            if on_phase:
                on_phase("pretrain")
            dense = fresh()
            fit(dense, data.train, val=data.val, epochs=budget.pretrain_epochs, batch_size=budget.batch_size,
                lr=budget.lr, optimizer=budget.optimizer, seed=config.seed, device=runtime.device,
                quiet=runtime.quiet, desc="pretrain")
            return dense

        state, cache_hit = runtime.cache.get_or_train(cache_key, pretrain)
        model.load_state_dict(state)
        pretrained = True
    known = runtime.cache.figures(cache_key) if pretrained and runtime.cache is not None else {}
    outcome = run_pruning(config.pruner, model, data, sparsity=config.sparsity,
                          hyperparameters=config.hyperparameters, budget=budget, seed=config.seed,
                          device=runtime.device, quiet=runtime.quiet, pretrained=pretrained,
                          finetune_callbacks=callbacks, on_phase=on_phase,
                          dense_accuracy=known.get("test_accuracy"))
    if pretrained and runtime.cache is not None and "test_accuracy" not in known:
        runtime.cache.save_figures(cache_key, {"test_accuracy": outcome.dense["accuracy"]})
    return outcome, cache_hit


def _trial_folder(config: TrialConfig, runtime: TrialRuntime) -> Path:
    name = f"{config.trial:05d}" if config.trial >= 0 else "no-number"  # a hand-written config: not "-0001"
    return runtime.run_dir.resolve() / "trials" / name  # absolute: valid from any directory


def _pause(config: TrialConfig, outcome: PruneOutcome, rung: int, snapshot: tuple[dict[str, Any], dict[str, Any]],
           runtime: TrialRuntime, key: str) -> str:
    """Save a paused trial's checkpoint, then record the pause (so no pause names a missing file)."""
    model_state, state = snapshot
    paused = PausedRun(masks=outcome.masks, structured=outcome.structured, dense=outcome.dense,
                       history={k: v for k, v in outcome.history.items() if k != "finetune"},
                       events=outcome.events, prune_seconds=float(outcome.metrics.get("prune_seconds") or 0.0),
                       model_state=model_state, fit_state=state)
    path = atomic_torch_save(paused.to_payload(), _trial_folder(config, runtime) / f"paused_at_{rung}.pt")
    if runtime.rung_store is not None:
        runtime.rung_store.pause(runtime.scope or config.study, key, rung, str(path), number=config.trial)
    return str(path)


def load_paused(path: str | Path) -> PausedRun:
    """A paused trial's checkpoint (`_pause`); one line when it is gone or not one."""
    if not Path(path).is_file():
        raise UserError(f"the checkpoint of the paused trial is gone: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  torch raises several kinds for a file that is not its own
        raise UserError(f"cannot read the paused trial's checkpoint {path}: {first_line(exc)[:160]}") from None
    try:
        return PausedRun.from_payload(payload)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def _save(config: TrialConfig, outcome: Any, runtime: TrialRuntime) -> dict[str, str]:
    folder = _trial_folder(config, runtime)
    masks = atomic_torch_save(outcome.masks, folder / "masks.pt")
    if outcome.structured:
        model = save_compact(folder / "model_compact.pt", outcome.model)
    else:
        model = save_sparse(folder / "model_sparse.pt", outcome.model, outcome.masks)
    cfg = atomic_write_bytes(folder / "config.json", config.to_json().encode())
    return {"masks": str(masks), "model": str(model), "config": str(cfg)}
