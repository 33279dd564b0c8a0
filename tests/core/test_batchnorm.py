"""Running BN statistics of a network trained from scratch carry no trace of torch's placeholders."""

from __future__ import annotations

import torch
from torch import nn

from snnprune.engine import evaluate, fit
from snnprune.engine._batchnorm import debias_running_stats, fresh_batchnorms


def test_debiased_statistics_are_the_ema_of_the_batches_alone():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3, momentum=0.1)
    batches = [torch.randn(32, 3) * 0.1 + 0.5 for _ in range(5)]
    (layer,) = fresh_batchnorms(bn)
    bn.train()
    for x in batches:
        bn(x)
    debias_running_stats([layer])
    # the same EMA started from the first batch's own statistics weighs batches as the debiased one
    weights = torch.tensor([0.9 ** (4 - i) * 0.1 for i in range(5)])
    weights = weights / weights.sum()
    mean = sum(w * x.mean(0) for w, x in zip(weights, batches))
    var = sum(w * x.var(0, unbiased=True) for w, x in zip(weights, batches))
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)


def test_layers_that_hold_statistics_are_not_fresh():
    seen = nn.BatchNorm1d(2)
    seen.train()
    seen(torch.randn(8, 2))
    loaded = nn.BatchNorm1d(2)  # statistics set by hand (or a checkpoint) with a zero counter
    loaded.running_var.fill_(0.02)
    cumulative = nn.BatchNorm1d(2, momentum=None)
    untracked = nn.BatchNorm1d(2, track_running_stats=False)
    fresh = nn.BatchNorm1d(2)
    net = nn.Sequential(seen, loaded, cumulative, untracked, fresh)
    assert fresh_batchnorms(net) == [fresh]


def test_a_layer_that_saw_no_batch_keeps_its_placeholders():
    bn = nn.BatchNorm1d(2)
    debias_running_stats(fresh_batchnorms(bn))
    assert torch.equal(bn.running_var, torch.ones(2)) and torch.equal(bn.running_mean, torch.zeros(2))


def test_one_short_epoch_from_scratch_is_far_above_chance(digits, tiny_cnn):
    # 21 batches: the placeholder variance (1) kept 0.11 of its weight, 6x the real variance,
    # silenced the last LIF layer in eval mode and scored 0.10 (chance) with train accuracy 0.69
    net = tiny_cnn(width=1.0, T=4)
    result = fit(net, digits.train, epochs=1, batch_size=64, lr=0.1, quiet=True)
    assert result.history[0]["train_accuracy"] > 0.5
    assert evaluate(net, digits.test)["accuracy"] > 0.5


def test_fine_tuning_leaves_loaded_statistics_to_the_ema(digits, tiny_cnn):
    net = tiny_cnn()
    fit(net, digits.train, epochs=1, batch_size=64, quiet=True, max_steps=3)
    assert fresh_batchnorms(net) == []
    before = {n: b.clone() for n, b in net.named_buffers() if n.endswith("running_var")}
    fit(net, digits.train, epochs=1, batch_size=64, quiet=True, max_steps=2)
    for name, b in net.named_buffers():
        if name.endswith("running_var"):  # two EMA steps only: nothing divided out
            assert torch.all(b > 0.9 ** 2 * before[name] - 1e-6)
