from __future__ import annotations

import pytest
import torch
from torch import nn

from snnprune.data import Split
from snnprune.errors import UserError
from snnprune.metrics import E_AC_PJ, E_MAC_PJ, count_layers, measure, measure_activity
from snnprune.metrics._activity import _synapse_hits
from snnprune.models import build_model


def _by_name(layers):
    return {layer.name: layer for layer in layers}


def test_macs_match_hand_counts_for_the_digits_cnn(tiny_cnn):
    layers = _by_name(count_layers(tiny_cnn(width=1.0)))
    assert layers["features.0"].macs == 8 * 8 * (1 * 32 * 9)
    assert layers["features.3"].macs == 8 * 8 * (32 * 64 * 9)
    assert layers["features.7"].macs == 4 * 4 * (64 * 128 * 9)
    assert layers["classifier.1"].macs == 128 * 2 * 2 * 10


def test_vgg16_conv_macs_are_the_published_313_million():
    net = build_model("vgg16", num_classes=10, in_channels=3, image_size=32, T=4)
    conv = sum(layer.dense_macs for layer in count_layers(net) if layer.kind == "Conv2d")
    # independent count: sum over layers of H*W*Cin*Cout*9
    cfg = [(32, 3, 64), (32, 64, 64), (16, 64, 128), (16, 128, 128), (8, 128, 256), (8, 256, 256),
           (8, 256, 256), (4, 256, 512), (4, 512, 512), (4, 512, 512), (2, 512, 512), (2, 512, 512),
           (2, 512, 512)]
    assert conv == sum(s * s * cin * cout * 9 for s, cin, cout in cfg)
    assert abs(conv - 313.2e6) / 313.2e6 < 0.005


def test_zero_weights_and_removed_channels_do_not_count(tiny_cnn):
    net = tiny_cnn(width=1.0)
    before = _by_name(count_layers(net))
    with torch.no_grad():
        net.features[3].weight[:, :, 0, 0] = 0  # unstructured zeros: 64*32 weights
    after = _by_name(count_layers(net))
    assert before["features.3"].macs - after["features.3"].macs == 8 * 8 * 64 * 32
    # a channel whose BN scale and shift are zero is removed: its filter and its readers go
    with torch.no_grad():
        net.features[4].weight[5] = 0
        net.features[4].bias[5] = 0
    removed = _by_name(count_layers(net))
    filter_nz = int((net.features[3].weight[5] != 0).sum())
    assert after["features.3"].macs - removed["features.3"].macs == 8 * 8 * filter_nz
    assert after["features.7"].macs - removed["features.7"].macs == 4 * 4 * 128 * 9


def test_synapse_hits_equal_a_brute_force_count():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    spikes = (torch.rand(2, 2, 5, 5) > 0.6).float()
    nz = torch.rand(3, 2, 3, 3) > 0.5
    brute = 0
    padded = nn.functional.pad(spikes, (1, 1, 1, 1))
    for n in range(2):
        for o in range(3):
            for i in range(5):
                for j in range(5):
                    brute += int((padded[n, :, i:i + 3, j:j + 3].bool() & nz[o]).sum())
    assert _synapse_hits(conv, spikes, nz) == brute
    lin = nn.Linear(4, 2)
    s = torch.tensor([[1.0, 0, 1, 1]])
    mask = torch.tensor([[True, True, False, True], [False, False, True, True]])
    assert _synapse_hits(lin, s, mask) == 2 + 2


def test_activity_figures_are_consistent(digits, tiny_cnn):
    net = tiny_cnn(width=1.0, T=4)
    stats = measure_activity(net, digits.test, max_batches=1, batch_size=32)
    assert stats.samples == 32
    assert set(stats.firing_rates) == {"features.2", "features.5", "features.9"}
    assert all(0 <= r <= 1 for r in stats.firing_rates.values())
    # only the first conv sees real values, once per sample (static encoding)
    assert stats.real_macs == pytest.approx(8 * 8 * 32 * 9)
    assert stats.energy_pj == pytest.approx(E_MAC_PJ * stats.real_macs + E_AC_PJ * stats.sops)
    assert stats.sops > 0


