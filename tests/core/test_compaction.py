"""Compaction: the compact network computes what the masked one computes, with fewer weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from snnprune.compaction import (compact, compaction_report, load_compact, load_sparse,
                                 removed_channels, save_compact, save_sparse)
from snnprune.engine import reset_states, save_checkpoint
from snnprune.errors import UserError
from snnprune.metrics import count_layers
from snnprune.models import build_model, count_parameters, is_spiking, seeded

SHAPES = {  # name: (in_channels, image_size, width)
    "cnn": (1, 8, 0.5),
    "vgg11": (3, 32, 0.25),
    "vgg16": (3, 32, 0.125),
    "resnet19": (3, 32, 0.125),
}


def _net(name: str, seed: int = 0) -> nn.Module:
    """A seeded model with random BN statistics and affine terms that make the neurons fire
    (a freshly built net has mean 0 / var 1 running stats, which would make eval trivial)."""
    channels, size, width = SHAPES[name]
    with seeded(seed):
        net = build_model(name, num_classes=10, in_channels=channels, image_size=size, T=2, width=width)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 1.0)
                m.bias.copy_(torch.rand(c, generator=gen) * 1.5 + 0.2)
    return net


def _structured_masks(net: nn.Module, seed: int = 0, empty: int | None = None) -> dict:
    """Half the channels of every group (seeded), and all of group ``empty``: conv filter, BN
    scale and BN shift masked together, as the structured pruners do."""
    gen = torch.Generator().manual_seed(seed)
    modules = dict(net.named_modules())
    masks = {}
    for i, group in enumerate(net.channel_groups()):
        conv = modules[group.conv]
        c = conv.out_channels
        keep = torch.ones(c)
        if i == empty:
            keep[:] = 0
        else:
            keep[torch.randperm(c, generator=gen)[: c // 2]] = 0
        masks[group.conv] = {"weight": keep.view(-1, 1, 1, 1).expand_as(conv.weight).clone()}
        masks[group.bn] = {"weight": keep.clone(), "bias": keep.clone()}
    return masks


def _masked(net: nn.Module, masks: dict) -> nn.Module:
    out = copy.deepcopy(net)
    modules = dict(out.named_modules())
    with torch.no_grad():
        for name, entry in masks.items():
            for pname, mask in entry.items():
                getattr(modules[name], pname).mul_(mask)
    return out


def _input(name: str, seed: int = 0) -> torch.Tensor:
    channels, size, _ = SHAPES[name]
    return torch.randn(4, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 3


def _run(net: nn.Module, x: torch.Tensor, rates: list[float] | None = None) -> torch.Tensor:
    net.eval()
    hooks = []
    if rates is not None:
        hooks = [m.register_forward_hook(lambda _m, _i, o: rates.append(float(o.mean())))
                 for m in net.features.modules() if is_spiking(m)]
    reset_states(net)
    with torch.no_grad():
        out = net(x)
    reset_states(net)
    for h in hooks:
        h.remove()
    return out


def _macs(net: nn.Module) -> dict[str, int]:
    return {c.name: c.macs for c in count_layers(net)}


@pytest.mark.parametrize("name", list(SHAPES))
def test_compact_model_matches_the_masked_one(name):
    net = _net(name)
    # resnet19: empty a middle block's inner channels (the block still passes its shortcut on)
    masks = _structured_masks(net, empty=1 if name == "resnet19" else None)
    # unstructured zeros on the output layer too: masks are applied to every parameter
    out_layer = net.output_layer
    w = dict(net.named_modules())[out_layer].weight
    gen = torch.Generator().manual_seed(3)
    masks[out_layer] = {"weight": (torch.rand(w.shape, generator=gen) > 0.3).float()}
    before = {k: v.clone() for k, v in net.state_dict().items()}
    masked = _masked(net, masks)
    small = compact(net, masks)

    rates: list[float] = []
    x = _input(name)
    expected = _run(masked, x, rates)
    assert rates[-1] > 0 and min(rates[:3]) > 0  # neurons fire deep into the net
    assert (expected - _run(small, x)).abs().max().item() <= 1e-4

    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # input untouched
    assert count_parameters(small) < count_parameters(masked)
    assert _macs(small) == _macs(masked)  # count_layers ignores dead channels; both must agree
    widths = small.compact_widths
    modules = dict(small.named_modules())
    for group in small.channel_groups():
        assert modules[group.conv].out_channels == widths[group.conv]
        assert modules[group.bn].num_features == widths[group.conv]
    if name == "resnet19":
        assert widths[small.channel_groups()[1].conv] == 1  # keep-one rule
    assert small.build_args == net.build_args
    report = compaction_report(masked, small)
    assert report["macs_ratio"] == 1.0 and report["params_ratio"] < 0.8
    assert report["dense_macs_after"] < report["dense_macs_before"]


def test_an_emptied_group_keeps_its_largest_scale_channel():
    net = _net("cnn")
    masks = _structured_masks(net, empty=2)  # the last group, read by the Linear via the flatten
    removed = removed_channels(net, masks)
    assert int((~removed["features.7"]).sum()) == 1
    masked = _masked(net, masks)
    assert int((~removed_channels(masked)["features.7"]).sum()) == 1  # masks=None: BN zeros say so
    small = compact(net, masks)
    assert small.compact_widths["features.7"] == 1
    assert small.classifier[1].in_features == net.classifier[1].in_features // net.features[8].num_features
    x = _input("cnn")
    assert (_run(masked, x) - _run(small, x)).abs().max().item() <= 1e-4
    # the survivor is the channel with the largest |gamma| once the BN masks are applied
    filters_only = {"features.7": masks["features.7"]}
    with torch.no_grad():
        net.features[8].weight[5] = -7.0
    assert (~removed_channels(net, filters_only)["features.7"]).nonzero().flatten().tolist() == [5]


def test_without_masks_zero_bn_scale_and_shift_mark_the_removed_channels():
    net = _net("vgg11")
    masked = _masked(net, _structured_masks(net, seed=4))
    removed = removed_channels(masked)
    for group in masked.channel_groups():
        bn = dict(masked.named_modules())[group.bn]
        assert torch.equal(removed[group.conv], (bn.weight == 0) & (bn.bias == 0))
    small = compact(masked)
    x = _input("vgg11")
    assert (_run(masked, x) - _run(small, x)).abs().max().item() <= 1e-4
    assert _macs(small) == _macs(masked)
    assert count_parameters(compact(net)) == count_parameters(net)  # nothing dead, nothing cut


def test_compact_model_trains_and_compacts_a_net_with_live_neuron_state():
    net = _net("resnet19")
    net.train()
    net(_input("resnet19")).sum().backward()  # leaves non-leaf potentials in the neurons
    small = compact(net, _structured_masks(net))
    small.train()
    opt = torch.optim.SGD(small.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(small(_input("resnet19")), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in small.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    opt.step()


@pytest.mark.parametrize("name", ["vgg11", "resnet19"])
def test_save_and_load_compact_round_trip(tmp_path, name):
    net = _net(name)
    masks = _structured_masks(net, seed=2)
    small = compact(net, masks)
    path = save_compact(tmp_path / "small.pt", small)
    loaded = load_compact(path)  # built from build_args and the widths alone
    assert loaded.compact_widths == small.compact_widths
    x = _input(name)
    assert torch.equal(_run(small, x), _run(loaded, x))
    assert count_parameters(loaded) == count_parameters(small)


def test_load_compact_refuses_bad_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_compact(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="corrupt"):
        load_compact(bad)
    dense = save_checkpoint(tmp_path / "dense.pt", _net("cnn"))
    with pytest.raises(UserError, match="snnprune-compact/1"):
        load_compact(dense)
    small = compact(_net("cnn"), _structured_masks(_net("cnn")))
    path = save_compact(tmp_path / "small.pt", small)
    payload = torch.load(path, weights_only=True)
    payload["compact_widths"]["features.0"] = 10_000
    torch.save(payload, path)
    with pytest.raises(UserError, match="does not fit"):
        load_compact(path)


def test_masks_that_do_not_fit_are_user_errors():
    net = _net("cnn")
    with pytest.raises(UserError, match="does not have"):
        compact(net, {"features.99": {"weight": torch.ones(1)}})
    with pytest.raises(UserError, match="shape"):
        compact(net, {"features.0": {"weight": torch.ones(3)}})


def test_sparse_round_trip_at_90_percent(tmp_path):
    net = _net("vgg11")
    gen = torch.Generator().manual_seed(5)
    masks = {name: {"weight": torch.rand(m.weight.shape, generator=gen) >= 0.9}
             for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    masks["features.1"] = {"weight": torch.rand(net.features[1].weight.shape, generator=gen) > 0.5}
    with torch.no_grad():  # a kept weight that is exactly zero must keep its mask bit
        net.features[0].weight.view(-1)[masks["features.0"]["weight"].view(-1).nonzero()[0]] = 0.0
    path = save_sparse(tmp_path / "sparse.pt", net, masks)
    loaded, loaded_masks = load_sparse(path)
    assert loaded_masks.keys() == masks.keys()
    for name, entry in masks.items():
        assert torch.equal(loaded_masks[name]["weight"], entry["weight"])
    expected = _masked(net, {n: {"weight": e["weight"].float()} for n, e in masks.items()})
    for key, value in expected.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    dense = save_checkpoint(tmp_path / "dense.pt", expected)
    ratio = path.stat().st_size / dense.stat().st_size
    # measured: about 0.31 (vgg11 x0.25; 12 bytes per kept weight against 4 per dense one)
    assert ratio < 0.5
    with pytest.raises(UserError, match="snnprune-sparse/1"):
        load_sparse(dense)


def test_load_compact_and_load_sparse_on_a_folder_say_it_is_a_folder(tmp_path):
    from snnprune.compaction import load_sparse

    for load in (load_compact, load_sparse):
        with pytest.raises(UserError, match="is a folder, not a checkpoint file"):
            load(tmp_path)


@pytest.mark.parametrize("args", [{"name": "cnn"}, "extra"])
def test_load_compact_and_load_sparse_refuse_build_args_build_model_does_not_take(tmp_path, args):
    """Missing or unknown build arguments (a file from another version, or edited) ended in a
    TypeError traceback from build_model instead of one line."""
    net = _net("cnn")
    files = [save_compact(tmp_path / "c.pt", compact(net, _structured_masks(net))),
             save_sparse(tmp_path / "s.pt", net, {"features.0": {"weight": torch.ones_like(net.features[0].weight)}})]
    for path, load in zip(files, (load_compact, load_sparse)):
        payload = torch.load(path, weights_only=True)
        payload["build_args"] = args if isinstance(args, dict) else {**payload["build_args"], "bogus": 1}
        torch.save(payload, path)
        with pytest.raises(UserError, match="build_args that build_model does not take"):
            load(path)
