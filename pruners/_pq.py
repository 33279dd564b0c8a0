"""PQ-index guided rewiring: sparse training from scratch (Shen, Xu, Pan, Chen, ICLR 2025).

The network starts sparse with Erdos-Renyi-kernel masks at density ``1 - sparse_ratio``: for
this pruner the config's sparse_ratio is the INITIAL sparsity, not a target. Every
``update_every`` iterations, in each scope (``scope="neuron"``: the incoming weights of one
output channel/neuron; ``"layer"``: the whole layer) the PQ index I of the active weights
(Diao et al., ICLR 2023) gives a rewiring count c (`pq_rewire_count`): the c active weights of
smallest |W| go, and round(regrow_fraction * c) inactive weights come back at zero, chosen by
|momentum|, |dL/dW_eff| or at random. With regrow_fraction < 1 every update shrinks the
network by how compressible it measures, so the final density is an outcome (``has_target``
is false) and is reported in ``events``. Rewiring stops after ``stop_frac`` of training, so
the last steps fine-tune a fixed topology.

Regrowth by momentum: the optimizer's SGD buffer is masked (a pruned weight gets no gradient),
so it is zero exactly where the candidates are. The pruner keeps the dense equivalent instead,
m <- mu * m + dL/dW_eff for every weight (pruned ones too, through the hook of
`EffectiveGradient`), with the optimizer's mu: what the buffer would hold without the mask,
as in Dettmers & Zettlemoyer's sparse momentum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from snnprune.errors import UserError

from ._base import SNNPruner
from ._erk import erk_counts, random_mask
from ._registry import HyperParam, registered
from ._scores import pq_rewire_count
from ._stats import EffectiveGradient

__all__ = ["PQRewiringPruner", "RewireResult", "drop_and_regrow", "pq_rewire"]

Scope = Literal["neuron", "layer"]


@dataclass(frozen=True)
class RewireResult:
    """One layer's rewiring: the new mask, what went and came, and the counts per scope."""

    keep: torch.Tensor            # bool, the weight's shape
    removed: torch.Tensor         # bool, active before and removed
    regrown: torch.Tensor         # bool, inactive after the removal and regrown
    removed_counts: torch.Tensor  # int64 [scopes]
    regrown_counts: torch.Tensor  # int64 [scopes]


