from __future__ import annotations

import contextlib
import math
import pickle

import pytest
import torch

import snnprune
from snnprune.engine import Callback, L1Penalty, fit, evaluate, load_checkpoint, save_checkpoint
from snnprune.errors import TrainingDiverged, UserError


def test_digits_reaches_ninety_percent_in_five_epochs(digits, tiny_cnn):
    net = tiny_cnn(width=1.0, T=4)
    result = fit(net, digits.train, val=digits.val, epochs=5, batch_size=64, lr=0.1, quiet=True)
    assert len(result.history) == 5
    assert evaluate(net, digits.test)["accuracy"] >= 0.90


def _weights(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_same_seed_same_weights_other_seed_other_weights(digits, tiny_cnn):
    runs = []
    for seed in (0, 0, 1):
        net = tiny_cnn(seed=0)
        fit(net, digits.train, epochs=1, max_steps=5, seed=seed, quiet=True)
        runs.append(_weights(net))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, ctx):
        self.calls.append("fit_start")

    def on_batch_start(self, ctx):
        self.calls.append("batch")

    def after_forward(self, ctx, output, loss):
        self.calls.append("forward")
        assert output.shape[-1] == 10 and loss.requires_grad

    def before_step(self, ctx):
        # gradients exist here and the optimizer has not stepped yet
        assert all(p.grad is not None for p in ctx.model.parameters())
        self.calls.append("before_step")

    def after_step(self, ctx):
        self.calls.append("after_step")

    def on_epoch_end(self, ctx, record):
        self.calls.append("epoch_end")
        ctx.stop = True

    def on_fit_end(self, ctx):
        self.calls.append("fit_end")


def test_callbacks_run_in_order_and_can_stop_training(digits, tiny_cnn):
    rec = Recorder()
    result = fit(tiny_cnn(), digits.train, epochs=3, max_steps=2, callbacks=[rec], quiet=True)
    assert rec.calls == ["fit_start", "batch", "forward", "before_step", "after_step",
                         "batch", "forward", "before_step", "after_step", "epoch_end", "fit_end"]
    assert result.steps == 2


def test_l1_penalty_adds_lambda_sign_to_the_gradient(tiny_cnn):
    net = tiny_cnn()
    conv = net.features[0]
    conv.weight.grad = torch.zeros_like(conv.weight)
    L1Penalty([conv.weight], 0.5).before_step(None)
    assert torch.equal(conv.weight.grad, 0.5 * torch.sign(conv.weight.detach()))


def test_nan_loss_raises_training_diverged(digits, tiny_cnn):
    class Poison(Callback):
        def after_step(self, ctx):
            with torch.no_grad():
                ctx.model.classifier[1].weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="nan"):
        fit(tiny_cnn(), digits.train, epochs=1, callbacks=[Poison()], quiet=True)


@pytest.mark.parametrize("kwargs", [dict(epochs=0), dict(batch_size=0), dict(lr=-1.0),
                                    dict(optimizer="lbfgs"), dict(schedule="exp"), dict(device="tpu"),
                                    # found by probing: each reached torch or range() as a traceback
                                    {"epochs": 2.5}, {"epochs": float("nan")}, {"epochs": float("inf")},
                                    {"epochs": None}, {"batch_size": float("nan")}, {"max_steps": 2.5},
                                    {"max_steps": "3"}, {"max_steps": True}, {"lr": 1e39},
                                    {"device": "mps"}, {"device": "meta"}])
def test_bad_fit_arguments_are_user_errors(digits, tiny_cnn, kwargs):
    with pytest.raises(UserError):
        fit(tiny_cnn(), digits.train, **{"epochs": 1, **kwargs}, quiet=True)


@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
def test_schedules_and_adam_run(digits, tiny_cnn, schedule):
    result = fit(tiny_cnn(), digits.train, epochs=1, max_steps=3, schedule=schedule,
                 optimizer="adam", lr=1e-3, quiet=True)
    assert math.isfinite(result.final["train_loss"])


def test_checkpoint_round_trip_rebuilds_the_model(tmp_path, digits, tiny_cnn):
    net = tiny_cnn()
    fit(net, digits.train, epochs=1, max_steps=3, quiet=True)
    path = save_checkpoint(tmp_path / "ck" / "model.pt", net, note="hello")
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left behind
    loaded, meta = load_checkpoint(path)
    assert meta == {"note": "hello"}
    net.eval(), loaded.eval()
    x = digits.test.x[:8]
    assert torch.equal(net(x), loaded(x))


def test_corrupt_or_missing_checkpoint_is_a_user_error(tmp_path, tiny_cnn):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    save_checkpoint(other, tiny_cnn(width=1.0))
    with pytest.raises(UserError, match="does not fit"):
        load_checkpoint(other, tiny_cnn(width=0.5))


