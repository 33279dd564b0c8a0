"""Tests for the dynamic-topology pruners: PQ rewiring, GraNet, random (ALGORITHMS.md 3 and 4)."""

from __future__ import annotations

import math

import pytest
import torch

import snnprune
from snnprune.engine import Callback
from snnprune.errors import UserError
from snnprune.pruners._base import default_config_list
from snnprune.pruners._erk import erk_counts, erk_densities, random_mask
from snnprune.pruners._granet import GraNetPruner
from snnprune.pruners._pq import PQRewiringPruner, drop_and_regrow, pq_rewire
from snnprune.pruners._random_unstructured import RandomUnstructuredPruner
from snnprune.pruners._registry import get_pruner
from snnprune.pruners._scores import pq_rewire_count

PQ = dict(p=0.5, q=1.0, eta=0.001, gamma=1.0, beta=0.9)


def masks_sparsity(masks: dict) -> float:
    total = sum(m["weight"].numel() for m in masks.values())
    return 1.0 - sum(int((m["weight"] != 0).sum()) for m in masks.values()) / total


def crafted_weight(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[6, 20] weights with rows of different spread, and a mask with about 60 % active."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 20, generator=g) * torch.linspace(0.2, 3.0, 20) ** torch.arange(6.0)[:, None] / 3
    mask = torch.rand(6, 20, generator=g) < 0.6
    return w, mask


# --- ERK and random masks --------------------------------------------------------------------
def test_erk_exact_count_and_caps():
    shapes = {"conv1": (16, 1, 3, 3), "conv2": (32, 16, 3, 3), "conv3": (64, 32, 3, 3), "fc": (10, 256)}
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    for density in (0.05, 0.3, 0.5, 0.9):
        dens = erk_densities(shapes, density)
        counts = erk_counts(shapes, density)
        assert sum(counts.values()) == round(density * sum(sizes.values()))
        assert all(1 <= counts[n] <= sizes[n] for n in shapes)
        assert all(0 < d <= 1.0 for d in dens.values())
        capped = [n for n in shapes if dens[n] == 1.0]
        free = [n for n in shapes if dens[n] < 1.0]
        # below the cap, density is proportional to (sum of dims) / (prod of dims)
        ratios = [dens[n] * sizes[n] / sum(shapes[n]) for n in free]
        assert max(ratios) == pytest.approx(min(ratios))
        if density == 0.5:
            assert "conv1" in capped and counts["conv1"] == sizes["conv1"]
    assert erk_counts(shapes, 1.0) == sizes
    g = torch.Generator().manual_seed(0)
    for _ in range(200):  # exact for arbitrary shapes and densities
        many = {f"l{i}": tuple(int(v) for v in torch.randint(1, 40, (int(torch.randint(2, 5, (1,), generator=g)),),
                                                             generator=g)) for i in range(5)}
        density = float(torch.rand(1, generator=g)) * 0.98 + 0.02
        total = sum(math.prod(s) for s in many.values())
        assert sum(erk_counts(many, density).values()) == round(density * total)
    with pytest.raises(UserError):
        erk_densities(shapes, 0.0)


def test_random_mask_exact_and_every_row_connected():
    g = torch.Generator().manual_seed(3)
    m = random_mask((40, 8, 3, 3), 50, g)
    assert int(m.sum()) == 50 and m.flatten(1).any(dim=1).all()
    assert int(random_mask((5, 7), 3, g).sum()) == 3


# --- the PQ update as a pure function ---------------------------------------------------------
def test_pq_neuron_scope_equals_layer_scope_row_by_row():
    w, mask = crafted_weight()
    score = torch.rand(w.shape, generator=torch.Generator().manual_seed(1))
    neuron = pq_rewire(w, mask, score, scope="neuron", regrow_fraction=0.5, **PQ)
    assert torch.equal(neuron.removed_counts, pq_rewire_count(w, mask=mask, dim=0, **PQ))
    for i in range(w.shape[0]):
        row = pq_rewire(w[i:i + 1], mask[i:i + 1], score[i:i + 1], scope="layer", regrow_fraction=0.5, **PQ)
        assert int(row.removed_counts[0]) == int(neuron.removed_counts[i])
        assert torch.equal(row.keep[0], neuron.keep[i])
    assert int(neuron.removed_counts.sum()) > 0


@pytest.mark.parametrize("scope", ["neuron", "layer"])
@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.8, 1.0])
def test_pq_update_removes_c_smallest_and_regrows_round_fraction(scope, fraction):
    w, mask = crafted_weight(2)
    score = torch.rand(w.shape, generator=torch.Generator().manual_seed(5))
    res = pq_rewire(w, mask, score, scope=scope, regrow_fraction=fraction, **PQ)
    rows = w.shape[0] if scope == "neuron" else 1
    c = pq_rewire_count(w.reshape(rows, -1), mask=mask.reshape(rows, -1), dim=0, **PQ)
    assert torch.equal(res.removed_counts, c)
    assert torch.equal(res.regrown_counts, torch.floor(c * fraction + 0.5).long())
    removed, regrown = res.removed.reshape(rows, -1), res.regrown.reshape(rows, -1)
    active, after = mask.reshape(rows, -1), (mask & ~res.removed).reshape(rows, -1)
    assert torch.equal(removed.sum(1), c) and torch.equal(regrown.sum(1), res.regrown_counts)
    assert not (removed & ~active).any() and not (regrown & after).any()
    assert torch.equal(res.keep, (mask & ~res.removed) | res.regrown)
    mag, sc = w.abs().reshape(rows, -1), score.reshape(rows, -1)
    for i in range(rows):
        if c[i] > 0:  # the removed are the smallest active, the regrown the best-scored candidates
            assert mag[i][removed[i]].max() <= mag[i][active[i] & ~removed[i]].min()
        if res.regrown_counts[i] > 0 and (~after[i] & ~regrown[i]).any():
            assert sc[i][regrown[i]].min() >= sc[i][~after[i] & ~regrown[i]].max()


