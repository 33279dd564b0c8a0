from __future__ import annotations

import pytest
import torch
from torch import nn

from snnprune.engine import reset_states
from snnprune.errors import UserError
from snnprune.models import (BasicBlock, PotentialRecorder, build_model, count_parameters, is_spiking,
                             seeded)

SHAPES = [("cnn", 1, 8, 1.0), ("cnn", 3, 32, 0.5), ("vgg11", 3, 32, 0.125), ("vgg16", 3, 32, 0.125),
          ("resnet19", 3, 32, 0.125)]


@pytest.mark.parametrize("name,channels,size,width", SHAPES)
def test_forward_backward_shapes(name, channels, size, width):
    net = build_model(name, num_classes=7, in_channels=channels, image_size=size, T=2, width=width)
    x = torch.randn(3, channels, size, size)
    out = net(x)
    assert out.shape == (3, 7)
    out.sum().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    reset_states(net)
    for group in net.channel_groups():
        modules = dict(net.named_modules())
        assert isinstance(modules[group.conv], nn.Conv2d)
        assert isinstance(modules[group.bn], nn.BatchNorm2d)
        assert is_spiking(modules[group.neuron])
        for consumer in group.consumers:
            assert isinstance(modules[consumer], (nn.Conv2d, nn.Linear))


def test_static_encoding_equals_explicit_repetition():
    """The input conv runs once for a static image; the result equals feeding T copies."""
    with seeded(1):
        net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=3).eval()
    x = torch.randn(4, 1, 8, 8)
    once = net(x)
    reset_states(net)
    repeated = net(x.unsqueeze(1).repeat(1, 3, 1, 1, 1))
    assert torch.allclose(once, repeated, atol=1e-6)


def test_parameter_counts_match_the_seeds_networks():
    vgg = build_model("vgg16", num_classes=10, in_channels=3, image_size=32, T=1)
    conv = sum(m.weight.numel() for m in vgg.modules() if isinstance(m, nn.Conv2d))
    assert conv == 14_710_464  # 13 conv layers of the CIFAR VGG-16, bias-free
    assert abs(count_parameters(vgg) - 14.7e6) / 14.7e6 < 0.01
    resnet = build_model("resnet19", num_classes=10, in_channels=3, image_size=32, T=1)
    assert abs(count_parameters(resnet) - 12.6e6) / 12.6e6 < 0.02
    assert sum(isinstance(m, BasicBlock) for m in resnet.modules()) == 8


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="nope"), "unknown model"),
    (dict(neuron="izhikevich"), "unknown neuron"),
    (dict(surrogate="relu"), "unknown surrogate"),
    (dict(width=0), "width"),
    (dict(width=-1.0), "width"),
    (dict(T=0), "T must"),
    (dict(tau=1.0), "tau"),
    (dict(name="vgg16", image_size=8), "image_size >= 32"),
    # a threshold <= 0 fires on zero input: a pruned channel is not dead, compact != masked
    ({"v_threshold": 0.0}, "v_threshold must be a number > 0"),
    ({"v_threshold": -1.0}, "v_threshold must be a number > 0"),
    ({"v_threshold": float("nan")}, "v_threshold must be a number > 0"),
    ({"v_threshold": "1"}, "v_threshold must be a number > 0"),
])
def test_bad_arguments_are_one_line_user_errors(kwargs, message):
    args = dict(name="cnn", num_classes=10, in_channels=1, image_size=8, T=2)
    args.update(kwargs)
    with pytest.raises(UserError, match=message) as info:
        build_model(args.pop("name"), **args)
    assert "\n" not in str(info.value)


def test_seeded_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    with seeded(5):
        a = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2)
    with seeded(5):
        b = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2)
    assert torch.equal(torch.random.get_rng_state(), before)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_recorded_potential_is_the_pre_reset_charge(neuron):
    net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=4, neuron=neuron).train()
    node = net.features[2]
    tau = getattr(node, "tau", None)
    seen: dict[str, torch.Tensor] = {}
    inputs: dict[str, torch.Tensor] = {}
    pre = node.register_forward_pre_hook(lambda m, a: inputs.__setitem__("x", a[0].detach().clone()))
    with PotentialRecorder(net, ["features.2"], lambda name, h: seen.__setitem__(name, h)):
        net(torch.randn(2, 1, 8, 8) * 3)
    pre.remove()
    x = inputs["x"]
    v = torch.zeros_like(x[0])
    expected = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau if tau else v + x[t]
        expected.append(h)
        v = torch.where(h >= 1.0, torch.zeros_like(h), h)
    assert torch.allclose(seen["features.2"], torch.stack(expected), atol=1e-5)
    assert node.store_v_seq is False  # restored after the recorder is removed


def test_recorder_rejects_a_non_neuron():
    net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2)
    with pytest.raises(UserError):
        PotentialRecorder(net, ["features.0"], lambda *_: None)


@pytest.mark.parametrize("width,message", [
    (float("inf"), "finite number in \\(0, 16\\]"),
    (1e9, "finite number in \\(0, 16\\]"),
    (17, "finite number in \\(0, 16\\]"),
    (float("nan"), "finite number"),
    ("x", "width must be a number, got str"),
    (None, "width must be a number, got NoneType"),
])
def test_width_must_be_a_finite_number_up_to_the_bound(width, message):
    """inf overflowed in `scaled`, 1e9 asked for a terabyte and 'x' was a TypeError."""
    with pytest.raises(UserError, match=message) as info:
        build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2, width=width)
    assert "\n" not in str(info.value)


def test_the_widest_width_is_accepted():
    from snnprune.models import MAX_WIDTH, check_width

    assert check_width(MAX_WIDTH) == MAX_WIDTH and check_width(1) == 1.0


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64, 1.5, "0"])
def test_seeded_rejects_a_seed_out_of_range(seed):
    """torch.manual_seed(2**64) is an 'Overflow when unpacking long long' traceback."""
    with pytest.raises(UserError, match="seed must be an integer in \\[0, 4294967295\\]"), seeded(seed):
        pass
    with seeded(2**32 - 1):
        pass


def test_probing_a_model_not_made_by_build_model_says_to_pass_input_shape():
    """It was a bare ValueError from `measure` / `count_layers`."""
    from snnprune.metrics import measure

    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UserError, match=r"not made by build_model .*input_shape=\(C, H, W\)"):
        measure(net)