def test_public_api_is_exported():
    for name in ("build_model", "load_dataset", "fit", "evaluate", "measure", "save_checkpoint"):
        assert callable(getattr(snnprune, name))


@pytest.mark.parametrize("content,reason", [
    (b"hello\n", "KeyError"),  # was a bare KeyError: 101
    (b"a: 1\n", "IndexError"),  # was a bare IndexError: pop from empty list
    (pickle.dumps(object, protocol=4), "UnpicklingError: Unsupported"),
])
def test_any_unreadable_file_is_one_line_without_torchs_advice(tmp_path, content, reason):
    path = tmp_path / "file.pt"
    path.write_bytes(content)
    with pytest.raises(UserError, match="not a torch checkpoint") as info:
        load_checkpoint(path)
    message = str(info.value)
    assert reason in message and "\n" not in message
    for advice in ("weights_only", "PyTorch 2.6", "Re-running", "torch.load"):
        assert advice not in message


def test_a_folder_is_not_a_checkpoint_file(tmp_path):
    with pytest.raises(UserError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_of_another_width_names_the_key_the_shapes_and_the_build_args(tmp_path, tiny_cnn):
    other = save_checkpoint(tmp_path / "other.pt", tiny_cnn(width=1.0))
    with pytest.raises(UserError) as info:
        load_checkpoint(other, tiny_cnn(width=0.5))
    message = str(info.value)
    assert "features.0.weight is 32x1x3x3 in the file but 16x1x3x3 in the model" in message
    assert "built for cnn (width=1.0), this model is cnn (width=0.5)" in message


def test_a_checkpoint_with_a_missing_or_unexpected_key_names_it(tmp_path, tiny_cnn):
    path = save_checkpoint(tmp_path / "ck.pt", tiny_cnn())
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["extra.weight"] = torch.zeros(1)
    torch.save(payload, path)
    with pytest.raises(UserError, match="extra.weight is in the file but not in the model"):
        load_checkpoint(path, tiny_cnn())
    del payload["state_dict"]["classifier.1.bias"]
    torch.save(payload, path)
    with pytest.raises(UserError, match="classifier.1.bias is missing from the file"):
        load_checkpoint(path, tiny_cnn())


def test_load_checkpoint_on_a_compact_model_points_to_load_compact(tmp_path, tiny_cnn):
    from snnprune.compaction import save_compact

    path = save_compact(tmp_path / "small.pt", tiny_cnn())
    with pytest.raises(UserError, match="is a compact model .*load it with snnprune.load_compact"):
        load_checkpoint(path)


def _other_shape_model():
    return snnprune.build_model("cnn", num_classes=10, in_channels=3, image_size=32, T=2, width=0.25)


@pytest.mark.parametrize("call", ["fit", "evaluate", "measure", "run_pruning"])
def test_data_of_another_shape_names_both_shapes(digits, call):
    """Was torch's 'expected input[64, 1, 8, 8] to have 3 channels' from the first forward."""
    from snnprune.pruners import run_pruning

    net = _other_shape_model()
    calls = {
        "fit": lambda: fit(net, digits.train, max_steps=1, quiet=True),
        "evaluate": lambda: evaluate(net, digits.test),
        "measure": lambda: snnprune.measure(net, digits.test),
        "run_pruning": lambda: run_pruning("gmp", net, digits, sparsity=0.5),
    }
    with pytest.raises(UserError, match=f"^{call}: the model \\(cnn\\) was built for 3x32x32 images .* "
                                        "the data holds 1x8x8 images") as info:
        calls[call]()
    assert "in_channels=3, image_size=32" in str(info.value)


@pytest.mark.parametrize("call", ["fit", "evaluate"])
def test_labels_beyond_the_models_classes_name_both(digits, call):
    """Was cross-entropy's raw 'IndexError: Target 8 is out of bounds.'"""
    net = snnprune.build_model("cnn", num_classes=5, in_channels=1, image_size=8, T=2, width=0.25)
    calls = {"fit": lambda: fit(net, digits.train, max_steps=1, quiet=True),
             "evaluate": lambda: evaluate(net, digits.test)}
    with pytest.raises(UserError, match=f"^{call}: the model \\(cnn\\) was built for 5 classes "
                                        "\\(num_classes=5\\) but the data has label 9"):
        calls[call]()


def test_the_wrong_kind_of_data_says_what_to_pass(digits, tiny_cnn):
    from snnprune.pruners import run_pruning

    with pytest.raises(UserError, match="fit expects a Split such as data.train, got DataSplits"):
        fit(tiny_cnn(), digits, quiet=True)
    with pytest.raises(UserError, match="evaluate expects a Split such as data.test, got DataSplits"):
        evaluate(tiny_cnn(), digits)
    with pytest.raises(UserError, match="measure expects a Split such as data.test, got DataSplits"):
        snnprune.measure(tiny_cnn(), digits)
    with pytest.raises(UserError, match="run_pruning expects DataSplits .*got Split"):
        run_pruning("gmp", tiny_cnn(), digits.train, sparsity=0.5)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64])
