"""`compact`: cut removed channels out for real, and `compaction_report` to show what it saved.

A masked network still computes every removed channel (as zeros); its size and its wall-clock
time are those of the dense one. Compaction rebuilds each affected layer at its new width and
copies the kept slices: a conv loses output filters, its BatchNorm loses those features, and
each consumer loses the input channels (a Linear after a flatten loses ``spatial`` consecutive
features per channel). We do the slicing ourselves rather than with torch-pruning, whose graph
tracer needs spikingjelly nets switched to single-step mode and back (see DESIGN.md), because
`ChannelGroup` already says exactly which modules move together.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from spikingjelly.activation_based import base, functional, layer
from torch import nn

from snnprune.metrics import count_layers
from snnprune.models import SpikingNet, count_parameters

from ._channels import Masks, apply_masks, check_masks, groups_of, removed_channels

__all__ = ["compact", "compaction_report", "shrink"]


def _spatial_index(keep: torch.Tensor, spatial: int) -> torch.Tensor:
    """Flattened input features of the kept channels: channel c spans c*spatial ... +spatial-1."""
    if spatial == 1:
        return keep
    offsets = torch.arange(spatial, dtype=keep.dtype, device=keep.device)
    return (keep.unsqueeze(1) * spatial + offsets).reshape(-1)


def _like(new: nn.Module, old: nn.Module) -> nn.Module:
    """Move the new module to the old one's device and dtype, mode and requires_grad flags."""
    ref = next(old.parameters(), None)
    if ref is not None:
        new.to(device=ref.device, dtype=ref.dtype)
    new.train(old.training)
    for name, param in new.named_parameters(recurse=False):
        old_param = getattr(old, name, None)
        if isinstance(old_param, torch.Tensor):
            param.requires_grad_(old_param.requires_grad)
    return new


def _take(t: torch.Tensor, out: torch.Tensor | None, inp: torch.Tensor | None) -> torch.Tensor:
    t = t.detach()
    if out is not None:
        t = t.index_select(0, out.to(t.device))
    if inp is not None:
        t = t.index_select(1, inp.to(t.device))
    return t


@torch.no_grad()
def _resized(old: nn.Module, out: torch.Tensor | None, inp: torch.Tensor | None) -> nn.Module:
    """A new spikingjelly layer of the sliced size, holding the kept slices of ``old``."""
    step_mode = getattr(old, "step_mode", "m")
    if isinstance(old, nn.Conv2d):
        if old.groups != 1:
            raise NotImplementedError(f"cannot compact a grouped conv ({old.groups} groups)")
        weight = _take(old.weight, out, inp)
        new = layer.Conv2d(weight.shape[1], weight.shape[0], old.kernel_size, old.stride, old.padding,
                           old.dilation, 1, bias=old.bias is not None, padding_mode=old.padding_mode,
                           step_mode=step_mode)
    elif isinstance(old, nn.Linear):
        weight = _take(old.weight, out, inp)
        new = layer.Linear(weight.shape[1], weight.shape[0], bias=old.bias is not None,
                           step_mode=step_mode)
    elif isinstance(old, nn.BatchNorm2d):
        if inp is not None or out is None:
            raise NotImplementedError("a BatchNorm only shrinks with its conv's output channels")
        new = layer.BatchNorm2d(len(out), old.eps, old.momentum, old.affine, old.track_running_stats,
                                step_mode=step_mode)
        _like(new, old)
        for name in ("weight", "bias", "running_mean", "running_var"):
            src = getattr(old, name, None)
            if src is not None:
                getattr(new, name).copy_(_take(src, out, None))
        if old.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(old.num_batches_tracked)
        return new
    else:
        raise NotImplementedError(f"cannot compact a {type(old).__name__}")
    _like(new, old)
    new.weight.copy_(weight)
    if old.bias is not None:
        new.bias.copy_(_take(old.bias, out, None))
    return new


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, new)


