"""Options shared by several commands, and the checks click cannot express in one line."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from snnprune._seeds import MAX_SEED
from snnprune.errors import UserError, make_folder

__all__ = ["SEED", "json_option", "model_options", "out_folder", "training_options"]

#: --seed: the range every seed consumer accepts (see `snnprune._seeds`), checked by click.
SEED = click.IntRange(0, MAX_SEED)

F = Callable[..., Any]


def _stack(*decorators: F) -> F:
    def apply(fn: F) -> F:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn
    return apply


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")

model_options = _stack(
    click.option("--model", "-m", required=True, help="cnn | vgg11 | vgg16 | resnet19"),
    click.option("--dataset", "-d", required=True,
                 help="digits | fashion-mnist | cifar10 | cifar100 | tiny-imagenet | cifar10-dvs"),
    click.option("--width", type=float, default=1.0, show_default=True, help="Width multiplier."),
    click.option("--T", "T", type=int, default=None,
                 help="Time steps  [default: 4; event data: its frames per sample]"),
    click.option("--neuron", default="lif", show_default=True, help="lif | if"),
)

training_options = _stack(
    click.option("--data-root", type=click.Path(), default=None, help="Folder holding the data set."),
    click.option("--subset", type=float, default=None,
                 help="Training samples kept: a count (>1) or a fraction (<=1)."),
    click.option("--epochs", type=int, default=5, show_default=True),
    click.option("--batch-size", type=int, default=64, show_default=True),
    click.option("--lr", type=float, default=0.1, show_default=True),
    click.option("--optimizer", default="sgd", show_default=True, help="sgd | adam"),
    click.option("--seed", type=SEED, default=0, show_default=True),
    click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]"),
    click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
)


def subset_value(subset: float | None) -> int | float | None:
    """--subset 500 means 500 samples, --subset 0.1 means a tenth."""
    if subset is None:
        return None
    if subset > 1 and not float(subset).is_integer():  # int(1.5) kept one sample, silently
        raise UserError(f"--subset: a count of samples must be whole (or give a fraction <= 1), got {subset:g}")
    return int(subset) if subset > 1 else float(subset)


def writable_folder(path: str | Path, option: str = "--out") -> Path:
    """Check, without creating anything, that ``path`` is or can become a writable folder.

    For commands whose library call creates the folder itself after its own checks (`search`):
    a space or flag refused there then leaves no empty run folder behind.
    """
    folder = Path(path)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{option}: cannot create the folder {folder} ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: {'that folder' if probe == folder else probe} is not writable")
    return folder


def time_steps(T: int | None, info: Any) -> int:
    """``--T``, or its default: 4 for images, the frames per sample of event data (which fix T)."""
    frames = getattr(info, "time_steps", None)
    if frames is not None and T is not None and T != frames:
        raise UserError(f"--T {T}: {info.name} holds {frames} frames per sample; leave --T out or give {frames}")
    return T if T is not None else (frames or 4)


def out_folder(path: str | Path, option: str = "--out") -> Path:
    """Create the folder a command will write to, before it spends minutes on training (see
    `make_folder`); one it may not write into is the same one line."""
    folder = make_folder(path, option)  # "--out: cannot create the folder X (reason)"
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: that folder is not writable")
    return folder
