"""Which channels a pruned network has lost, and how its masks are applied.

Structured pruners hand out NNI-format masks (``{module: {"weight": mask, "bias": mask}}``, 1 =
keep). A channel is gone when its whole output filter is masked; models that were masked in
place and whose masks are lost still show it as a BatchNorm whose scale and shift are both zero
(the same rule `snnprune.metrics.dead_channels` counts by). This module turns either evidence
into one bool vector per `ChannelGroup`, so compaction and its reload agree on what was cut.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from snnprune.errors import UserError
from snnprune.models import ChannelGroup

__all__ = ["Masks", "apply_masks", "check_masks", "groups_of", "removed_channels"]

Masks = Mapping[str, Mapping[str, torch.Tensor]]


def groups_of(model: nn.Module) -> list[ChannelGroup]:
    """The model's channel groups; a model without the map cannot be compacted."""
    groups = getattr(model, "channel_groups", None)
    if groups is None:
        raise UserError(f"{type(model).__name__} has no channel_groups(); only snnprune models "
                        "(build_model) can be compacted")
    return list(groups())


def check_masks(model: nn.Module, masks: Masks | None) -> None:
    """Every mask must name a parameter of the model and have its shape.

    Masks come from pruners, from files and from users, so a wrong name (an NNI wrapper's
    ``_nni_wrapper`` prefix, a model of another width) is a user error, explained in one line,
    rather than a silent no-op that would leave the weights unpruned.
    """
    if masks is None:
        return
    if not isinstance(masks, Mapping):
        raise UserError(f"masks must be a dict {{module: {{param: mask}}}}, got {type(masks).__name__}")
    modules = dict(model.named_modules())
    for name, entry in masks.items():
        if name not in modules:
            raise UserError(f"mask names module {name!r}, which the model does not have")
        if not isinstance(entry, Mapping):
            raise UserError(f"masks[{name!r}] must be a dict {{param: mask}}")
        params = dict(modules[name].named_parameters(recurse=False))
        for pname, mask in entry.items():
            if pname not in params:
                raise UserError(f"mask names {name}.{pname}, which is not a parameter of the model")
            if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(params[pname].shape):
                shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
                raise UserError(f"mask of {name}.{pname} has shape {shape}, the parameter "
                                f"{tuple(params[pname].shape)}")


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks | None) -> None:
    """Multiply every masked parameter by its mask, in place (structured and unstructured zeros)."""
    if not masks:
        return
    modules = dict(model.named_modules())
    for name, entry in masks.items():
        for pname, mask in entry.items():
            param = getattr(modules[name], pname)
            param.mul_((mask != 0).to(device=param.device, dtype=param.dtype))


def _filter_mask(masks: Masks | None, conv: str) -> torch.Tensor | None:
    if not masks:
        return None
    entry = masks.get(conv)
    return None if entry is None else entry.get("weight")


@torch.no_grad()
def removed_channels(model: nn.Module, masks: Masks | None = None) -> dict[str, torch.Tensor]:
    """{group conv name: bool [C_out]}, True for each output channel that compaction removes.

    A channel is removed when its conv's output filter mask is all zero (when ``masks`` has that
    conv), otherwise when its BatchNorm scale and shift are both exactly zero. The second rule is
    what makes removal exact: such a BN outputs 0, the spiking neuron after it never fires, and
    every consumer reads zeros from it. (A filter masked while its BN shift is left non-zero
    feeds a constant to the neuron; the pruner meant the channel gone, so it goes, but then the
    compact model matches the masked one only if the pruner masked the BN too, as ours do.)

    Keep-one rule: when every channel of a group would go, the one with the largest |BN scale|
    (after masking) stays, the first on ties, so no layer is ever emptied (a conv of zero
    channels cannot be built). Its output is still zero in the masked model, so the outputs of
    the masked and the compact network still match.

    Every group appears in the result, including groups that lose nothing (all False).
    """
    check_masks(model, masks)
    modules = dict(model.named_modules())
    removed: dict[str, torch.Tensor] = {}
    for group in groups_of(model):
        conv, bn = modules[group.conv], modules[group.bn]
        channels = conv.weight.shape[0]
        gamma = bn.weight.detach() if getattr(bn, "weight", None) is not None else None
        beta = bn.bias.detach() if getattr(bn, "bias", None) is not None else None
        bn_masks = (masks or {}).get(group.bn, {})
        if gamma is not None and "weight" in bn_masks:
            gamma = gamma * (bn_masks["weight"] != 0).to(gamma)
        if beta is not None and "bias" in bn_masks:
            beta = beta * (bn_masks["bias"] != 0).to(beta)
        fmask = _filter_mask(masks, group.conv)
        if fmask is not None:
            gone = ~(fmask.detach().reshape(channels, -1) != 0).any(dim=1)
        elif gamma is not None and beta is not None:
            gone = (gamma == 0) & (beta == 0)
        else:
            gone = torch.zeros(channels, dtype=torch.bool)
        gone = gone.cpu().clone()
        if bool(gone.all()):
            best = int(gamma.abs().argmax()) if gamma is not None else 0
            gone[best] = False
        removed[group.conv] = gone
    return removed
