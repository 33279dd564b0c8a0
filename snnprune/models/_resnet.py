"""ResNet-19 with threshold-dependent BN (Zheng et al., AAAI 2021), the seeds' residual SNN.

tdBN normalises over time and batch together (spikingjelly's multi-step BatchNorm2d does that)
and scales the normalised value by alpha * V_th: we initialise the BN weight to V_th, and to
V_th / sqrt(2) for the BN before a residual sum, as the paper does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from spikingjelly.activation_based import layer
from torch import nn

from ._base import ChannelGroup, SpikingNet
from ._cnn_vgg import scaled

__all__ = ["BasicBlock", "ResNet19"]


def _tdbn(channels: int, v_threshold: float, alpha: float = 1.0) -> nn.Module:
    bn = layer.BatchNorm2d(channels, step_mode="m")
    nn.init.constant_(bn.weight, alpha * v_threshold)
    return bn


class BasicBlock(nn.Module):
    """conv-tdBN-neuron-conv-tdBN, plus the shortcut, then the neuron (spikes after the sum)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, v_threshold: float,
                 neuron_factory: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False, step_mode="m")
        self.bn1 = _tdbn(out_ch, v_threshold)
        self.lif1 = neuron_factory()
        self.conv2 = layer.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False, step_mode="m")
        self.bn2 = _tdbn(out_ch, v_threshold, 1 / math.sqrt(2))
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                layer.Conv2d(in_ch, out_ch, 1, stride, bias=False, step_mode="m"),
                _tdbn(out_ch, v_threshold, 1 / math.sqrt(2)),
            )
        self.lif2 = neuron_factory()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.lif1(self.bn1(self.conv1(x)))))
        return self.lif2(out + self.shortcut(x))


class ResNet19(SpikingNet):
    """Stem conv 128, blocks 3x128, 3x256 (stride 2), 2x512 (stride 2), GAP, FC 256 + neuron, FC."""

    STAGES = ((128, 3, 1), (256, 3, 2), (512, 2, 2))

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, T: int,
                 width: float, v_threshold: float, neuron_factory: Callable[[], nn.Module]) -> None:
        super().__init__(T)
        stem = scaled(128, width)
        modules: list[nn.Module] = [
            layer.Conv2d(in_channels, stem, 3, 1, 1, bias=False, step_mode="m"),
            _tdbn(stem, v_threshold),
            neuron_factory(),
        ]
        channels = stem
        for base, blocks, stride in self.STAGES:
            out = scaled(base, width)
            for b in range(blocks):
                modules.append(BasicBlock(channels, out, stride if b == 0 else 1, v_threshold,
                                          neuron_factory))
                channels = out
        self.features = nn.Sequential(*modules)
        hidden = scaled(256, width)
        self.classifier = nn.Sequential(
            layer.AdaptiveAvgPool2d((1, 1), step_mode="m"),
            layer.Flatten(step_mode="m"),
            layer.Linear(channels, hidden, step_mode="m"),
            neuron_factory(),
            layer.Linear(hidden, num_classes, step_mode="m"),
        )

    def channel_groups(self) -> list[ChannelGroup]:
        """The inner channels of each block (conv1 -> conv2). Block outputs are tied together by
        the residual sums across a stage, so they stay: cutting them needs one mask per stage."""
        groups = []
        for i, module in enumerate(self.features):
            if isinstance(module, BasicBlock):
                p = f"features.{i}"
                groups.append(ChannelGroup(f"{p}.conv1", f"{p}.bn1", f"{p}.lif1", (f"{p}.conv2",)))
        return groups
