from __future__ import annotations

import math

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
                                    dict(optimizer="lbfgs"), dict(schedule="exp"), dict(device="tpu")])
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
