"""SCA: spiking channel activity pruning with regrowth (ALGORITHMS.md section 1).

Li, Xu, Shen et al., "Towards Efficient Deep Spiking Neural Networks Construction with Spiking
Activity based Pruning", ICML 2024 (arXiv 2406.01072).

- Importance of channel k: r_k = mean over samples and time steps of ||H_k(t)||_1, the L1 norm
  of its membrane-potential map (divided by h*w with ``normalize``), gathered by hooks on each
  group's neuron during the ordinary training passes. ``potential=pre`` scores H before firing;
  ``potential=post`` scores |V| + S, the potential after the hard reset plus the spike, as the
  reference code does: |H| where H < V_th, |v_reset| + 1 where the neuron fired (so a channel
  that fires at every step is the most active, not, as |V| alone would rank it, a silent one).
- Training adds lambda sign(W) to the gradient of every pruned-layer conv weight (L1 penalty).
- Every ``update_every`` epochs, at the epoch's end: keep the top (1 - p - q) of channels by r
  (over all groups, or per layer with ``scope=layer``), then regrow the q fraction (of all
  channels) of the masked channels whose BN scale has the largest mean |dL/d gamma| over the
  batches since the last update (``grad_window=last``: the last batch only, as the reference).
- While training, only the BN scale and shift of a masked channel are masked: its output is then
  exactly zero, but its conv filter stays live so that d L / d gamma_eff = sum dL/dy * x_hat is
  informative for the regrowth. Masked channels keep their raw values (``zero_masked_raw`` is
  off) and resume from them when they regrow; their optimizer momentum is cleared then.
- At the end (``finalize``) one last prune-only step (by the activity since the last update,
  masked channels last) leaves exactly p of the channels pruned, and the conv filters of the
  pruned channels are masked too, so `snnprune.compaction.compact` removes them. When training
  ended before the first update, that step prunes the dense network by activity alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from snnprune.errors import UserError

from ._base import STAT_EVERY
from ._registry import HyperParam, registered
from ._scores import channel_activity_sum
from ._stats import ChannelStat, EffectiveGradient, activity_stat
from ._structured import (MIN_CHANNELS, ChannelPruner, Scores, add_l1_subgradient, choose_among,
                          regrow_counts, scope_param)

__all__ = ["SCAPruner"]


def activity_fn(potential: str, normalize: bool, v_threshold: float, v_reset: float
                ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-batch channel activity sum of the pre-reset H, or of |V| + S after the reset (the
    reference's trace: a neuron that fired contributes |v_reset| + 1, one that did not |H|)."""
    if potential == "pre":
        return lambda h: channel_activity_sum(h, normalize)
    fired = abs(v_reset) + 1.0
    return lambda h: channel_activity_sum(torch.where(h >= v_threshold, torch.full_like(h, fired), h),
                                          normalize)


@registered("sca", kind="structured",
            hyperparams=(
                HyperParam("update_ratio", "float", 0.1, 0.0, 0.5,
                           help="q: share of all channels regrown by |dL/d gamma| at each update"),
                HyperParam("l1", "float", 3e-5, 0.0, 1e-3, help="lambda: L1 penalty on the conv weights"),
                HyperParam("update_every", "int", 1, 1, 1000, help="epochs between mask updates"),
                scope_param("global"),
                HyperParam("potential", "choice", "pre", choices=("pre", "post"),
                           help="membrane potential before firing, or after the reset"),
                HyperParam("normalize", "bool", True, help="divide a channel's L1 norm by its map size"),
                HyperParam("grad_window", "choice", "epoch", choices=("epoch", "last"),
                           help="|dL/d gamma| averaged since the last update, or of the last batch"),
                MIN_CHANNELS, STAT_EVERY),
            description="spiking channel activity pruning with gradient regrowth (Li et al. 2024)")
