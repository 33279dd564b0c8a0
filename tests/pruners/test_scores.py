"""Tests for the importance scores and schedules (ALGORITHMS.md sections 1-3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnprune.errors import UserError
from snnprune.pruners._schedule import cosine_decay, gradual_sparsity, pruning_steps
from snnprune.pruners._scores import (
    atan_surrogate_grad,
    atan_surrogate_primitive,
    channel_activity,
    channel_activity_sum,
    criticality_scores,
    criticality_sum,
    pq_index,
    pq_retained_bound,
    pq_rewire_count,
)

PQ_PAIRS = [(0.5, 1.0), (0.1, 2.0), (1.0, 2.0), (0.3, 0.7), (1.5, 1.9)]


def np_pq_index(w: np.ndarray, p: float, q: float) -> float:
    """Independent reference: the formula of ALGORITHMS.md section 3, straight in numpy."""
    a = np.abs(np.asarray(w, dtype=np.float64).ravel())
    d = a.size
    if d == 0 or not a.any():
        return 0.0
    return 1.0 - d ** (1 / q - 1 / p) * (a**p).sum() ** (1 / p) / (a**q).sum() ** (1 / q)


# ---------------------------------------------------------------- surrogate


@pytest.mark.parametrize("alpha", [0.5, 2.0, 4.0])
def test_surrogate_grad_is_autograd_of_primitive(alpha: float) -> None:
    x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    atan_surrogate_primitive(x, alpha).sum().backward()
    assert torch.allclose(x.grad, atan_surrogate_grad(x.detach(), alpha), atol=1e-12)
    assert atan_surrogate_grad(torch.zeros(1), alpha).item() == pytest.approx(alpha / 2)
    assert atan_surrogate_primitive(torch.zeros(1), alpha).item() == pytest.approx(0.5)


def test_surrogate_rejects_bad_alpha() -> None:
    with pytest.raises(UserError):
        atan_surrogate_grad(torch.zeros(1), alpha=0.0)


# ---------------------------------------------------------------- channel activity


def test_channel_activity_crafted() -> None:
    h = torch.zeros(2, 2, 2, 2, 2)  # [T, N, C, H, W]
    h[0, 0, 0] = 1.0  # L1 = 4
    h[1, 0, 0] = -2.0  # L1 = 8
    h[0, 1, 1, 0, 1] = 4.0  # L1 = 4
    # r_k = sum of L1 / (N T) = sum / 4
    assert torch.allclose(channel_activity(h, normalize=False), torch.tensor([3.0, 1.0]))
    assert torch.allclose(channel_activity(h, normalize=True), torch.tensor([0.75, 0.25]))


def test_channel_activity_3d() -> None:
    h = torch.tensor([[[1.0, -2.0], [0.0, 3.0]], [[-1.0, 0.0], [2.0, 1.0]]])  # [T=2, N=2, C=2]
    expected = torch.tensor([(1 + 0 + 1 + 2) / 4, (2 + 3 + 0 + 1) / 4])
    assert torch.allclose(channel_activity(h, normalize=True), expected)
    assert torch.allclose(channel_activity(h, normalize=False), expected)


def test_sum_variants_divided_by_n_equal_means() -> None:
    g = torch.Generator().manual_seed(0)
    for shape in [(3, 5, 4, 6, 6), (3, 5, 4)]:
        h = torch.randn(shape, generator=g) + 1.0
        n = shape[1]
        for norm in (True, False):
            assert torch.allclose(channel_activity_sum(h, norm) / n, channel_activity(h, norm))
        for agg in ("max", "mean"):
            for fn in ("derivative", "primitive"):
                assert torch.allclose(
                    criticality_sum(h, aggregation=agg, fn=fn) / n,
                    criticality_scores(h, aggregation=agg, fn=fn),
                )
        # batches accumulate: sum over two halves / N == mean over the whole batch
        parts = criticality_sum(h[:, :2]) + criticality_sum(h[:, 2:])
        assert torch.allclose(parts / n, criticality_scores(h))


# ---------------------------------------------------------------- criticality


def test_criticality_maximal_at_threshold_and_symmetric() -> None:
    v_th, alpha = 1.0, 3.0
    at = torch.full((2, 3, 4), v_th)
    assert torch.allclose(criticality_scores(at, v_th, alpha), torch.full((4,), alpha / 2))
    x = torch.rand(2, 3, 4, 5, 5) + 0.1
    above = criticality_scores(v_th + x, v_th, alpha)
    below = criticality_scores(v_th - x, v_th, alpha)
    assert torch.allclose(above, below)
    assert (above < alpha / 2).all()


def test_criticality_max_vs_mean_crafted() -> None:
    # alpha = 2: sigma'(x) = 1 / (1 + (pi x)^2); x = 0 -> 1, 1/pi -> 1/2, sqrt(3)/pi -> 1/4
    a, b, c = 0.0, 1 / math.pi, math.sqrt(3) / math.pi
    x = torch.tensor([[[[a, b]], [[c, c]]], [[[b, b]], [[a, c]]]], dtype=torch.float64)
    h = 1.0 + x[None]  # [T=1, N=2, C=2, H=1, W=2]
    mx = criticality_scores(h, aggregation="max")
    mn = criticality_scores(h, aggregation="mean")
    assert torch.allclose(mx, torch.tensor([(1 + 0.5) / 2, (0.25 + 1) / 2], dtype=torch.float64))
    expected_mean = torch.tensor([(0.75 + 0.5) / 2, (0.25 + 0.625) / 2], dtype=torch.float64)
    assert torch.allclose(mn, expected_mean)


def test_criticality_time_mean_before_position_max() -> None:
    # position 0: at threshold at t=0 (1.0), far away at t=1 (~0); position 1: 1/2 at both.
    far = 1e6
    h = 1.0 + torch.tensor([[0.0, 1 / math.pi], [far, 1 / math.pi]], dtype=torch.float64)
    h = h.reshape(2, 1, 1, 1, 2)  # [T=2, N=1, C=1, H=1, W=2]
    sp = 1 / (1 + (math.pi * far) ** 2)
    # spec order: max(mean_t) = max((1 + sp)/2, 1/2); the other order: mean_t(max) = (1 + 1/2)/2
    got = criticality_scores(h, aggregation="max").item()
    assert got == pytest.approx((1 + sp) / 2)
    assert got != pytest.approx(0.75)


def test_criticality_primitive_option() -> None:
    h = torch.tensor([[[1.0, 2.0]]])  # [T=1, N=1, C=2]
    got = criticality_scores(h, fn="primitive")
    assert torch.allclose(got, torch.tensor([0.5, math.atan(math.pi) / math.pi + 0.5]))


def test_potential_errors() -> None:
    with pytest.raises(UserError):
        criticality_scores(torch.zeros(2, 3))
    with pytest.raises(UserError):
        criticality_scores(torch.zeros(2, 3, 4), aggregation="median")  # type: ignore[arg-type]
    with pytest.raises(UserError):
        channel_activity(torch.zeros(2, 0, 4))


# ---------------------------------------------------------------- PQ index


@pytest.mark.parametrize(("p", "q"), PQ_PAIRS)
def test_pq_index_constant_and_one_hot(p: float, q: float) -> None:
    d = 17
    assert pq_index(torch.full((d,), -2.5), p, q).item() == pytest.approx(0.0, abs=1e-12)
    one_hot = torch.zeros(d)
    one_hot[3] = 7.0
    assert pq_index(one_hot, p, q).item() == pytest.approx(1 - d ** (1 / q - 1 / p))


@pytest.mark.parametrize(("p", "q"), PQ_PAIRS)
def test_pq_index_matches_numpy(p: float, q: float) -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        w = rng.standard_normal(rng.integers(1, 200)) * rng.choice([1e-6, 1.0, 1e4])
        got = pq_index(torch.from_numpy(w), p, q).item()
        assert got == pytest.approx(np_pq_index(w, p, q), rel=1e-9, abs=1e-12)


def test_pq_index_edge_cases_are_zero() -> None:
    assert pq_index(torch.zeros(5)).item() == 0.0
    assert pq_index(torch.zeros(0)).item() == 0.0
    w = torch.randn(4, 6)
    assert pq_index(w, mask=torch.zeros(4, 6)).item() == 0.0
    assert not torch.isnan(pq_index(torch.zeros(3, 4), dim=0)).any()


def test_pq_mask_restricts_to_active_entries() -> None:
    g = torch.Generator().manual_seed(2)
    w = torch.randn(6, 5, generator=g)
    mask = torch.rand(6, 5, generator=g) > 0.4
    ref = pq_index(w[mask], 0.5, 1.0)
    other = torch.where(mask, w, torch.randn(6, 5, generator=g) * 100)
    assert pq_index(w, 0.5, 1.0, mask=mask).item() == pytest.approx(ref.item())
    assert pq_index(other, 0.5, 1.0, mask=mask.int()).item() == pytest.approx(ref.item())


def test_pq_neuron_scope_equals_row_calls() -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(8, 3, 3, 3, generator=g)
    mask = torch.rand(8, 3, 3, 3, generator=g) > 0.5
    mask[2] = False  # a neuron with no active input: I = 0, r = 0, c = 0
    idx = pq_index(w, 0.3, 1.2, mask=mask, dim=0)
    assert idx.shape == (8,)
    rows = torch.stack([pq_index(w[k], 0.3, 1.2, mask=mask[k]) for k in range(8)])
    assert torch.allclose(idx, rows)
    r = pq_retained_bound(w, 0.3, 1.2, 0.01, mask=mask, dim=0)
    c = pq_rewire_count(w, 0.3, 1.2, 0.01, 2.0, 0.8, mask=mask, dim=0)
    assert r.dtype == c.dtype == torch.int64
    for k in range(8):
        assert r[k] == pq_retained_bound(w[k], 0.3, 1.2, 0.01, mask=mask[k])
        assert c[k] == pq_rewire_count(w[k], 0.3, 1.2, 0.01, 2.0, 0.8, mask=mask[k])
    assert r[2] == 0 and c[2] == 0
    # dim along another axis equals the transposed call
    assert torch.allclose(pq_index(w, dim=1), pq_index(w.transpose(0, 1), dim=0))


def test_pq_retained_and_rewire_hand_computed() -> None:
    # one-hot, d = 4, p = 1/2, q = 1: I = 1 - 4^(-1) = 0.75; exponent qp/(q-p) = 1
    one_hot = torch.tensor([0.0, 5.0, 0.0, 0.0])
    assert pq_retained_bound(one_hot, 0.5, 1.0, 0.0).item() == 1  # ceil(4 * 0.25)
    assert pq_rewire_count(one_hot, 0.5, 1.0, 0.0, 1.0, 0.9).item() == 3  # floor(4 * 0.75)
    assert pq_rewire_count(one_hot, 0.5, 1.0, 0.0, 1.0, 0.5).item() == 2  # beta caps: 4 * 0.5
    # constant (1 - I = 1), eta = 0: keep everything, rewire nothing
    flat = torch.ones(10)
    assert pq_retained_bound(flat, 0.5, 1.0, 0.0).item() == 10
    assert pq_rewire_count(flat, 0.5, 1.0, 0.0, 3.0, 0.9).item() == 0
    # constant, eta = 1: (1 + 1)^(-q/(q-p)) = 1/4 -> r = ceil(2.5) = 3
    assert pq_retained_bound(flat, 0.5, 1.0, 1.0).item() == 3
    assert pq_rewire_count(flat, 0.5, 1.0, 1.0, 1.0, 0.9).item() == 7  # floor(10 * 0.7)
    assert pq_rewire_count(flat, 0.5, 1.0, 1.0, 2.0, 0.9).item() == 9  # min(1.4, 0.9)
    # w = [3, 1, 0, 0]: ||w||_1/2 = (sqrt3 + 1)^2, ||w||_1 = 4
    w = torch.tensor([3.0, 1.0, 0.0, 0.0])
    i = 1 - 4**-1 * (math.sqrt(3) + 1) ** 2 / 4
    assert pq_index(w).item() == pytest.approx(i)
    r = math.ceil(4 * (1 - i))
    assert pq_retained_bound(w, 0.5, 1.0, 0.0).item() == r == 2
    assert pq_rewire_count(w, 0.5, 1.0, 0.0, 1.0, 0.9).item() == math.floor(4 * (1 - r / 4))


def test_pq_exact_integers_do_not_flip() -> None:
    # 8 * 4^(-1.5) is exactly 1, but p = 1/3 makes the float 1.0000000000000002
    assert pq_retained_bound(torch.ones(8), 1 / 3, 1.0, 3.0).item() == 1


def test_pq_errors() -> None:
    w = torch.randn(5)
    for p, q in [(1.0, 1.0), (2.0, 1.0), (0.0, 1.0), (-0.5, 1.0)]:
        with pytest.raises(UserError):
            pq_index(w, p, q)
    with pytest.raises(UserError):
        pq_retained_bound(w, 0.5, 1.0, -0.1)
    with pytest.raises(UserError):
        pq_rewire_count(w, 0.5, 1.0, 0.0, 0.0, 0.5)
    with pytest.raises(UserError):
        pq_rewire_count(w, 0.5, 1.0, 0.0, 1.0, 1.5)
    with pytest.raises(UserError):
        pq_index(w, mask=torch.ones(4))
    with pytest.raises(UserError):
        pq_index(w, dim=1)


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
pq_pair = st.tuples(st.floats(0.05, 1.9), st.floats(0.05, 1.0)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=40), pq_pair)
def test_pq_index_within_bounds(values: list[float], pq: tuple[float, float]) -> None:
    p, q = pq
    d = len(values)
    i = pq_index(torch.tensor(values, dtype=torch.float64), p, q).item()
    assert 0.0 <= i <= 1 - d ** (1 / q - 1 / p) + 1e-12
    r = pq_retained_bound(torch.tensor(values), p, q, 0.0).item()
    assert 0 <= r <= d


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite, st.booleans()), min_size=1, max_size=40))
def test_pq_mask_invariance(rows: list[tuple[float, float, bool]]) -> None:
    w1 = torch.tensor([r[0] for r in rows], dtype=torch.float64)
    w2 = torch.tensor([r[0] if r[2] else r[1] for r in rows], dtype=torch.float64)
    mask = torch.tensor([r[2] for r in rows])
    i1, i2 = pq_index(w1, mask=mask).item(), pq_index(w2, mask=mask).item()
    assert i1 == pytest.approx(i2, abs=1e-12)
    c1 = pq_rewire_count(w1, 0.5, 1.0, 0.0, 1.0, 0.9, mask=mask).item()
    c2 = pq_rewire_count(w2, 0.5, 1.0, 0.0, 1.0, 0.9, mask=mask).item()
    assert c1 == c2


# ---------------------------------------------------------------- schedules


def test_gradual_sparsity_schedule() -> None:
    s_i, s_f, t0, n, dt = 0.1, 0.9, 100, 10, 20
    assert gradual_sparsity(t0, s_i, s_f, t0, n, dt) == pytest.approx(s_i)
    assert gradual_sparsity(0, s_i, s_f, t0, n, dt) == pytest.approx(s_i)
    assert gradual_sparsity(t0 + n * dt, s_i, s_f, t0, n, dt) == pytest.approx(s_f)
    assert gradual_sparsity(10**6, s_i, s_f, t0, n, dt) == pytest.approx(s_f)
    mid = gradual_sparsity(t0 + n * dt // 2, s_i, s_f, t0, n, dt)
    assert mid == pytest.approx(s_f + (s_i - s_f) * 0.5**3)
    values = [gradual_sparsity(t, s_i, s_f, t0, n, dt) for t in range(0, 400, 7)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert pruning_steps(t0, 3, dt) == [100, 120, 140, 160]


def test_schedule_errors() -> None:
    with pytest.raises(UserError):
        gradual_sparsity(0, 0.0, 1.0, 0, 10, 1)
    with pytest.raises(UserError):
        gradual_sparsity(0, 0.5, 0.4, 0, 10, 1)
    with pytest.raises(UserError):
        gradual_sparsity(0, 0.0, 0.9, 0, 0, 1)
    with pytest.raises(UserError):
        pruning_steps(0, 3, 0)
    with pytest.raises(UserError):
        cosine_decay(0, 10, 0.1, 0.5)


def test_cosine_decay() -> None:
    assert cosine_decay(0, 100, 0.5) == pytest.approx(0.5)
    assert cosine_decay(50, 100, 0.5) == pytest.approx(0.25)
    assert cosine_decay(100, 100, 0.5, 0.1) == pytest.approx(0.1)
    assert cosine_decay(500, 100, 0.5, 0.1) == pytest.approx(0.1)
