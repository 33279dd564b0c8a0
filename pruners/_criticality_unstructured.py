"""Criticality-based regeneration, unstructured (Chen et al. 2023), and plain GMP.

Gradual magnitude pruning on Zhu & Gupta's cubic schedule; at each pruning step with target
s_t and regeneration ratio r the weights are first pruned by |W| to s_t + r (1 - s_t), then
G = r (1 - s_t) N of the pruned weights come back, ranked by the criticality of their
post-synaptic channel (ties by |W|), so exactly (1 - s_t) N stay; with ``regen_init=zero`` every
regenerated weight restarts at zero, also one the step's own cut had just removed (the reference
masks the weights before it regrows). The classifier is pruned by
magnitude only. r = 0 is GMP, registered as `gmp`. Regeneration by gradient (|dL/dW_eff|, the
dense gradient) or at random are the paper's ablations (option ``regen``).
"""

from __future__ import annotations

from typing import Any

import torch

from ._base import STAT_EVERY, SNNPruner
from ._graph import post_synaptic_neurons
from ._registry import HyperParam, registered
from ._schedule import gradual_sparsity
from ._select import select_top
from ._stats import EffectiveGradient, criticality_stat

__all__ = ["CriticalityUnstructuredPruner", "GMPPruner"]

SCHEDULE = (
    HyperParam("initial_sparsity", "float", 0.0, 0.0, 0.99, help="s_i, sparsity at the first pruning step"),
    HyperParam("start", "float", 0.0, 0.0, 0.9, help="first pruning step, as a fraction of the pruning phase"),
    HyperParam("end", "float", 0.75, 0.05, 1.0, help="step where the final sparsity is reached (fraction)"),
    HyperParam("prune_steps", "int", 10, 1, 1000, help="n, the number of pruning steps after the first"),
)
#: The regeneration options both criticality pruners share (one definition, one valid range).
REGEN_CHOICE = HyperParam("regen", "choice", "criticality", choices=("criticality", "gradient", "random"),
                          help="how regenerated weights or channels are chosen (the paper's ablation)")
AGGREGATION = HyperParam("aggregation", "choice", "max", choices=("max", "mean"),
                         help="criticality over a channel's map")
CRITICALITY_FN = HyperParam("criticality_fn", "choice", "derivative", choices=("derivative", "primitive"),
                            help="surrogate derivative (paper) or the surrogate itself (reference code)")
REGEN_SEED = HyperParam("seed", "int", 0, 0, 2**31 - 1, help="seed of the random regeneration")
REGEN = (
    HyperParam("regen_ratio", "float", 0.5, 0.0, 0.95, help="r, the share of kept weights that is regenerated"),
    REGEN_CHOICE,
    AGGREGATION,
    CRITICALITY_FN,
    HyperParam("regen_init", "choice", "zero", choices=("zero", "old"), help="value a regenerated weight restarts at"),
    REGEN_SEED,
    STAT_EVERY,
)


def _check_schedule(hp: dict[str, Any]) -> None:
    from snnprune.errors import UserError

    if hp["end"] <= hp["start"]:
        raise UserError(f"end ({hp['end']}) must be after start ({hp['start']})")


@registered("criticality-unstructured", kind="unstructured", hyperparams=SCHEDULE + REGEN,
            description="gradual magnitude pruning with criticality-based regeneration (Chen et al. 2023)",
            check=_check_schedule)
