"""`fit(resume=fit_state(...))`: a fit paused at an epoch's end and resumed in a new fit (a new
process, through a file) ends with exactly the weights of one never paused."""

from __future__ import annotations

import io

import pytest
import torch

from snnprune.engine import Callback, fit, fit_state
from snnprune.errors import UserError


class _PauseAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch, self.state, self.weights = epoch, None, None

    def on_epoch_end(self, ctx, record):
        if ctx.epoch + 1 == self.epoch:
            self.state = fit_state(ctx)
            self.weights = {k: v.clone() for k, v in ctx.model.state_dict().items()}
            ctx.stop = True


def _through_a_file(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # what a paused trial's checkpoint is read with


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "cosine"), ("adam", "step")])
def test_a_fit_paused_and_resumed_ends_with_the_weights_of_one_never_paused(digits, tiny_cnn, optimizer, schedule):
    args = {"val": digits.val, "epochs": 3, "batch_size": 128, "lr": 0.05, "optimizer": optimizer,
            "schedule": schedule, "seed": 3, "quiet": True}
    straight = tiny_cnn()
    whole = fit(straight, digits.train, **args)

    paused = tiny_cnn()
    pause = _PauseAt(1)
    first = fit(paused, digits.train, callbacks=[pause], **args)
    assert first.stopped_early and len(first.history) == 1

    resumed = tiny_cnn(seed=9)  # another network: everything comes from the saved state
    resumed.load_state_dict(_through_a_file(pause.weights))
    rest = fit(resumed, digits.train, resume=_through_a_file(pause.state), **args)

    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert [r["epoch"] for r in rest.history] == [1, 2, 3]  # the paused epoch's record is kept
    assert rest.history[-1]["val_accuracy"] == whole.history[-1]["val_accuracy"]
    assert rest.steps == whole.steps


def test_a_state_from_another_fit_is_one_line(digits, tiny_cnn):
    pause = _PauseAt(1)
    fit(tiny_cnn(), digits.train, epochs=2, batch_size=128, callbacks=[pause], quiet=True)
    with pytest.raises(UserError, match="paused fit ran 2 epochs of .* this one 3"):
        fit(tiny_cnn(), digits.train, epochs=3, batch_size=128, resume=pause.state, quiet=True)
    with pytest.raises(UserError, match="paused fit ran"):
        fit(tiny_cnn(), digits.train, epochs=2, batch_size=64, resume=pause.state, quiet=True)
    with pytest.raises(UserError, match="optimizer or schedule does not fit"):
        fit(tiny_cnn(width=1.0), digits.train, epochs=2, batch_size=128, resume=pause.state, quiet=True)
    with pytest.raises(UserError, match="takes a fit_state"):
        fit(tiny_cnn(), digits.train, epochs=2, resume={"epoch": 1}, quiet=True)


def test_fit_state_outside_a_fit_is_one_line(tiny_cnn):
    from snnprune.engine import FitContext

    ctx = FitContext(model=tiny_cnn(), optimizer=torch.optim.SGD(tiny_cnn().parameters(), lr=0.1),
                     device=torch.device("cpu"), epochs=1, steps_per_epoch=1)
    with pytest.raises(UserError, match="running fit"):
        fit_state(ctx)
