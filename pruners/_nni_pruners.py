"""NNI's own pruners in our registry: ``nni:L1NormPruner``, ``nni:LevelPruner``,
``nni:SlimPruner``, ``nni:TaylorPruner``, as baselines the search can compare with.

Each class IS the NNI class (a subclass), so an NNI user drives it as usual (``compress()``,
``get_masks()``, ``unwrap_model()``), and it also speaks our protocol: the constructor takes
``(model, config_list, evaluator=None, **hyperparameters)`` checked against the registry, and
``prune(train, epochs=...)`` is the pipeline's pruning phase. NNI wants an evaluator for the
training-aware pruners; ``prune`` builds one over our engine (`make_evaluator`) when none was
given, on the already wrapped model (the traced optimizer is rebuilt by parameter name).

Structured pruning on a spiking CNN needs three changes to NNI's defaults, all made when the
config_list is read:
- Only the convs of the model's ``channel_groups()`` are pruned (others are excluded), and each
  conv's channel mask is extended to its BatchNorm's scale and shift, so that the masked network
  equals the compacted one (`snnprune.compaction.compact`). This is what NNI's ModelSpeedup would
  propagate, but ModelSpeedup fails on torch 2.x. L1Norm and Taylor use NNI's own ``align`` key.
- L1Norm and Taylor prune the same fraction of channels in every conv: ``global_group_id`` is
  dropped, since NNI's global ranking compares filter norms across layers of different fan-in
  and weights each channel by its filter size; on the digits cnn at 50 % it removes the first two
  convs entirely.
- Slim scores the BatchNorm scale (gamma), as in Network Slimming, with the conv aligned to it.
  NNI 3.0 puts the factor on the selected conv's weight, but a BatchNorm right after the conv
  normalises that factor away: its gradient is zero, the L1 penalty shrinks every factor alike
  (measured: all equal to 1e-7 after 40 steps) and the ranking is arbitrary. Gammas are ranked
  globally when the config has a ``global_group_id`` (the paper's choice; channels count alike).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import torch
from nni.compression.base.config import select_modules_by_config
from nni.compression.pruning import L1NormPruner, LevelPruner, SlimPruner, TaylorPruner
from nni.compression.pruning.slim_pruner import SLIM_SCALING_FACTOR_PNAME
from schema import SchemaError
from torch import nn

from snnprune.engine import FitResult, fit
from snnprune.errors import UserError
from snnprune.models import ChannelGroup

from ._base import Masks, in_model_order
from ._config import prepare_config_list, weight_ratio_settings
from ._nni_bridge import make_evaluator
from ._registry import HyperParam, PrunerSpec, registered, validate_hyperparameters

__all__ = ["NNIL1NormPruner", "NNILevelPruner", "NNISlimPruner", "NNITaylorPruner"]

_SELECT_KEYS = ("op_types", "op_names", "op_names_re", "exclude_op_names", "exclude_op_types",
                "exclude_op_names_re", "target_names", "target_settings")
# fit options the evaluator of the training-aware phase takes, with fit's defaults, so that both
# parts of a prune() phase train with the same settings
_EVALUATOR_OPTIONS = {name: p.default for name, p in inspect.signature(fit).parameters.items()
                      if name in inspect.signature(make_evaluator).parameters and name not in ("model", "train")}


def _selected_groups(model: nn.Module, config: dict[str, Any], pruner: str) -> list[ChannelGroup]:
    """The channel groups a config selects, by their conv (or their BN)."""
    groups = getattr(model, "channel_groups", None)
    if groups is None:
        raise UserError(f"pruner {pruner} needs a snnprune model (with channel_groups)")
    selected = set(select_modules_by_config(model, config)[0])
    return [g for g in groups() if g.conv in selected or g.bn in selected]


def _structured_config(model: nn.Module, config_list: list[dict[str, Any]], pruner: str, *,
                       score_bn: bool) -> tuple[list[dict[str, Any]], list[ChannelGroup]]:
    """The config_list rewritten for channel pruning of group convs (see the module docstring)."""
    out: list[dict[str, Any]] = []
    groups: dict[str, ChannelGroup] = {}
    for config in config_list:
        chosen = _selected_groups(model, config, pruner)
        if not chosen:
            continue
        new = {k: v for k, v in config.items() if k not in _SELECT_KEYS}
        for key, value in weight_ratio_settings(config).items():  # a ratio in target_settings too
            new.setdefault(key, value)
        if score_bn:
            new.update(op_names=[g.bn for g in chosen], target_names=["weight", "bias"])
        else:
            new.pop("global_group_id", None)
            new.update(op_names=[g.conv for g in chosen], target_names=["weight"])
            new.setdefault("granularity", "out_channel")
        out.append(new)
        groups.update({g.conv: g for g in chosen})
    for g in groups.values():
        if score_bn:   # the conv is a target without a ratio; its mask follows the BN's
            out.append({"op_names": [g.conv], "target_names": ["weight"]})
        else:
            align = {"module_name": g.conv, "target_name": "weight", "dims": [0]}
            out.append({"op_names": [g.bn], "target_names": ["weight", "bias"],
                        "target_settings": {"weight": {"align": align}, "bias": {"align": dict(align)}}})
    return out, list(groups.values())


class _NNIProtocol:
    """Our pruner protocol on top of an NNI `Pruner` class (put first in the bases)."""

    spec: ClassVar[PrunerSpec]
    structured: ClassVar[bool] = False
    #: structured: score the BN scale (Slim) instead of the conv filters
    score_bn: ClassVar[bool] = False

    def __init__(self, model: nn.Module, config_list: list[dict[str, Any]] | None = None,
                 evaluator: Any | None = None, **hyperparameters: Any) -> None:
        self.hp = validate_hyperparameters(self.spec, hyperparameters)
        config_list = prepare_config_list(model, config_list, self.spec.name)
        self.groups: list[ChannelGroup] = []
        if self.structured:
            config_list, self.groups = _structured_config(model, config_list, self.spec.name,
                                                          score_bn=self.score_bn)
        try:
            super().__init__(model, config_list, evaluator, **self._nni_arguments())  # type: ignore[call-arg]
        except (SchemaError, AssertionError) as exc:  # NNI asserts on an op type it cannot prune
            raise UserError(f"pruner {self.spec.name}: invalid config_list: {' '.join(str(exc).split())}") from None
        in_model_order(self, model)
        if not any(s.sparse_ratio is not None or s.sparse_threshold is not None
                   for spaces in self._target_spaces.values() for s in spaces.values()):
            raise UserError(f"pruner {self.spec.name}: the config_list selects no layer of this model")
        self.events: list[dict[str, Any]] = []

    def _nni_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the NNI constructor taken from our hyperparameters."""
        return {}

    # ----- masks --------------------------------------------------------------------------
    def get_masks(self) -> Masks:
        """NNI's masks without the empty entries (a conv without bias), ready for `compact`."""
        out: Masks = {}
        for name, targets in super().get_masks().items():  # type: ignore[misc]
            kept = {t: m for t, m in targets.items() if m is not None}
            if kept:
                out[name] = kept
        return out

    def _fold_factors(self) -> None:
        """Fold training-only factors into the weights (Slim's); nothing by default."""

    @torch.no_grad()
    def bake_masks(self) -> None:
        """Multiply every raw weight by its mask (and fold factors), so the plain model equals
        the wrapped one."""
        self._fold_factors()
        for spaces in self._target_spaces.values():
            for space in spaces.values():
                target = space.target
                if space.mask is not None and isinstance(target, torch.Tensor):
                    target.mul_(space.mask)

    def unwrap_model(self) -> None:
        """Bake the masks into the weights, then give back the plain model; a second call is a
        no-op (NNI's own raises on it)."""
        if not self._is_wrapped:
            return
        self.bake_masks()
        super().unwrap_model()  # type: ignore[misc]

    def _record(self, step: int) -> None:
        masks = self.get_masks()
        total = sum(m["weight"].numel() for m in masks.values() if "weight" in m)
        kept = sum(float(m["weight"].sum()) for m in masks.values() if "weight" in m)
        self.events.append({"step": step, "sparsity": 1.0 - kept / total if total else 0.0})

    # ----- the pipeline's entry point ----------------------------------------------------
    def prune(self, train: Any, *, epochs: int, **fit_kwargs: Any) -> FitResult | None:
        """One-shot: prune, then train ``epochs`` epochs with the masks held (NNI's wrappers
        apply them in every forward). Returns the `FitResult` (None for 0 epochs)."""
        self.compress()  # type: ignore[attr-defined]
        self._record(0)
        if epochs <= 0:
            return None
        return fit(self.bound_model, train, epochs=epochs, **fit_kwargs)  # type: ignore[attr-defined]