class CriticalityUnstructuredPruner(SNNPruner):
    """Gradual magnitude pruning with regeneration; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.r = float(self.hp.get("regen_ratio", 0.0))
        self.regen = self.hp.get("regen", "criticality")
        self.zero_masked_raw = self.hp.get("regen_init", "zero") == "zero"
        self.layers = list(self.targets)
        output = getattr(self.bound_model, "output_layer", None)
        self.post = post_synaptic_neurons(self.bound_model, self.layers)
        self.magnitude_only = {n for n in self.layers if n == output or self.post[n] is None}
        self.crit = None
        self.grads: EffectiveGradient | None = None
        self.generator = torch.Generator().manual_seed(int(self.hp.get("seed", 0)))
        self.schedule: list[int] = []
        self.done_steps: set[int] = set()

    # --- what to record ---------------------------------------------------------------------
    def potential_neurons(self) -> list[str]:
        if self.r > 0 and self.regen == "criticality":
            return sorted({self.post[n] for n in self.layers if n not in self.magnitude_only})
        return []

    def on_potential(self, neuron: str, potential: torch.Tensor) -> None:
        self.crit(neuron, potential)

    def on_start(self) -> None:
        node_args = {}
        if self.potential_neurons():
            modules = dict(self.bound_model.named_modules())
            node = modules[self.potential_neurons()[0]]
            sur = getattr(node, "surrogate_function", None)
            node_args = dict(v_threshold=float(node.v_threshold), alpha=float(getattr(sur, "alpha", 2.0)))
        self.crit = criticality_stat(aggregation=self.hp.get("aggregation", "max"),
                                     fn=self.hp.get("criticality_fn", "derivative"), **node_args)
        if self.r > 0 and self.regen == "gradient":
            self.grads = EffectiveGradient(self.bound_model, [(n, "weight") for n in self.layers])
        total = max(1, self.total_steps)
        t0 = int(self.hp["start"] * total)
        t_end = max(t0 + 1, int(self.hp["end"] * total))
        n = int(self.hp["prune_steps"])
        self.dt = max(1, (t_end - t0) // n)
        self.t0, self.n = t0, min(n, max(1, (t_end - t0) // self.dt))
        self.schedule = [t0 + k * self.dt for k in range(self.n + 1)]

    # --- the schedule ------------------------------------------------------------------------
    def after_step(self) -> None:
        if self.step in self.schedule and self.step not in self.done_steps:
            self.done_steps.add(self.step)
            target = gradual_sparsity(self.step, self.hp["initial_sparsity"], self.sparsity,
                                      self.t0, self.n, self.dt)
            self.prune_to(target)

    def finalize(self) -> None:
        if self.grads is not None:
            self.grads.remove()
        final = self.schedule[-1] if self.schedule else None
        if final is None or final not in self.done_steps:
            self.prune_to(self.sparsity)

    # --- one pruning step --------------------------------------------------------------------
    @torch.no_grad()
    def prune_to(self, target: float) -> None:
        """Prune by magnitude to s' = s + r (1 - s), then regenerate back to s."""
        weights = {n: (self.param(n) * self.mask(n)).abs() for n in self.layers}
        total = sum(w.numel() for w in weights.values())
        temp = min(target + self.r * (1.0 - target), 1.0)
        cut = select_top(weights, temp, scope="global", min_keep=1)
        keep = cut
        regrow = int(round((1.0 - target) * total)) - sum(int(k.sum()) for k in keep.values())
        regenerated: dict[str, torch.Tensor] = {}
        if regrow > 0:
            keep, back = self._regenerate(cut, weights, regrow)
            regenerated = {n: keep[n] & ~cut[n] for n in keep}
            if back < regrow:
                keep = self._restore_by_magnitude(keep, weights, regrow - back)
        for name, k in keep.items():
            revived = k & (self.mask(name) == 0)
            if self.zero_masked_raw and name in regenerated:
                # every regenerated weight restarts at zero, also one this step's cut had just
                # removed (the reference applies the cut's mask to the weights before regrowing)
                revived = revived | regenerated[name]
            if revived.any():
                if self.zero_masked_raw:
                    self.param(name)[revived] = 0
                self.reset_momentum(name, revived)
            self.set_mask(name, k)
        kept = sum(int(k.sum()) for k in keep.values())
        self.events.append({"step": self.step, "sparsity": 1.0 - kept / max(1, total), "regenerated": max(regrow, 0)})
        if self.crit is not None:
            self.crit.reset()
        if self.grads is not None:
            self.grads.reset()

    def _regenerate(self, keep: dict[str, torch.Tensor], weights: dict[str, torch.Tensor],
                    count: int) -> tuple[dict[str, torch.Tensor], int]:
        """Bring back up to ``count`` pruned weights of the regenerable layers, best score first
        (ties by |W|); returns the keep-masks and how many came back."""
        names = [n for n in self.layers if n not in self.magnitude_only]
        if not names:
            names = list(self.layers)
        primary, secondary, candidates = [], [], []
        for n in names:
            w = weights[n]
            primary.append(self._regen_score(n, w).reshape(-1))
            secondary.append(w.reshape(-1).float())
            candidates.append((~keep[n]).reshape(-1))
        p, s, c = torch.cat(primary), torch.cat(secondary), torch.cat(candidates)
        # lexicographic: by the regeneration score, ties by |W| (two stable sorts)
        order = torch.sort(s, descending=True, stable=True).indices
        order = order[torch.sort(p[order], descending=True, stable=True).indices]
        order = order[c[order]][:count]
        chosen = torch.zeros_like(c)
        chosen[order] = True
        return _revive(keep, names, chosen), int(chosen.sum())

    def _restore_by_magnitude(self, keep: dict[str, torch.Tensor], weights: dict[str, torch.Tensor],
                              count: int) -> dict[str, torch.Tensor]:
        """Give back ``count`` weights of the magnitude-only layers (the classifier), largest |W|
        first: what the over-pruning cut there beyond what regeneration can make up elsewhere.

        Only when the regenerable layers hold fewer pruned weights than the step must regrow, as
        at a small target (at s = 0 the step otherwise left about 1 % of the weights pruned, all
        in the classifier); every other step is exactly the paper's eq. 7, untouched.
        """
        names = [n for n in self.layers if n in self.magnitude_only]
        if not names:
            return keep
        scores = torch.cat([weights[n].reshape(-1).float().masked_fill(keep[n].reshape(-1), -float("inf"))
                            for n in names])
        order = torch.sort(scores, descending=True, stable=True).indices[:count]
        chosen = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
        chosen[order] = True
        return _revive(keep, names, chosen)

    def _regen_score(self, name: str, w: torch.Tensor) -> torch.Tensor:
        if self.regen == "random":
            return torch.rand(w.shape, generator=self.generator).to(w.device)
        if self.regen == "gradient":
            g = self.grads.mean(name) if self.grads is not None else None
            return g.float() if g is not None else torch.zeros_like(w, dtype=torch.float)
        c = self.crit.mean(self.post[name]) if self.crit is not None else None
        if c is None or c.numel() != w.shape[0]:
            return torch.zeros_like(w, dtype=torch.float)
        return c.to(w.device).float().view(-1, *([1] * (w.dim() - 1))).expand_as(w)


@registered("gmp", kind="unstructured", hyperparams=SCHEDULE,
            description="gradual magnitude pruning (Zhu & Gupta 2017), no regeneration",
            check=_check_schedule)
class GMPPruner(CriticalityUnstructuredPruner):
    """GMP: the criticality pruner with r = 0."""


def _revive(keep: dict[str, torch.Tensor], names: list[str], chosen: torch.Tensor) -> dict[str, torch.Tensor]:
    """``keep`` with the weights ``chosen`` marks revived; ``chosen`` runs over ``names``'
    weights laid end to end, in that order."""
    out, offset = dict(keep), 0
    for n in names:
        size = keep[n].numel()
        out[n] = keep[n] | chosen[offset:offset + size].view_as(keep[n])
        offset += size
    return out
