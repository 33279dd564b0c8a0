"""Spiking neurons for the model zoo, and the pre-reset membrane potential that pruners score.

spikingjelly 2.x runs a multi-step LIF as one fused operator (CPU and CUDA). It does not hand
out H[t], the potential after charging and before firing/reset, which the SCA and criticality
scores need. We do not re-implement the neuron to get it: with ``store_v_seq`` the operator
returns the post-reset trace V[t], and H[t] follows from V[t-1] and the input X[t] by the charge
equation in one vectorised step (`pre_reset_potential`). That keeps the fast operator and costs
one elementwise pass only while a recorder is attached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from spikingjelly.activation_based import neuron, surrogate
from torch import nn

from snnprune.errors import UserError

__all__ = [
    "NEURONS",
    "SURROGATES",
    "NeuronKind",
    "PotentialRecorder",
    "SurrogateKind",
    "is_spiking",
    "make_neuron",
    "pre_reset_potential",
]

NeuronKind = Literal["lif", "if"]
SurrogateKind = Literal["atan", "sigmoid"]
NEURONS: tuple[str, ...] = ("lif", "if")
SURROGATES: tuple[str, ...] = ("atan", "sigmoid")


def _surrogate(name: str, alpha: float) -> surrogate.SurrogateFunctionBase:
    # A new instance per neuron: a shared default instance is a classic research-code bug.
    if name == "atan":
        return surrogate.ATan(alpha=alpha)
    if name == "sigmoid":
        return surrogate.Sigmoid(alpha=alpha)
    raise UserError(f"unknown surrogate {name!r}; choose one of {', '.join(SURROGATES)}")


def make_neuron(
    kind: str = "lif",
    *,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    surrogate_name: str = "atan",
    alpha: float = 2.0,
    detach_reset: bool = True,
) -> nn.Module:
    """A multi-step spikingjelly neuron with hard reset to 0 (the seeds' setting)."""
    sur = _surrogate(surrogate_name, alpha)
    if kind == "lif":
        if tau <= 1.0:
            raise UserError(f"LIF tau must be > 1, got {tau}")
        return neuron.LIFNode(
            tau=float(tau), decay_input=True, v_threshold=v_threshold, v_reset=0.0,
            surrogate_function=sur, detach_reset=detach_reset, step_mode="m",
        )
    if kind == "if":
        return neuron.IFNode(
            v_threshold=v_threshold, v_reset=0.0, surrogate_function=sur,
            detach_reset=detach_reset, step_mode="m",
        )
    raise UserError(f"unknown neuron {kind!r}; choose one of {', '.join(NEURONS)}")


def is_spiking(module: nn.Module) -> bool:
    """True for the spiking neuron layers whose potentials and spikes we measure."""
    return isinstance(module, (neuron.LIFNode, neuron.IFNode))


def pre_reset_potential(node: nn.Module, x_seq: torch.Tensor, v_seq: torch.Tensor) -> torch.Tensor:
    """H[t] for every step, from the input X[t] and the stored post-reset trace V[t].

    The sequence must start from the reset state (the engine resets the net before each batch),
    so V[-1] = v_reset. LIF (decay_input): H = V + (X + v_reset - V) / tau, a `lerp` from V
    towards X + v_reset (one fused pass); IF: H = V + X. Returns a new tensor the caller owns.
    """
    v_reset = float(getattr(node, "v_reset", 0.0) or 0.0)
    h = torch.empty_like(x_seq)
    if isinstance(node, neuron.LIFNode) and node.decay_input:
        weight = 1.0 / node.tau
        target = x_seq if v_reset == 0.0 else x_seq + v_reset
        torch.lerp(v_seq[:-1], target[1:], weight, out=h[1:])
        torch.add(target[0] * weight, v_reset * (1.0 - weight), out=h[0])
        return h
    v_prev = torch.empty_like(v_seq)
    v_prev[0] = v_reset
    v_prev[1:] = v_seq[:-1]
    if isinstance(node, neuron.LIFNode):  # decay_input=False
        return torch.add(v_prev - (v_prev - v_reset) / node.tau, x_seq, out=h)
    return torch.add(v_prev, x_seq, out=h)


PotentialCallback = Callable[[str, torch.Tensor], None]


class PotentialRecorder:
    """Hands the pre-reset potential H [T, N, C, ...] of named neurons to a callback.

    Attached by forward hooks to the ordinary training pass: no extra forward, nothing kept
    after the callback returns. ``every=k`` records one training batch in k (the others run at
    full speed, the neurons not even storing their trace): a running mean over a regular
    subsample of batches, for when the hook's cost matters more than its variance. Use as a
    context manager or call `remove()`.

    >>> with PotentialRecorder(model, ["features.2"], lambda name, h: print(name, h.shape)):
    ...     model(x)
    """

    def __init__(self, model: nn.Module, names: list[str] | None, callback: PotentialCallback,
                 *, training_only: bool = True, every: int = 1) -> None:
        if int(every) != every or every < 1:
            raise UserError(f"every must be an integer >= 1, got {every!r}")
        modules = dict(model.named_modules())
        if names is None:
            names = [n for n, m in modules.items() if is_spiking(m)]
        self._handles = []
        self._saved: list[tuple[nn.Module, bool]] = []
        self.every, self.training_only = int(every), training_only
        self._forwards, self._active = 0, True
        if self.every > 1:
            # decide per forward pass of the whole model whether this batch is recorded
            self._handles.append(model.register_forward_pre_hook(self._tick))
        for name in names:
            node = modules.get(name)
            if node is None or not is_spiking(node):
                raise UserError(f"{name!r} is not a spiking neuron of this model")
            self._saved.append((node, bool(node.store_v_seq)))
            node.store_v_seq = True
            self._handles.append(node.register_forward_hook(self._hook(name, callback, training_only)))

    def _tick(self, model: nn.Module, _args: tuple) -> None:
        if self.training_only and not model.training:
            return
        self._active = self._forwards % self.every == 0
        self._forwards += 1
        for node, _ in self._saved:
            node.store_v_seq = self._active

    def _hook(self, name: str, callback: PotentialCallback, training_only: bool):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            if (training_only and not module.training) or not self._active:
                return
            x_seq = inputs[0]
            if x_seq.dim() < 2 or module.v_seq is None:
                return
            with torch.no_grad():
                callback(name, pre_reset_potential(module, x_seq.detach(), module.v_seq.detach()))
        return hook

    def remove(self) -> None:
        """Detach the hooks and give the neurons back their own `store_v_seq` setting."""
        for handle in self._handles:
            handle.remove()
        for node, store in self._saved:
            node.store_v_seq = store
            if not store:
                node.v_seq = None
        self._handles, self._saved = [], []

    def __enter__(self) -> PotentialRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
