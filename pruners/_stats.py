"""Running statistics that pruners gather during the ordinary training passes.

Each keeps one running sum per channel (or per weight, for dense gradients) and a count, and
is reset after the pruner has used it. Nothing here adds a forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import torch
from torch import nn

from ._scores import channel_activity_sum, criticality_sum

__all__ = ["ChannelStat", "EffectiveGradient", "activity_stat", "criticality_stat"]

SumFn = Callable[[torch.Tensor], torch.Tensor]


class ChannelStat:
    """Per-neuron running mean over samples of a per-channel statistic of the potential."""

    def __init__(self, fn: SumFn) -> None:
        self.fn = fn
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def __call__(self, neuron: str, potential: torch.Tensor) -> None:
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


def criticality_stat(v_threshold: float = 1.0, alpha: float = 2.0,
                     aggregation: Literal["max", "mean"] = "max",
                     fn: Literal["derivative", "primitive"] = "derivative") -> ChannelStat:
    """Criticality per channel, averaged over the samples seen since the last reset."""
    return ChannelStat(lambda h: criticality_sum(h, v_threshold, alpha, aggregation, fn, inplace=True))


def activity_stat(normalize: bool = True) -> ChannelStat:
    """SCA channel activity per channel, averaged over the samples seen since the last reset."""
    return ChannelStat(lambda h: channel_activity_sum(h, normalize, inplace=True))


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
