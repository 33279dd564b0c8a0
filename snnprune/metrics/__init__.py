"""Metrics per layer and in total: weights, sparsity, MACs, firing rates, SOPs, energy."""

from __future__ import annotations

from ._activity import E_AC_PJ, E_MAC_PJ, ActivityStats, measure_activity
from ._static import LayerCount, count_layers, dead_channels, input_shape_of
from ._summary import ModelMetrics, measure

__all__ = [
    "ActivityStats",
    "E_AC_PJ",
    "E_MAC_PJ",
    "LayerCount",
    "ModelMetrics",
    "count_layers",
    "dead_channels",
    "input_shape_of",
    "measure",
    "measure_activity",
]