def test_drop_and_regrow_rows():
    mag = torch.tensor([[3.0, 1.0, 2.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    active = torch.tensor([[True, True, True, False], [True, True, False, False]])
    score = torch.tensor([[0.0, 0.0, 0.0, 9.0], [0.0, 0.0, 1.0, 5.0]])
    keep, removed, regrown = drop_and_regrow(mag, active, score, torch.tensor([1, 2]), torch.tensor([1, 1]))
    assert removed.tolist() == [[False, True, False, False], [True, True, False, False]]
    assert regrown.tolist() == [[False, False, False, True], [False, False, False, True]]
    assert keep.sum(1).tolist() == [3, 1]


# --- the PQ pruner -----------------------------------------------------------------------------
def test_pq_rejects_p_not_below_q(tiny_cnn):
    with pytest.raises(UserError, match="p must be < q"):
        PQRewiringPruner(tiny_cnn(), default_config_list(0.5, structured=False), p=0.9, q=0.9)
    spec = get_pruner("pq-rewiring")
    assert spec.from_scratch and not spec.has_target


def _started_pq(model, **hp) -> PQRewiringPruner:
    pruner = PQRewiringPruner(model, default_config_list(0.5, structured=False), regrow="random", **hp)
    pruner.start(total_steps=100, steps_per_epoch=10)
    return pruner


def test_pq_erk_start_and_density_over_updates(tiny_cnn):
    model = tiny_cnn()
    falling = _started_pq(model, regrow_fraction=0.5)
    assert falling.density() == pytest.approx(0.5, abs=1e-9)  # exact global count
    masks = falling.get_masks()
    assert all((falling.param(n)[masks[n]["weight"] == 0] == 0).all() for n in masks)
    densities = [falling.rewire()["density"] for _ in range(4)]
    assert all(b < a for a, b in zip([0.5] + densities, densities))
    steady = _started_pq(tiny_cnn(), regrow_fraction=1.0)
    events = [steady.rewire() for _ in range(3)]
    assert all(e["density"] == pytest.approx(0.5, abs=1e-9) for e in events)
    assert sum(v["removed"] for v in events[0]["layers"].values()) > 0
    layer = events[0]["layers"]["features.3"]
    assert layer["removed"] == sum(layer["removed_per_scope"])
    assert len(layer["removed_per_scope"]) == steady.param("features.3").shape[0]


def test_pq_seeded_masks_are_deterministic(tiny_cnn):
    def run(seed: int):
        p = _started_pq(tiny_cnn(), seed=seed)
        p.rewire()
        return p.get_masks()
    a, b, c = run(4), run(4), run(5)
    assert all(torch.equal(a[n]["weight"], b[n]["weight"]) for n in a)
    assert any(not torch.equal(a[n]["weight"], c[n]["weight"]) for n in a)


class _Probe(Callback):
    """Runs after the pruner: checks that what one update regrew is zero, momentum included."""

    def __init__(self, pruner: PQRewiringPruner) -> None:
        self.pruner, self.seen, self.regrown = pruner, 0, 0

    def before_step(self, ctx) -> None:
        self.before = {n: self.pruner.mask(n).clone() for n in self.pruner.layers}

    def after_step(self, ctx) -> None:
        if len(self.pruner.events) == self.seen:
            return
        self.seen = len(self.pruner.events)
        for n in self.pruner.layers:
            new = (self.pruner.mask(n) != 0) & (self.before[n] == 0)
            param = self.pruner.param(n)
            assert (param[new] == 0).all()
            assert (ctx.optimizer.state[param]["momentum_buffer"][new] == 0).all()
            self.regrown += int(new.sum())


def test_pq_fit_regrows_at_zero_and_reports_nni_masks(digits, tiny_cnn):
    model = tiny_cnn()
    pruner = PQRewiringPruner(model, default_config_list(0.6, structured=False), update_every=3,
                              regrow_fraction=0.8)
    probe = _Probe(pruner)
    snnprune.fit(model, digits.train, max_steps=8, quiet=True, callbacks=[pruner.callback(), probe])
    updates = [e for e in pruner.events if "layers" in e]
    assert [e["step"] for e in updates] == [3, 6]  # stop_frac 0.75 of 8 steps
    assert probe.regrown > 0 and pruner.events[-1]["final"]
    masks = pruner.get_masks()
    assert set(masks) == set(pruner.targets) and all("weight" in m for m in masks.values())
    assert all(m["weight"].shape == pruner.param(n).shape for n, m in masks.items())
    assert masks_sparsity(masks) == pytest.approx(1 - pruner.density())
    assert masks_sparsity(masks) >= 0.6
    pruner.unwrap_model()
    modules = dict(model.named_modules())
    assert all((modules[n].weight[masks[n]["weight"] == 0] == 0).all() for n in masks)


# --- GraNet and random ------------------------------------------------------------------------
def test_granet_reaches_target_with_rewiring(digits, tiny_cnn):
    model = tiny_cnn()
    pruner = GraNetPruner(model, default_config_list(0.9, structured=False), prune_every=2,
                          rewire_every=3, initial_sparsity=0.5)
    snnprune.fit(model, digits.train, max_steps=9, quiet=True, callbacks=[pruner.callback()])
    rewires = [e for e in pruner.events if e["kind"] == "rewire" and e["rewired"]]
    assert rewires and pruner.events[0]["kind"] == "prune"
    masks = pruner.get_masks()
    assert masks_sparsity(masks) == pytest.approx(0.9, abs=0.01)
    pruner.unwrap_model()
    modules = dict(model.named_modules())
    assert all((modules[n].weight[masks[n]["weight"] == 0] == 0).all() for n in masks)
    with pytest.raises(UserError):
        GraNetPruner(tiny_cnn(), default_config_list(0.5, structured=False), initial_sparsity=0.8)


def test_granet_a_weight_dropped_and_regrown_at_once_keeps_its_value(tiny_cnn):
    """The reference (sparselearning's masks, applied once after drop and regrow) and RigL give a
    weight dropped and regrown in the same update its old value; ours restarted it at zero."""
    model = tiny_cnn()
    pruner = GraNetPruner(model, default_config_list(0.5, structured=False), death_rate=0.5)
    pruner.prune_to(0.5)
    name = pruner.layers[0]
    weight, active = pruner.param(name), pruner.mask(name) != 0
    both = int(torch.nonzero(active.flatten())[0])  # the smallest |W| and the largest |grad|
    fresh = int(torch.nonzero(~active.flatten())[0])  # an inactive weight, the next largest |grad|
    with torch.no_grad():
        weight.view(-1)[both] = 1e-6
    grad = torch.zeros_like(weight)
    grad.view(-1)[both], grad.view(-1)[fresh] = 10.0, 5.0

    class Grads:
        def mean(self, layer):
            return grad if layer == name else None

        def reset(self):
            pass

    pruner.grads = Grads()
    pruner.rewire(0.01)  # ceil(0.01 * active) weights move: one or two at this size
    mask = pruner.mask(name).flatten()
    assert mask[both] and mask[fresh]
    assert weight.view(-1)[both].item() == pytest.approx(1e-6) and weight.view(-1)[fresh].item() == 0.0
    pruner.unwrap_model()


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_random_unstructured_one_shot(tiny_cnn, scope):
    cls = get_pruner("random-unstructured").factory
    assert cls is RandomUnstructuredPruner

    def run(seed: int):
        pruner = cls(tiny_cnn(), default_config_list(0.8, structured=False), scope=scope, seed=seed)
        model, masks = pruner.compress()
        pruner.stop()
        pruner.finalize()  # idempotent: no second draw
        assert all(torch.equal(masks[n]["weight"], pruner.get_masks()[n]["weight"]) for n in masks)
        return pruner, model, masks
    pruner, model, masks = run(1)
    assert masks_sparsity(masks) == pytest.approx(0.8, abs=0.01)
    if scope == "layer":
        assert all(masks_sparsity({n: m}) == pytest.approx(0.8, abs=0.01) for n, m in masks.items())
    pruner.unwrap_model()
    modules = dict(model.named_modules())
    assert all((modules[n].weight[masks[n]["weight"] == 0] == 0).all() for n in masks)
    same, other = run(1)[2], run(2)[2]
    assert all(torch.equal(masks[n]["weight"], same[n]["weight"]) for n in masks)
    assert any(not torch.equal(masks[n]["weight"], other[n]["weight"]) for n in masks)