def test_fit_rejects_a_seed_out_of_range(digits, tiny_cnn, seed):
    with pytest.raises(UserError, match="seed must be an integer"):
        fit(tiny_cnn(), digits.train, max_steps=1, seed=seed, quiet=True)


def test_an_integral_float_of_epochs_is_taken(digits, tiny_cnn):
    """fit(epochs=2.0) passed the check, then range(2.0) raised TypeError after on_fit_start."""
    result = fit(tiny_cnn(), digits.train, epochs=2.0, max_steps=2, quiet=True)
    assert result.steps == 2


def test_a_failed_fit_leaves_no_pruner_hooks_behind(digits, tiny_cnn):
    """The bug: an exception during fit skipped on_fit_end, so the pruner's potential hooks stayed
    on the model and the next fit gathered every statistic twice (18 calls instead of 9)."""
    from snnprune.pruners import SCAPruner, default_config_list

    def calls_in_one_epoch(fail: bool) -> int:
        net = tiny_cnn()
        pruner = SCAPruner(net, default_config_list(0.5, structured=True))
        counted = []
        original = pruner.on_potential
        pruner.on_potential = lambda *a: (counted.append(1), original(*a))

        class Boom(Callback):
            def after_step(self, ctx):
                if ctx.step == 1:
                    raise KeyboardInterrupt

        if fail:
            with pytest.raises(KeyboardInterrupt):
                fit(net, digits.train, max_steps=3, callbacks=[pruner.callback(), Boom()], quiet=True)
            assert pruner._recorder is None  # its potential hooks are gone
            counted.clear()
        fit(net, digits.train, max_steps=3, callbacks=[pruner.callback()], quiet=True)
        return len(counted)

    assert calls_in_one_epoch(fail=True) == calls_in_one_epoch(fail=False) > 0


def test_checkpoint_metadata_is_saved_as_plain_values(tmp_path, tiny_cnn):
    """A numpy float saved fine, and the weights-only load then called the file corrupt."""
    import numpy as np

    path = save_checkpoint(tmp_path / "c.pt", tiny_cnn(), acc=np.float64(0.5), where=tmp_path, steps=torch.tensor(3))
    meta = torch.load(path, weights_only=True)["meta"]
    assert meta == {"acc": 0.5, "where": str(tmp_path), "steps": 3}
    load_checkpoint(path, tiny_cnn())
    with pytest.raises(UserError, match="metadata must be JSON-like"):
        save_checkpoint(tmp_path / "d.pt", tiny_cnn(), net=tiny_cnn())
    assert not (tmp_path / "d.pt").exists()


def test_train_accuracy_is_absent_when_a_loss_fn_hides_the_output(digits, tiny_cnn):
    """History said train_accuracy 0.0 although a loss_fn means the output is never seen."""
    import torch.nn.functional as F

    def loss_fn(batch, model):
        x, y = batch
        return F.cross_entropy(model(x), y)

    result = fit(tiny_cnn(), digits.train, max_steps=1, loss_fn=loss_fn, quiet=True)
    assert result.history[-1]["train_accuracy"] is None


def test_evaluate_starts_from_reset_neurons(digits, tiny_cnn):
    """Potentials left by a forward run without `reset_states` changed evaluate's first batch."""
    net = tiny_cnn()
    fit(net, digits.train, epochs=1, max_steps=15, quiet=True)  # a fresh net's neurons hardly fire
    test = digits.test
    fresh = evaluate(net, test, batch_size=64)
    net.eval()
    with torch.no_grad():
        net(torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 5)  # no reset after it
    assert evaluate(net, test, batch_size=64) == fresh


def test_evaluate_gives_the_model_back_on_its_own_device(monkeypatch, tiny_cnn):
    """With device 'auto' on a GPU machine a CPU model came back on CUDA. No GPU here: the moves
    are recorded rather than made."""
    from snnprune.engine import _loop

    class AnyDevice:  # batches stay on the CPU whatever device is asked for
        def __len__(self):
            return 3

        def batches(self, batch_size, shuffle=False, device=None):
            yield torch.zeros(3, 1, 8, 8), torch.zeros(3, dtype=torch.long)

    net = tiny_cnn()
    moves: list[torch.device] = []
    monkeypatch.setattr(_loop, "resolve_device", lambda _device: torch.device("cuda"))
    monkeypatch.setattr(_loop, "check_split", lambda *args: None)
    monkeypatch.setattr(_loop, "autocast", lambda *args: contextlib.nullcontext())
    monkeypatch.setattr(type(net), "to", lambda self, device=None, *a, **k: moves.append(torch.device(device)) or self)
    evaluate(net, AnyDevice())
    assert moves[0] == torch.device("cuda") and moves[-1] == torch.device("cpu")
