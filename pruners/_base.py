"""`SNNPruner`: the base of our pruners, an NNI 3.0 `Pruner` driven by training events.

NNI supplies the wrapping (masks multiply the weights in every forward), the target spaces and
the mask format. A subclass is mostly a schedule over score functions: it overrides a few no-op
hooks (`on_start`, `before_step`, `after_step`, `on_epoch_end`, `finalize`, `on_potential`).

One implementation, two entry points:
- NNI's: ``pruner.compress(max_steps, max_epochs)`` with a `TorchEvaluator`; the hooks ride on
  the evaluator's patched optimizer step (`snnprune.pruners.make_evaluator` builds one over our
  engine).
- Ours: ``fit(model, data, callbacks=[pruner.callback()])``, the path the search uses.
Both count optimizer steps the same way and derive epoch ends from ``steps_per_epoch``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from nni.compression.base.compressor import Pruner
from nni.compression.base.config import select_modules_by_config
from schema import SchemaError
from torch import nn

from snnprune.engine import Callback, FitContext, whole_count
from snnprune.errors import UserError
from snnprune.models import ChannelGroup, PotentialRecorder, PotentialSteps

from ._config import prepare_config_list, refuse_unhonoured
from ._registry import HyperParam, PrunerSpec, validate_hyperparameters

__all__ = ["STAT_EVERY", "Masks", "SNNPruner", "default_config_list", "in_model_order"]

#: The hyperparameter of every pruner that reads membrane potentials.
STAT_EVERY = HyperParam("stat_every", "int", 1, 1, 64,
                        help="gather potential statistics on every k-th training batch (1 = all)")

Masks = dict[str, dict[str, torch.Tensor]]


def default_config_list(sparsity: float, *, structured: bool) -> list[dict[str, Any]]:
    """NNI config_list of the usual set-up: every conv (and, unstructured, every linear) layer,
    one global group at ``sparsity``."""
    op_types = ["Conv2d"] if structured else ["Conv2d", "Linear"]
    return [{"op_types": op_types, "sparse_ratio": float(sparsity), "global_group_id": "snnprune"}]


class _EngineBridge(Callback):
    """Plugs a pruner into `snnprune.fit`."""

    def __init__(self, pruner: SNNPruner) -> None:
        self.pruner = pruner

    def on_fit_start(self, ctx: FitContext) -> None:
        self.pruner.start(total_steps=ctx.total_steps, steps_per_epoch=ctx.steps_per_epoch,
                          optimizer=ctx.optimizer)

    def before_step(self, ctx: FitContext) -> None:
        self.pruner._before_step()

    def after_step(self, ctx: FitContext) -> None:
        self.pruner._after_step()

    def on_fit_end(self, ctx: FitContext) -> None:
        self.pruner.stop()

    def on_fit_error(self, ctx: FitContext, error: BaseException) -> None:
        self.pruner.abort()


def in_model_order(compressor: Any, model: nn.Module) -> None:
    """Put an NNI compressor's wrappers and target spaces in the model's module order.

    NNI collects the selected modules through sets, so its dicts come out in string-hash order,
    which changes from one Python process to the next (PYTHONHASHSEED). Every walk over the
    targets (ERK counts, draws from a seeded generator, ties in a global ranking) must see one
    fixed order, or the same seed gives other masks in another process: a worker, a re-run.
    """
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}

    def key(item: tuple[str, Any]) -> tuple[int, str]:
        return order.get(item[0], len(order)), item[0]

    compressor._module_wrappers = dict(sorted(compressor._module_wrappers.items(), key=key))
    compressor._target_spaces = dict(sorted(compressor._target_spaces.items(), key=key))


class SNNPruner(Pruner):
    """Base class; see the module docstring. Subclasses set ``spec`` (through `register`)."""

    spec: ClassVar[PrunerSpec]
    structured: ClassVar[bool] = False
    #: zero the raw value of masked weights after each step (else they are frozen under the mask)
    zero_masked_raw: ClassVar[bool] = True
    #: whether the pruner honours a different sparse_ratio per layer (else one ratio is required)
    per_layer_ratios: ClassVar[bool] = False

    def __init__(self, model: nn.Module, config_list: list[dict[str, Any]] | None = None,
                 evaluator: Any | None = None, **hyperparameters: Any) -> None:
        self.hp = validate_hyperparameters(self.spec, hyperparameters)
        config_list = prepare_config_list(model, config_list, self.spec.name)
        refuse_unhonoured(config_list, self.spec.name, structured=self.structured)
        self.groups: list[ChannelGroup] = []
        if self.structured:
            config_list = self._structured_config(model, config_list)
        try:
            super().__init__(model, config_list, evaluator)
        except (SchemaError, AssertionError) as exc:  # NNI asserts on an op type it cannot prune
            raise UserError(f"pruner {self.spec.name}: invalid config_list: {' '.join(str(exc).split())}") from None
        in_model_order(self, model)
        self.targets = self._weight_targets()
        if not self.targets:
            raise UserError(f"pruner {self.spec.name}: the config_list selects no layer of this model")
        self._check_one_ratio()
        self.step = 0
        self.total_steps = 0
        self.steps_per_epoch = 0
        self.events: list[dict[str, Any]] = []
        self._recorder: PotentialRecorder | None = None
        self._started = False
        self.seed = int(self.hp.get("seed", 0)) if "seed" in self.hp else 0

    # ----- configuration -------------------------------------------------------------------
    def _structured_config(self, model: nn.Module, config_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep the convs whose channels the model says can go, and add their BNs as targets."""
        groups = getattr(model, "channel_groups", None)
        if groups is None:
            raise UserError(f"pruner {self.spec.name} needs a snnprune model (with channel_groups)")
        by_conv = {g.conv: g for g in groups()}
        selected: set[str] = set()
        for config in config_list:
            selected |= set(select_modules_by_config(model, config)[0])
        skipped = sorted(n for n in selected if n not in by_conv)
        for config in config_list:
            config.setdefault("exclude_op_names", [])
            config["exclude_op_names"] = sorted(set(config["exclude_op_names"]) | set(skipped))
            config.setdefault("granularity", "out_channel")
        self.groups = [g for name, g in by_conv.items() if name in selected]
        if self.groups:
            config_list.append({"op_names": [g.bn for g in self.groups], "target_names": ["weight", "bias"]})
        return config_list

    def _weight_targets(self) -> dict[str, float]:
        """{module name: requested sparsity} for every wrapped weight with a ratio."""
        out = {}
        for name, spaces in self._target_spaces.items():
            space = spaces.get("weight")
            if space is not None and space.sparse_ratio is not None:
                out[name] = float(space.sparse_ratio)
        return out

    def _check_one_ratio(self) -> None:
        """Our schedules prune every selected layer towards one sparsity (`sparsity`); a
        config_list asking for other ratios per layer would get the first one everywhere, so it
        is refused unless the pruner honours each layer's own (``per_layer_ratios``)."""
        ratios = sorted(set(self.targets.values()))
        if len(ratios) > 1 and not self.per_layer_ratios:
            raise UserError(f"pruner {self.spec.name} prunes every selected layer to one sparse_ratio, but the "
                            f"config_list asks for {', '.join(f'{r:g}' for r in ratios)}: give one ratio "
                            "(its scope hyperparameter, where it has one, says whether layers are ranked "
                            "together), or use a pruner that takes one per layer (random-unstructured, nni:*)")

    def note(self, message: str) -> None:
        """Record something the user should know about this run (an event ``note``; the CLI prints
        it and `PruneOutcome.notes` lists it)."""
        self.events.append({"step": self.step, "event": "note", "message": message})

    @property
    def sparsity(self) -> float:
        """The requested sparsity, one for every layer (`_check_one_ratio`)."""
        return next(iter(self.targets.values()))

    # ----- access to weights and masks ----------------------------------------------------
    def param(self, module: str, target: str = "weight") -> torch.Tensor:
        """The trainable tensor behind a target (what the optimizer updates)."""
        return self._target_spaces[module][target].target

    def mask(self, module: str, target: str = "weight") -> torch.Tensor:
        return self._target_spaces[module][target].mask

    def set_mask(self, module: str, keep: torch.Tensor, target: str = "weight") -> None:
        space = self._target_spaces[module][target]
        space.mask = keep.to(device=space.target.device, dtype=space.target.dtype).expand_as(space.target).clone()

    def set_channels(self, group: ChannelGroup, keep: torch.Tensor) -> None:
        """Mask whole output channels: the conv filters and the BN scale and shift."""
        keep = keep.reshape(-1)
        conv = self.param(group.conv)
        self.set_mask(group.conv, keep.view(-1, *([1] * (conv.dim() - 1))))
        self.set_mask(group.bn, keep, "weight")
        self.set_mask(group.bn, keep, "bias")

    def channel_keep(self, group: ChannelGroup) -> torch.Tensor:
        """Bool [C] of live channels, read from the BN scale mask."""
        return self.mask(group.bn, "weight").reshape(-1) != 0

    @torch.no_grad()
    def bake_masks(self) -> None:
        """Multiply every raw weight by its mask, so the unwrapped model equals the masked one."""
        for spaces in self._target_spaces.values():
            for space in spaces.values():
                if space.mask is not None and isinstance(space.target, torch.Tensor):
                    space.target.mul_(space.mask)

    def reset_momentum(self, module: str, revived: torch.Tensor, target: str = "weight") -> None:
        """Clear optimizer state where weights come back, so they restart cleanly."""
        param = self.param(module, target)
        optimizer = getattr(self, "_optimizer", None)
        if optimizer is None:
            return
        state = optimizer.state.get(param, {})
        for key in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
            buf = state.get(key)
            if isinstance(buf, torch.Tensor):
                buf[revived.expand_as(buf)] = 0

    def get_masks(self) -> Masks:
        """NNI's masks, without the None entries NNI keeps for absent targets (a conv's bias)."""
        return {name: {t: m for t, m in targets.items() if m is not None}
                for name, targets in super().get_masks().items()}

    def unwrap_model(self) -> None:
        """Bake the masks into the weights, then give back the plain model (as NNI does).
        A second call does nothing."""
        if not self._is_wrapped:
            return
        self.bake_masks()
        super().unwrap_model()

    # ----- the schedule: subclasses override these no-ops -----------------------------------
    def on_start(self) -> None:
        """Training begins; ``total_steps`` and ``steps_per_epoch`` are known."""

    def before_step(self) -> None:
        """Gradients are ready (after backward, before the optimizer step)."""

    def after_step(self) -> None:
        """The optimizer has stepped; ``self.step`` counts steps done."""

    def on_epoch_end(self, epoch: int) -> None:
        """``epoch`` (1-based) has ended."""

    def finalize(self) -> None:
        """Training is over: leave the final masks at the target."""

    def potential_neurons(self) -> list[str]:
        """Names of neurons whose pre-reset potentials `on_potential` wants (none by default)."""
        return []

    def on_potential(self, neuron: str, potential: PotentialSteps) -> None:
        """Receives H of a neuron from `potential_neurons` during training, as a `PotentialSteps`.

        Hand it to a `ChannelStat`, or call ``potential.tensor()`` for H [T, N, C, ...].
        """

    # ----- driving -------------------------------------------------------------------------
    def start(self, *, total_steps: int, steps_per_epoch: int, optimizer: Any | None = None) -> None:
        self.total_steps = int(total_steps)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.step = 0
        self._optimizer = optimizer
        self._remove_recorder()  # a run that ended without stop() must not leave its hooks counting
        names = self.potential_neurons()
        if names:
            self._recorder = PotentialRecorder(self.bound_model, names, self.on_potential,
                                               every=int(self.hp.get("stat_every", 1)), steps=True)
        self._started = True
        self.on_start()

    def _before_step(self) -> None:
        self.before_step()

    def _after_step(self) -> None:
        self.step += 1
        if self.zero_masked_raw:
            self.bake_masks()
        self.after_step()
        if self.step % self.steps_per_epoch == 0:
            self.on_epoch_end(self.step // self.steps_per_epoch)

    def _remove_recorder(self) -> None:
        if self._recorder is not None:
            self._recorder.remove()
            self._recorder = None

    def stop(self) -> None:
        """Training is over: remove the hooks, bring the masks to the target (`finalize`)."""
        self._remove_recorder()
        if self._started:
            self.finalize()
            self.bake_masks()
            self._started = False

    def abort(self) -> None:
        """Training failed: remove the hooks and leave the masks as they were when it stopped
        (no `finalize` on a half-run schedule); a later `start` begins afresh."""
        self._remove_recorder()
        self._started = False

    def callback(self) -> Callback:
        """This pruner as a `snnprune.fit` callback (the search's entry point)."""
        return _EngineBridge(self)

    def prune(self, train: Any, *, epochs: int, **fit_kwargs: Any) -> Any:
        """The pruning phase on our engine: `snnprune.fit` with this pruner's callback.

        A one-shot pruner prunes when training starts, so the phase already trains the pruned
        network; with ``epochs=0`` it only prunes. Returns the `FitResult` (None for 0 epochs).
        The pipeline calls this on every registered pruner, NNI's included.
        """
        from snnprune.engine import fit

        if epochs <= 0:
            self.start(total_steps=0, steps_per_epoch=1)
            self.stop()
            return None
        callbacks = [self.callback(), *fit_kwargs.pop("callbacks", ())]
        return fit(self.bound_model, train, epochs=epochs, callbacks=callbacks, **fit_kwargs)

    def compress(self, max_steps: int | None = None, max_epochs: int | None = None) -> tuple[nn.Module, Masks]:
        """NNI's entry point: train through the evaluator while the schedule runs; one-shot
        pruners need no evaluator and prune at once. Every argument is checked before the
        schedule starts: a refused call leaves the model as it was."""
        if not self._is_wrapped:
            raise UserError(f"pruner {self.spec.name}: the model was unwrapped (unwrap_model); build a new "
                            "pruner to prune it again")
        max_steps = None if max_steps is None else whole_count(max_steps, "compress(): max_steps")
        max_epochs = None if max_epochs is None else whole_count(max_epochs, "compress(): max_epochs")
        if not self.spec.training_aware:
            self.start(total_steps=0, steps_per_epoch=1)
            self.stop()
            return self.bound_model, self.get_masks()
        if self.evaluator is None:
            raise UserError(f"pruner {self.spec.name} trains while it prunes: pass an evaluator "
                            "(snnprune.pruners.make_evaluator) or use pruner.callback() with snnprune.fit")
        per_epoch = getattr(self.evaluator, "steps_per_epoch", None)
        if max_steps is None and (max_epochs is None or per_epoch is None):
            raise UserError("compress() needs max_steps, or max_epochs with an evaluator that knows "
                            "its steps per epoch (snnprune.pruners.make_evaluator)")
        total = max_steps if max_steps is not None else max_epochs * per_epoch
        self.evaluator.bind_model(self.bound_model, self._get_param_names_map())
        self.start(total_steps=total, steps_per_epoch=per_epoch or total,
                   optimizer=self.evaluator._optimizers[0])
        self.evaluator.patch_optimizer_step([self._before_step], [self._after_step])
        try:
            self.evaluator.train(max_steps, max_epochs)
        except BaseException:
            self.abort()
            raise
        else:
            self.stop()
        finally:
            self.evaluator.unbind_model()
        return self.bound_model, self.get_masks()
