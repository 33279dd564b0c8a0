"""Tests for the structured pruners: SCA, slimming, criticality-structured, L1-filter, random
(ALGORITHMS.md sections 1, 2 and 4)."""

from __future__ import annotations

import copy

import pytest
import torch

import snnprune
from snnprune.compaction import compact
from snnprune.data import Split
from snnprune.engine import reset_states
from snnprune.errors import UserError
from snnprune.models import build_model, seeded
from snnprune.pruners._base import default_config_list
from snnprune.pruners._sca import SCAPruner
from snnprune.pruners._select import keep_count, select_top
from snnprune.pruners._slimming import CriticalityStructuredPruner, SlimmingPruner
from snnprune.pruners._structured import L1FilterPruner, RandomStructuredPruner, choose_among

P = 0.5


def tiny(seed: int = 0) -> torch.nn.Module:
    with seeded(seed):
        return build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2, width=0.5)


@pytest.fixture(scope="module")
def dense(digits):
    """A tiny cnn trained dense for two epochs (shared; tests take copies)."""
    model = tiny()
    snnprune.fit(model, digits.train, epochs=2, seed=0, quiet=True)
    return model


def config(p: float = P) -> list[dict]:
    return default_config_list(p, structured=True)


def channel_rows(model, masks) -> dict[str, torch.Tensor]:
    """Bool [C] of live channels per group, read from the conv filter masks."""
    return {g.conv: masks[g.conv]["weight"].flatten(1).sum(1) != 0 for g in model.channel_groups()}


def channel_sparsity(rows: dict[str, torch.Tensor]) -> float:
    return 1.0 - sum(int(r.sum()) for r in rows.values()) / sum(r.numel() for r in rows.values())


def eval_out(model, x) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out = model(x)
    reset_states(model)
    return out


def check_nni_masks(model, masks) -> dict[str, torch.Tensor]:
    """Whole filters masked, BN scale and shift masks equal to the filter rows."""
    rows = channel_rows(model, masks)
    for g in model.channel_groups():
        w = masks[g.conv]["weight"]
        assert w.shape == model.get_submodule(g.conv).weight.shape
        flat = w.flatten(1)
        assert torch.all((flat == 0).all(1) | (flat == 1).all(1)), g.conv
        for target in ("weight", "bias"):
            assert torch.equal(masks[g.bn][target] != 0, rows[g.conv]), (g.bn, target)
    return rows


PRUNERS = [
    (SCAPruner, {}),  # two epochs: two updates, the second after an epoch of recovery
    (SlimmingPruner, {"scope": "layer"}),  # global slimming after one epoch may starve a layer
    (CriticalityStructuredPruner, {}),
    (L1FilterPruner, {}),
    (RandomStructuredPruner, {"seed": 3}),
]


@pytest.mark.parametrize("cls,hp", PRUNERS, ids=[c.spec.name for c, _ in PRUNERS])
def test_prune_mask_compact_and_fine_tune(cls, hp, dense, digits):
    model = copy.deepcopy(dense)
    pruner = cls(model, config(), **hp)
    x = digits.test.x[:64]
    subset = Split(digits.train.x[:512], digits.train.y[:512])  # 8 steps an epoch
    epochs = 2 if cls is SCAPruner else 1
    snnprune.fit(model, subset, epochs=epochs, lr=0.05, callbacks=[pruner.callback()], seed=1, quiet=True)
    if cls is SCAPruner:  # channels masked at the first update came back at the second
        assert [e["event"] for e in pruner.events] == ["update", "update", "final"]
        assert pruner.events[1]["revived"] > 0
    masks = pruner.get_masks()
    rows = check_nni_masks(model, masks)
    assert channel_sparsity(rows) == pytest.approx(P, abs=0.01)
    assert pruner.channel_sparsity() == pytest.approx(P, abs=0.01)
    assert all(int(r.sum()) >= 1 for r in rows.values())
    # masked channels output exact zeros (BN output, as the wrapped model computes it)
    seen: dict[str, torch.Tensor] = {}
    handles = [model.get_submodule(g.bn).register_forward_hook(
        lambda m, i, o, name=g.conv: seen.__setitem__(name, o.detach())) for g in model.channel_groups()]
    wrapped = eval_out(model, x)
    for h in handles:
        h.remove()
    for conv, out in seen.items():
        assert torch.all(out.transpose(0, 2)[~rows[conv]] == 0), conv
    pruner.unwrap_model()
    assert torch.allclose(eval_out(model, x), wrapped, atol=1e-6)
    small = compact(model, masks)
    assert (eval_out(small, x) - wrapped).abs().max() <= 1e-4
    snnprune.fit(small, digits.train, epochs=1, max_steps=8, lr=0.02, seed=2, quiet=True)
    assert snnprune.evaluate(small, digits.test)["accuracy"] > 0.5


