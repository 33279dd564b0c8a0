"""The hooks' fast path: H read from the autograd graph, per-channel sums reduced step by step.

Every value is checked against the straightforward formula of ALGORITHMS.md sections 1-2
(H by the LIF/IF equations, then |H| or sigma'(H - V_th) averaged in the stated order).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from spikingjelly.activation_based import functional as sj_functional
from spikingjelly.activation_based import neuron as sj_neuron
from spikingjelly.activation_based import surrogate

from snnprune.models import PotentialRecorder, PotentialSteps, build_model
from snnprune.models._neurons import recompute_potential, saved_potential
from snnprune.pruners import activity_stat, criticality_stat
from snnprune.pruners._stats import activity_sum_steps, criticality_sum_steps


def naive_activity_sum(h: torch.Tensor, normalize: bool) -> torch.Tensor:
    """sum_n 1/T sum_t ||H_k(t)||_1 (/ h*w), in float64, straight from the definition."""
    h = h.double()
    if h.ndim == 3:
        h = h[..., None, None]
    per_map = h.abs().sum(dim=(3, 4))
    if normalize:
        per_map = per_map / (h.shape[3] * h.shape[4])
    return per_map.mean(dim=0).sum(dim=0)


def naive_criticality_sum(h: torch.Tensor, v_th: float, alpha: float, aggregation: str, fn: str) -> torch.Tensor:
    """sum_n agg_positions (1/T sum_t f(H - V_th)), in float64, straight from the definition."""
    x = h.double() - v_th
    if fn == "derivative":
        f = (alpha / 2) / (1 + (math.pi * alpha / 2 * x) ** 2)
    else:
        f = torch.atan(math.pi * alpha / 2 * x) / math.pi + 0.5
    c = f.mean(dim=0)
    if c.ndim == 4:
        c = c.flatten(2)
        c = c.amax(dim=2) if aggregation == "max" else c.mean(dim=2)
    return c.sum(dim=0)


def naive_lif_potential(x: torch.Tensor, tau: float | None, v_th: float = 1.0) -> torch.Tensor:
    """H[t] of a LIF (tau) or IF (tau None) neuron with hard reset to 0, from reset."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau if tau else v + x[t]
        out.append(h)
        v = torch.where(h >= v_th, torch.zeros_like(h), h)
    return torch.stack(out)


@pytest.mark.parametrize("shape", [(4, 6, 5, 7, 3), (3, 8, 9), (1, 2, 3, 1, 1)])
@pytest.mark.parametrize("offset", [0.0, 1.0, -0.5])
def test_step_sums_equal_the_formula_on_random_potentials(shape, offset) -> None:
    g = torch.Generator().manual_seed(sum(shape))
    h = torch.randn(shape, generator=g) * 1.5 + 0.8
    h[0, 0, 0] = 1.0  # exactly at threshold: sigma' at its peak
    steps = tuple((h[t] - offset).contiguous() for t in range(shape[0]))
    before = [s.clone() for s in steps]
    for normalize in (True, False):
        got = activity_sum_steps(steps, offset, normalize)
        assert got.shape == (shape[2],) and got.dtype == torch.float32
        assert torch.allclose(got.double(), naive_activity_sum(h, normalize), rtol=1e-5, atol=1e-5)
    for v_th, alpha in ((1.0, 2.0), (0.5, 4.0)):
        for aggregation in ("max", "mean"):
            for fn in ("derivative", "primitive"):
                got = criticality_sum_steps(steps, offset, v_th, alpha, aggregation, fn)
                want = naive_criticality_sum(h, v_th, alpha, aggregation, fn)
                assert got.shape == (shape[2],)
                assert torch.allclose(got.double(), want, rtol=1e-5, atol=1e-5), (aggregation, fn)
    for s, b in zip(steps, before):  # the steps (autograd's tensors in the hook) are only read
        assert torch.equal(s, b)


def test_channel_stat_accumulates_steps_like_tensors() -> None:
    g = torch.Generator().manual_seed(3)
    batches = [torch.randn(4, n, 5, 6, 6, generator=g) + 1.0 for n in (7, 3)]
    for make in (activity_stat, criticality_stat):
        slow, fast = make(), make()
        for h in batches:
            slow("a", h.clone())
            fast("a", PotentialSteps(tuple(h - 1.0), 1.0))
        assert fast.counts["a"] == slow.counts["a"] == 10
        assert torch.allclose(fast.mean("a"), slow.mean("a"), rtol=1e-5, atol=1e-6)


def test_potential_steps_tensor_is_owned_by_the_caller() -> None:
    h = torch.randn(3, 2, 4)
    steps = PotentialSteps(tuple(h - 1.0), 1.0)
    assert steps.shape == h.shape and steps.samples == 2
    made = steps.tensor()
    assert torch.allclose(made, h, atol=1e-6)
    made.zero_()  # the caller may overwrite it: the steps are untouched
    assert torch.allclose(steps.tensor(), h, atol=1e-6)
    owned = torch.randn(3, 2, 4)
    assert PotentialSteps.owning(owned).tensor() is owned


def _record(net, names, x, *, grad=True):
    """One training forward (and backward) with a recorder feeding both fast stats; the inputs of
    the neurons are captured by pre-hooks for the reference computation."""
    inputs: dict[str, torch.Tensor] = {}
    modules = dict(net.named_modules())
    pres = [modules[n].register_forward_pre_hook(lambda m, a, n=n: inputs.__setitem__(n, a[0].detach().clone()))
            for n in names]
    act, crit = activity_stat(), criticality_stat()

    def feed(name, h):
        act(name, h)
        crit(name, h)

    with PotentialRecorder(net, names, feed, steps=True) as rec:
        with torch.set_grad_enabled(grad):
            out = net(x)
            if grad:
                out.sum().backward()
        sj_functional.reset_net(net)
        modes = dict(rec._from_graph)
    for p in pres:
        p.remove()
    return inputs, act, crit, modes


