"""One traced forward of a single dummy sample: how the counters and the graph walks see a net."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from spikingjelly.activation_based import functional as sj_functional
from torch import nn

from snnprune._modes import eval_mode
from snnprune.errors import UserError

__all__ = ["input_shape_of", "probe_forward"]

Hook = Callable[[nn.Module, tuple, torch.Tensor], None]


def input_shape_of(model: nn.Module) -> tuple[int, ...]:
    """[C, H, W] of one static input, from the arguments the model was built with."""
    args = getattr(model, "build_args", None) or {}
    if "in_channels" not in args or "image_size" not in args:
        raise UserError("this model was not made by build_model (it has no build_args): pass input_shape=(C, H, W)")
    return (args["in_channels"], args["image_size"], args["image_size"])


def probe_forward(model: nn.Module, hooks: Mapping[str, Hook], input_shape: tuple[int, ...] | None = None) -> None:
    """Run one eval-mode forward of a zero sample with forward ``hooks`` on the named modules,
    then remove them, reset the neurons and give the model back its train/eval mode."""
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook) for name, hook in hooks.items()]
    shape = tuple(input_shape) if input_shape is not None else input_shape_of(model)
    device = next(model.parameters()).device
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(1, *shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        sj_functional.reset_net(model)
