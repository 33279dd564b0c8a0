"""Which spiking neuron receives a layer's output: the post-synaptic neurons of a weight.

Criticality regeneration ranks a pruned weight W[c_out, ...] by the criticality of channel
c_out of the neuron layer that its layer drives. We find that layer by watching one forward:
the first spiking layer to run after the conv/linear, with as many channels as its outputs
(this follows BN, residual sums and pooling without knowing the architecture).
"""

from __future__ import annotations

import torch
from torch import nn

from snnprune.engine import reset_states
from snnprune.metrics import input_shape_of
from snnprune.models import is_spiking

__all__ = ["post_synaptic_neurons"]


def post_synaptic_neurons(model: nn.Module, layers: list[str],
                          input_shape: tuple[int, ...] | None = None) -> dict[str, str | None]:
    """{layer name: name of the neuron layer it drives, or None (e.g. the output layer)}."""
    order: list[tuple[str, int]] = []
    handles = []
    wanted = set(layers)
    for name, module in model.named_modules():
        if name in wanted or is_spiking(module):
            def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor, name: str = name) -> None:
                channels = out.shape[2] if out.dim() >= 3 else out.shape[-1]
                order.append((name, int(channels)))
            handles.append(module.register_forward_hook(hook))
    shape = tuple(input_shape) if input_shape is not None else input_shape_of(model)
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
