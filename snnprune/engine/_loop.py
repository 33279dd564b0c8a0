"""`fit` and `evaluate`: the one training loop every part of snnprune uses.

The loop is deliberately plain (forward, loss, backward, step, reset) with callbacks at the
points pruners need, so a pruner written once runs the same under the CLI, the search and NNI's
TorchEvaluator. It resets neuron state before every batch, seeds its own data order, checks
the loss for NaN/inf, and shows one progress bar per epoch unless ``quiet``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional as sj_functional
from torch import nn
from tqdm.auto import tqdm

from snnprune._modes import eval_mode
from snnprune._seeds import check_seed
from snnprune.errors import TrainingDiverged, UserError

from ._batchnorm import debias_running_stats, fresh_batchnorms
from ._callbacks import Callback, CallbackList, FitContext
from ._device import autocast, model_device, resolve_device
from ._inputs import check_split, whole_count
from ._optim import make_optimizer, make_scheduler

__all__ = ["FIT_STATE_FORMAT", "Batches", "FitResult", "evaluate", "fit", "fit_state", "reset_states"]

#: The ``format`` of `fit_state`'s dict: what `fit(resume=...)` knows how to go on from.
FIT_STATE_FORMAT = "snnprune-fit-state/1"


class Batches(Protocol):
    """What `fit` needs from a data split (`snnprune.data.Split` is one)."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu", drop_last: bool = False) -> Iterable[Any]: ...

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int: ...


@dataclass
class FitResult:
    """Per-epoch records (train loss/accuracy, validation accuracy, lr, seconds) and totals."""

    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def reset_states(model: nn.Module) -> None:
    """Reset every neuron's membrane state (spikingjelly's reset_net)."""
    sj_functional.reset_net(model)


def evaluate(model: nn.Module, split: Batches, *, batch_size: int = 256,
             device: str | torch.device | None = "auto", amp: bool = True) -> dict[str, float]:
    """Accuracy and mean cross-entropy over a split, in eval mode, without gradients.

    The neurons start from their reset state: potentials left by the caller's last forward
    (run without `reset_states`) changed the first batch's outputs (accuracy 0.047 against
    0.125 on a tiny net). The model runs on ``device`` and goes back to the device it came
    from, as `measure` does: a CPU model evaluated with ``device="auto"`` on a GPU machine
    came back on CUDA.
    """
    check_split(model, split, "evaluate", "data.test")
    dev = resolve_device(device)
    home = model_device(model)
    model.to(dev)
    correct, loss_sum, n = 0, 0.0, 0
    try:
        with eval_mode(model), torch.no_grad(), autocast(dev, amp):
            reset_states(model)
            for x, y in split.batches(batch_size, shuffle=False, device=dev):
                out = model(x).float()
                reset_states(model)
                loss_sum += F.cross_entropy(out, y, reduction="sum").item()
                correct += (out.argmax(1) == y).sum().item()
                n += y.numel()
    finally:
        if home is not None:
            model.to(home)
    return {"accuracy": correct / n if n else float("nan"), "loss": loss_sum / n if n else float("nan"),
            "samples": n}


def _check_fit_args(model: nn.Module, train: Batches, val: Batches | None, epochs: int,
                    batch_size: int, max_steps: int | None, seed: int) -> tuple[int, int, int | None]:
    """Every argument a user may get wrong, one line each, before the model moves or trains;
    returns (epochs, batch size, max_steps) as ints."""
    check_split(model, train, "fit")
    if val is not None:
        check_split(model, val, "fit (val=)", "data.val")
    check_seed(seed)
    return (whole_count(epochs, "epochs"), whole_count(batch_size, "batch size"),
            None if max_steps is None else whole_count(max_steps, "max_steps"))


