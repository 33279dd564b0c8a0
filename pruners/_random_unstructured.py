"""Random unstructured pruning: the baseline every criterion has to beat (ALGORITHMS.md section 4).

One shot, before fine-tuning: each targeted weight (Conv2d and Linear) survives with no regard
to its value. ``scope="global"`` draws the kept weights uniformly over all targeted weights
(layers end up at about the same density, exactly round((1 - s) N) kept in all);
``scope="layer"`` keeps exactly round((1 - s_l) n_l) in each layer. Seeded, so the same seed
gives the same masks on any device. Pruning happens once, at the start; `finalize` and a
second start leave the masks as they are.
"""

from __future__ import annotations

from typing import Any

import torch

from ._base import SNNPruner
from ._registry import HyperParam, registered
from ._select import select_top

__all__ = ["RandomUnstructuredPruner"]

HYPERPARAMS = (
    HyperParam("scope", "choice", "global", choices=("global", "layer"),
               help="draw over all targeted weights or layer by layer"),
    HyperParam("seed", "int", 0, 0, 2**31 - 1, help="seed of the random masks"),
)


@registered("random-unstructured", kind="unstructured", hyperparams=HYPERPARAMS, training_aware=False,
            description="random weights at the target sparsity, global or per layer (baseline)")
class RandomUnstructuredPruner(SNNPruner):
    """Random unstructured pruning; see the module docstring."""

    per_layer_ratios = True  # each layer keeps its own sparse_ratio

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layers = list(self.targets)
        self.pruned = False

    def on_start(self) -> None:
        self.draw()

    def finalize(self) -> None:
        self.draw()

    @torch.no_grad()
    def draw(self) -> None:
        """Draw the masks once (later calls do nothing) and zero the pruned weights."""
        if self.pruned:
            return
        generator = torch.Generator().manual_seed(int(self.hp["seed"]))
        scores = {n: torch.rand(self.param(n).shape, generator=generator) for n in self.layers}
        ratios = {n: self.targets[n] for n in self.layers}
        same = len(set(ratios.values())) == 1
        sparsity: float | dict[str, float] = self.sparsity if same and self.hp["scope"] == "global" else ratios
        keep = select_top(scores, sparsity, scope=self.hp["scope"], min_keep=1)
        for name, k in keep.items():
            k = k.to(self.param(name).device)
            self.param(name)[~k] = 0
            self.set_mask(name, k)
        self.pruned = True
        kept = sum(int(k.sum()) for k in keep.values())
        self.events.append({"step": self.step, "sparsity": 1.0 - kept / sum(k.numel() for k in keep.values())})
