"""Spiking neurons for the model zoo, and the pre-reset membrane potential that pruners score.

spikingjelly 2.x runs a multi-step LIF as one operator (CPU and CUDA) and does not hand out
H[t], the potential after charging and before firing/reset, which the SCA and criticality
scores need. It does compute H, and keeps it for the backward pass: `saved_potential` reads it
from the autograd graph of the neuron's output, so recording H during training costs no extra
pass at all (no ``store_v_seq`` trace, no recomputation). Where there is no graph to read,
`recompute_potential` rebuilds H from the neuron's input and output spikes by its equations.
`pre_reset_potential` derives H from a stored post-reset trace V (``store_v_seq``).
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
    "PotentialSteps",
    "SurrogateKind",
    "is_spiking",
    "make_neuron",
    "pre_reset_potential",
    "recompute_potential",
    "saved_potential",
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


class PotentialSteps:
    """The pre-reset potential H [T, N, C, ...] of one batch, step by step: H[t] = steps[t] + offset.

    The recorder builds it from tensors the training pass has already computed (see
    `PotentialRecorder`), so ``steps`` may be the very tensors autograd saved for the backward
    pass: read them, never write to them. `tensor` gives H as one tensor that the caller owns.
    """

    __slots__ = ("_owned", "offset", "steps")

    def __init__(self, steps: tuple[torch.Tensor, ...], offset: float = 0.0) -> None:
        self.steps = tuple(steps)
        self.offset = float(offset)
        self._owned: torch.Tensor | None = None

    @classmethod
    def owning(cls, h: torch.Tensor) -> PotentialSteps:
        """Wrap a fresh H [T, N, ...] that no one else holds; `tensor` hands it out as it is."""
        out = cls(tuple(h.unbind(0)), 0.0)
        out._owned = h
        return out

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.steps), *self.steps[0].shape))

    @property
    def samples(self) -> int:
        return int(self.steps[0].shape[0])

    def tensor(self) -> torch.Tensor:
        """H [T, N, ...] as a tensor the caller may overwrite (made once, then handed over)."""
        if self._owned is not None:
            h, self._owned = self._owned, None
            return h
        first = self.steps[0]
        h = torch.empty((len(self.steps), *first.shape), dtype=torch.promote_types(first.dtype, torch.float32),
                        device=first.device)
        for t, step in enumerate(self.steps):
            torch.add(step, self.offset, out=h[t])
        return h


def recompute_potential(node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """H[t] for every step from the input X and the output spikes S, by the neuron's own equations.

    The sequence must start from the reset state (the engine resets the net before each batch).
    LIF (decay_input): H[t] = V[t-1] + (X[t] - (V[t-1] - v_reset)) / tau; LIF without input decay:
    H[t] = V[t-1] - (V[t-1] - v_reset) / tau + X[t]; IF: H[t] = V[t-1] + X[t]. Hard reset:
    V[t] = S[t] v_reset + (1 - S[t]) H[t]; soft reset (v_reset None): V[t] = H[t] - S[t] V_th.
    Written exactly as spikingjelly computes it, so the values agree to the last bit on CPU.
    Returns a new float tensor [T, N, ...] the caller owns.
    """
    v_reset = getattr(node, "v_reset", 0.0)
    soft = v_reset is None
    reset = 0.0 if soft else float(v_reset)
    v_th = float(node.v_threshold)
    lif = isinstance(node, neuron.LIFNode)
    tau = float(node.tau) if lif else 1.0
    decay_input = bool(getattr(node, "decay_input", True))
    x = x_seq.float()
    s_seq = spikes.float()
    h = torch.empty_like(x)
    v = torch.full_like(x[0], reset)
    for t in range(x.shape[0]):
        if not lif:
            ht = v + x[t]
        elif decay_input:
            ht = v + (x[t] - (v - reset)) / tau
        else:
            ht = v - (v - reset) / tau + x[t]
        h[t] = ht
        s = s_seq[t]
        v = ht - s * v_th if soft else s * reset + (1.0 - s) * ht
    return h


def saved_potential(node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> PotentialSteps | None:
    """H of the batch as the neuron's own forward left it for autograd, or None where it did not.

    spikingjelly's multi-step LIF/IF computes H[t] and keeps it for the backward pass: on CPU
    the operator runs step by step under autograd and each step's surrogate spike function saves
    its argument H[t] - V_th (the spike output is a stack of T surrogate nodes); the fused CUDA
    operator saves H [T, ...] itself as its first saved tensor. Reading those costs nothing.
    None when ``spikes`` has no autograd history (no grad, eval) or the graph has another form;
    `PotentialRecorder` checks the values once per neuron against `recompute_potential`.
    """
    fn = spikes.grad_fn
    if fn is None:
        return None
    steps, step_shape = x_seq.shape[0], x_seq.shape[1:]
    try:
        if fn.name() == "StackBackward0":
            nexts = fn.next_functions
            if len(nexts) != steps:
                return None
            charged = []
            for node_fn, _ in nexts:
                saved = getattr(node_fn, "saved_tensors", None) if node_fn is not None else None
                if not saved or len(saved) != 1 or saved[0].shape != step_shape \
                        or not saved[0].is_floating_point():
                    return None
                charged.append(saved[0].detach())
            return PotentialSteps(tuple(charged), float(node.v_threshold))
        saved = getattr(fn, "saved_tensors", None)
        if saved and saved[0].shape == x_seq.shape and saved[0].is_floating_point():
            return PotentialSteps(tuple(saved[0].detach().unbind(0)), 0.0)
    except RuntimeError:  # saved tensors already freed, or not readable
        return None
    return None


PotentialCallback = Callable[[str, "torch.Tensor | PotentialSteps"], None]


class PotentialRecorder:
    """Hands the pre-reset potential H [T, N, C, ...] of named neurons to a callback.

    Attached by forward hooks to the ordinary training pass: no extra forward, nothing kept
    after the callback returns. H is not recomputed: the neuron's forward has already computed
    it and autograd keeps it for the backward pass (`saved_potential`); the hook reads it there.
    The first recorded batch of each neuron checks those values against the neuron's equations
    (`recompute_potential`); a neuron whose graph does not give H (no autograd history, another
    spikingjelly version) gets H recomputed from its input and output spikes instead.

    The callback receives ``(name, H)`` with H a new tensor it owns and may overwrite; with
    ``steps=True`` it receives a `PotentialSteps` instead (H[t] = steps[t] + offset, read-only,
    no copy at all), which `snnprune.pruners.ChannelStat` reduces step by step.

    ``every=k`` records one training batch in k (the others run at full speed): a running mean
    over a regular subsample of batches, for when the hook's cost matters more than its
    variance. Use as a context manager or call `remove()`.

    >>> with PotentialRecorder(model, ["features.2"], lambda name, h: print(name, h.shape)):
    ...     model(x)
    """

    def __init__(self, model: nn.Module, names: list[str] | None, callback: PotentialCallback,
                 *, training_only: bool = True, every: int = 1, steps: bool = False) -> None:
        if int(every) != every or every < 1:
            raise UserError(f"every must be an integer >= 1, got {every!r}")
        modules = dict(model.named_modules())
        if names is None:
            names = [n for n, m in modules.items() if is_spiking(m)]
        self._handles = []
        self.every, self.training_only, self.steps = int(every), training_only, bool(steps)
        self._forwards, self._active = 0, True
        # per neuron: unset until checked, then True (read H from the graph) or False (recompute)
        self._from_graph: dict[str, bool] = {}
        if self.every > 1:
            # decide per forward pass of the whole model whether this batch is recorded
            self._handles.append(model.register_forward_pre_hook(self._tick))
        for name in names:
            node = modules.get(name)
            if node is None or not is_spiking(node):
                raise UserError(f"{name!r} is not a spiking neuron of this model")
            self._handles.append(node.register_forward_hook(self._hook(name, callback, training_only)))

    def _tick(self, model: nn.Module, _args: tuple) -> None:
        if self.training_only and not model.training:
            return
        self._active = self._forwards % self.every == 0
        self._forwards += 1

    def potential(self, name: str, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor
                  ) -> PotentialSteps:
        """H of this batch for neuron ``name``: read from the graph, or recomputed."""
        from_graph = self._from_graph.get(name)
        if from_graph is not False:
            fast = saved_potential(node, x_seq, spikes)
            if fast is not None and from_graph:
                return fast
            if from_graph is None:  # first look at this neuron: check the graph's values once
                exact = recompute_potential(node, x_seq, spikes)
                if fast is not None:
                    self._from_graph[name] = fast.shape == exact.shape and torch.allclose(
                        fast.tensor(), exact, rtol=1e-5, atol=1e-5 * max(1.0, abs(float(node.v_threshold))))
                elif spikes.grad_fn is not None:  # a graph, but not one we can read
                    self._from_graph[name] = False
                return PotentialSteps.owning(exact)
        return PotentialSteps.owning(recompute_potential(node, x_seq, spikes))

    def _hook(self, name: str, callback: PotentialCallback, training_only: bool):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if (training_only and not module.training) or not self._active:
                return
            x_seq = inputs[0] if inputs else None
            if not isinstance(x_seq, torch.Tensor) or not isinstance(out, torch.Tensor) \
                    or x_seq.dim() < 2 or out.shape != x_seq.shape:
                return
            with torch.no_grad():
                h = self.potential(name, module, x_seq.detach(), out)
                callback(name, h if self.steps else h.tensor())
        return hook

    def remove(self) -> None:
        """Detach the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> PotentialRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
