"""`make_evaluator`: an NNI 3.0 `TorchEvaluator` whose training loop is our engine.

NNI drives training-aware pruners through an evaluator: it rebuilds the (traced) optimizer for
the wrapped model, patches its ``step`` with the pruner's hooks and its ``training_step`` with
extra losses, then calls ``training_func(model, optimizers, training_step, lr_schedulers,
max_steps, max_epochs)``. Ours hands all of that to `snnprune.fit`, so under NNI a network trains
exactly as under our own entry point (``pruner.prune`` / ``fit(callbacks=[pruner.callback()])``):
same batch order for the same seed, same per-step learning-rate schedule, neuron state reset
before every batch, the same NaN check. That is what makes the two entry points give the same
masks (tests/pruners/test_nni.py checks it bit for bit).

    evaluator = make_evaluator(model, data.train, lr=0.05, evaluate_on=data.val)
    pruner = CriticalityUnstructuredPruner(model, config_list, evaluator)
    pruner.compress(max_epochs=2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import nni
import torch
import torch.nn.functional as F
from nni.compression import TorchEvaluator
from torch import nn

from snnprune.engine import OPTIMIZERS, SCHEDULES, Batches, Callback, FitResult, check_rates, evaluate, fit
from snnprune.errors import UserError

__all__ = ["make_evaluator", "training_step"]


def training_step(batch: tuple[torch.Tensor, torch.Tensor], model: nn.Module) -> torch.Tensor:
    """NNI's ``training_step``: cross-entropy of the model's output (the mean over T).

    The same loss `snnprune.fit` computes when it is given no ``loss_fn``; NNI pruners (Slim)
    patch it to add their regularisation.
    """
    x, y = batch
    return F.cross_entropy(model(x).float(), y)


def _traced_optimizer(model: nn.Module, name: str, lr: float, momentum: float,
                      weight_decay: float) -> torch.optim.Optimizer:
    """The optimizer `snnprune.engine.make_optimizer` would build, traced so NNI can rebuild it."""
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    check_rates(lr, weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserError("the model has no trainable parameter: nothing for an optimizer to train")
    if name == "sgd":
        return nni.trace(torch.optim.SGD)(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return nni.trace(torch.optim.Adam)(params, lr=lr, weight_decay=weight_decay)


def make_evaluator(
    model: nn.Module,
    train: Batches,
    *,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    schedule: str = "cosine",
    seed: int = 0,
    device: str | torch.device | None = "auto",
    quiet: bool = True,
    optimizer: str = "sgd",
    epochs: int = 1,
    val: Batches | None = None,
    evaluate_on: Batches | None = None,
    callbacks: Sequence[Callback] = (),
    amp: bool = True,
    desc: str = "nni",
) -> TorchEvaluator:
    """A `TorchEvaluator` that trains with `snnprune.fit` on ``train``.

    Build it on the model the pruner will wrap (before or after wrapping: the traced optimizer
    is rebuilt on the wrapped parameters by name either way). Each ``evaluator.train(max_steps,
    max_epochs)`` is one `fit` call with a fresh schedule (``schedule``) over its length:
    ``max_epochs`` epochs, stopped after ``max_steps`` steps when given; with neither (NNI's
    "fine-tune") it trains ``epochs`` epochs. The data order is seeded by ``seed``, so two
    calls see the same batches. ``evaluator.steps_per_epoch`` is set (our pruners' ``compress
    (max_epochs=...)`` needs it) and ``evaluator.last_result`` holds the last `FitResult`.
    ``evaluate_on`` (a validation or test split) gives ``evaluator.evaluate()`` its accuracy;
    ``val`` is measured after each training epoch, as in `fit`.
    """
    if schedule not in SCHEDULES:
        raise UserError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise UserError(f"batch size must be an integer >= 1, got {batch_size!r}")
    if int(epochs) != epochs or epochs < 1:
        raise UserError(f"epochs must be an integer >= 1, got {epochs!r}")
    per_epoch = train.num_batches(batch_size)
    if per_epoch == 0:
        raise UserError(f"the training split is empty: nothing to train on (batch size {batch_size})")
    traced = _traced_optimizer(model, optimizer, lr, momentum, weight_decay)

    def training_func(model: nn.Module, optimizers: Any, training_step: Any, lr_schedulers: Any = None,
                      max_steps: int | None = None, max_epochs: int | None = None) -> FitResult:
        opt = optimizers if isinstance(optimizers, torch.optim.Optimizer) else optimizers[0]
        if max_epochs is not None:
            n_epochs = int(max_epochs)
        elif max_steps is not None:
            n_epochs = max(1, math.ceil(int(max_steps) / per_epoch))
        else:
            n_epochs = int(epochs)
        result = fit(model, train, val=val, epochs=n_epochs, max_steps=max_steps, batch_size=batch_size,
                     optimizer=opt, schedule=schedule, callbacks=callbacks, seed=seed, device=device,
                     amp=amp, loss_fn=training_step, quiet=quiet, desc=desc)
        evaluator.last_result = result
        return result

    def evaluating_func(model: nn.Module) -> float:
        return evaluate(model, evaluate_on, batch_size=max(256, batch_size), device=device, amp=amp)["accuracy"]

    evaluator = TorchEvaluator(training_func, traced, training_step,
                               evaluating_func=evaluating_func if evaluate_on is not None else None)
    evaluator.steps_per_epoch = per_epoch
    evaluator.last_result = None
    return evaluator
