"""Optimizers and learning-rate schedules by name, validated."""

from __future__ import annotations

import math

import torch
from torch import nn

from snnprune.errors import UserError

__all__ = ["OPTIMIZERS", "SCHEDULES", "check_rates", "make_optimizer", "make_scheduler"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step", "constant")


FLOAT32_MAX = 3.4028234663852886e38


def check_rates(lr: float, weight_decay: float, what: str = "learning rate") -> None:
    """One line for a learning rate that is not a finite number > 0 (nan passed ``lr > 0``'s
    negation as "must be > 0, got nan") or a negative weight decay."""
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr)
            and 0 < lr <= FLOAT32_MAX):  # torch's optimizers hold it as a float32 (1e39 overflowed there)
        raise UserError(f"{what} must be a finite number in (0, 3.4e38] (float32), got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and weight_decay >= 0):
        raise UserError(f"weight decay must be a finite number >= 0, got {weight_decay!r}")


def make_optimizer(model: nn.Module, name: str = "sgd", *, lr: float = 0.1, momentum: float = 0.9,
                   weight_decay: float = 5e-4) -> torch.optim.Optimizer:
    """SGD with momentum (the seeds' choice) or Adam, over the trainable parameters."""
    check_rates(lr, weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, total_steps: int,
                   ) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule over ``total_steps``: cosine to 0, step (x0.1 at 50 % and 75 %), or constant."""
    total = max(1, int(total_steps))
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if name == "step":
        milestones = sorted({max(1, total // 2), max(1, (3 * total) // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
    raise UserError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