@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_real_layer_sums_equal_the_formula(neuron) -> None:
    torch.manual_seed(0)
    net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=4, neuron=neuron).train()
    names = [g.neuron for g in net.channel_groups()]
    x = torch.randn(6, 1, 8, 8) * 3
    inputs, act, crit, modes = _record(net, names, x)
    assert all(modes[n] is True for n in names)  # H came from the graph, checked once
    for name in names:
        node = dict(net.named_modules())[name]
        h = naive_lif_potential(inputs[name], getattr(node, "tau", None))
        assert torch.allclose(act.sums[name].double(), naive_activity_sum(h, True), rtol=1e-5, atol=1e-5)
        want = naive_criticality_sum(h, 1.0, 2.0, "max", "derivative")
        assert torch.allclose(crit.sums[name].double(), want, rtol=1e-5, atol=1e-5)
        assert act.counts[name] == crit.counts[name] == 6


def test_second_batch_reads_the_graph_and_matches() -> None:
    """After the first (checked) batch the values come from the graph alone: still the formula."""
    torch.manual_seed(1)
    net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=3).train()
    name = net.channel_groups()[1].neuron
    node = dict(net.named_modules())[name]
    seen: list[PotentialSteps] = []
    xs: list[torch.Tensor] = []
    pre = node.register_forward_pre_hook(lambda m, a: xs.append(a[0].detach().clone()))
    with PotentialRecorder(net, [name], lambda n, h: seen.append(PotentialSteps.owning(h.tensor())),
                           steps=True) as rec:
        for _ in range(2):
            net(torch.randn(4, 1, 8, 8) * 3).sum().backward()
            sj_functional.reset_net(net)
        assert rec._from_graph[name] is True
    pre.remove()
    for x, h in zip(xs, seen):
        assert torch.allclose(h.tensor(), naive_lif_potential(x, node.tau), atol=1e-5)


def test_recording_does_not_change_training() -> None:
    """Reading autograd's saved tensors must leave the backward pass exactly as it was."""
    torch.manual_seed(2)
    base = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=4).train()
    x = torch.randn(5, 1, 8, 8) * 3
    grads = []
    for record in (False, True):
        net = copy.deepcopy(base)
        if record:
            _record(net, [g.neuron for g in net.channel_groups()], x)
            net.zero_grad(set_to_none=True)
        net(x).sum().backward()
        sj_functional.reset_net(net)
        grads.append([p.grad.clone() for p in net.parameters()])
    with_rec = copy.deepcopy(base)
    _, _, _, _ = _record(with_rec, [g.neuron for g in with_rec.channel_groups()], x)
    for a, b, p in zip(grads[0], grads[1], with_rec.parameters()):
        assert torch.equal(a, b)
        assert torch.equal(a, p.grad)  # the recorded pass itself produced the same gradients


def test_without_a_graph_the_potential_is_recomputed() -> None:
    torch.manual_seed(3)
    net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=4).train()
    names = [g.neuron for g in net.channel_groups()]
    inputs, act, crit, modes = _record(net, names, torch.randn(3, 1, 8, 8) * 3, grad=False)
    assert not any(modes.get(n) for n in names)  # nothing to read: recomputed, decided later
    for name in names:
        h = naive_lif_potential(inputs[name], 2.0)
        assert torch.allclose(act.sums[name].double(), naive_activity_sum(h, True), rtol=1e-5, atol=1e-5)
        want = naive_criticality_sum(h, 1.0, 2.0, "max", "derivative")
        assert torch.allclose(crit.sums[name].double(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{"v_reset": None}, {"decay_input": False}, {"v_reset": -0.3}])
def test_saved_and_recomputed_potential_agree_on_other_neurons(kwargs) -> None:
    torch.manual_seed(4)
    node = sj_neuron.LIFNode(tau=2.0, v_threshold=0.7, surrogate_function=surrogate.ATan(),
                             detach_reset=True, step_mode="m", **{"decay_input": True, **kwargs})
    x = (torch.randn(5, 3, 4, 2, 2) * 2).requires_grad_()
    spikes = node(x)
    fast = saved_potential(node, x.detach(), spikes)
    exact = recompute_potential(node, x.detach(), spikes.detach())
    assert fast is not None
    assert torch.allclose(fast.tensor(), exact, atol=1e-5)
    # the reference loop of the neuron's equations, written out once more
    tau, v_th = 2.0, 0.7
    reset = kwargs.get("v_reset", 0.0)
    v = torch.full_like(x[0], 0.0 if reset is None else reset).detach()
    for t in range(x.shape[0]):
        xt = x[t].detach()
        r = 0.0 if reset is None else reset
        h = v + (xt - (v - r)) / tau if kwargs.get("decay_input", True) else v - (v - r) / tau + xt
        assert torch.allclose(exact[t], h, atol=1e-6)
        s = (h >= v_th).float()
        v = h - s * v_th if reset is None else s * r + (1 - s) * h


def test_every_still_records_one_batch_in_k() -> None:
    torch.manual_seed(5)
    net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2).train()
    name = net.channel_groups()[0].neuron
    stat = activity_stat()
    with PotentialRecorder(net, [name], stat, every=3, steps=True):
        for _ in range(7):
            net(torch.randn(2, 1, 8, 8)).sum().backward()
            sj_functional.reset_net(net)
    assert stat.counts[name] == 3 * 2  # batches 0, 3 and 6