class _TrainingAware(_NNIProtocol):
    """NNI pruners that score during ``training_steps`` optimizer steps, then prune once."""

    def _nni_arguments(self) -> dict[str, Any]:
        return {"training_steps": int(self.hp["training_steps"])}

    def compress(self, max_steps: int | None = None, max_epochs: int | None = None) -> Any:
        """NNI's compress: train ``training_steps`` steps through the evaluator, then prune."""
        if self.evaluator is None:  # type: ignore[attr-defined]
            raise UserError(f"pruner {self.spec.name} trains while it scores: pass an evaluator "
                            "(snnprune.pruners.make_evaluator) or call prune(train, epochs=...)")
        if max_steps is not None or max_epochs is not None:
            raise UserError(f"pruner {self.spec.name} trains for its training_steps "
                            f"({self.training_steps}): call compress() without max_steps/max_epochs")  # type: ignore[attr-defined]
        return super().compress()  # type: ignore[misc]

    def _set_training_steps(self, steps: int) -> None:
        self.training_steps = self.interval_steps = int(steps)

    def prune(self, train: Any, *, epochs: int, **fit_kwargs: Any) -> FitResult | None:
        """Score for ``training_steps`` steps (at most the phase), prune, then train the rest of
        the ``epochs`` epochs (or of ``max_steps`` steps) with the masks held.

        The two parts are two `fit` calls with the same settings, each with its own schedule;
        the second one draws its batches with ``seed + 1``. With ``epochs=0`` the scoring steps
        still run (NNI's pruners cannot score without them).
        """
        limit = fit_kwargs.pop("max_steps", None)
        options = {**_EVALUATOR_OPTIONS, **{k: v for k, v in fit_kwargs.items() if k in _EVALUATOR_OPTIONS}}
        per_epoch = train.num_batches(options["batch_size"])
        total = min(max(0, epochs) * per_epoch, int(limit) if limit is not None else math.inf)
        steps = int(self.hp["training_steps"])
        self._set_training_steps(min(steps, total) if total > 0 else steps)
        if self.evaluator is None:  # type: ignore[has-type]
            self.evaluator = make_evaluator(self.bound_model, train, **options)  # type: ignore[attr-defined]
            self.evaluator._init_optimizer_helpers(self.bound_model)  # type: ignore[attr-defined]
        self.compress()
        self._fold_factors()
        self._record(self.training_steps)
        first = getattr(self.evaluator, "last_result", None)
        rest = total - self.training_steps
        if rest <= 0:
            return first
        kwargs = {**fit_kwargs, "seed": int(fit_kwargs.get("seed", 0)) + 1}
        second = fit(self.bound_model, train, epochs=math.ceil(rest / per_epoch), max_steps=rest, **kwargs)  # type: ignore[attr-defined]
        if first is None:
            return second
        return FitResult(history=first.history + second.history, steps=first.steps + second.steps,
                         seconds=first.seconds + second.seconds, stopped_early=second.stopped_early)


