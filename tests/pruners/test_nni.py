"""The NNI side: `make_evaluator`, the two entry points of our pruners, NNI's own pruners in our
registry, and the example script."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nni.compression.pruning import L1NormPruner, LevelPruner, SlimPruner, TaylorPruner

import snnprune
from snnprune.compaction import compact
from snnprune.engine import fit, reset_states
from snnprune.errors import UserError
from snnprune.pruners import CriticalityUnstructuredPruner, default_config_list, get_pruner
from snnprune.pruners._nni_bridge import make_evaluator
from snnprune.pruners._nni_pruners import NNIL1NormPruner, NNILevelPruner, NNISlimPruner, NNITaylorPruner

ROOT = Path(__file__).resolve().parents[2]
NNI_PRUNERS = [
    ("nni:LevelPruner", NNILevelPruner, LevelPruner, {}),
    ("nni:L1NormPruner", NNIL1NormPruner, L1NormPruner, {}),
    ("nni:SlimPruner", NNISlimPruner, SlimPruner, {"training_steps": 6}),
    ("nni:TaylorPruner", NNITaylorPruner, TaylorPruner, {"training_steps": 6}),
]


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out = model(x)
    reset_states(model)
    return out


def _channel_sparsity(model: torch.nn.Module, masks: dict) -> float:
    total = kept = 0
    for g in model.channel_groups():
        rows = masks[g.conv]["weight"].flatten(1).sum(1) != 0
        total, kept = total + rows.numel(), kept + int(rows.sum())
    return 1.0 - kept / total


def _weight_sparsity(masks: dict) -> float:
    total = sum(m["weight"].numel() for m in masks.values())
    return 1.0 - sum(float(m["weight"].sum()) for m in masks.values()) / total


# ----- one implementation, two entry points ----------------------------------------------------
@pytest.mark.parametrize("budget", [{"max_epochs": 1}, {"max_steps": 10}])
def test_two_entry_points_give_the_same_masks(budget, digits, tiny_cnn):
    """NNI's compress() through make_evaluator and our prune() through fit: same seed and
    weights give the same batches, lr schedule, pruning steps, masks and weights, bit for bit."""
    model = tiny_cnn()
    fit(model, digits.train, epochs=1, max_steps=5, seed=0, quiet=True, device="cpu")
    config = default_config_list(0.8, structured=False)
    hp = {"prune_steps": 4, "regen_ratio": 0.5}  # regeneration by criticality: potential hooks on
    nni_model, our_model = copy.deepcopy(model), copy.deepcopy(model)

    evaluator = make_evaluator(nni_model, digits.train, lr=0.05, seed=3, device="cpu")
    via_nni = CriticalityUnstructuredPruner(nni_model, config, evaluator, **hp)
    via_nni.compress(**budget)

    ours = CriticalityUnstructuredPruner(our_model, config, **hp)
    limit = {"max_steps": budget["max_steps"]} if "max_steps" in budget else {}
    ours.prune(digits.train, epochs=1, lr=0.05, seed=3, device="cpu", quiet=True, **limit)

    assert via_nni.events == ours.events and len(ours.events) >= 2
    a, b = via_nni.get_masks(), ours.get_masks()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name]["weight"], b[name]["weight"]), name
    via_nni.unwrap_model()
    ours.unwrap_model()
    for (name, x), (_, y) in zip(nni_model.state_dict().items(), our_model.state_dict().items()):
        assert torch.equal(x, y), name


def test_compress_of_a_training_aware_pruner_needs_an_evaluator(tiny_cnn):
    pruner = CriticalityUnstructuredPruner(tiny_cnn(), default_config_list(0.5, structured=False))
    with pytest.raises(UserError, match="evaluator"):
        pruner.compress(max_epochs=1)
    with pytest.raises(UserError, match="evaluator"):
        NNISlimPruner(tiny_cnn(), default_config_list(0.5, structured=True)).compress()


# ----- make_evaluator ----------------------------------------------------------------------------
def test_evaluator_honours_max_steps_and_max_epochs(digits, tiny_cnn):
    model = tiny_cnn()
    evaluator = make_evaluator(model, digits.train, batch_size=64, evaluate_on=digits.test, device="cpu")
    assert evaluator.steps_per_epoch == digits.train.num_batches(64)
    evaluator._init_optimizer_helpers(model)
    evaluator.bind_model(model)
    evaluator.train(max_steps=3)
    assert evaluator.last_result.steps == 3
    evaluator.train(max_epochs=1)
    assert evaluator.last_result.steps == evaluator.steps_per_epoch
    accuracy = evaluator.evaluate()
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0
    evaluator.unbind_model()


@pytest.mark.parametrize("bad", [{"schedule": "bogus"}, {"optimizer": "rmsprop"}, {"lr": 0.0},
                                 {"batch_size": 0}])
def test_evaluator_rejects_bad_options(bad, digits, tiny_cnn):
    with pytest.raises(UserError):
        make_evaluator(tiny_cnn(), digits.train, **bad)


def test_nni_pruners_run_on_our_evaluator_as_nni_users_drive_them(digits, tiny_cnn):
    """compress() of a training-aware NNI pruner with our evaluator; Slim's factors are folded
    into the weights on unwrap, so the plain model computes what the wrapped one did."""
    model = tiny_cnn()
    evaluator = make_evaluator(model, digits.train, device="cpu")
    pruner = NNISlimPruner(model, default_config_list(0.5, structured=True), evaluator, training_steps=4)
    with pytest.raises(UserError, match="training_steps"):
        pruner.compress(max_steps=3)
    _, masks = pruner.compress()
    assert _channel_sparsity(model, masks) == pytest.approx(0.5, abs=0.01)
    x = digits.test.x[:32]
    wrapped = _outputs(model, x)
    pruner.unwrap_model()
    assert torch.allclose(_outputs(model, x), wrapped, atol=1e-6)


# ----- NNI's pruners in our registry ---------------------------------------------------------------
@pytest.mark.parametrize("name,cls,nni_cls,hp", NNI_PRUNERS, ids=[p[0] for p in NNI_PRUNERS])
def test_nni_pruner_through_prune(name, cls, nni_cls, hp, digits, tiny_cnn):
    spec = get_pruner(name)
    assert spec.factory is cls and issubclass(cls, nni_cls)
    assert spec.training_aware == bool(hp) and (spec.kind == "structured") == cls.structured
    model = tiny_cnn()
    fit(model, digits.train, epochs=1, max_steps=6, seed=0, quiet=True, device="cpu")
    pruner = cls(model, default_config_list(0.5, structured=cls.structured), **hp)
    result = pruner.prune(digits.train, epochs=1, lr=0.05, seed=0, device="cpu", quiet=True)
    assert result.steps == digits.train.num_batches(64)
    masks = pruner.get_masks()
    x = digits.test.x[:48]
    wrapped = _outputs(model, x)
    pruner.unwrap_model()
    pruner.unwrap_model()  # a second call is harmless
    assert torch.allclose(_outputs(model, x), wrapped, atol=1e-6)
    if not cls.structured:
        assert _weight_sparsity(masks) == pytest.approx(0.5, abs=0.01)
        return
    assert _channel_sparsity(model, masks) == pytest.approx(0.5, abs=0.01)
    for g in model.channel_groups():  # the BN follows its conv
        rows = (masks[g.conv]["weight"].flatten(1).sum(1) != 0).float()
        assert torch.equal(masks[g.bn]["weight"], rows) and torch.equal(masks[g.bn]["bias"], rows)
    small = compact(model, masks)
    assert (_outputs(small, x) - wrapped).abs().max() <= 1e-4
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_training_aware_prune_respects_the_phase_budget(digits, tiny_cnn):
    pruner = NNITaylorPruner(tiny_cnn(), default_config_list(0.5, structured=True), training_steps=4)
    result = pruner.prune(digits.train, epochs=2, max_steps=9, lr=0.05, device="cpu", quiet=True)
    assert result.steps == 9 and pruner.events[0]["step"] == 4


def test_nni_pruners_check_their_arguments(tiny_cnn):
    config = default_config_list(0.5, structured=True)
    with pytest.raises(UserError, match="training_steps"):
        NNISlimPruner(tiny_cnn(), config, training_steps=0)
    with pytest.raises(UserError, match="no hyperparameter"):
        NNIL1NormPruner(tiny_cnn(), config, sparsity=0.5)
    with pytest.raises(UserError, match="config_list"):
        NNIL1NormPruner(tiny_cnn(), None)
    with pytest.raises(UserError, match="does not have"):
        NNILevelPruner(tiny_cnn(), [{"op_names": ["nowhere"], "sparse_ratio": 0.5}])
    with pytest.raises(UserError, match="selects no layer"):
        NNIL1NormPruner(tiny_cnn(), [{"op_types": ["Linear"], "sparse_ratio": 0.5}])
    with pytest.raises(UserError, match="invalid config_list"):
        NNILevelPruner(tiny_cnn(), [{"op_types": ["Linear"], "sparse_ratio": 0.5, "colour": "red"}])


def test_structured_nni_pruners_prune_every_group_conv_alike(tiny_cnn):
    """A global group would empty whole layers (NNI ranks filter norms across fan-ins)."""
    model = tiny_cnn()
    pruner = NNIL1NormPruner(model, default_config_list(0.5, structured=True))
    _, masks = pruner.compress()
    for g in model.channel_groups():
        rows = masks[g.conv]["weight"].flatten(1).sum(1) != 0
        assert int(rows.sum()) == rows.numel() // 2, g.conv


# ----- the example -----------------------------------------------------------------------------------
def test_example_script_runs():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "nni_usage.py"), "--epochs", "1",
                           "--prune-epochs", "1"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nni:L1NormPruner" in done.stdout and "sca" in done.stdout


def test_a_pruner_that_ends_away_from_its_target_says_so(digits):
    """nni:SlimPruner ranks tied channels (silent channels get one and the same Slim factor) and
    keeps every tied one: on this resnet19 it pruned 0.094 of the channels for any target, and
    nothing said so. Every pruner run through `run_pruning` is now checked against its target."""
    from snnprune.models import build_model, seeded
    from snnprune.pruners import Budget, run_pruning

    small = snnprune.load_dataset("digits", subset=200, seed=0)
    with seeded(0):
        net = build_model("resnet19", num_classes=10, in_channels=1, image_size=8, T=2, width=0.25)
    out = run_pruning("nni:SlimPruner", net, small, sparsity=0.7, hyperparameters={"training_steps": 2},
                      budget=Budget(pretrain_epochs=1, prune_epochs=1, finetune_epochs=0, batch_size=32))
    assert len(out.notes) == 1 and "of the channels pruned, not the target 0.7" in out.notes[0], out.notes


def test_the_target_check_allows_rounding_and_nothing_more(tiny_cnn):
    from snnprune.pruners._pipeline import masked_channel_sparsity, target_note

    net = tiny_cnn(width=0.5)  # channels 16 / 32 / 64
    masks = {}
    for g, drop in zip(net.channel_groups(), (8, 16, 32)):  # exactly half of every layer
        w = torch.ones_like(net.get_submodule(g.conv).weight)
        w[:drop] = 0
        masks[g.conv] = {"weight": w}
    assert masked_channel_sparsity(net, masks) == 0.5
    assert target_note("p", net, masks, 0.5, True) is None
    assert target_note("p", net, masks, 0.52, True) is None  # within one channel per layer (3 of 112)
    assert target_note("p", net, masks, 0.6, True) == "p: 0.5 of the channels pruned, not the target 0.6"
    dense = {"fc": {"weight": torch.tensor([1.0, 0.0, 1.0, 0.0])}}
    assert target_note("p", net, dense, 0.5, False) is None
    assert target_note("p", net, dense, 0.9, False) == "p: 0.5 of the weights pruned, not the target 0.9"


def test_a_run_with_no_epoch_after_pruning_still_measures_validation_accuracy(digits):
    """The bug: with prune and fine-tune epochs 0 no epoch recorded val_accuracy, so it was None,
    and a search silently ranked its trials on the test accuracy instead."""
    from snnprune.models import build_model, seeded
    from snnprune.pruners import Budget, run_pruning
    from snnprune.search._runner import _objective_metrics

    small = snnprune.load_dataset("digits", subset=200, seed=0)
    with seeded(0):
        net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2, width=0.25)
    out = run_pruning("l1-filter", net, small, sparsity=0.5, quiet=True,
                      budget=Budget(pretrain_epochs=1, prune_epochs=0, finetune_epochs=0, batch_size=32))
    assert out.metrics["val_accuracy"] == snnprune.evaluate(out.model, small.val)["accuracy"]
    with pytest.raises(UserError, match="the validation split is empty"):
        _objective_metrics({**out.metrics, "val_accuracy": None})
