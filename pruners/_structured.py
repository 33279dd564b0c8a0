"""Channel pruning shared by the structured pruners, and the one-shot baselines.

`ChannelPruner` is the base of every structured pruner here (SCA, slimming, criticality-
structured, L1-filter, random): it turns per-channel scores of the model's `ChannelGroup`s into
NNI masks on the conv filters and on the BN scale and shift, so a pruned channel outputs exact
zeros and `snnprune.compaction.compact` can cut it out. The selection helpers are pure functions
over ``{group conv name: tensor [C]}``.

The one-shot baselines of ALGORITHMS.md section 4:

- ``l1-filter`` (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017): prune the
  filters of smallest L1 norm, per layer by default as in the paper; ``scope=global`` ranks the
  norms divided by the filter size (the mean |W|), so layers with wide inputs are not favoured.
- ``random-structured``: channels drawn at random from a seeded generator.

Both prune at the start of training (``on_start``), so the prune phase of a search already
trains the pruned network, and in ``compress()`` without an evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch

from snnprune.errors import UserError
from snnprune.models import ChannelGroup

from ._base import Masks, SNNPruner
from ._registry import HyperParam, registered
from ._select import keep_count, select_top

__all__ = ["ChannelPruner", "L1FilterPruner", "OneShotChannelPruner", "RandomStructuredPruner",
           "add_l1_subgradient", "choose_among", "regrow_counts"]

Scope = Literal["global", "layer"]
Scores = dict[str, torch.Tensor]


def scope_param(default: Scope) -> HyperParam:
    return HyperParam("scope", "choice", default, choices=("global", "layer"),
                      help="rank channels over all layers together, or within each layer")


MIN_CHANNELS = HyperParam("min_channels", "int", 1, 1, 4096, help="channels every layer keeps at least")


def add_l1_subgradient(params: list[torch.Tensor], strength: float) -> None:
    """grad += strength * sign(W): the L1 penalty applied as a subgradient (the SCA and network
    slimming reference codes do it this way, with no extra term in the loss)."""
    if strength == 0:
        return
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.add_(torch.sign(p), alpha=float(strength))


def regrow_counts(keep: Mapping[str, torch.Tensor], sparsity: float, scope: Scope) -> dict[str, int] | int:
    """How many channels must come back so that exactly ``1 - sparsity`` stay: one global count,
    or one per layer (never negative: `min_channels` may already keep more)."""
    if scope == "layer":
        return {n: max(0, keep_count(k.numel(), sparsity) - int(k.sum())) for n, k in keep.items()}
    total = sum(k.numel() for k in keep.values())
    return max(0, keep_count(total, sparsity) - sum(int(k.sum()) for k in keep.values()))


def _ranked(primary: torch.Tensor, secondary: torch.Tensor | None) -> torch.Tensor:
    """Indices by descending primary score, ties by descending secondary (two stable sorts)."""
    order = torch.arange(primary.numel(), device=primary.device)
    if secondary is not None:
        order = torch.sort(secondary.float(), descending=True, stable=True).indices
    return order[torch.sort(primary.float()[order], descending=True, stable=True).indices]


def _choose_flat(primary: torch.Tensor, secondary: torch.Tensor | None, candidates: torch.Tensor,
                 count: int) -> torch.Tensor:
    order = _ranked(primary, secondary)
    order = order[candidates[order]][:max(0, int(count))]
    chosen = torch.zeros_like(candidates)
    chosen[order] = True
    return chosen


def choose_among(primary: Mapping[str, torch.Tensor], candidates: Mapping[str, torch.Tensor],
                 counts: Mapping[str, int] | int, *, secondary: Mapping[str, torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
    """The highest-``primary`` channels among ``candidates`` (ties by ``secondary``): ``counts``
    is one number for a global choice over all layers, or a number per layer."""
    names = list(candidates)
    if not isinstance(counts, Mapping):
        flat = _choose_flat(torch.cat([primary[n].reshape(-1).float() for n in names]),
                            torch.cat([secondary[n].reshape(-1).float() for n in names]) if secondary else None,
                            torch.cat([candidates[n].reshape(-1) for n in names]), counts)
        out, offset = {}, 0
        for n in names:
            size = candidates[n].numel()
            out[n] = flat[offset:offset + size].view_as(candidates[n])
            offset += size
        return out
    return {n: _choose_flat(primary[n].reshape(-1), secondary[n].reshape(-1) if secondary else None,
                            candidates[n].reshape(-1), counts.get(n, 0)).view_as(candidates[n])
            for n in names}


def _reachable(widths: list[int], sparsity: float, scope: Scope, min_keep: int) -> float:
    """Channel sparsity `select_top` reaches over layers of these widths (same rounding)."""
    total = sum(widths)
    if scope == "layer":
        kept = sum(max(min(min_keep, c), keep_count(c, sparsity)) for c in widths)
    else:
        kept = max(keep_count(total, sparsity), sum(min(min_keep, c) for c in widths))
    return 1.0 - kept / max(1, total)


class ChannelPruner(SNNPruner):
    """Base of the structured pruners: scores per channel of each group, masks per channel.

    Dicts of channel tensors are keyed by the group's conv name (as `compact` keys them).
    """

    structured = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.groups:
            raise UserError(f"pruner {self.spec.name}: the config_list selects no removable conv channels")
        self.scope: Scope = self.hp.get("scope", "global")
        self.min_channels = int(self.hp.get("min_channels", 1))
        self.by_conv: dict[str, ChannelGroup] = {g.conv: g for g in self.groups}
        self._note_unreachable_target()

    def reachable_sparsity(self, sparsity: float | None = None) -> float:
        """The channel sparsity `select` can reach for a target (default: this pruner's), given
        that every layer keeps ``min_channels`` (or all its channels, if it has fewer)."""
        target = self.sparsity if sparsity is None else float(sparsity)
        return _reachable(self._widths(), target, self.scope, self.min_channels)

    def _widths(self) -> list[int]:
        return [int(self.param(g.bn).numel()) for g in self.groups]

    def _note_unreachable_target(self) -> None:
        """Say so when ``min_channels`` (1 by default) keeps more channels than the target allows:
        the run still goes on, at the sparsity that can be reached, but not silently."""
        widths = self._widths()
        reached = _reachable(widths, self.sparsity, self.scope, self.min_channels)
        rounded = _reachable(widths, self.sparsity, self.scope, 0)  # rounding alone
        if reached < rounded - 1e-12:
            total = sum(widths)
            floor = round((1.0 - reached) * total)
            self.note(f"{self.spec.name}: min_channels={self.min_channels} keeps at least {floor} of the "
                      f"{total} channels, so channel sparsity {reached:.4g} at most, not {self.sparsity:.4g}")

    def get_masks(self) -> Masks:
        """NNI's masks without the None entries it gives for absent targets (a conv without
        bias), which `snnprune.compaction` would reject as unknown parameters."""
        return {name: {t: m for t, m in targets.items() if m is not None}
                for name, targets in super().get_masks().items()}

    def unwrap_model(self) -> None:
        """As the base, but a second call is a no-op (NNI's own unwrap raises on it)."""
        if self._is_wrapped:
            super().unwrap_model()

    def node(self, group: ChannelGroup) -> torch.nn.Module:
        return self.bound_model.get_submodule(group.neuron)

    def neuron_args(self) -> dict[str, float]:
        """v_threshold, v_reset and the surrogate's alpha of the first group's neuron."""
        node = self.node(self.groups[0])
        sur = getattr(node, "surrogate_function", None)
        return {"v_threshold": float(node.v_threshold), "v_reset": float(getattr(node, "v_reset", 0.0) or 0.0),
                "alpha": float(getattr(sur, "alpha", 2.0))}

    def live(self) -> Scores:
        """Bool [C] per group: the channels not masked now."""
        return {g.conv: self.channel_keep(g) for g in self.groups}

    def gamma_scores(self) -> Scores:
        """|gamma| of each channel's BN scale, as the network computes it (masked)."""
        return {g.conv: (self.param(g.bn) * self.mask(g.bn)).detach().abs().reshape(-1) for g in self.groups}

    def select(self, scores: Scores, sparsity: float) -> Scores:
        """Keep the top ``1 - sparsity`` of channels by score, in this pruner's scope."""
        return select_top(scores, float(sparsity), scope=self.scope, min_keep=self.min_channels)

    def apply_keep(self, keep: Mapping[str, torch.Tensor], *, filters: bool = True) -> None:
        """Mask the dropped channels: BN scale and shift, and (``filters``) the conv filters."""
        for conv, k in keep.items():
            group = self.by_conv[conv]
            if filters:
                self.set_channels(group, k)
            else:
                self.set_mask(group.bn, k.reshape(-1), "weight")
                self.set_mask(group.bn, k.reshape(-1), "bias")

    def channel_sparsity(self) -> float:
        """Fraction of all group channels that are masked now."""
        live = self.live()
        total = sum(k.numel() for k in live.values())
        return 1.0 - sum(int(k.sum()) for k in live.values()) / max(1, total)

    def log(self, **record: Any) -> None:
        self.events.append({"step": self.step, **record, "channel_sparsity": self.channel_sparsity()})


class OneShotChannelPruner(ChannelPruner):
    """Scores once, prunes once: at ``on_start`` (and at ``finalize`` if that never ran)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pruned = False

    def scores(self) -> Scores:
        raise NotImplementedError

    @torch.no_grad()
    def prune_once(self) -> None:
        self.apply_keep(self.select(self.scores(), self.sparsity))
        self.pruned = True
        self.log(event="prune")

    def on_start(self) -> None:
        self.prune_once()

    def finalize(self) -> None:
        if not self.pruned:
            self.prune_once()


@registered("l1-filter", kind="structured", hyperparams=(scope_param("layer"), MIN_CHANNELS),
            description="one-shot pruning of the filters of smallest L1 norm (Li et al. 2017)",
            training_aware=False)
class L1FilterPruner(OneShotChannelPruner):
    """Li et al. 2017: a filter's importance is sum |W| over its input channels and kernel.

    The norm is divided by the filter size, which changes nothing within a layer (the paper's
    per-layer ranking) and makes a global ranking fair across layers of different fan-in.
    """

    def scores(self) -> Scores:
        out = {}
        for g in self.groups:
            w = (self.param(g.conv) * self.mask(g.conv)).detach()
            out[g.conv] = w.abs().reshape(w.shape[0], -1).mean(dim=1)
        return out


@registered("random-structured", kind="structured",
            hyperparams=(scope_param("layer"), MIN_CHANNELS,
                         HyperParam("seed", "int", 0, 0, 2**31 - 1, help="seed of the random choice")),
            description="one-shot pruning of random channels (baseline)", training_aware=False)
class RandomStructuredPruner(OneShotChannelPruner):
    """Random channels, from a generator seeded by ``seed`` (never the global RNG). Per-layer by
    default, so every layer loses the same share, like the other per-layer baselines."""

    def scores(self) -> Scores:
        generator = torch.Generator().manual_seed(int(self.hp["seed"]))
        return {g.conv: torch.rand(self.param(g.conv).shape[0], generator=generator)
                .to(self.param(g.conv).device) for g in self.groups}