def drop_and_regrow(magnitude: torch.Tensor, active: torch.Tensor, score: torch.Tensor,
                    remove: torch.Tensor, regrow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row-wise drop and regrow on [rows, k] tensors; returns (keep, removed, regrown).

    In row i the ``remove[i]`` active entries of smallest ``magnitude`` go (ties: first
    position), then the ``regrow[i]`` entries of largest ``score`` among all inactive entries
    (those just removed included, as in RigL and GraNet) come back. Counts must fit the row.
    """
    cols = torch.arange(active.shape[1], device=active.device)
    order = torch.sort(magnitude.float().masked_fill(~active, math.inf), dim=1, stable=True).indices
    removed = torch.zeros_like(active).scatter_(1, order, cols[None, :] < remove[:, None].to(cols.device))
    removed &= active
    after = active & ~removed
    order = torch.sort(score.float().masked_fill(after, -math.inf), dim=1, descending=True, stable=True).indices
    regrown = torch.zeros_like(active).scatter_(1, order, cols[None, :] < regrow[:, None].to(cols.device))
    regrown &= ~after
    return after | regrown, removed, regrown


def pq_rewire(weight: torch.Tensor, mask: torch.Tensor, score: torch.Tensor, *, p: float, q: float,
              eta: float, gamma: float, beta: float, scope: Scope = "neuron",
              regrow_fraction: float = 0.5, min_density: float = 0.0) -> RewireResult:
    """One PQ rewiring update of one layer (Shen et al. 2025), as a pure function.

    Per scope (rows of the weight seen as [C_out, fan_in] for ``"neuron"``, one row for
    ``"layer"``): c = `pq_rewire_count` of the active weights, then `drop_and_regrow` with
    c removed and round(regrow_fraction * c) regrown by ``score`` (halves round up, so one
    removal in a scope with regrow_fraction 0.5 is regrown). c is lowered only where the
    scope would end below max(1, ceil(min_density * its size)) active weights.
    """
    active = mask.detach() != 0
    rows = weight.shape[0] if scope == "neuron" else 1
    w2, a2 = weight.detach().reshape(rows, -1), active.reshape(rows, -1)
    c = pq_rewire_count(w2, p, q, eta, gamma, beta, mask=a2, dim=0).to(a2.device)
    d = a2.sum(dim=1)
    floor_keep = max(1, math.ceil(min_density * w2.shape[1]))
    room = (d - floor_keep).clamp(min=0)
    if regrow_fraction < 1.0:
        c = torch.minimum(c, torch.floor(room.double() / (1.0 - regrow_fraction)).to(torch.int64))
    g = torch.floor(c.double() * regrow_fraction + 0.5).to(torch.int64)  # round half up
    keep, removed, regrown = drop_and_regrow(w2.abs(), a2, score.detach().reshape(rows, -1), c, g)
    shape = weight.shape
    return RewireResult(keep.view(shape), removed.view(shape), regrown.view(shape), c, g)


class DenseMomentum(EffectiveGradient):
    """m <- mu m + dL/dW_eff for every weight, pruned ones included (see the module docstring)."""

    def __init__(self, model: nn.Module, targets: list[tuple[str, str]], mu: float) -> None:
        super().__init__(model, targets)
        self.mu = float(mu)

    def _add(self, key: tuple[str, str], grad: torch.Tensor) -> None:
        m = self.sums.get(key)
        if m is None:
            self.sums[key] = grad.detach().float().clone()
        else:
            m.mul_(self.mu).add_(grad.detach().float())
        self.counts[key] = 1

    def mean(self, module: str, target: str = "weight", window: str = "epoch") -> torch.Tensor | None:
        m = self.sums.get((module, target))
        return None if m is None else m.abs()


HYPERPARAMS = (
    HyperParam("p", "float", 0.5, 0.1, 0.9, help="PQ index p (Diao et al.); must be < q"),
    HyperParam("q", "float", 1.0, 0.1, 2.0, low_exclusive=True, above="p", help="PQ index q, in (p, 2]"),
    HyperParam("eta", "float", 0.001, 1e-4, 1.0, log=True, help="tolerance of the retained bound (Shen: 0.001)"),
    HyperParam("gamma", "float", 1.0, 0.5, 10.0, log=True, help="how fast the gap to the bound is closed"),
    HyperParam("beta", "float", 0.9, 0.1, 0.95, help="cap on the fraction of a scope rewired at once"),
    HyperParam("regrow_fraction", "float", 0.8, 0.0, 1.0,
               help="regrown / removed per update; < 1 lets density fall"),
    HyperParam("regrow", "choice", "momentum", choices=("momentum", "gradient", "random"),
               help="how regrown weights are chosen"),
    HyperParam("scope", "choice", "neuron", choices=("neuron", "layer"),
               help="PQ index per output neuron/channel or per layer"),
    HyperParam("update_every", "int", 100, 1, 10000, help="iterations between rewiring updates"),
    HyperParam("stop_frac", "float", 0.75, 0.05, 1.0, help="fraction of training after which rewiring stops"),
    HyperParam("min_density", "float", 0.01, 0.0, 0.5,
               help="no scope shrinks below this density (and never below 1 weight)"),
    HyperParam("seed", "int", 0, 0, 2**31 - 1, help="seed of the ERK masks and of random regrowth"),
)


@registered("pq-rewiring", kind="unstructured", hyperparams=HYPERPARAMS,
            description="sparse training from ERK with PQ-index guided rewiring (Shen et al. 2025); "
                        "sparse_ratio is the initial sparsity, the final one is reported",
            has_target=False, from_scratch=True)
class PQRewiringPruner(SNNPruner):
    """PQ-index guided rewiring; see the module docstring. ``sparse_ratio`` = initial sparsity."""

    per_layer_ratios = True  # each layer keeps its own sparse_ratio

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layers = list(self.targets)
        self.generator = torch.Generator().manual_seed(int(self.hp["seed"]))
        self.stats: EffectiveGradient | None = None
        self.initialised = False
        self.stop_step = 0

    # --- start: ERK masks ----------------------------------------------------------------
    def initial_density(self) -> float:
        """1 - the requested sparsity, weighted by layer size when layers differ."""
        sizes = {n: self.param(n).numel() for n in self.layers}
        pruned = sum(self.targets[n] * sizes[n] for n in self.layers)
        return 1.0 - pruned / sum(sizes.values())

    @torch.no_grad()
    def init_masks(self) -> None:
        """ERK masks at the initial density (exact global count); masked weights zeroed."""
        density = self.initial_density()
        if density <= 0.0:
            raise UserError("pruner pq-rewiring: sparse_ratio (the initial sparsity) must be < 1")
        shapes = {n: tuple(self.param(n).shape) for n in self.layers}
        counts = erk_counts(shapes, density)
        for name in self.layers:
            keep = random_mask(shapes[name], counts[name], self.generator).to(self.param(name).device)
            self.param(name)[~keep] = 0
            self.set_mask(name, keep)
        self.initialised = True
        self.events.append({"step": self.step, "density": self.density(), "init": "erk"})

    def on_start(self) -> None:
        if not self.initialised:
            self.init_masks()
        regrow = self.hp["regrow"]
        targets = [(n, "weight") for n in self.layers]
        if regrow == "gradient":
            self.stats = EffectiveGradient(self.bound_model, targets)
        elif regrow == "momentum":
            self.stats = DenseMomentum(self.bound_model, targets, self._momentum_coefficient())
        self.stop_step = int(self.hp["stop_frac"] * self.total_steps)

    def _momentum_coefficient(self) -> float:
        optimizer = getattr(self, "_optimizer", None)
        weight = self.param(self.layers[0])
        for group in getattr(optimizer, "param_groups", []):
            if any(p is weight for p in group["params"]):
                if "momentum" in group:
                    return float(group["momentum"])
                if "betas" in group:
                    return float(group["betas"][0])
        return 0.9

    # --- the schedule ----------------------------------------------------------------------
    def after_step(self) -> None:
        if self.step % int(self.hp["update_every"]) == 0 and self.step <= self.stop_step:
            self.rewire()

    def finalize(self) -> None:
        if self.stats is not None:
            self.stats.remove()
            self.stats = None
        self.events.append({"step": self.step, "density": self.density(), "final": True})

    def density(self) -> float:
        """Fraction of active weights over all targeted layers (the connectivity reported)."""
        active = sum(int((self.mask(n) != 0).sum()) for n in self.layers)
        return active / sum(self.mask(n).numel() for n in self.layers)

    # --- one update --------------------------------------------------------------------------
    def _regrow_score(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        if self.hp["regrow"] == "random":
            return torch.rand(weight.shape, generator=self.generator).to(weight.device)
        score = self.stats.mean(name) if self.stats is not None else None
        return score if score is not None else torch.zeros_like(weight, dtype=torch.float)

    @torch.no_grad()
    def rewire(self) -> dict[str, Any]:
        """One PQ update of every layer; logs and returns the event."""
        hp = self.hp
        layers: dict[str, Any] = {}
        for name in self.layers:
            weight = self.param(name)
            mask = self.mask(name)
            res = pq_rewire(weight, mask, self._regrow_score(name, weight), p=hp["p"], q=hp["q"],
                            eta=hp["eta"], gamma=hp["gamma"], beta=hp["beta"], scope=hp["scope"],
                            regrow_fraction=hp["regrow_fraction"], min_density=hp["min_density"])
            weight[res.removed | res.regrown] = 0
            self.reset_momentum(name, res.removed | res.regrown)
            self.set_mask(name, res.keep)
            layers[name] = {"density": float(res.keep.float().mean()),
                            "removed": int(res.removed_counts.sum()), "regrown": int(res.regrown_counts.sum()),
                            "removed_per_scope": res.removed_counts.tolist(),
                            "regrown_per_scope": res.regrown_counts.tolist()}
        if self.hp["regrow"] == "gradient" and self.stats is not None:
            self.stats.reset()
        event = {"step": self.step, "density": self.density(), "layers": layers}
        self.events.append(event)
        return event
