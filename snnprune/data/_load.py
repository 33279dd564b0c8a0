"""`load_dataset`: one entry point that validates arguments and dispatches to a reader.

Arguments are checked before anything is read, so a typo costs no loading time. Readers return
raw arrays and `_prepare.build_splits` turns them into seeded, normalised splits, so every image
set follows the same subset / validation / normalisation rules.
"""

from __future__ import annotations

import os

from snnprune.data._color import read_cifar, read_tiny_imagenet
from snnprune.data._dvs import read_cifar10_dvs
from snnprune.data._gray import read_digits, read_fashion_mnist
from snnprune.data._info import dataset_info, resolve_root
from snnprune.data._prepare import build_splits, check_args
from snnprune.data._split import DataSplits

__all__ = ["load_dataset"]

_AUGMENTED = frozenset({"cifar10", "cifar100", "tiny-imagenet"})


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    subset: int | float | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> DataSplits:
    """Load `name` from `root` (or its default place) as seeded train/val/test splits.

    subset: None keeps everything; an int keeps that many training samples (all of them if the
      set is smaller), a float in (0, 1] keeps that fraction. The test split is cut by the same
      fraction but keeps at least min(len(test), 1000) samples, chosen with the fixed seed 0.
    val_fraction: share of the (subset) training samples held out as validation, in [0, 0.5];
      0 gives an empty validation split.
    seed: picks the subset, the validation samples and the shuffling/augmentation stream of each
      split; the same seed gives identical splits. Test splits never depend on it.
    Training images of cifar10, cifar100 and tiny-imagenet are augmented in `batches()` (random
    crop with 4-pixel zero padding + horizontal flip). `root` is ignored for digits.
    Bad arguments, missing or malformed data raise `UserError` with one line of advice.
    """
    info = dataset_info(name)
    check_args(subset, val_fraction, seed)
    if info.name == "cifar10-dvs":
        return read_cifar10_dvs(
            info, resolve_root(info, root), subset=subset, val_fraction=val_fraction, seed=seed
        )
    if info.name == "digits":
        train, test = read_digits(info)
    elif info.name == "fashion-mnist":
        train, test = read_fashion_mnist(info, resolve_root(info, root))
    elif info.name in ("cifar10", "cifar100"):
        train, test = read_cifar(info, resolve_root(info, root))
    else:
        train, test = read_tiny_imagenet(info, resolve_root(info, root))
    return build_splits(
        info,
        train,
        test,
        subset=subset,
        val_fraction=val_fraction,
        seed=int(seed),
        augment=info.name in _AUGMENTED,
    )
