"""The training engine: `fit`, `evaluate`, callbacks, optimizers and checkpoints."""

from __future__ import annotations

from ._batchnorm import TRAINING_REVISION
from ._callbacks import Callback, CallbackList, FitContext, L1Penalty, MaskHold
from ._checkpoint import (atomic_torch_save, atomic_write_bytes, load_checkpoint, load_state, read_checkpoint,
                          save_checkpoint, state_mismatch)
from ._device import autocast, model_device, resolve_device
from ._inputs import check_split, whole_count
from ._loop import FIT_STATE_FORMAT, Batches, FitResult, evaluate, fit, fit_state, reset_states
from ._optim import OPTIMIZERS, SCHEDULES, check_rates, make_optimizer, make_scheduler

__all__ = [
    "FIT_STATE_FORMAT",
    "TRAINING_REVISION",
    "Batches",
    "Callback",
    "CallbackList",
    "FitContext",
    "FitResult",
    "L1Penalty",
    "MaskHold",
    "OPTIMIZERS",
    "SCHEDULES",
    "atomic_torch_save",
    "atomic_write_bytes",
    "check_rates",
    "autocast",
    "check_split",
    "evaluate",
    "fit",
    "fit_state",
    "load_checkpoint",
    "load_state",
    "make_optimizer",
    "make_scheduler",
    "model_device",
    "read_checkpoint",
    "reset_states",
    "resolve_device",
    "save_checkpoint",
    "state_mismatch",
    "whole_count",
]
