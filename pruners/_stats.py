"""Running statistics that pruners gather during the ordinary training passes.

Each keeps one running sum per channel (or per weight, for dense gradients) and a count, and
is reset after the pruner has used it. Nothing here adds a forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import torch
from torch import nn

from snnprune.models import PotentialSteps

from ._scores import _check_alpha, _check_choice, channel_activity_sum, criticality_sum

__all__ = ["ChannelStat", "EffectiveGradient", "activity_stat", "activity_sum_steps", "criticality_stat",
           "criticality_sum_steps"]

SumFn = Callable[[torch.Tensor], torch.Tensor]
StepsFn = Callable[[Sequence[torch.Tensor], float], torch.Tensor]


class ChannelStat:
    """Per-neuron running mean over samples of a per-channel statistic of the potential.

    ``fn(H)`` gives the per-channel sum over the samples of one batch from H [T, N, C, ...] (a
    tensor it may overwrite). ``steps_fn(steps, offset)``, when given, computes the same sum
    from the recorder's `PotentialSteps` (H[t] = steps[t] + offset, read-only) without making H;
    without it a `PotentialSteps` is turned into H first.
    """

    def __init__(self, fn: SumFn, steps_fn: StepsFn | None = None) -> None:
        self.fn = fn
        self.steps_fn = steps_fn
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def __call__(self, neuron: str, potential: torch.Tensor | PotentialSteps) -> None:
        if isinstance(potential, PotentialSteps):
            samples = potential.samples
            if self.steps_fn is not None:
                s = self.steps_fn(potential.steps, potential.offset)  # a new tensor
            else:
                s = self.fn(potential.tensor())
        else:
            samples = int(potential.shape[1])
            s = self.fn(potential)  # may overwrite `potential`: the recorder hands over a fresh tensor
        if neuron in self.sums:
            self.sums[neuron] += s
        else:
            self.sums[neuron] = s.clone()
        self.counts[neuron] = self.counts.get(neuron, 0) + samples

    def mean(self, neuron: str) -> torch.Tensor | None:
        if neuron not in self.sums or not self.counts.get(neuron):
            return None
        return self.sums[neuron] / self.counts[neuron]

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()


# --------------------------------------------------------------------------------------------
# The per-batch sums, step by step. Same values as `channel_activity_sum` / `criticality_sum`
# on H = stack(steps) + offset (up to float rounding), in a few fused passes over each step
# and without an H-sized copy: this is what keeps the hooks within a few percent of a step.
# --------------------------------------------------------------------------------------------


def _scratch(first: torch.Tensor) -> torch.Tensor:
    """A contiguous float buffer of one step's shape, reused across the steps of one batch."""
    return torch.empty(first.shape, dtype=torch.promote_types(first.dtype, torch.float32), device=first.device)


def _by_channel(x: torch.Tensor) -> torch.Tensor:
    """[N, C, *map] -> [N, C, positions] (a view of the contiguous scratch buffer)."""
    return x.view(x.shape[0], x.shape[1], -1)


def _check_steps(steps: Sequence[torch.Tensor]) -> None:
    if not steps:
        raise ValueError("no time steps")
    if steps[0].ndim not in (2, 4):
        raise ValueError(f"a step of the potential must be [N, C, H, W] or [N, C], got {tuple(steps[0].shape)}")


def activity_sum_steps(steps: Sequence[torch.Tensor], offset: float = 0.0, normalize: bool = True) -> torch.Tensor:
    """`channel_activity_sum` of H = stack(steps) + offset, shape [C], computed step by step.

    S_k = sum_n 1/T sum_t ||H_k(t)||_1 (divided by h*w when `normalize`). Per step: |H[t]| into
    one scratch buffer (one fused pass), then its sum per channel; the steps are only read.
    """
    _check_steps(steps)
    first = steps[0]
    buf = _scratch(first)
    acc: torch.Tensor | None = None
    for step in steps:
        if offset:
            torch.add(step, offset, out=buf).abs_()
        else:
            torch.abs(step, out=buf)
        s = _by_channel(buf).sum(dim=2).sum(dim=0) if buf.ndim == 4 else buf.sum(dim=0)
        acc = s if acc is None else acc.add_(s)
    scale = 1.0 / len(steps)
    if normalize and first.ndim == 4:
        scale /= first.shape[2] * first.shape[3]
    return acc.mul_(scale)


