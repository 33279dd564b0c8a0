"""Choosing what to keep: the top-k selections every pruner shares, as pure functions.

Scores are per unit (a weight, or a channel) and per layer. ``scope="global"`` ranks all units
of all layers together; ``"layer"`` ranks within each layer. Counts are exact (ties broken by
position), and a layer never drops below ``min_keep`` units.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch

__all__ = ["keep_count", "select_top", "select_top_among"]

Scope = Literal["global", "layer"]


def keep_count(total: int, sparsity: float) -> int:
    """Units kept when ``sparsity`` of ``total`` go: round((1 - s) * total)."""
    return int(round((1.0 - float(sparsity)) * total))


def _top_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    flat = scores.reshape(-1)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    k = max(0, min(int(k), flat.numel()))
    if k:
        keep[torch.topk(flat.float(), k, sorted=False).indices] = True
    return keep.view_as(scores)


def select_top(scores: Mapping[str, torch.Tensor], sparsity: float | Mapping[str, float], *,
               scope: Scope = "global", min_keep: int = 1) -> dict[str, torch.Tensor]:
    """Boolean keep-masks of the highest scores: a fraction ``1 - sparsity`` survives.

    With a per-layer ``sparsity`` mapping the scope is per layer whatever ``scope`` says.
    """
    if not scores:
        return {}
    if isinstance(sparsity, Mapping) or scope == "layer":
        ratio = sparsity if isinstance(sparsity, Mapping) else {n: sparsity for n in scores}
        return {n: _top_mask(s, max(min(min_keep, s.numel()), keep_count(s.numel(), ratio[n])))
                for n, s in scores.items()}
    names = list(scores)
    total = sum(scores[n].numel() for n in names)
    budget = keep_count(total, float(sparsity))
    forced = {n: _top_mask(scores[n], min(min_keep, scores[n].numel())) for n in names}
    budget -= sum(int(f.sum()) for f in forced.values())
    # rank the rest globally; forced units are out of the race
    flat = torch.cat([scores[n].reshape(-1).float().masked_fill(forced[n].reshape(-1), -float("inf"))
                      for n in names])
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    if budget > 0:
        chosen[torch.topk(flat, min(budget, flat.numel()), sorted=False).indices] = True
    out, offset = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = (chosen[offset:offset + size].view_as(scores[n]) | forced[n])
        offset += size
    return out


def select_top_among(scores: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` highest-scoring units among ``candidates`` (bool mask of the same shape)."""
    masked = scores.float().masked_fill(~candidates, -float("inf"))
    k = max(0, min(int(k), int(candidates.sum())))
    return _top_mask(masked, k) & candidates
