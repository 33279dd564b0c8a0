"""Sparse initial topologies: Erdos-Renyi-kernel layer densities and seeded random masks.

ERK (Mocanu et al. 2018 for the Erdos-Renyi rule, Evci et al. 2020, RigL, for its kernel form)
gives a layer of shape (n_out, n_in, kh, kw) a density proportional to
(n_out + n_in + kh + kw) / (n_out * n_in * kh * kw): small layers (the first conv, the
classifier) stay dense, wide layers get sparse. The PQ-index rewiring of Shen et al. (ICLR 2025)
trains from such an initial mask.

Pure functions: shapes in, densities / counts / masks out; randomness only through the
`torch.Generator` the caller owns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from snnprune.errors import UserError

__all__ = ["erk_counts", "erk_densities", "random_mask"]


def _raw_density(shape: Sequence[int]) -> float:
    """(sum of dims) / (prod of dims): the un-scaled ERK density of one layer."""
    return sum(shape) / math.prod(shape)


def erk_densities(shapes: Mapping[str, Sequence[int]], density: float) -> dict[str, float]:
    """Per-layer ERK densities whose weighted mean is ``density`` (before rounding to counts).

    density_l = min(1, eps * raw_l), raw_l = sum(shape_l) / prod(shape_l), with eps solved so that
    sum_l density_l * n_l = density * N. A layer that would exceed 1 is made dense and eps is
    solved again over the others (RigL's loop), so the budget it cannot take goes to the rest.
    """
    if not 0.0 < float(density) <= 1.0:
        raise UserError(f"ERK density must be in (0, 1], got {density!r}")
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    if not sizes or min(sizes.values()) == 0:
        raise UserError("ERK needs at least one non-empty layer")
    raw = {n: _raw_density(s) for n, s in shapes.items()}
    budget = float(density) * sum(sizes.values())
    dense: set[str] = set()
    while True:
        rest = [n for n in sizes if n not in dense]
        if not rest:
            return {n: 1.0 for n in sizes}
        eps = (budget - sum(sizes[n] for n in dense)) / sum(raw[n] * sizes[n] for n in rest)
        over = [n for n in rest if eps * raw[n] > 1.0]
        if not over:
            return {n: 1.0 if n in dense else eps * raw[n] for n in sizes}
        dense.add(max(over, key=lambda n: raw[n]))


def erk_counts(shapes: Mapping[str, Sequence[int]], density: float) -> dict[str, int]:
    """Active weights per layer under ERK, summing exactly to round(density * N).

    Counts are the floors of `erk_densities` times the layer sizes; the remainder goes one
    weight at a time to the layers with the largest fractional parts (ties: first layer), never
    past a layer's size. Every layer keeps at least one weight (taken from the largest count).
    """
    dens = erk_densities(shapes, density)
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    total = int(round(float(density) * sum(sizes.values())))
    exact = {n: dens[n] * sizes[n] for n in sizes}
    counts = {n: min(sizes[n], int(math.floor(exact[n] + 1e-9))) for n in sizes}
    left = total - sum(counts.values())
    order = sorted(sizes, key=lambda n: -(exact[n] - math.floor(exact[n] + 1e-9)))
    while left != 0:  # left < 0 only when float noise pushed a floor up
        if left > 0:
            movable = [n for n in order if counts[n] < sizes[n]][:left]
        else:
            movable = [n for n in reversed(order) if counts[n] > 1][:-left]
        if not movable:
            break
        for n in movable:
            counts[n] += 1 if left > 0 else -1
        left = total - sum(counts.values())
    for n in sizes:
        if counts[n] == 0 and total >= len(sizes):
            donor = max(counts, key=lambda k: counts[k])
            counts[donor] -= 1
            counts[n] = 1
    return counts


def random_mask(shape: Sequence[int], count: int, generator: torch.Generator, *,
                per_row_min: bool = True) -> torch.Tensor:
    """Bool mask of ``shape`` with exactly ``count`` True entries, chosen uniformly at random.

    With ``per_row_min`` (and count >= rows) every output channel/neuron (first axis) gets one
    entry first, so no neuron starts disconnected; the rest are uniform over the remaining
    entries. Drawn on the CPU from ``generator``, so a seed gives the same mask on any device.
    """
    shape = tuple(int(s) for s in shape)
    numel = math.prod(shape)
    count = max(0, min(int(count), numel))
    scores = torch.rand(numel, generator=generator)
    keep = torch.zeros(numel, dtype=torch.bool)
    rows = shape[0] if shape else 1
    if per_row_min and len(shape) > 1 and rows <= count:
        per_row = scores.view(rows, -1)
        first = per_row.argmax(dim=1) + torch.arange(rows) * per_row.shape[1]
        keep[first] = True
        scores = scores.masked_fill(keep, -1.0)
        count -= rows
    if count > 0:
        keep[torch.topk(scores, count, sorted=False).indices] = True
    return keep.view(shape)