def shrink(model: nn.Module, keep: dict[str, torch.Tensor]) -> None:
    """Module surgery in place: ``keep`` maps a group's conv name to the output channel indices
    that stay. Its BN and its consumers shrink with it. Used by `compact` (the surviving
    channels) and by the loaders (the first k channels of a freshly built network).

    A module may be both a consumer (input side) and a group's conv (output side), as every
    middle conv of a VGG is, so each module is rebuilt once with both slices.
    """
    groups = {g.conv: g for g in groups_of(model)}
    out_keep: dict[str, torch.Tensor] = {}
    in_keep: dict[str, torch.Tensor] = {}
    for conv, idx in keep.items():
        group = groups[conv]
        idx = idx.to(torch.long).cpu()
        out_keep[group.conv] = idx
        out_keep[group.bn] = idx
        for consumer in group.consumers:
            if consumer in in_keep:
                raise NotImplementedError(f"{consumer} reads two channel groups; cannot compact it")
            in_keep[consumer] = _spatial_index(idx, group.spatial)
    modules = dict(model.named_modules())
    for name in dict.fromkeys([*out_keep, *in_keep]):
        _replace(model, name, _resized(modules[name], out_keep.get(name), in_keep.get(name)))
    functional.invalidate_reset_cache(model)
    functional.reset_net(model)


def _fresh_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose neurons start from their reset state.

    Neuron potentials left by a forward with gradients are non-leaf tensors, which deepcopy
    refuses; the memo maps each of them to its reset value so the input model is not touched
    (not even reset) and the copy carries no stale state of the old shape.
    """
    memo: dict[int, Any] = {}
    for module in model.modules():
        if isinstance(module, base.MemoryModule):
            for key, value in module._memories.items():
                if isinstance(value, torch.Tensor):
                    memo[id(value)] = copy.deepcopy(module._memories_rv[key])
    return copy.deepcopy(model, memo)


def compact(model: SpikingNet, masks: Masks | None = None) -> SpikingNet:
    """A new, smaller dense network computing what the masked ``model`` computes.

    The input model is left untouched. On a deep copy every mask is applied first (structured and
    unstructured zeros alike), then the channels `removed_channels` names are cut out of each
    group's conv, BN and consumers. In eval mode the outputs equal those of the masked network
    (the removed channels output exact zeros there); the result trains like any model.

    The copy keeps ``build_args`` and records ``compact_widths`` = {group conv: kept channels}
    (every group, merged with an earlier compaction's record), which is what `load_compact`
    needs to rebuild it without the original. Forward hooks of replaced modules are not carried
    over; masks must use the plain module names (unwrap NNI wrappers first).
    """
    check_masks(model, masks)
    new = _fresh_copy(model)
    apply_masks(new, masks)
    removed = removed_channels(new, masks)
    keep = {conv: (~gone).nonzero().reshape(-1) for conv, gone in removed.items() if bool(gone.any())}
    if keep:
        shrink(new, keep)
    else:
        functional.reset_net(new)
    widths = dict(getattr(model, "compact_widths", None) or {})
    widths.update({conv: int((~gone).sum()) for conv, gone in removed.items()})
    new.compact_widths = widths
    if getattr(model, "build_args", None) is not None:
        new.build_args = dict(model.build_args)
    return new


def _ratio(after: float, before: float) -> float:
    if before == 0:
        return 1.0 if after == 0 else float("inf")
    return after / before


def compaction_report(masked_model: nn.Module, compact_model: nn.Module,
                      input_shape: tuple[int, ...] | None = None) -> dict[str, float | int]:
    """Parameters and MACs per sample per time step of the masked and the compact network.

    ``*_ratio`` is after/before (the fraction left). ``dense_macs`` is what a dense runtime
    really computes (all weights of each layer) and is what compaction reduces; ``macs`` counts
    only non-zero weights of live channels (`count_layers`), which compaction must not change:
    ``macs_ratio`` is 1.0 when the compaction was exact. ``params`` counts every parameter,
    ``nonzero_params`` only the non-zero ones.
    """
    before = count_layers(masked_model, input_shape)
    after = count_layers(compact_model, input_shape)

    def nonzero(model: nn.Module) -> int:
        return int(sum(int((p.detach() != 0).sum()) for p in model.parameters()))

    report: dict[str, float | int] = {}
    figures = {
        "params": (count_parameters(masked_model), count_parameters(compact_model)),
        "nonzero_params": (nonzero(masked_model), nonzero(compact_model)),
        "dense_macs": (sum(c.dense_macs for c in before), sum(c.dense_macs for c in after)),
        "macs": (sum(c.macs for c in before), sum(c.macs for c in after)),
    }
    for key, (b, a) in figures.items():
        report[f"{key}_before"] = b
        report[f"{key}_after"] = a
        report[f"{key}_ratio"] = _ratio(a, b)
    return report
