"""Counts that need no data: parameters, non-zero weights, sparsity and MACs per time step.

torch-pruning's and NNI's counters see 0 MACs in spikingjelly layers, so we count ourselves:
one dummy forward records every conv/linear output size, then MACs per sample and time step
are ``positions x non-zero weights``. Masks are honoured twice: zero weights do not count, and
a channel whose BatchNorm scale and shift are both zero (a removed channel that has not been
cut out yet) outputs nothing, so neither its filter nor the weights that read it count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from snnprune.models import input_shape_of, probe_forward

__all__ = ["LayerCount", "count_layers", "dead_channels", "input_shape_of"]


@dataclass(frozen=True)
class LayerCount:
    """One conv or linear layer: weights in all, non-zero, and MACs per sample per time step."""

    name: str
    kind: str
    weights: int
    nonzero: int
    macs: int
    dense_macs: int
    output_positions: int


def dead_channels(model: nn.Module) -> dict[str, torch.Tensor]:
    """{conv name: bool [C_out]} of channels whose BN gamma and beta are both zero."""
    groups = getattr(model, "channel_groups", None)
    if groups is None:
        return {}
    modules = dict(model.named_modules())
    dead: dict[str, torch.Tensor] = {}
    for group in groups():
        bn = modules[group.bn]
        if bn.weight is None or bn.bias is None:
            continue
        mask = (bn.weight.detach() == 0) & (bn.bias.detach() == 0)
        if mask.any():
            dead[group.conv] = mask.cpu()
            for consumer in group.consumers:
                dead[f"in:{consumer}"] = mask.cpu().repeat_interleave(group.spatial)
    return dead


def _effective_nonzero(name: str, module: nn.Module, dead: dict[str, torch.Tensor]) -> torch.Tensor:
    nz = module.weight.detach().cpu() != 0
    out_dead = dead.get(name)
    if out_dead is not None:
        nz[out_dead] = False
    in_dead = dead.get(f"in:{name}")
    if in_dead is not None and in_dead.numel() == nz.shape[1]:
        nz[:, in_dead] = False
    return nz


def count_layers(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> list[LayerCount]:
    """Per conv/linear layer counts, in forward order. One forward of a single dummy sample."""
    positions: dict[str, int] = {}

    def hook_for(name: str):
        def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
            positions[name] = int(out.shape[-1] * out.shape[-2]) if isinstance(mod, nn.Conv2d) else 1
        return hook

    probe_forward(model, {name: hook_for(name) for name, module in model.named_modules()
                          if isinstance(module, (nn.Conv2d, nn.Linear))}, input_shape)
    dead = dead_channels(model)
    modules = dict(model.named_modules())
    counts = []
    for name, pos in positions.items():
        module = modules[name]
        nz = _effective_nonzero(name, module, dead)
        counts.append(LayerCount(
            name=name, kind=type(module).__name__, weights=module.weight.numel(),
            nonzero=int(nz.sum()), macs=int(nz.sum()) * pos, dense_macs=module.weight.numel() * pos,
            output_positions=pos,
        ))
    return counts
