"""Unbiased BatchNorm running statistics for networks trained from scratch.

torch starts every BN layer's running statistics at mean 0, variance 1 and blends each batch in
with momentum m: after t batches they still hold (1 - m)**t of those placeholders. In a spiking
network the pre-activations feeding a LIF layer often have a variance near 0.02, so after one
short epoch (21 batches of digits: 0.9**21 = 0.11 of the placeholder left) the stored variance is
about six times the real one. In eval mode every pre-activation is then divided by a std ~2.5x
too large, the membrane never reaches threshold, the last spiking layer is silent and the network
scores chance (`snnprune train --epochs 1` on digits: test accuracy 0.10 with train accuracy 0.69).

The placeholder's share is known exactly, so it can be removed at no cost, as Adam removes the
bias of its moment estimates: stat = (ema - (1 - m)**t * placeholder) / (1 - (1 - m)**t). That
is done once, after the first epoch, for the layers that had never seen a batch when training
began; layers that already hold statistics (a loaded checkpoint, fine-tuning) are left alone,
and after enough batches (0.9**200 ~ 7e-10) the correction changes nothing.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TRAINING_REVISION", "debias_running_stats", "fresh_batchnorms"]

#: Bumped whenever `fit` changes what a seed trains (weights or statistics), so caches of trained
#: networks keyed on the training budget do not serve a network the current code would not train.
#: 2: BN statistics of layers trained from scratch are debiased after the first epoch.
TRAINING_REVISION = 2


def fresh_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """BN layers that still hold torch's placeholder statistics (no batch seen yet) and blend with
    a fixed momentum (a cumulative average, ``momentum=None``, has no placeholder left)."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
            and m.momentum is not None and m.num_batches_tracked is not None
            and int(m.num_batches_tracked) == 0 and _holds_placeholders(m)]


def _holds_placeholders(bn: nn.modules.batchnorm._BatchNorm) -> bool:
    return bool((bn.running_mean == 0).all()) and bool((bn.running_var == 1).all())


@torch.no_grad()
def debias_running_stats(layers: list[nn.modules.batchnorm._BatchNorm]) -> None:
    """Remove the placeholder's share from each layer's running mean and variance (see above).

    Call it once per layer, on layers `fresh_batchnorms` listed before their first batch; a layer
    that has still seen no batch is left as it is.
    """
    for bn in layers:
        t = int(bn.num_batches_tracked)
        if t == 0:
            continue
        left = (1.0 - float(bn.momentum)) ** t
        if not 0.0 < left < 1.0:  # momentum 1 keeps no placeholder; momentum 0 never updates
            continue
        # mean placeholder is 0, variance placeholder is 1 (torch's reset_running_stats)
        bn.running_mean.div_(1.0 - left)
        bn.running_var.sub_(left).div_(1.0 - left).clamp_(min=0.0)
