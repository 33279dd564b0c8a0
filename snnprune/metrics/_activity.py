"""Figures measured on data: firing rates, synaptic operations (SOPs) and energy.

SOPs count what an event-driven chip does: every spike entering a layer triggers one
accumulate per non-zero synapse it reaches. We get that number exactly, borders and masks
included, by running the layer once more on the spikes with its non-zero pattern as weights
(conv(spikes, W != 0)) and summing: each term is one spike meeting one synapse. A layer whose
input is not binary (the first conv on pixels, a linear after average pooling) does real
multiply-accumulates instead; those count as MACs, summed over the time steps actually run.
Measurement only: this runs in eval mode on a few batches, never in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprune._modes import eval_mode
from snnprune.engine import model_device, reset_states, resolve_device
from snnprune.errors import UserError
from snnprune.models import is_spiking

from ._static import _effective_nonzero, dead_channels

__all__ = ["ActivityStats", "E_AC_PJ", "E_MAC_PJ", "measure_activity"]

#: 45 nm CMOS energy per operation (Horowitz 2014), as the seeds use.
E_MAC_PJ = 4.6
E_AC_PJ = 0.9


@dataclass
class ActivityStats:
    """Per-sample figures averaged over the measured samples (ops summed over time steps)."""

    samples: int = 0
    firing_rates: dict[str, float] = field(default_factory=dict)
    sops: float = 0.0
    real_macs: float = 0.0
    per_layer_ops: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def energy_pj(self) -> float:
        return E_MAC_PJ * self.real_macs + E_AC_PJ * self.sops

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "firing_rates": self.firing_rates, "sops": self.sops,
                "real_macs": self.real_macs, "energy_uj": self.energy_pj * 1e-6,
                "per_layer_ops": self.per_layer_ops}


def _binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _synapse_hits(module: nn.Module, x: torch.Tensor, nz: torch.Tensor) -> float:
    """Sum over outputs of (input != 0) x (weight != 0): spikes meeting synapses."""
    w = nz.to(dtype=x.dtype, device=x.device)
    if isinstance(module, nn.Conv2d):
        flat = x.reshape(-1, *x.shape[-3:])
        return float(F.conv2d((flat != 0).to(x.dtype), w, None, module.stride, module.padding,
                              module.dilation, module.groups).sum())
    return float(F.linear((x != 0).to(x.dtype), w).sum())


def measure_activity(model: nn.Module, split: Any, *, max_batches: int = 4, batch_size: int = 128,
                     device: str | torch.device | None = "auto") -> ActivityStats:
    """Firing rate of every spiking layer, SOPs and real-valued MACs per sample, on data.

    An empty split or ``max_batches`` < 1 is refused: zero SOPs measured on no sample would read
    as a network that never spikes. The neurons start from their reset state, and the model
    goes back to the device it came from (it runs on ``device`` meanwhile).
    """
    if isinstance(max_batches, bool) or not isinstance(max_batches, int) or max_batches < 1:
        raise UserError(f"max_batches must be an integer >= 1, got {max_batches!r}")
    if len(split) == 0:
        raise UserError("the split is empty: no sample to measure firing rates and SOPs on")
    dev = resolve_device(device)
    home = model_device(model)
    model.to(dev)
    dead = dead_channels(model)
    stats = ActivityStats()
    fired: dict[str, list[float]] = {}
    ops: dict[str, dict[str, float]] = {}
    handles = []
    for name, module in model.named_modules():
        if is_spiking(module):
            def spike_hook(_m: nn.Module, _i: tuple, out: torch.Tensor, name: str = name) -> None:
                acc = fired.setdefault(name, [0.0, 0.0])
                acc[0] += float(out.sum())
                acc[1] += out.numel()
            handles.append(module.register_forward_hook(spike_hook))
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            nz = _effective_nonzero(name, module, dead)

            def op_hook(m: nn.Module, inp: tuple, _out: torch.Tensor, name: str = name,
                        nz: torch.Tensor = nz) -> None:
                x = inp[0]
                entry = ops.setdefault(name, {"sops": 0.0, "macs": 0.0})
                if _binary(x):
                    entry["sops"] += _synapse_hits(m, x, nz)
                else:
                    positions = _out.shape[-1] * _out.shape[-2] if isinstance(m, nn.Conv2d) else 1
                    rows = x.numel() // (x.shape[-3] * x.shape[-2] * x.shape[-1]) if isinstance(
                        m, nn.Conv2d) else x.numel() // x.shape[-1]
                    entry["macs"] += float(rows) * positions * float(nz.sum())
            handles.append(module.register_forward_hook(op_hook))
    try:
        with eval_mode(model), torch.no_grad():
            reset_states(model)  # potentials left by the caller's last forward would skew batch 1
            for i, (x, _y) in enumerate(split.batches(batch_size, shuffle=False, device=dev)):
                if i >= max_batches:
                    break
                model(x)
                reset_states(model)
                stats.samples += x.shape[0]
    finally:
        for h in handles:
            h.remove()
        if home is not None:
            model.to(home)
    n = max(stats.samples, 1)
    stats.firing_rates = {k: v[0] / v[1] for k, v in fired.items() if v[1]}
    stats.per_layer_ops = {k: {"sops": v["sops"] / n, "macs": v["macs"] / n} for k, v in ops.items()}
    stats.sops = sum(v["sops"] for v in stats.per_layer_ops.values())
    stats.real_macs = sum(v["macs"] for v in stats.per_layer_ops.values())
    return stats
