"""Plain feed-forward spiking CNNs: the small CPU `cnn` and the CIFAR VGGs of the seeds."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from spikingjelly.activation_based import layer
from torch import nn

from snnprune.errors import UserError

from ._base import ChannelGroup, SpikingNet

__all__ = ["PlainSNN", "CNN_CFG", "VGG11_CFG", "VGG16_CFG"]

Cfg = Sequence[int | str]
# "M" is a 2x2 max pooling. Widths scale with the width multiplier.
CNN_CFG: Cfg = (32, 64, "M", 128, "M")
VGG11_CFG: Cfg = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16_CFG: Cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def scaled(width: int, multiplier: float) -> int:
    """A channel count times the width multiplier, at least 1."""
    return max(1, int(round(width * multiplier)))


class PlainSNN(SpikingNet):
    """conv3x3-BN-neuron blocks per ``cfg``, then flatten and one Linear to the classes."""

    def __init__(self, cfg: Cfg, *, name: str, num_classes: int, in_channels: int, image_size: int,
                 T: int, width: float, neuron_factory: Callable[[], nn.Module]) -> None:
        super().__init__(T)
        pools = sum(1 for c in cfg if c == "M")
        side = image_size
        for _ in range(pools):
            side //= 2
        if side < 1:
            raise UserError(
                f"{name} pools {pools} times and needs image_size >= {2 ** pools}, got {image_size}"
            )
        modules: list[nn.Module] = []
        channels = in_channels
        for c in cfg:
            if c == "M":
                modules.append(layer.MaxPool2d(2, 2, step_mode="m"))
                continue
            out = scaled(int(c), width)
            modules += [
                layer.Conv2d(channels, out, 3, padding=1, bias=False, step_mode="m"),
                layer.BatchNorm2d(out, step_mode="m"),
                neuron_factory(),
            ]
            channels = out
        self.features = nn.Sequential(*modules)
        self._spatial = side * side
        self.classifier = nn.Sequential(
            layer.Flatten(step_mode="m"),
            layer.Linear(channels * self._spatial, num_classes, step_mode="m"),
        )

    def channel_groups(self) -> list[ChannelGroup]:
        """Every conv's output channels; the last one feeds the classifier through the flatten."""
        convs = [i for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d)]
        groups = []
        for k, i in enumerate(convs):
            last = k == len(convs) - 1
            consumer = "classifier.1" if last else f"features.{convs[k + 1]}"
            groups.append(ChannelGroup(
                conv=f"features.{i}", bn=f"features.{i + 1}", neuron=f"features.{i + 2}",
                consumers=(consumer,), spatial=self._spatial if last else 1,
            ))
        return groups
