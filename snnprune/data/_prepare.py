"""Turn raw arrays into seeded train/val/test splits: subset, validation carve-out, normalisation.

All choices are seeded through a local `numpy.random.default_rng`, never the global RNG, so the
same seed gives the same splits in any process. Selections are stratified (each class keeps its
share), which matters for the small subsets a search uses to rank candidates quickly.

Order of operations:
1. `subset` picks from the official training set (seeded by `seed`); an int larger than the set
   keeps all of it. The test set is cut by the same fraction, but keeps at least
   min(len(test), 1000) samples so accuracy stays meaningful; its choice uses the fixed seed 0,
   so every run with the same subset is scored on the same test images.
2. `val_fraction` of what is left becomes the validation split (seeded by `seed`).
3. Images are normalised per channel with the mean/std of the final training split only.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from snnprune._seeds import check_seed
from snnprune.data._info import DatasetInfo
from snnprune.data._split import DataSplits, Split
from snnprune.errors import UserError

__all__ = ["check_args", "stratified_order", "plan_indices", "build_splits", "TEST_FLOOR"]

TEST_FLOOR = 1000  # a subset test split keeps at least this many samples (when available)
_CHUNK = 4096  # samples converted at a time, to bound the float64 temporaries


def check_args(subset: int | float | None, val_fraction: float, seed: int) -> None:
    """Reject bad `load_dataset` arguments with one line each, before any data is read."""
    if subset is not None:
        if isinstance(subset, bool) or not isinstance(subset, numbers.Real):
            raise UserError(f"subset must be an int (samples) or a float in (0, 1], got {subset!r}")
        if isinstance(subset, numbers.Integral):
            if subset <= 0:
                raise UserError(f"subset must be a positive number of samples, got {subset}")
        elif not (0.0 < float(subset) <= 1.0):
            raise UserError(f"subset as a fraction must be in (0, 1], got {subset}")
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not (0.0 <= float(val_fraction) <= 0.5)
    ):
        raise UserError(f"val_fraction must be a number in [0, 0.5], got {val_fraction!r}")
    check_seed(seed)


def stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A seeded permutation of range(len(y)) whose every prefix is (nearly) class-balanced.

    Within each class the order is random; classes are interleaved by their relative rank, so
    taking the first k indices gives each class about k * share. Vectorised: no loop over classes.
    """
    n = len(y)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    perm = rng.permutation(n)
    yp = np.asarray(y, dtype=np.int64)[perm]
    counts = np.bincount(yp)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    by_class = np.argsort(yp, kind="stable")
    rank = np.empty(n, dtype=np.float64)
    rank[by_class] = np.arange(n) - np.repeat(starts, counts)
    key = (rank + 0.5) / counts[yp]
    return perm[np.argsort(key, kind="stable")].astype(np.int64)


def plan_indices(
    y_train: np.ndarray,
    y_test: np.ndarray,
    *,
    subset: int | float | None,
    val_fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val into the training arrays; test into the test arrays), each sorted."""
    n_train, n_test = len(y_train), len(y_test)
    rng = np.random.default_rng(seed)
    pool = np.arange(n_train)
    test_idx = np.arange(n_test)
    if subset is not None:
        if isinstance(subset, numbers.Integral):
            keep = min(int(subset), n_train)
        else:
            keep = max(1, round(float(subset) * n_train))
        pool = np.sort(stratified_order(y_train, rng)[:keep])
        frac = keep / n_train if n_train else 1.0
        n_keep_test = min(n_test, max(round(frac * n_test), min(n_test, TEST_FLOOR)))
        test_order = stratified_order(y_test, np.random.default_rng(0))
        test_idx = np.sort(test_order[:n_keep_test])
    n_val = math.floor(float(val_fraction) * len(pool))
    if val_fraction > 0 and n_val == 0 and len(pool) > 1:
        n_val = 1  # a validation split asked for is never empty: a search would select on test
    order = stratified_order(y_train[pool], rng)
    val_idx = np.sort(pool[order[:n_val]])
    train_idx = np.sort(pool[order[n_val:]])
    return train_idx, val_idx, test_idx


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of [N, C, H, W] data, in float64 chunks to stay exact and small."""
    c = x.shape[1]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    for start in range(0, len(x), _CHUNK):
        part = x[start : start + _CHUNK].astype(np.float64)
        total += part.sum(axis=(0, 2, 3))
        total_sq += np.square(part).sum(axis=(0, 2, 3))
    count = max(1, x.shape[0] * x.shape[2] * x.shape[3])
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std[std < 1e-8] = 1.0  # a constant channel stays constant instead of dividing by zero
    return mean, std


def _normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """float32 tensor of (x - mean) / std, filled chunk by chunk into one preallocated tensor."""
    out = torch.empty(x.shape, dtype=torch.float32)
    m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    for start in range(0, len(x), _CHUNK):
        part = torch.from_numpy(np.ascontiguousarray(x[start : start + _CHUNK]))
        out[start : start + _CHUNK] = (part.to(torch.float32) - m) / s
    return out


def build_splits(
    info: DatasetInfo,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    subset: int | float | None,
    val_fraction: float,
    seed: int,
    augment: bool,
) -> DataSplits:
    """In-memory `DataSplits` from raw (images [N, C, H, W], labels [N]) train and test arrays.

    `augment` applies to the training split only; validation and test are never augmented.
    """
    (x_tr, y_tr), (x_te, y_te) = train, test
    y_tr = np.asarray(y_tr, dtype=np.int64)
    y_te = np.asarray(y_te, dtype=np.int64)
    for split, labels in (("training", y_tr), ("test", y_te)):
        if len(labels) == 0:  # else found only after a whole training run, as "no sample to measure"
            raise UserError(f"{info.name}: the {split} files hold no sample; {info.how_to_get}")
    train_idx, val_idx, test_idx = plan_indices(
        y_tr, y_te, subset=subset, val_fraction=val_fraction, seed=seed
    )
    x_train = x_tr[train_idx]
    mean, std = _channel_stats(x_train)

    def make(x: np.ndarray, y: np.ndarray, aug: bool, offset: int) -> Split:
        return Split(
            _normalise(x, mean, std),
            torch.from_numpy(np.ascontiguousarray(y)),
            augment=aug,
            seed=seed * 3 + offset,
        )

    return DataSplits(
        info=info,
        train=make(x_train, y_tr[train_idx], augment, 0),
        val=make(x_tr[val_idx], y_tr[val_idx], False, 1),
        test=make(x_te[test_idx], y_te[test_idx], False, 2),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )
