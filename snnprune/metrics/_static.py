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

from snnprune.engine import reset_states

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


def input_shape_of(model: nn.Module) -> tuple[int, ...]:
    """[C, H, W] of one static input, from the arguments the model was built with."""
    args = getattr(model, "build_args", None) or {}
    if "in_channels" not in args or "image_size" not in args:
        raise ValueError("model has no build_args; pass input_shape explicitly")
    return (args["in_channels"], args["image_size"], args["image_size"])


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
    shape = tuple(input_shape) if input_shape is not None else input_shape_of(model)
    positions: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor, name: str = name) -> None:
                if isinstance(mod, nn.Conv2d):
                    positions[name] = int(out.shape[-1] * out.shape[-2])
                else:
                    positions[name] = 1
            handles.append(module.register_forward_hook(hook))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=device))
    finally:
        for h in handles:
            h.remove()
        reset_states(model)
        model.train(was_training)
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
