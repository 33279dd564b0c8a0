"""Checks that a split fits the call and the model before any batch runs.

Passing the wrong object (all the splits where one is wanted) or data of another shape than
the model was built for would otherwise surface as an AttributeError or as torch's
"expected input[64, 1, 8, 8] to have 3 channels" from deep inside the first forward pass,
which names neither the model's build arguments nor the data set's.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from snnprune.errors import UserError

__all__ = ["check_split", "image_shape"]


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


def check_split(model: nn.Module, split: Any, what: str, example: str = "data.train") -> None:
    """Raise a one-line `UserError` when ``split`` is not one split, or holds images of another
    shape than ``model`` was built for (its ``build_args``: in_channels, image_size).

    ``what`` names the caller (``fit``, ``evaluate``); ``example`` the split it usually gets.
    """
    if _is_all_splits(split):
        raise UserError(f"{what} expects a Split such as {example}, got {type(split).__name__}")
    if not (hasattr(split, "batches") and hasattr(split, "num_batches")):
        raise UserError(f"{what} expects a Split such as {example}, got {type(split).__name__}")
    args = getattr(model, "build_args", None) or {}
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
