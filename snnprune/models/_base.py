"""What every model of the zoo shares: direct encoding, the mean-over-T readout, and the map of
which channels can be removed.

A model is a `SpikingNet`: ``features`` (an nn.Sequential of multi-step spikingjelly layers whose
first two modules are the input conv and its BN) and ``classifier`` (multi-step, ending in the
output Linear). Static images are encoded directly: the input conv and BN see the same image at
every time step, so they run once and their output is broadcast over T, which saves (T-1)/T of
the first layer's work with identical results and gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ChannelGroup", "SpikingNet"]


@dataclass(frozen=True)
class ChannelGroup:
    """One set of removable output channels and every module that must shrink with them.

    conv: the conv whose output channels are scored and removed; bn: its BatchNorm; neuron: the
    spiking layer after the BN (its potentials score the channels); consumers: modules whose
    input channels are the same channels (a conv, or a Linear after a flatten, where each
    channel spans ``spatial`` consecutive inputs).
    """

    conv: str
    bn: str
    neuron: str
    consumers: tuple[str, ...]
    spatial: int = 1


class SpikingNet(nn.Module):
    """Base class: encoding, multi-step body, mean readout over T."""

    features: nn.Sequential
    classifier: nn.Sequential
    #: Number of leading ``features`` modules that are time-invariant for a static input.
    static_prefix: int = 2

    def __init__(self, T: int) -> None:
        super().__init__()
        self.T = int(T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C, H, W] (a static image, repeated over T) or [N, T, C, H, W] (frames)."""
        if x.dim() == 4:
            h = x.unsqueeze(0)
            for module in self.features[: self.static_prefix]:
                h = module(h)
            h = h.expand(self.T, *h.shape[1:])
            for module in self.features[self.static_prefix:]:
                h = module(h)
        elif x.dim() == 5:
            h = self.features(x.transpose(0, 1).contiguous())
        else:
            raise ValueError(f"expected input [N, C, H, W] or [N, T, C, H, W], got {tuple(x.shape)}")
        return self.classifier(h).mean(0)

    def channel_groups(self) -> list[ChannelGroup]:
        """The removable channel groups, in network order. Subclasses say what is safe to cut."""
        return []

    @property
    def output_layer(self) -> str:
        """Name of the last Linear (pruned by magnitude only in the criticality method)."""
        names = [n for n, m in self.named_modules() if isinstance(m, nn.Linear)]
        return names[-1]
