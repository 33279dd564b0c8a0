"""`build_model`: one factory for every network of the zoo, with its inputs checked."""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator
from functools import partial

import torch
from torch import nn

from snnprune._seeds import check_seed
from snnprune.errors import UserError

from ._base import SpikingNet
from ._cnn_vgg import CNN_CFG, VGG11_CFG, VGG16_CFG, PlainSNN
from ._neurons import NEURONS, SURROGATES, make_neuron
from ._resnet import ResNet19

__all__ = ["MAX_WIDTH", "MODELS", "build_model", "check_width", "count_parameters", "list_models",
           "seeded"]

#: Largest width multiplier `build_model` accepts. At 16, VGG-16's widest convs have 8192
#: channels (~600 M weights each, ~15 GB for the network): already more than any machine this
#: tool targets trains, while every width the spaces, benches and papers use (0.125 to 2) fits.
#: Beyond it a typo such as 1e9 would ask for terabytes or overflow the channel count.
MAX_WIDTH = 16.0

Builder = Callable[..., SpikingNet]

MODELS: dict[str, Builder] = {
    "cnn": partial(PlainSNN, CNN_CFG, name="cnn"),
    "vgg11": partial(PlainSNN, VGG11_CFG, name="vgg11"),
    "vgg16": partial(PlainSNN, VGG16_CFG, name="vgg16"),
    "resnet19": ResNet19,
}


def list_models() -> list[str]:
    """Names `build_model` accepts."""
    return list(MODELS)


def check_width(width: object) -> float:
    """``width`` as a float in (0, MAX_WIDTH], else a one-line `UserError` (a string, NaN or
    inf would otherwise fail as a TypeError or OverflowError while the layers are built)."""
    if isinstance(width, bool) or not isinstance(width, numbers.Real):
        raise UserError(f"width must be a number, got {type(width).__name__} {width!r}")
    if not (math.isfinite(width) and 0 < width <= MAX_WIDTH):
        raise UserError(f"width must be a finite number in (0, {MAX_WIDTH:g}], got {width!r}")
    return float(width)


def _check(name: str, num_classes: int, in_channels: int, image_size: int, T: int,
           width: float, neuron: str, surrogate: str, tau: float, alpha: float, v_threshold: float) -> None:
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if neuron not in NEURONS:
        raise UserError(f"unknown neuron {neuron!r}; choose one of {', '.join(NEURONS)}")
    if surrogate not in SURROGATES:
        raise UserError(f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)}")
    for label, value in (("num_classes", num_classes), ("in_channels", in_channels),
                         ("image_size", image_size), ("T", T)):
        if int(value) != value or value < 1:
            raise UserError(f"{label} must be a positive integer, got {value!r}")
    check_width(width)
    if neuron == "lif" and not tau > 1.0:
        raise UserError(f"tau must be > 1 for a LIF neuron, got {tau!r}")
    if not alpha > 0:
        raise UserError(f"surrogate alpha must be > 0, got {alpha!r}")
    # at a threshold <= 0 a neuron fires on zero input, so a pruned (all-zero) channel still
    # spikes: compaction, MACs and SOPs all take such a channel for dead (compact != masked)
    if isinstance(v_threshold, bool) or not isinstance(v_threshold, numbers.Real) or not 0 < v_threshold < math.inf:
        raise UserError(f"v_threshold must be a number > 0, got {v_threshold!r}")


def build_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    T: int,
    width: float = 1.0,
    neuron: str = "lif",
    tau: float = 2.0,
    v_threshold: float = 1.0,
    surrogate: str = "atan",
    alpha: float = 2.0,
    detach_reset: bool = True,
) -> SpikingNet:
    """A multi-step spiking network, direct-encoded, reading out the mean over T.

    >>> net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=4)
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    _check(name, num_classes, in_channels, image_size, T, width, neuron, surrogate, tau, alpha, v_threshold)
    factory = partial(make_neuron, neuron, tau=tau, v_threshold=v_threshold,
                      surrogate_name=surrogate, alpha=alpha, detach_reset=detach_reset)
    common = dict(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                  T=T, width=width, neuron_factory=factory)
    if name == "resnet19":
        model = ResNet19(v_threshold=v_threshold, **common)
    else:
        model = MODELS[name](**common)
    model.build_args = dict(name=name, width=width, neuron=neuron, tau=tau, v_threshold=v_threshold,
                            surrogate=surrogate, alpha=alpha, detach_reset=detach_reset, **{
                                k: common[k] for k in ("num_classes", "in_channels", "image_size", "T")})
    return model


def count_parameters(model: nn.Module) -> int:
    """All parameters, zero or not."""
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's generator for what runs inside (weight init), then restore the caller's
    state: library code owns its randomness and leaves the global RNG as it found it."""
    seed = check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
