"""In-memory splits served in batches straight from one big tensor.

Small image sets fit in memory many times over, and a DataLoader with per-sample Python calls is
the bottleneck for the tiny networks a pruning search trains hundreds of times. So a split is a
pair of tensors; a batch is one `index_select` with a seeded permutation, and augmentation
(random crop with zero padding + horizontal flip) runs on the whole batch at once, on the
batch's device, with one gather per axis and no per-sample loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from snnprune.data._info import DatasetInfo
from snnprune.errors import UserError

if TYPE_CHECKING:
    from snnprune.data._dvs import FrameSplit

__all__ = ["Split", "DataSplits", "augment_batch", "check_batch_size", "count_batches"]


def check_batch_size(batch_size: int) -> None:
    """Reject a batch size that is not a positive int before any work starts."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch size must be a positive integer, got {batch_size!r}")


def count_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """How many batches `n` samples give; shared by every split class so they agree."""
    check_batch_size(batch_size)
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def augment_batch(x: torch.Tensor, *, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding of `pad` pixels) and random horizontal flip of a whole batch.

    Each sample gets its own shift and flip, drawn from `generator` (never the global RNG). The
    crop is two gathers on the padded batch: rows then columns; a flip just reverses the column
    index of that sample (`torch.where` on the index), so it costs nothing extra. The padding is
    zero in normalised units, which is the training-set mean colour.
    """
    b, c, h, w = x.shape
    if b == 0 or pad < 0:
        return x
    dev = x.device
    gdev = generator.device
    shifts = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=gdev).to(dev)
    flips = (torch.rand(b, generator=generator, device=gdev) < 0.5).to(dev)
    padded = F.pad(x, (pad, pad, pad, pad)) if pad > 0 else x
    rows = shifts[0][:, None] + torch.arange(h, device=dev)  # [B, H]
    cols = shifts[1][:, None] + torch.arange(w, device=dev)  # [B, W]
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


class Split:
    """One split held in memory: `x` float32 [N, C, H, W] already normalised, `y` int64 [N].

    It is also a torch Dataset (`len`, indexing, without augmentation), but the fast way to
    train is `batches()`. `augment` turns on crop + flip in `batches()` only; evaluation code
    indexing the split directly always sees the plain images.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        augment: bool = False,
        pad: int = 4,
        seed: int = 0,
    ) -> None:
        if x.dim() != 4:
            raise UserError(f"split images must be [N, C, H, W], got shape {tuple(x.shape)}")
        if y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise UserError(
                f"split labels must be [N] with N={x.shape[0]}, got shape {tuple(y.shape)}"
            )
        self.x = x.to(torch.float32)
        self.y = y.to(torch.int64)
        self.augment = bool(augment)
        self.pad = int(pad)
        # Used when batches() gets no generator: seeded, so a run is reproducible, and it
        # advances across epochs, so each epoch differs.
        self._generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.x.shape[1:])
        return f"Split(n={len(self)}, image={shape}, augment={self.augment})"

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches per epoch, e.g. to size a learning-rate schedule before training."""
        return count_batches(len(self), batch_size, drop_last)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (x, y) batches on `device`; every sample exactly once (bar drop_last).

        The shuffle and the augmentation draw from `generator`, or from the split's own seeded
        generator when none is given. Batches are fresh tensors: changing them in place never
        changes the split.
        """
        check_batch_size(batch_size)
        n = len(self)
        gen = generator if generator is not None else self._generator
        dev = torch.device(device)
        order = torch.randperm(n, generator=gen, device=gen.device).cpu() if shuffle else None
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            if drop_last and stop - start < batch_size:
                break
            if order is None:
                xb, yb = self.x[start:stop], self.y[start:stop]
            else:
                idx = order[start:stop]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if xb.device == dev and order is None:
                xb, yb = xb.clone(), yb.clone()
            xb, yb = xb.to(dev), yb.to(dev)
            if self.augment:
                xb = augment_batch(xb, pad=self.pad, generator=gen)
            yield xb, yb


@dataclass
class DataSplits:
    """The three splits of one data set plus its static facts.

    `mean`/`std` are the per-channel statistics of the training split that the images were
    normalised with (empty for cifar10-dvs, whose event counts are left as they are).
    """

    info: DatasetInfo
    train: Split | FrameSplit
    val: Split | FrameSplit
    test: Split | FrameSplit
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())