TRAINING_STEPS = HyperParam("training_steps", "int", 100, 1, 100_000, log=True,
                            help="optimizer steps of scoring before the masks are made (at most the phase)")


@registered("nni:LevelPruner", kind="unstructured", hyperparams=(), training_aware=False,
            description="NNI's LevelPruner: one-shot magnitude pruning of single weights")
class NNILevelPruner(_NNIProtocol, LevelPruner):
    """NNI's `LevelPruner` in our registry."""


@registered("nni:L1NormPruner", kind="structured", hyperparams=(), training_aware=False,
            description="NNI's L1NormPruner: one-shot removal of the conv filters of least L1 norm (Li et al. 2017)")
class NNIL1NormPruner(_NNIProtocol, L1NormPruner):
    """NNI's `L1NormPruner` on the group convs, BN aligned."""

    structured = True


@registered("nni:TaylorPruner", kind="structured", hyperparams=(TRAINING_STEPS,),
            description="NNI's TaylorPruner: conv filters ranked by first-order Taylor importance "
                        "(Molchanov et al. 2019) gathered during training")
class NNITaylorPruner(_TrainingAware, TaylorPruner):
    """NNI's `TaylorPruner` on the group convs, BN aligned."""

    structured = True


@registered("nni:SlimPruner", kind="structured",
            hyperparams=(TRAINING_STEPS,
                         HyperParam("regular_scale", "float", 1.0, 1e-4, 10.0, log=True,
                                    help="weight of the L1 penalty on the BN scaling factors")),
            description="NNI's SlimPruner: network slimming, L1-penalised BN scaling factors "
                        "(Liu et al. 2017)")
class NNISlimPruner(_TrainingAware, SlimPruner):
    """NNI's `SlimPruner` on the BN scales of the groups, conv aligned; factors folded in."""

    structured = True
    score_bn = True

    def _nni_arguments(self) -> dict[str, Any]:
        return {**super()._nni_arguments(), "regular_scale": float(self.hp["regular_scale"])}

    def _generate_sparsity(self, metrics: dict[str, dict[str, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
        """NNI's masks of the BN scales, extended to the BN shift and the conv filters.

        The shift is set here too: NNI's default ``align`` of a bias to its weight sums the
        source mask over an empty list of dims, which torch reads as all dims, so a 1-D
        weight's mask turns into all ones.
        """
        masks = super()._generate_sparsity(metrics)
        for g in self.groups:
            keep = masks.get(g.bn, {}).get("weight")
            if keep is None:
                continue
            keep = keep.reshape(-1)
            masks[g.bn]["bias"] = keep.clone()
            conv = self._target_spaces[g.conv]["weight"].target
            masks[g.conv]["weight"] = keep.view(-1, *([1] * (conv.dim() - 1))).expand_as(conv).clone()
        return masks

    @torch.no_grad()
    def _fold_factors(self) -> None:
        """Multiply each scaling factor into its weight and drop it: the forward is unchanged,
        and what follows (fine-tuning, the unwrapped model) has no trace of them."""
        for spaces in self._target_spaces.values():
            for name, space in spaces.items():
                attr = SLIM_SCALING_FACTOR_PNAME.format(name)
                factor = getattr(space._wrapper, attr, None)
                if factor is None or space.target is None:
                    continue
                if space._scaler is not None:
                    factor = space._scaler.expand(factor, space.shape, keepdim=True, full_expand=False)
                space.target.mul_(factor)
                delattr(space._wrapper, attr)
