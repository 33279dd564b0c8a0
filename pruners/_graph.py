"""Which spiking neuron receives a layer's output: the post-synaptic neurons of a weight.

Criticality regeneration ranks a pruned weight W[c_out, ...] by the criticality of channel
c_out of the neuron layer that its layer drives. We find that layer by watching one forward:
the first spiking layer to run after the conv/linear, with as many channels as its outputs
(this follows BN, residual sums and pooling without knowing the architecture).
"""

from __future__ import annotations

import torch
from torch import nn

from snnprune.models import is_spiking, probe_forward

__all__ = ["post_synaptic_neurons"]


def post_synaptic_neurons(model: nn.Module, layers: list[str],
                          input_shape: tuple[int, ...] | None = None) -> dict[str, str | None]:
    """{layer name: name of the neuron layer it drives, or None (e.g. the output layer)}."""
    order: list[tuple[str, int]] = []
    wanted = set(layers)

    def hook_for(name: str):
        def hook(_mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
            order.append((name, int(out.shape[2] if out.dim() >= 3 else out.shape[-1])))
        return hook

    probe_forward(model, {name: hook_for(name) for name, module in model.named_modules()
                          if name in wanted or is_spiking(module)}, input_shape)
    modules = dict(model.named_modules())
    result: dict[str, str | None] = {name: None for name in layers}
    for i, (name, channels) in enumerate(order):
        if name not in wanted or result[name] is not None:
            continue
        for later, later_channels in order[i + 1:]:
            if is_spiking(modules[later]) and later_channels == channels:
                result[name] = later
                break
    return result
