"""`measure`: every figure a pruner reports, in one record."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from snnprune.engine import check_split
from snnprune.errors import UserError

from ._activity import ActivityStats, measure_activity
from ._static import LayerCount, count_layers

__all__ = ["ModelMetrics", "measure"]


@dataclass
class ModelMetrics:
    """Parameters, sparsity, MACs per time step, and (when data was given) activity figures.

    ``sparsity`` is the fraction of conv/linear weights that are zero or removed, relative to
    ``reference_weights`` (the dense network's count when comparing a compacted model).
    """

    params: int
    weights: int
    nonzero_weights: int
    reference_weights: int
    sparsity: float
    macs: int
    dense_macs: int
    layers: list[LayerCount] = field(default_factory=list)
    activity: ActivityStats | None = None

    @property
    def sops(self) -> float | None:
        return None if self.activity is None else self.activity.sops

    @property
    def energy_uj(self) -> float | None:
        return None if self.activity is None else self.activity.energy_pj * 1e-6

    def to_dict(self, *, layers: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "params": self.params, "weights": self.weights, "nonzero_weights": self.nonzero_weights,
            "sparsity": self.sparsity, "macs": self.macs, "dense_macs": self.dense_macs,
            "sops": self.sops, "energy_uj": self.energy_uj,
        }
        if self.activity is not None:
            out["firing_rates"] = self.activity.firing_rates
            out["real_macs"] = self.activity.real_macs
        if layers:
            out["layers"] = [asdict(layer) for layer in self.layers]
        return out


def _reference(reference_weights: object, weights: int, nonzero: int) -> int:
    """The weight count sparsity is taken against: ``weights`` when None, else a whole number at
    least ``nonzero``. A smaller or fractional one (int(2.5) was 2) gave a sparsity below 0 or
    above 1 without a word, and a string failed inside ``int()``."""
    if reference_weights is None:
        return weights
    if isinstance(reference_weights, bool) or not isinstance(reference_weights, numbers.Integral) \
            or reference_weights < max(nonzero, 1):
        raise UserError(f"reference_weights must be a whole number at least the model's {nonzero} "
                        f"non-zero weights (the dense network's weight count), got {reference_weights!r}")
    return int(reference_weights)


def measure(model: nn.Module, data: Any | None = None, *, input_shape: tuple[int, ...] | None = None,
            reference_weights: int | None = None, max_batches: int = 4, batch_size: int = 128,
            device: str | torch.device | None = "auto") -> ModelMetrics:
    """Static counts always; firing rates, SOPs and energy when ``data`` (a split) is given."""
    if data is not None:
        check_split(model, data, "measure", "data.test")
    layers = count_layers(model, input_shape)
    weights = sum(layer.weights for layer in layers)
    nonzero = sum(layer.nonzero for layer in layers)
    reference = _reference(reference_weights, weights, nonzero)
    activity = None
    if data is not None:
        activity = measure_activity(model, data, max_batches=max_batches, batch_size=batch_size,
                                    device=device)
    return ModelMetrics(
        params=sum(p.numel() for p in model.parameters()), weights=weights, nonzero_weights=nonzero,
        reference_weights=reference, sparsity=1.0 - nonzero / reference if reference else 0.0,
        macs=sum(layer.macs for layer in layers), dense_macs=sum(layer.dense_macs for layer in layers),
        layers=layers, activity=activity,
    )