# --- SCA ----------------------------------------------------------------------------------------
def set_stats(pruner: SCAPruner, activity: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
    pruner.reset_stats()
    for g in pruner.groups:
        pruner.activity.sums[g.neuron], pruner.activity.counts[g.neuron] = activity[g.conv].float(), 1
        pruner.grads.sums[(g.bn, "weight")], pruner.grads.counts[(g.bn, "weight")] = grads[g.conv].float(), 1


def bump(model, channels: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {g.conv: torch.zeros(model.get_submodule(g.bn).weight.numel()).index_fill_(
        0, torch.tensor(channels[g.conv]), 1.0) for g in model.channel_groups()}


def test_sca_regrows_masked_channels_by_gamma_gradient(digits):
    model = tiny()
    pruner = SCAPruner(model, config(0.5), update_ratio=0.25, scope="layer")
    pruner.start(total_steps=10, steps_per_epoch=5)
    sizes = {g.conv: model.get_submodule(g.bn).weight.numel() for g in model.channel_groups()}
    ramp = {n: torch.arange(c) + 1.0 for n, c in sizes.items()}
    # update 1: the top 25 % by activity stay, 25 % regrow by gradient: the first quarter
    set_stats(pruner, ramp, bump(model, {n: list(range(c // 4)) for n, c in sizes.items()}))
    pruner.update()
    live = pruner.live()
    for conv, c in sizes.items():
        expected = torch.zeros(c, dtype=torch.bool)
        expected[:c // 4] = True
        expected[c - c // 4:] = True
        assert torch.equal(live[conv], expected), conv
        assert torch.all(pruner.mask(conv) == 1)  # the filters stay live while training
    # a masked channel still gets a gamma gradient, since its filter is live
    pruner.grads.reset()
    model.train()
    torch.nn.functional.cross_entropy(model(digits.train.x[:32]), digits.train.y[:32]).backward()
    reset_states(model)
    g1 = pruner.groups[1]
    assert pruner.grads.mean(g1.bn)[~live[g1.conv]].sum() > 0
    # update 2: the second quarter (masked at update 1) has the largest gradient and comes back
    set_stats(pruner, ramp, bump(model, {n: list(range(c // 4, c // 2)) for n, c in sizes.items()}))
    pruner.update()
    assert pruner.events[-1]["revived"] == sum(c // 4 for c in sizes.values())
    for conv, k in pruner.live().items():
        c = sizes[conv]
        assert k[c // 4:c // 2].all() and not k[:c // 4].any(), conv
    before = pruner.live()
    pruner.stop()  # the last prune-only step keeps the live set and masks the filters
    rows = check_nni_masks(model, pruner.get_masks())
    assert all(torch.equal(rows[c], before[c]) for c in rows)


def test_sca_l1_penalty_changes_the_conv_gradients(digits):
    grads = []
    for l1 in (0.0, 1e-3):
        model = tiny()
        pruner = SCAPruner(model, config(0.5), l1=l1, update_ratio=0.0)
        model.train()
        torch.nn.functional.cross_entropy(model(digits.train.x[:16]), digits.train.y[:16]).backward()
        reset_states(model)
        conv = pruner.groups[1].conv
        before = pruner.param(conv).grad.clone()
        pruner._before_step()
        grads.append(pruner.param(conv).grad - before)
        expected = l1 * torch.sign(pruner.param(conv).detach())
        assert torch.allclose(grads[-1], expected)
    assert grads[0].abs().sum() == 0 and grads[1].abs().sum() > 0


def test_sca_rejects_p_plus_q_of_one_or_more():
    with pytest.raises(UserError):
        SCAPruner(tiny(), config(0.6), update_ratio=0.4)
    with pytest.raises(UserError):
        SCAPruner(tiny(), config(0.3), update_ratio=0.6)  # out of the registered range


# --- slimming and criticality-structured ---------------------------------------------------------
def test_criticality_with_r0_is_slimming(dense):
    masks = []
    for cls, hp in ((SlimmingPruner, {}), (CriticalityStructuredPruner, {"regen_ratio": 0.0})):
        pruner = cls(copy.deepcopy(dense), config(0.6), **hp)
        pruner.prune(None, epochs=0)
        masks.append(pruner.get_masks())
    assert masks[0].keys() == masks[1].keys()
    for name in masks[0]:
        for target in masks[0][name]:
            assert torch.equal(masks[0][name][target], masks[1][name][target]), (name, target)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_criticality_regenerates_the_most_critical_pruned_channels(dense, scope):
    model = copy.deepcopy(dense)
    r = 0.5
    pruner = CriticalityStructuredPruner(model, config(P), regen_ratio=r, scope=scope)
    pruner.start(total_steps=1, steps_per_epoch=1)
    generator = torch.Generator().manual_seed(0)
    crit = {}
    for g in pruner.groups:
        crit[g.conv] = torch.rand(model.get_submodule(g.bn).weight.numel(), generator=generator)
        pruner.crit.sums[g.neuron], pruner.crit.counts[g.neuron] = crit[g.conv].clone(), 1
    gamma = {g.conv: model.get_submodule(g.bn).weight.detach().abs() for g in pruner.groups}
    pruner.stop()
    temp = select_top(gamma, P + r * (1 - P), scope=scope, min_keep=1)
    pruned = {n: ~k for n, k in temp.items()}
    if scope == "global":
        total = sum(k.numel() for k in temp.values())
        counts = keep_count(total, P) - sum(int(k.sum()) for k in temp.values())
    else:
        counts = {n: keep_count(k.numel(), P) - int(k.sum()) for n, k in temp.items()}
    assert (counts if scope == "global" else sum(counts.values())) > 0
    regen = choose_among(crit, pruned, counts)
    rows = check_nni_masks(model, pruner.get_masks())
    for n in rows:
        assert torch.equal(rows[n], temp[n] | regen[n]), n
    # the regenerated channels are more critical than every channel left pruned (in the scope)
    names = list(rows) if scope == "global" else [[n] for n in rows]
    for scope_names in ([names] if scope == "global" else names):
        back = torch.cat([crit[n][regen[n]] for n in scope_names])
        left = torch.cat([crit[n][pruned[n] & ~regen[n]] for n in scope_names])
        if back.numel() and left.numel():
            assert back.min() > left.max()
    assert channel_sparsity(rows) == pytest.approx(P, abs=0.01)


@pytest.mark.parametrize("regen", ["gradient", "random"])
def test_criticality_ablations_reach_the_target(dense, digits, regen):
    model = copy.deepcopy(dense)
    pruner = CriticalityStructuredPruner(model, config(P), regen=regen, aggregation="mean")
    pruner.prune(digits.train, epochs=1, max_steps=3, quiet=True)
    assert pruner.events[-1]["regenerated"] > 0
    assert channel_sparsity(check_nni_masks(model, pruner.get_masks())) == pytest.approx(P, abs=0.01)


# --- one-shot baselines ---------------------------------------------------------------------------
def test_l1_filter_prunes_the_smallest_filters_per_layer_at_start(dense):
    model = copy.deepcopy(dense)
    norms = {g.conv: model.get_submodule(g.conv).weight.detach().abs().flatten(1).sum(1)
             for g in model.channel_groups()}
    pruner = L1FilterPruner(model, config(P))
    pruner.start(total_steps=5, steps_per_epoch=5)  # prunes before any step
    live = pruner.live()
    for conv, n in norms.items():
        k = keep_count(n.numel(), P)
        assert int(live[conv].sum()) == k
        assert n[live[conv]].min() >= n[~live[conv]].max(), conv
    pruner.stop()
    _, masks = L1FilterPruner(copy.deepcopy(dense), config(P)).compress()  # NNI's entry, no evaluator
    assert all(torch.equal(channel_rows(model, masks)[c], live[c]) for c in live)


def test_random_structured_is_seeded():
    def rows(seed):
        pruner = RandomStructuredPruner(tiny(), config(P), seed=seed, scope="global")
        return channel_rows(pruner.bound_model, pruner.compress()[1])

    a, b, c = rows(1), rows(1), rows(2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)
    assert channel_sparsity(a) == pytest.approx(P, abs=0.01)


# --- ResNet-19 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SCAPruner, L1FilterPruner], ids=["sca", "l1-filter"])
def test_resnet19_smoke_with_compaction(cls):
    generator = torch.Generator().manual_seed(0)
    data = Split(torch.randn(4, 3, 32, 32, generator=generator), torch.randint(0, 10, (4,), generator=generator))
    with seeded(0):
        model = build_model("resnet19", num_classes=10, in_channels=3, image_size=32, T=2, width=0.125)
    pruner = cls(model, config(P))
    snnprune.fit(model, data, epochs=1, batch_size=2, lr=0.05, callbacks=[pruner.callback()], quiet=True)
    masks = pruner.get_masks()
    rows = check_nni_masks(model, masks)
    assert channel_sparsity(rows) == pytest.approx(P, abs=0.01)
    x = data.x[:2]
    wrapped = eval_out(model, x)
    pruner.unwrap_model()
    small = compact(model, masks)
    assert (eval_out(small, x) - wrapped).abs().max() <= 1e-4
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
