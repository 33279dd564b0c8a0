"""One pruning run, end to end: dense pre-training, pruning, fine-tuning, compaction, figures.

`snnprune prune` and the search's trial runner both call `run_pruning`, so a trial and a CLI
run with the same settings and seed give the same model.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from snnprune.compaction import compact
from snnprune.data import DataSplits
from snnprune.engine import Callback, MaskHold, check_rates, check_split, evaluate, fit, whole_count
from snnprune.errors import UserError
from snnprune.metrics import ModelMetrics, measure

from ._base import Masks, default_config_list
from ._registry import get_pruner, validate_hyperparameters

__all__ = ["Budget", "PausedRun", "PruneOutcome", "masked_sparsity", "resume_pruning", "run_pruning"]


@dataclass(frozen=True)
class Budget:
    """Epochs and optimiser settings of the three phases."""

    pretrain_epochs: int = 5
    prune_epochs: int = 3
    finetune_epochs: int = 2
    batch_size: int = 64
    lr: float = 0.1
    finetune_lr: float = 0.02
    optimizer: str = "sgd"

    def check(self) -> None:
        """One line for the first value a run could not use, before anything trains."""
        for name in ("pretrain_epochs", "prune_epochs", "finetune_epochs"):
            whole_count(getattr(self, name), name.replace("_", "-"), low=0)
        whole_count(self.batch_size, "batch size")
        check_rates(self.lr, 0.0, "learning rate (lr)")
        check_rates(self.finetune_lr, 0.0, "fine-tune learning rate (finetune_lr)")


@dataclass
class PruneOutcome:
    """What a pruning run produced: the models, the masks, and every figure."""

    model: nn.Module
    masks: Masks
    structured: bool
    metrics: dict[str, Any]
    dense: dict[str, Any]
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """What the pruner said the user should know (e.g. a target it could not reach)."""
        return [e["message"] for e in self.events if e.get("event") == "note"]


def masked_sparsity(masks: Masks) -> float:
    """Fraction of zeros over every weight mask (the sparsity the pruner reached)."""
    total = sum(t["weight"].numel() for t in masks.values() if t.get("weight") is not None)
    kept = sum(float(t["weight"].sum()) for t in masks.values() if t.get("weight") is not None)
    return 1.0 - kept / total if total else 0.0


def masked_channel_sparsity(model: nn.Module, masks: Masks) -> float:
    """Fraction of the removable conv channels (`channel_groups`) whose filters are all masked."""
    convs = {g.conv for g in model.channel_groups()}
    rows = [t["weight"].flatten(1).ne(0).any(1) for name, t in masks.items()
            if name in convs and t.get("weight") is not None]
    total = sum(r.numel() for r in rows)
    return 1.0 - sum(int(r.sum()) for r in rows) / total if total else 0.0


def target_note(name: str, model: nn.Module, masks: Masks, sparsity: float, structured: bool) -> str | None:
    """A note when a pruner ends away from its target by more than rounding can explain (one
    unit per layer: a channel, or a weight), whatever the pruner: NNI's own rank ties and keep
    every tied channel (`nni:SlimPruner` on a network with silent channels stopped at 0.12 of
    them for any target), and nothing said so."""
    if structured:
        reached = masked_channel_sparsity(model, masks)
        groups = list(model.channel_groups())
        units = sum(int(model.get_submodule(g.conv).weight.shape[0]) for g in groups)
        slack, what = len(groups) / max(1, units), "channels"
    else:
        reached = masked_sparsity(masks)
        units = sum(t["weight"].numel() for t in masks.values() if t.get("weight") is not None)
        slack, what = len(masks) / max(1, units), "weights"
    if abs(reached - float(sparsity)) <= slack + 1e-9:
        return None
    return f"{name}: {reached:.4g} of the {what} pruned, not the target {float(sparsity):.4g}"


def _check_data(model: nn.Module, data: DataSplits) -> None:
    """The whole data set is needed (train, val, test), and its images must fit the model: say
    so in one line now rather than fail on an attribute or a conv shape minutes later."""
    if not isinstance(data, DataSplits):
        raise UserError(f"run_pruning expects DataSplits from load_dataset (data, not data.train), "
                        f"got {type(data).__name__}")
    check_split(model, data.train, "run_pruning")


def run_pruning(
    pruner: str,
    model: nn.Module,
    data: DataSplits,
    *,
    sparsity: float,
    hyperparameters: Mapping[str, Any] | None = None,
    budget: Budget = Budget(),
    seed: int = 0,
    device: str = "auto",
    quiet: bool = True,
    pretrained: bool = False,
    finetune_callbacks: Callable[[ModelMetrics], Sequence[Callback]] | None = None,
    on_phase: Callable[[str], None] | None = None,
    dense_accuracy: float | None = None,
) -> PruneOutcome:
    """Prune ``model`` with the registered ``pruner`` at ``sparsity``.

    ``pretrained=True`` skips dense pre-training (the weights came from a checkpoint or the
    cache); pruners that train sparse from scratch never pre-train. ``finetune_callbacks``
    receives the pruned network's static figures (MACs, weights, sparsity: fixed from here on)
    and returns callbacks for the fine-tuning phase (the search's multi-fidelity checks).
    ``dense_accuracy`` is the pre-trained network's test accuracy when already known (the
    search's dense cache keeps it), which saves a pass over the test set.
    """
    spec = get_pruner(pruner)
    hp = validate_hyperparameters(spec, hyperparameters or {})
    _check_data(model, data)
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real) or not 0.0 <= sparsity < 1.0:
        raise UserError(f"sparsity must be a number in [0, 1), got {sparsity!r}")  # nan fails the range
    budget.check()
    common = dict(batch_size=budget.batch_size, optimizer=budget.optimizer, seed=seed, device=device,
                  quiet=quiet)
    history: dict[str, list[dict[str, Any]]] = {}
    phase = on_phase or (lambda _name: None)
    start = time.perf_counter()
    if not pretrained and not spec.from_scratch and budget.pretrain_epochs > 0:
        phase("pretrain")
        history["pretrain"] = fit(model, data.train, val=data.val, epochs=budget.pretrain_epochs,
                                  lr=budget.lr, desc="pretrain", **common).history
    dense_figures = measure(model)
    if dense_accuracy is None or not pretrained:
        dense_accuracy = evaluate(model, data.test, device=device)["accuracy"]
    dense = {"accuracy": float(dense_accuracy),
             "macs": dense_figures.macs, "weights": dense_figures.weights, "params": dense_figures.params}
    structured = spec.kind == "structured"
    instance = spec.factory(model, default_config_list(sparsity, structured=structured), **hp)
    phase("prune")
    prune_start = time.perf_counter()
    result = instance.prune(data.train, epochs=budget.prune_epochs, val=data.val, lr=budget.lr,
                            desc="prune", **common)
    prune_seconds = time.perf_counter() - prune_start
    history["prune"] = result.history if result is not None else []
    masks = {name: {k: v.detach().cpu() for k, v in targets.items() if v is not None}
             for name, targets in instance.get_masks().items()}
    instance.unwrap_model()
    events = list(getattr(instance, "events", []))
    off = target_note(spec.name, model, masks, sparsity, structured) if spec.has_target else None
    if off is not None and not any(e.get("event") == "note" for e in events):  # a pruner's own says why
        events.append({"step": getattr(instance, "step", None), "event": "note", "message": off})
    # Cut the channels out before fine-tuning: the compact network computes the same function
    # (same outputs, same gradients for what is kept) and trains faster. Unstructured masks are
    # held by a callback on the plain model.
    final = compact(model, masks) if structured else model
    return _finetune_and_measure(final, masks, structured, data, budget=budget, common=common, dense=dense,
                                 history=history, events=events, prune_seconds=prune_seconds, start=start,
                                 finetune_callbacks=finetune_callbacks, phase=phase, device=device)


@dataclass
class PausedRun:
    """A run stopped at the end of a fine-tune epoch, with what it needs to go on: the weights of
    that moment, the fit's own state (`snnprune.engine.fit_state`) and the figures from before.

    The search's promotions save one per paused trial (`to_payload`, tensors and plain values:
    it loads with ``weights_only=True``) and `resume_pruning` goes on from it.
    """

    masks: Masks
    structured: bool
    dense: dict[str, Any]
    history: dict[str, list[dict[str, Any]]]  # the phases before fine-tuning
    events: list[dict[str, Any]]
    prune_seconds: float
    model_state: dict[str, Any]
    fit_state: dict[str, Any]

    FORMAT = "snnprune-paused-run/1"

    def to_payload(self) -> dict[str, Any]:
        return {"format": self.FORMAT, "masks": self.masks, "structured": self.structured, "dense": self.dense,
                "history": self.history, "events": self.events, "prune_seconds": float(self.prune_seconds),
                "model_state": self.model_state, "fit_state": self.fit_state}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PausedRun:
        if not isinstance(payload, Mapping) or payload.get("format") != cls.FORMAT:
            raise UserError(f"not a paused run ({cls.FORMAT})")
        fields = ("masks", "structured", "dense", "history", "events", "prune_seconds", "model_state", "fit_state")
        missing = [k for k in fields if k not in payload]
        if missing:
            raise UserError(f"a paused run without {', '.join(missing)} (damaged)")
        return cls(**{k: payload[k] for k in fields})


def resume_pruning(
    model: nn.Module,
    paused: PausedRun,
    data: DataSplits,
    *,
    budget: Budget = Budget(),
    seed: int = 0,
    device: str = "auto",
    quiet: bool = True,
    finetune_callbacks: Callable[[ModelMetrics], Sequence[Callback]] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> PruneOutcome:
    """Go on with a `PausedRun`: fine-tune from where it stopped, then measure, as `run_pruning`.

    ``model`` is a network of the run's architecture before pruning (its weights do not matter:
    the paused weights replace them). With the same budget, seed and data, the outcome is the
    one `run_pruning` gives when never paused. The callbacks see the epochs after the pause.
    """
    _check_data(model, data)
    budget.check()
    if budget.finetune_epochs <= int(paused.fit_state.get("epoch", 0)):
        raise UserError(f"nothing to resume: the run paused after fine-tune epoch {paused.fit_state.get('epoch')} "
                        f"of a budget of {budget.finetune_epochs}")
    final = compact(model, paused.masks) if paused.structured else model
    try:
        final.load_state_dict(paused.model_state)
    except RuntimeError as exc:
        raise UserError(f"the paused weights do not fit this network ({str(exc).splitlines()[0][:160]})") from None
    common = {"batch_size": budget.batch_size, "optimizer": budget.optimizer, "seed": seed, "device": device,
              "quiet": quiet}
    return _finetune_and_measure(final, paused.masks, paused.structured, data, budget=budget, common=common,
                                 dense=dict(paused.dense), history={k: list(v) for k, v in paused.history.items()},
                                 events=list(paused.events), prune_seconds=float(paused.prune_seconds),
                                 start=time.perf_counter(), finetune_callbacks=finetune_callbacks,
                                 phase=on_phase or (lambda _name: None), device=device,
                                 resume=paused.fit_state)


def _finetune_and_measure(final: nn.Module, masks: Masks, structured: bool, data: DataSplits, *, budget: Budget,
                          common: dict[str, Any], dense: dict[str, Any], history: dict[str, list[dict[str, Any]]],
                          events: list[dict[str, Any]], prune_seconds: float, start: float,
                          finetune_callbacks: Callable[[ModelMetrics], Sequence[Callback]] | None,
                          phase: Callable[[str], None], device: str,
                          resume: Mapping[str, Any] | None = None) -> PruneOutcome:
    """Fine-tune the pruned network (from a paused fit's state with ``resume``) and measure it."""
    static = measure(final, reference_weights=dense["weights"])
    if budget.finetune_epochs > 0:
        phase("finetune")
        hold = [] if structured else [MaskHold(final, masks)]
        extra = list(finetune_callbacks(static)) if finetune_callbacks else []
        history["finetune"] = fit(final, data.train, val=data.val, epochs=budget.finetune_epochs,
                                  lr=budget.finetune_lr, callbacks=[*hold, *extra],
                                  desc="finetune", resume=resume, **common).history
    final.eval()
    test = evaluate(final, data.test, device=device)
    val_accuracy = (history.get("finetune") or history.get("prune") or [{}])[-1].get("val_accuracy")
    if val_accuracy is None and len(data.val) > 0:  # no epoch after pruning measured it
        val_accuracy = evaluate(final, data.val, device=device)["accuracy"]
    figures = measure(final, data.test, reference_weights=dense["weights"], device=device)
    metrics = {
        "accuracy": test["accuracy"],
        "val_accuracy": val_accuracy,
        "sparsity": figures.sparsity,
        "mask_sparsity": masked_sparsity(masks),
        "params": figures.params,
        "weights": figures.weights,
        "nonzero_weights": figures.nonzero_weights,
        "macs": figures.macs,
        "macs_ratio": figures.macs / dense["macs"] if dense["macs"] else None,
        "sops": figures.sops,
        "energy_uj": figures.energy_uj,
        "firing_rates": figures.activity.firing_rates if figures.activity else {},
        "prune_seconds": prune_seconds,
        "seconds": time.perf_counter() - start,
    }
    return PruneOutcome(model=final, masks=masks, structured=structured, metrics=metrics, dense=dense,
                        history=history, events=events)
