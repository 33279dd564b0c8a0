"""GraNet: gradual magnitude pruning with zero-cost neuroregeneration (Liu et al., NeurIPS 2021).

Two interleaved updates, as in the reference code (VITA-Group/GraNet):
- every ``prune_every`` steps between ``start`` and ``end`` (fractions of training), global
  magnitude pruning to the Zhu & Gupta cubic target s_t (from ``initial_sparsity`` to the
  config's sparse_ratio), which only removes weights;
- every ``rewire_every`` steps, per layer, drop the fraction r_t of its active weights with the
  smallest |W| and regrow as many inactive ones with the largest dense |dL/dW_eff| (averaged
  since the last rewiring), at zero with cleared momentum (one dropped and regrown in the same
  update keeps its value, as in the reference and RigL). r_t decays from ``death_rate`` to 0
  by a cosine over training, so the topology explores early and settles late. Rewiring keeps
  every layer's count, so the final sparsity is exactly the target (global count).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from snnprune.errors import UserError

from ._base import SNNPruner
from ._pq import drop_and_regrow
from ._registry import HyperParam, registered
from ._schedule import cosine_decay, gradual_sparsity
from ._select import select_top
from ._stats import EffectiveGradient

__all__ = ["GraNetPruner"]

HYPERPARAMS = (
    HyperParam("initial_sparsity", "float", 0.0, 0.0, 0.99, help="s_i, sparsity at the first pruning step"),
    HyperParam("start", "float", 0.0, 0.0, 0.9, help="first pruning step, as a fraction of training"),
    HyperParam("end", "float", 0.75, 0.05, 1.0, help="step where the final sparsity is reached (fraction)"),
    HyperParam("prune_every", "int", 100, 1, 100000, help="steps between gradual pruning steps"),
    HyperParam("rewire_every", "int", 100, 1, 100000, help="steps between drop-and-regrow updates"),
    HyperParam("death_rate", "float", 0.5, 0.0, 0.9, help="initial fraction of a layer's active weights rewired"),
)


def _check(hp: dict[str, Any]) -> None:
    if hp["end"] <= hp["start"]:
        raise UserError(f"pruner granet: end ({hp['end']}) must be after start ({hp['start']})")


@registered("granet", kind="unstructured", hyperparams=HYPERPARAMS, check=_check,
            description="gradual magnitude pruning with cosine-decaying drop-and-regrow by |grad| "
                        "(GraNet, Liu et al. 2021)")
class GraNetPruner(SNNPruner):
    """GraNet; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layers = list(self.targets)
        self.grads: EffectiveGradient | None = None
        self.schedule: list[int] = []
        self.done_steps: set[int] = set()
        self.t0, self.n, self.dt = 0, 1, 1
        if self.hp["initial_sparsity"] > self.sparsity:
            raise UserError(f"pruner granet: initial_sparsity ({self.hp['initial_sparsity']}) "
                            f"must not exceed the target sparsity ({self.sparsity})")

    def on_start(self) -> None:
        if self.hp["death_rate"] > 0:
            self.grads = EffectiveGradient(self.bound_model, [(n, "weight") for n in self.layers])
        total = max(1, self.total_steps)
        t0 = int(self.hp["start"] * total)
        t_end = max(t0 + 1, int(self.hp["end"] * total))
        n = max(1, (t_end - t0) // int(self.hp["prune_every"]))
        self.t0, self.n, self.dt = t0, n, max(1, (t_end - t0) // n)
        self.schedule = [t0 + k * self.dt for k in range(n + 1)]
        self.done_steps = set()
        if t0 == 0 and self.hp["initial_sparsity"] > 0:  # step 0 comes before the first after_step
            self.done_steps.add(0)
            self.prune_to(float(self.hp["initial_sparsity"]))

    # --- the schedule ------------------------------------------------------------------------
    def after_step(self) -> None:
        if self.step in self.schedule and self.step not in self.done_steps:
            self.done_steps.add(self.step)
            self.prune_to(gradual_sparsity(self.step, self.hp["initial_sparsity"], self.sparsity,
                                           self.t0, self.n, self.dt))
        if self.step % int(self.hp["rewire_every"]) == 0 and self.step < self.total_steps:
            rate = cosine_decay(self.step, max(1, self.total_steps), float(self.hp["death_rate"]))
            if rate > 0:
                self.rewire(rate)

    def finalize(self) -> None:
        if self.grads is not None:
            self.grads.remove()
            self.grads = None
        if not self.schedule or self.schedule[-1] not in self.done_steps:
            self.prune_to(self.sparsity)

    # --- the two updates ---------------------------------------------------------------------
    @torch.no_grad()
    def prune_to(self, target: float) -> None:
        """Global magnitude pruning of the active weights to ``target`` (never regrows)."""
        target = max(target, 1.0 - self._density())  # the schedule never un-prunes
        # inactive weights rank below every active one, zero-valued (just regrown) ones included
        scores = {n: self.param(n).abs().masked_fill(self.mask(n) == 0, -1.0) for n in self.layers}
        keep = select_top(scores, target, scope="global", min_keep=1)
        for name, k in keep.items():
            k = k & (self.mask(name) != 0)
            self.param(name)[~k] = 0
            self.set_mask(name, k)
        self.events.append({"step": self.step, "kind": "prune", "sparsity": 1.0 - self._density()})

    @torch.no_grad()
    def rewire(self, rate: float) -> None:
        """Per layer: drop ceil(rate * active) smallest |W|, regrow as many by dense |grad|."""
        moved = {}
        for name in self.layers:
            weight, active = self.param(name), self.mask(name) != 0
            d, size = int(active.sum()), active.numel()
            k = min(math.ceil(rate * d), size - d, max(0, d - 1))
            grad = self.grads.mean(name) if self.grads is not None else None
            if k <= 0 or grad is None:
                continue
            count = torch.tensor([k], device=weight.device)
            keep, removed, regrown = drop_and_regrow(weight.abs().reshape(1, -1), active.reshape(1, -1),
                                                     grad.reshape(1, -1), count, count)
            # new connections start at zero with cleared momentum, dropped ones are zeroed; one
            # dropped and regrown in the same update keeps its value and momentum, as in the
            # reference (its masks are applied once, after both) and in RigL
            changed = ((removed & ~regrown) | (regrown & ~active.reshape(1, -1))).view_as(weight)
            weight[changed] = 0
            self.reset_momentum(name, changed)
            self.set_mask(name, keep.view_as(weight))
            moved[name] = k
        if self.grads is not None:
            self.grads.reset()
        self.events.append({"step": self.step, "kind": "rewire", "death_rate": rate, "rewired": moved})

    def _density(self) -> float:
        active = sum(int((self.mask(n) != 0).sum()) for n in self.layers)
        return active / sum(self.mask(n).numel() for n in self.layers)