def criticality_sum_steps(steps: Sequence[torch.Tensor], offset: float = 0.0, v_threshold: float = 1.0,
                          alpha: float = 2.0, aggregation: Literal["max", "mean"] = "max",
                          fn: Literal["derivative", "primitive"] = "derivative") -> torch.Tensor:
    """`criticality_sum` of H = stack(steps) + offset, shape [C], computed step by step.

    S_k = sum_n agg_{positions} ( 1/T sum_t f(H_k(t) - V_th) ). With the derivative,
    f(x) / (alpha/2) = 1 / (1 + (k x)^2), k = pi alpha / 2: per step one `addcmul` makes
    1 + k^2 x^2 and one `addcdiv_` adds its reciprocal to the running sum over t. Constant
    factors (alpha/2, 1/T) are applied after max/mean over positions, with which they commute.
    The recorder's steps on CPU are H[t] - V_th already (offset = V_th), so x is read as it is.
    """
    _check_steps(steps)
    _check_choice("aggregation", aggregation, ("max", "mean"))
    _check_choice("criticality fn", fn, ("derivative", "primitive"))
    _check_alpha(alpha)
    first = steps[0]
    shift = float(offset) - float(v_threshold)  # x = step + shift = H - V_th
    k = math.pi * alpha / 2.0
    buf = _scratch(first)
    acc: torch.Tensor | None = None
    if fn == "derivative":
        one = torch.ones((), dtype=buf.dtype, device=buf.device)
        for step in steps:
            x = torch.add(step, shift, out=buf) if shift else step
            torch.addcmul(one, x, x, value=k * k, out=buf)  # 1 + (k x)^2
            if acc is None:
                acc = torch.reciprocal(buf)
            else:
                acc.addcdiv_(one, buf)
    else:
        for step in steps:
            x = torch.add(step, shift, out=buf) if shift else step
            torch.mul(x, k, out=buf).atan_()
            acc = buf.clone() if acc is None else acc.add_(buf)
    c = _by_channel(acc) if acc.ndim == 4 else acc.unsqueeze(2)  # [N, C, positions]: sum over t
    c = c.amax(dim=2) if aggregation == "max" else c.mean(dim=2)
    steps_n = len(steps)
    if fn == "derivative":
        return c.sum(dim=0).mul_(alpha / 2.0 / steps_n)
    # sigma = atan(k x)/pi + 1/2: mean over t, then max/mean over positions, commute with it
    return c.sum(dim=0).mul_(1.0 / (math.pi * steps_n)).add_(0.5 * c.shape[0])


def criticality_stat(v_threshold: float = 1.0, alpha: float = 2.0,
                     aggregation: Literal["max", "mean"] = "max",
                     fn: Literal["derivative", "primitive"] = "derivative") -> ChannelStat:
    """Criticality per channel, averaged over the samples seen since the last reset."""
    return ChannelStat(lambda h: criticality_sum(h, v_threshold, alpha, aggregation, fn, inplace=True),
                       lambda steps, offset: criticality_sum_steps(steps, offset, v_threshold, alpha,
                                                                   aggregation, fn))


def activity_stat(normalize: bool = True) -> ChannelStat:
    """SCA channel activity per channel, averaged over the samples seen since the last reset."""
    return ChannelStat(lambda h: channel_activity_sum(h, normalize, inplace=True),
                       lambda steps, offset: activity_sum_steps(steps, offset, normalize))


class EffectiveGradient:
    """Mean |dL/dW_eff| of masked parameters, dense: pruned entries get a gradient too.

    NNI's wrapper computes W_eff = W * mask in each forward and sets it on the module; the
    gradient reaching W is masked, the one reaching W_eff is not. A forward hook registers a
    tensor hook on W_eff, so the dense gradient costs no extra pass (RigL's criterion, and
    the |dL/dgamma| of SCA's regrowth).
    """

    def __init__(self, model: nn.Module, targets: Iterable[tuple[str, str]]) -> None:
        modules = dict(model.named_modules())
        self.sums: dict[tuple[str, str], torch.Tensor] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.last: dict[tuple[str, str], torch.Tensor] = {}
        self._handles = []
        by_module: dict[str, list[str]] = {}
        for module, target in targets:
            by_module.setdefault(module, []).append(target)
        for name, names in by_module.items():
            self._handles.append(modules[name].register_forward_hook(self._hook(name, names)))

    def _hook(self, module_name: str, target_names: list[str]):
        def hook(mod: nn.Module, _inp: tuple, _out: torch.Tensor) -> None:
            if not (mod.training and torch.is_grad_enabled()):
                return
            for target in target_names:
                tensor = getattr(mod, target, None)
                if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
                    key = (module_name, target)
                    tensor.register_hook(lambda g, key=key: self._add(key, g))
        return hook

    def _add(self, key: tuple[str, str], grad: torch.Tensor) -> None:
        g = grad.detach().abs()
        self.last[key] = g
        if key in self.sums:
            self.sums[key] += g
        else:
            self.sums[key] = g.clone()
        self.counts[key] = self.counts.get(key, 0) + 1

    def mean(self, module: str, target: str = "weight", window: Literal["epoch", "last"] = "epoch"
             ) -> torch.Tensor | None:
        key = (module, target)
        if window == "last":
            return self.last.get(key)
        if key not in self.sums:
            return None
        return self.sums[key] / self.counts[key]

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