def test_measure_reports_sparsity_against_a_reference(tiny_cnn):
    net = tiny_cnn(width=1.0)
    with torch.no_grad():
        net.features[3].weight.zero_()
    m = measure(net, reference_weights=None)
    assert m.nonzero_weights == m.weights - 18432
    assert m.sparsity == pytest.approx(18432 / m.weights)
    half = measure(net, reference_weights=2 * m.weights)
    assert half.sparsity == pytest.approx(1 - m.nonzero_weights / (2 * m.weights))
    assert measure(net, Split(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))).sops is not None


def test_measuring_gives_every_module_back_its_own_mode(digits, tiny_cnn):
    """A BN frozen inside a training network (bn.eval()) came back from evaluate / measure / the
    probe pass in train mode: they restored only the network's flag, which sets every module."""
    from snnprune.engine import evaluate

    net = tiny_cnn()
    net.train()
    frozen = net.features[1]
    frozen.eval()
    for run in (lambda: measure(net), lambda: measure(net, digits.test, max_batches=1),
                lambda: evaluate(net, digits.test)):
        run()
        assert net.training and not frozen.training
        assert all(m.training for m in net.modules() if m is not frozen)


@pytest.mark.parametrize("kwargs,fragment", [({"max_batches": 0}, "max_batches"), ({}, "split is empty")])
def test_measuring_activity_on_no_sample_is_refused(digits, tiny_cnn, kwargs, fragment):
    """It reported 0 SOPs and no firing rate: a network that never spikes, measured on nothing."""
    import snnprune

    empty = snnprune.load_dataset("digits", val_fraction=0.0, seed=0).val
    split = digits.test if kwargs else empty
    with pytest.raises(UserError, match=fragment):
        measure(tiny_cnn(), split, **kwargs)


def test_measure_activity_starts_from_reset_neurons(tiny_cnn):
    """Potentials left by the caller's forward (no reset_net after it) carried into the first
    measured batch: 12085.3 SOPs per sample instead of 16760.0 on this net."""
    from snnprune.engine import reset_states

    net = tiny_cnn(width=0.25)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 3
    split = Split(x, torch.zeros(6, dtype=torch.long))
    fresh = measure_activity(net, split, batch_size=6)
    net.eval()
    with torch.no_grad():
        net(torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 5)  # no reset after
    stale = measure_activity(net, split, batch_size=6)
    reset_states(net)
    assert stale.sops == pytest.approx(fresh.sops)
    assert stale.firing_rates == pytest.approx(fresh.firing_rates)


class _AnyDeviceSplit:
    """A split whose batches stay on the CPU whatever device is asked for."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size, shuffle=False, device=None):
        yield self.x, torch.zeros(len(self.x), dtype=torch.long)


def test_measure_activity_gives_the_model_back_on_its_own_device(monkeypatch, tiny_cnn):
    """It moved the model to ``device`` ('auto' is CUDA where there is one) and left it there:
    a CPU model measured on a GPU machine came back on the GPU. This machine has no GPU, so
    the moves are recorded rather than made."""
    from snnprune.metrics import _activity

    net = tiny_cnn(width=0.25)
    moves: list[torch.device] = []

    def record(self, device=None, *args, **kwargs):
        moves.append(torch.device(device))
        return self

    monkeypatch.setattr(_activity, "resolve_device", lambda _device: torch.device("cuda"))
    monkeypatch.setattr(type(net), "to", record)
    measure_activity(net, _AnyDeviceSplit(torch.randn(3, 1, 8, 8)), device="auto")
    assert moves[0] == torch.device("cuda")
    assert moves[-1] == torch.device("cpu")


@pytest.mark.parametrize("reference", [0, -5, 2.5, "x", True, 10])
def test_measure_refuses_a_reference_weight_count_that_makes_no_sparsity(tiny_cnn, reference):
    """-5 gave sparsity 1423.4, 2.5 gave -3555 (int(2.5) = 2), 0 silently meant "none", "x"
    failed inside int(); 10 is fewer than the model's non-zero weights (sparsity < 0)."""
    with pytest.raises(UserError, match="reference_weights"):
        measure(tiny_cnn(width=0.25), reference_weights=reference)
