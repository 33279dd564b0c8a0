"""Checks that a split fits the call and the model before any batch runs.

Passing the wrong object (all the splits where one is wanted) or data of another shape than
the model was built for would otherwise surface as an AttributeError or as torch's
"expected input[64, 1, 8, 8] to have 3 channels" from deep inside the first forward pass,
which names neither the model's build arguments nor the data set's.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import nn

from snnprune.errors import UserError

__all__ = ["check_split", "image_shape", "whole_count"]


def whole_count(value: Any, what: str, low: int = 1) -> int:
    """``value`` as an int >= ``low`` (epochs, a batch size, steps); an integral float such as
    2.0 is taken. A fraction, nan, inf, a bool or a string is one line here rather than a
    TypeError from ``range`` after training has begun."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value != int(value) or value < low:
        raise UserError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


def _is_all_splits(obj: Any) -> bool:
    """A `DataSplits` (or anything shaped like it): the whole data set, not one split."""
    return all(hasattr(obj, name) for name in ("train", "val", "test"))


def image_shape(split: Any) -> tuple[int, int, int] | None:
    """(channels, height, width) of one sample of ``split``, when the split says so cheaply.

    An in-memory `Split` holds ``x`` [N, C, H, W]; a `FrameSplit` holds ``frame_shape``
    (T, C, H, W). Other batch providers are not inspected (None).
    """
    x = getattr(split, "x", None)
    if x is not None and getattr(x, "dim", lambda: 0)() == 4:
        return tuple(int(s) for s in x.shape[1:])  # type: ignore[return-value]
    frames = getattr(split, "frame_shape", None)
    if frames is not None and len(frames) == 4:
        return tuple(int(s) for s in frames[1:])  # type: ignore[return-value]
    return None


def _check_labels(model: nn.Module, split: Any, what: str, args: dict[str, Any]) -> None:
    """A label the model has no output for fails here, not as cross-entropy's IndexError."""
    y = getattr(split, "y", None)
    if "num_classes" not in args or not isinstance(y, torch.Tensor) or y.numel() == 0:
        return
    top = int(y.max())
    if top >= int(args["num_classes"]):
        name = args.get("name", type(model).__name__)
        raise UserError(
            f"{what}: the model ({name}) was built for {int(args['num_classes'])} classes "
            f"(num_classes={int(args['num_classes'])}) but the data has label {top}; build it "
            "with the data set's info (data.info.num_classes)")


def check_split(model: nn.Module, split: Any, what: str, example: str = "data.train") -> None:
    """Raise a one-line `UserError` when ``split`` is not one split, or holds images of another
    shape than ``model`` was built for (its ``build_args``: in_channels, image_size), or labels
    beyond its ``num_classes``.

    ``what`` names the caller (``fit``, ``evaluate``); ``example`` the split it usually gets.
    """
    if _is_all_splits(split):
        raise UserError(f"{what} expects a Split such as {example}, got {type(split).__name__}")
    if not (hasattr(split, "batches") and hasattr(split, "num_batches")):
        raise UserError(f"{what} expects a Split such as {example}, got {type(split).__name__}")
    args = getattr(model, "build_args", None) or {}
    _check_labels(model, split, what, args)
    frames = getattr(split, "frame_shape", None)
    if frames is not None and "T" in args and int(args["T"]) != int(frames[0]):
        name = args.get("name", type(model).__name__)
        raise UserError(f"{what}: the model ({name}) was built for T={int(args['T'])} but the data holds "
                        f"{int(frames[0])} frames per sample; build it with T=data.info.time_steps")
    shape = image_shape(split)
    if shape is None or "in_channels" not in args or "image_size" not in args:
        return
    want = (int(args["in_channels"]), int(args["image_size"]), int(args["image_size"]))
    if shape != want:
        name = args.get("name", type(model).__name__)
        raise UserError(
            f"{what}: the model ({name}) was built for {'x'.join(map(str, want))} images "
            f"(in_channels={want[0]}, image_size={want[1]}) but the data holds "
            f"{'x'.join(map(str, shape))} images; build it with the data set's info "
            f"(data.info.in_channels, data.info.image_size)")
