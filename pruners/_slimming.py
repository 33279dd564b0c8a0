"""Network slimming, and its criticality-based regeneration (ALGORITHMS.md sections 2 and 4).

``slimming`` (Liu et al., "Learning Efficient Convolutional Networks through Network Slimming",
ICCV 2017): train with an L1 penalty on the BatchNorm scales (grad += s sign(gamma)), which
drives the scales of unneeded channels towards zero; at the end, prune the fraction p of
channels with the smallest |gamma| (globally by default, as in the paper).

``criticality-structured`` (Chen et al., "Brain-Inspired Efficient Pruning: Exploiting
Criticality in Spiking Neural Networks", arXiv 2311.16141, structured variant): the same
slimming training; at the end prune P = p of the channels by |gamma| plus G = r (C - P C) more,
then regenerate the G pruned channels of highest criticality, so exactly p stays pruned.
Criticality is gathered by hooks on each group's neuron during the last training epoch (the
statistic is reset when the last epoch starts; with a single epoch it spans all of it).
The paper's ablations regenerate by mean |dL/d gamma| over that epoch (``regen=gradient``) or at
random (``regen=random``, seeded). With r = 0 it is exactly slimming.
"""

from __future__ import annotations

from typing import Any

import torch

from ._base import STAT_EVERY
from ._criticality_unstructured import AGGREGATION, CRITICALITY_FN, REGEN_CHOICE, REGEN_SEED
from ._registry import HyperParam, registered
from ._stats import ChannelStat, EffectiveGradient, criticality_stat
from ._structured import (MIN_CHANNELS, ChannelPruner, Scores, add_l1_subgradient, choose_among,
                          regrow_counts, scope_param)

__all__ = ["CriticalityStructuredPruner", "SlimmingPruner"]

L1_GAMMA = HyperParam("l1", "float", 1e-4, 0.0, 1e-2,
                      help="s, the L1 penalty on the BN scales during training (grad += s sign(gamma))")


@registered("slimming", kind="structured", hyperparams=(L1_GAMMA, scope_param("global"), MIN_CHANNELS),
            description="network slimming: L1 on BN scales, prune the smallest |gamma| (Liu et al. 2017)")
class SlimmingPruner(ChannelPruner):
    """Network slimming; see the module docstring."""

    def bn_scales(self) -> list[torch.Tensor]:
        return [self.param(g.bn) for g in self.groups]

    def before_step(self) -> None:
        add_l1_subgradient(self.bn_scales(), self.hp["l1"])

    def magnitude_keep(self, sparsity: float) -> Scores:
        """Keep-masks of the channels of largest |gamma| at ``sparsity``."""
        return self.select(self.gamma_scores(), sparsity)

    @torch.no_grad()
    def finalize(self) -> None:
        self.apply_keep(self.magnitude_keep(self.sparsity))
        self.log(event="prune")


@registered("criticality-structured", kind="structured",
            hyperparams=(L1_GAMMA, scope_param("global"), MIN_CHANNELS,
                         HyperParam("regen_ratio", "float", 0.5, 0.0, 0.95,
                                    help="r: G = r (C - P C) channels are pruned extra, then regenerated"),
                         REGEN_CHOICE, AGGREGATION, CRITICALITY_FN, REGEN_SEED,
                         STAT_EVERY),
            description="network slimming with criticality-based channel regeneration (Chen et al. 2023)")
class CriticalityStructuredPruner(SlimmingPruner):
    """Slimming plus regeneration; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.r = float(self.hp["regen_ratio"])
        self.regen = self.hp["regen"]
        self.crit: ChannelStat | None = None
        self.grads: EffectiveGradient | None = None

    # --- statistics over the last epoch -------------------------------------------------------
    def potential_neurons(self) -> list[str]:
        if self.r > 0 and self.regen == "criticality":
            return [g.neuron for g in self.groups]
        return []

    def on_potential(self, neuron: str, potential: torch.Tensor) -> None:
        if self.crit is not None:
            self.crit(neuron, potential)

    def on_start(self) -> None:
        args = self.neuron_args()
        self.crit = criticality_stat(args["v_threshold"], args["alpha"], self.hp["aggregation"],
                                     self.hp["criticality_fn"])
        if self.r > 0 and self.regen == "gradient":
            self.grads = EffectiveGradient(self.bound_model, [(g.bn, "weight") for g in self.groups])
        # the step where the last epoch begins: statistics start afresh there
        self.last_epoch_start = ((max(1, self.total_steps) - 1) // self.steps_per_epoch) * self.steps_per_epoch

    def on_epoch_end(self, epoch: int) -> None:
        if epoch * self.steps_per_epoch == self.last_epoch_start:
            if self.crit is not None:
                self.crit.reset()
            if self.grads is not None:
                self.grads.reset()

    # --- the one-shot prune and regeneration ---------------------------------------------------
    def regen_scores(self) -> Scores:
        """Per channel: criticality, mean |dL/d gamma| or a seeded random number (0 where no
        statistic was gathered)."""
        out = {}
        generator = torch.Generator().manual_seed(int(self.hp["seed"]))
        for g in self.groups:
            channels = self.param(g.bn).numel()
            device = self.param(g.bn).device
            value = None
            if self.regen == "random":
                value = torch.rand(channels, generator=generator)
            elif self.regen == "gradient" and self.grads is not None:
                value = self.grads.mean(g.bn, "weight")
            elif self.regen == "criticality" and self.crit is not None:
                value = self.crit.mean(g.neuron)
            if value is None or value.numel() != channels:
                value = torch.zeros(channels)
            out[g.conv] = value.reshape(-1).float().to(device)
        return out

    @torch.no_grad()
    def finalize(self) -> None:
        if self.grads is not None:
            self.grads.remove()
        p = self.sparsity
        keep = self.magnitude_keep(min(1.0, p + self.r * (1.0 - p)))
        counts = regrow_counts(keep, p, self.scope)
        wanted = counts if isinstance(counts, int) else sum(counts.values())
        if wanted > 0:
            candidates = {n: ~k for n, k in keep.items()}
            chosen = choose_among(self.regen_scores(), candidates, counts, secondary=self.gamma_scores())
            keep = {n: keep[n] | chosen[n] for n in keep}
        self.apply_keep(keep)
        self.log(event="prune", regenerated=wanted)