class SCAPruner(ChannelPruner):
    """SCA; see the module docstring."""

    zero_masked_raw = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.q = float(self.hp["update_ratio"])
        if self.sparsity + self.q >= 1.0:
            raise UserError(f"pruner sca: sparsity p={self.sparsity} plus update_ratio q={self.q} "
                            "must stay below 1")
        self.activity: ChannelStat | None = None
        self.grads: EffectiveGradient | None = None
        self.updates = 0

    # --- statistics ----------------------------------------------------------------------------
    def potential_neurons(self) -> list[str]:
        return [g.neuron for g in self.groups]

    def on_potential(self, neuron: str, potential: torch.Tensor) -> None:
        if self.activity is not None:
            self.activity(neuron, potential)

    def on_start(self) -> None:
        args = self.neuron_args()
        if self.hp["potential"] == "pre":  # reduced step by step from the recorder's H
            self.activity = activity_stat(self.hp["normalize"])
        else:
            self.activity = ChannelStat(activity_fn(self.hp["potential"], self.hp["normalize"],
                                                    args["v_threshold"], args["v_reset"]))
        if self.q > 0:
            self.grads = EffectiveGradient(self.bound_model, [(g.bn, "weight") for g in self.groups])

    def activity_scores(self) -> Scores | None:
        """r per channel since the last update; None when no training pass has been seen."""
        out = {}
        for g in self.groups:
            value = self.activity.mean(g.neuron) if self.activity is not None else None
            if value is None:
                return None
            out[g.conv] = value.reshape(-1).float().to(self.param(g.bn).device)
        return out

    def gradient_scores(self) -> Scores:
        out = {}
        for g in self.groups:
            value = self.grads.mean(g.bn, "weight", self.hp["grad_window"]) if self.grads is not None else None
            out[g.conv] = (value.reshape(-1).float() if value is not None
                           else torch.zeros(self.param(g.bn).numel(), device=self.param(g.bn).device))
        return out

    def reset_stats(self) -> None:
        if self.activity is not None:
            self.activity.reset()
        if self.grads is not None:
            self.grads.reset()

    # --- training ------------------------------------------------------------------------------
    def before_step(self) -> None:
        add_l1_subgradient([self.param(g.conv) for g in self.groups], self.hp["l1"])

    def on_epoch_end(self, epoch: int) -> None:
        if epoch % int(self.hp["update_every"]) == 0:
            self.update()

    def _scores_now(self) -> Scores:
        """Activity, or |gamma| when no pass was recorded; masked channels rank last."""
        scores = self.activity_scores() or self.gamma_scores()
        live = self.live()
        return {n: s.masked_fill(~live[n], -1.0) for n, s in scores.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Prune to p + q by activity, regrow q by |dL/d gamma|, mask BN scale and shift."""
        before = self.live()
        p = self.sparsity
        scores = self.activity_scores() or self.gamma_scores()
        keep = self.select(scores, p + self.q)
        counts = regrow_counts(keep, p, self.scope)
        regrown = counts if isinstance(counts, int) else sum(counts.values())
        if regrown > 0:
            chosen = choose_among(self.gradient_scores(), {n: ~k for n, k in keep.items()}, counts,
                                  secondary=scores)
            keep = {n: keep[n] | chosen[n] for n in keep}
        revived = 0
        for g in self.groups:
            back = keep[g.conv] & ~before[g.conv]
            if back.any():
                revived += int(back.sum())
                self.reset_momentum(g.bn, back, "weight")
                self.reset_momentum(g.bn, back, "bias")
        self.apply_keep(keep, filters=False)
        self.updates += 1
        self.reset_stats()
        self.log(event="update", epoch=self.step // self.steps_per_epoch, regrown=regrown, revived=revived)

    @torch.no_grad()
    def finalize(self) -> None:
        if self.grads is not None:
            self.grads.remove()
        self.apply_keep(self.select(self._scores_now(), self.sparsity), filters=True)
        self.reset_stats()
        self.log(event="final")
