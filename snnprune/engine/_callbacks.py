"""The points in a training step where pruners act, as a small base class of no-op hooks.

Order within one step: ``on_batch_start`` -> forward (neuron potentials reach recorders through
forward hooks) -> ``after_forward`` -> backward -> ``before_step`` (gradients are there: read them,
add penalties, mask them) -> optimizer step -> ``after_step`` (re-apply masks). Then
``on_epoch_end`` once per epoch, where a callback may set ``ctx.stop`` to end training early.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Callback", "CallbackList", "FitContext", "L1Penalty", "MaskHold"]


@dataclass
class FitContext:
    """What a callback may read (and, for ``stop``, write) during `fit`."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    epochs: int
    steps_per_epoch: int
    total_steps: int = 0  # the steps this fit will take (epochs x steps per epoch, or max_steps)
    epoch: int = 0
    step: int = 0  # optimizer steps taken so far, over the whole fit
    batch_index: int = 0
    stop: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    #: The fit's learning-rate schedule and data-order generator: with the optimizer, what a
    #: paused fit must keep to go on exactly where it stopped (`snnprune.engine.fit_state`).
    scheduler: Any = None
    generator: torch.Generator | None = None


class Callback:
    """Subclass and override what you need; every hook is a no-op by default."""

    def on_fit_start(self, ctx: FitContext) -> None: ...

    def on_batch_start(self, ctx: FitContext) -> None: ...

    def after_forward(self, ctx: FitContext, output: torch.Tensor, loss: torch.Tensor) -> None: ...

    def before_step(self, ctx: FitContext) -> None: ...

    def after_step(self, ctx: FitContext) -> None: ...

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None: ...

    def on_fit_end(self, ctx: FitContext) -> None: ...

    def on_fit_error(self, ctx: FitContext, error: BaseException) -> None:
        """Training ended by an exception (``on_fit_end`` is not called): release what
        ``on_fit_start`` took (hooks on the model), so a retry starts clean. Then it re-raises."""


class CallbackList(Callback):
    """Runs several callbacks in order. Only the hooks a callback overrides are called, so an
    unused hook costs nothing in the training step."""

    _HOOKS = ("on_fit_start", "on_batch_start", "after_forward", "before_step", "after_step",
              "on_epoch_end", "on_fit_end", "on_fit_error")

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)
        for hook in self._HOOKS:
            bound = [getattr(cb, hook) for cb in self.callbacks
                     if getattr(type(cb), hook) is not getattr(Callback, hook)]
            setattr(self, hook, self._chain(bound))

    @staticmethod
    def _chain(bound: Sequence[Any]) -> Any:
        def run(*args: Any) -> None:
            for fn in bound:
                fn(*args)
        return run


class L1Penalty(Callback):
    """Adds ``strength * sign(W)`` to the gradient of the given parameters: the L1 penalty as the
    SCA reference applies it (subgradient on the weights, no extra term in the loss)."""

    def __init__(self, params: Iterable[nn.Parameter], strength: float) -> None:
        self.params = [p for p in params]
        self.strength = float(strength)

    def before_step(self, ctx: FitContext) -> None:
        if self.strength == 0:
            return
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p.grad.add_(torch.sign(p), alpha=self.strength)


class MaskHold(Callback):
    """Keeps pruned weights at zero while a plain (unwrapped) model trains.

    ``masks`` is NNI's format, {module name: {parameter name: mask}}. Gradients are masked
    before the step and weights after it, so neither the loss, weight decay nor momentum can
    bring a pruned weight back.
    """

    def __init__(self, model: nn.Module, masks: dict[str, dict[str, torch.Tensor]]) -> None:
        params = dict(model.named_parameters())
        self.pairs: list[tuple[nn.Parameter, torch.Tensor]] = []
        for module, targets in masks.items():
            for target, mask in targets.items():
                param = params.get(f"{module}.{target}" if module else target)
                if param is not None and mask is not None and mask.shape == param.shape and not bool(mask.all()):
                    self.pairs.append((param, mask.to(param.device, param.dtype)))

    def on_fit_start(self, ctx: FitContext) -> None:
        self.pairs = [(p, m.to(p.device)) for p, m in self.pairs]
        self.after_step(ctx)

    def before_step(self, ctx: FitContext) -> None:
        for param, mask in self.pairs:
            if param.grad is not None:
                param.grad.mul_(mask)

    @torch.no_grad()
    def after_step(self, ctx: FitContext) -> None:
        for param, mask in self.pairs:
            param.mul_(mask)