def fit(
    model: nn.Module,
    train: Batches,
    *,
    val: Batches | None = None,
    epochs: int = 1,
    batch_size: int = 64,
    optimizer: str | torch.optim.Optimizer = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    schedule: str = "cosine",
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    device: str | torch.device | None = "auto",
    amp: bool = True,
    max_steps: int | None = None,
    loss_fn: Callable[[tuple[torch.Tensor, torch.Tensor], nn.Module], torch.Tensor] | None = None,
    quiet: bool = False,
    desc: str = "train",
    resume: Mapping[str, Any] | None = None,
) -> FitResult:
    """Train ``model`` on ``train`` with cross-entropy on the mean-over-T output.

    ``optimizer`` is a name ('sgd', 'adam') or a ready optimizer (then ``lr``/``momentum``/
    ``weight_decay`` are ignored). The schedule runs per step over ``epochs`` (or ``max_steps``).
    Validation accuracy is measured after every epoch when ``val`` is given and non-empty.
    BN layers that start with torch's placeholder statistics (a network trained from scratch)
    have the placeholders' share divided out after the first epoch (`_batchnorm`): a short run
    is then judged with the statistics of its own batches, not a variance of ~1 left over.
    ``loss_fn(batch, model) -> loss`` replaces forward + cross-entropy (NNI's ``training_step``,
    which compressors patch); the output is then not seen and train accuracy is not tracked.
    ``resume`` is a `fit_state` taken at the end of an epoch of a fit with the same arguments:
    training goes on from there with the optimizer's moments, the schedule's position and the
    data order restored, so a fit paused and resumed ends with the weights of one never paused
    (the search's promotions rely on it). The model must already hold the weights of that moment.
    Raises `TrainingDiverged` when the loss turns NaN or infinite.
    """
    epochs, batch_size, max_steps = _check_fit_args(model, train, val, epochs, batch_size, max_steps, seed)
    dev = resolve_device(device)
    model.to(dev)
    opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else make_optimizer(
        model, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    per_epoch = train.num_batches(batch_size)
    if per_epoch == 0:
        raise UserError(f"the training split is empty: nothing to train on (batch size {batch_size})")
    total = min(epochs * per_epoch, max_steps or math.inf)
    scheduler = make_scheduler(opt, schedule, int(total))
    cbs = CallbackList(callbacks)
    generator = torch.Generator().manual_seed(int(seed))
    ctx = FitContext(model=model, optimizer=opt, device=dev, epochs=epochs, steps_per_epoch=per_epoch,
                     total_steps=int(total), scheduler=scheduler, generator=generator)
    if resume is not None:
        _restore(ctx, resume)
    result = FitResult(history=ctx.history)
    sj_functional.invalidate_reset_cache(model)
    reset_states(model)
    try:
        cbs.on_fit_start(ctx)
        start = _epochs(model, train, val, opt, scheduler, cbs, ctx, result, generator, batch_size, dev, amp,
                        total, quiet, desc, loss_fn)
    except BaseException as error:  # a diverged loss, Ctrl-C, a callback's own failure
        cbs.on_fit_error(ctx, error)
        raise
    cbs.on_fit_end(ctx)
    result.steps = ctx.step
    result.seconds = time.perf_counter() - start
    return result


def fit_state(ctx: FitContext) -> dict[str, Any]:
    """What `fit(resume=...)` needs to go on after the epoch that just ended (call it from
    ``on_epoch_end``): the optimizer's state, the schedule's position, the data-order generator,
    the steps taken and the history so far, copied, as tensors and plain values that load with
    ``torch.load(weights_only=True)``."""
    if ctx.scheduler is None or ctx.generator is None:
        raise UserError("fit_state needs the context of a running fit (its scheduler and generator)")
    return {"format": FIT_STATE_FORMAT, "epoch": ctx.epoch + 1, "epochs": ctx.epochs,
            "steps_per_epoch": ctx.steps_per_epoch, "step": ctx.step,
            "optimizer": copy.deepcopy(ctx.optimizer.state_dict()),
            "scheduler": copy.deepcopy(ctx.scheduler.state_dict()),
            "generator": ctx.generator.get_state().clone(), "history": copy.deepcopy(ctx.history)}


def _restore(ctx: FitContext, state: Mapping[str, Any]) -> None:
    """Load a `fit_state` into a new fit's context; one line for a state this fit cannot go on from."""
    if not isinstance(state, Mapping) or state.get("format") != FIT_STATE_FORMAT:
        raise UserError(f"resume= takes a fit_state ({FIT_STATE_FORMAT}), got {type(state).__name__}")
    if (state["epochs"], state["steps_per_epoch"]) != (ctx.epochs, ctx.steps_per_epoch):
        raise UserError(f"cannot resume: the paused fit ran {state['epochs']} epochs of {state['steps_per_epoch']} "
                        f"batches, this one {ctx.epochs} of {ctx.steps_per_epoch} (other epochs, data or batch size)")
    if not 1 <= int(state["epoch"]) < ctx.epochs:
        raise UserError(f"cannot resume after epoch {state['epoch']} of a {ctx.epochs}-epoch fit")
    scheduler, generator = ctx.scheduler, ctx.generator
    if scheduler is None or generator is None:
        raise UserError("resume needs the context of a running fit (its scheduler and generator)")
    try:
        ctx.optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        for group in ctx.optimizer.param_groups:  # torch checks the counts, not the shapes
            for param in group["params"]:
                for key, value in ctx.optimizer.state.get(param, {}).items():
                    if torch.is_tensor(value) and value.dim() > 0 and value.shape != param.shape:
                        raise ValueError(f"{key} of shape {tuple(value.shape)} for a parameter of "
                                         f"shape {tuple(param.shape)}")
    except (ValueError, KeyError, RuntimeError) as exc:
        raise UserError(f"cannot resume: the saved optimizer or schedule does not fit this model "
                        f"({str(exc).splitlines()[0][:160]})") from None
    ctx.epoch, ctx.step = int(state["epoch"]), int(state["step"])
    ctx.history.extend(copy.deepcopy(list(state["history"])))


def _epochs(model: nn.Module, train: Batches, val: Batches | None, opt: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler, cbs: Callback, ctx: FitContext, result: FitResult,
            generator: torch.Generator, batch_size: int, dev: torch.device, amp: bool, total: float,
            quiet: bool, desc: str,
            loss_fn: Callable[[Any, nn.Module], torch.Tensor] | None) -> float:
    """The epochs of `fit`, each followed by validation and ``on_epoch_end``; returns when they
    started (``perf_counter``)."""
    first = ctx.epoch  # 0, or the epochs a resumed fit already ran
    fresh = fresh_batchnorms(model) if first == 0 else []  # from scratch: unbias their statistics after epoch 1
    start = time.perf_counter()
    for epoch in range(first, ctx.epochs):
        ctx.epoch = epoch
        record = _train_epoch(model, train, opt, scheduler, cbs, ctx, generator, batch_size, dev,
                              amp, total, quiet, f"{desc} {epoch + 1}/{ctx.epochs}", loss_fn)
        if fresh:
            debias_running_stats(fresh)
            fresh = []
        if val is not None and len(val) > 0:
            record["val_accuracy"] = evaluate(model, val, device=dev, amp=amp)["accuracy"]
            model.train()
        record["seconds"] = time.perf_counter() - start
        ctx.history.append(record)
        cbs.on_epoch_end(ctx, record)
        if ctx.stop or ctx.step >= total:
            result.stopped_early = ctx.stop
            break
    return start


def _train_epoch(model: nn.Module, train: Batches, opt: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, cbs: Callback, ctx: FitContext,
                 generator: torch.Generator, batch_size: int, dev: torch.device, amp: bool,
                 total: float, quiet: bool, desc: str,
                 loss_fn: Callable[[Any, nn.Module], torch.Tensor] | None) -> dict[str, Any]:
    model.train()
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    seen = 0
    bar = tqdm(total=ctx.steps_per_epoch, desc=desc, leave=False, disable=quiet, unit="batch")
    for i, (x, y) in enumerate(train.batches(batch_size, shuffle=True, generator=generator, device=dev)):
        ctx.batch_index = i
        cbs.on_batch_start(ctx)
        with autocast(dev, amp):
            if loss_fn is None:
                out = model(x)
                loss = F.cross_entropy(out.float(), y)
            else:
                out, loss = None, loss_fn((x, y), model)
        cbs.after_forward(ctx, out, loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        cbs.before_step(ctx)
        opt.step()
        scheduler.step()
        cbs.after_step(ctx)
        reset_states(model)
        ctx.step += 1
        with torch.no_grad():
            loss_sum += loss.detach() * y.numel()
            if out is not None:
                correct += (out.argmax(1) == y).sum()
        seen += y.numel()
        if (i + 1) % 20 == 0 or i + 1 == ctx.steps_per_epoch:
            running = loss_sum.item() / seen
            if not math.isfinite(running):
                bar.close()
                raise TrainingDiverged(f"loss became {running} at epoch {ctx.epoch + 1}, step {ctx.step}")
            bar.set_postfix(loss=f"{running:.3f}", acc=f"{correct.item() / seen:.3f}", refresh=False)
        bar.update(1)
        if ctx.step >= total:
            break
    bar.close()
    train_loss = loss_sum.item() / max(seen, 1)
    if not math.isfinite(train_loss):
        raise TrainingDiverged(f"loss became {train_loss} at epoch {ctx.epoch + 1}")
    accuracy = None if loss_fn is not None else correct.item() / max(seen, 1)  # loss_fn: output not seen
    return {"epoch": ctx.epoch + 1, "train_loss": train_loss, "train_accuracy": accuracy,
            "lr": opt.param_groups[0]["lr"], "steps": ctx.step}
