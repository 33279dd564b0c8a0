"""Readers for the one-channel sets: scikit-learn's digits and Fashion-MNIST's IDX files.

Both return raw arrays ((images uint8/float [N, 1, H, W], labels [N]) for train and test);
`_prepare.build_splits` does the seeded splitting and normalisation for every set alike.

Digits has no official test split, so one is made here with a fixed seed (0): the test images
are the same whatever the run seed, which keeps scores of different runs comparable.

Fashion-MNIST is parsed from IDX directly with numpy (no torchvision, no download). Debian's
`dataset-fashion-mnist` package puts the four files, gzip'ed, flat in
/usr/share/datasets/fashion-mnist; the reader takes the first of the root and its direct
sub-folders that holds all four files, each plain or `.gz`.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from snnprune.data._info import DatasetInfo, one_line
from snnprune.data._prepare import stratified_order
from snnprune.errors import UserError

__all__ = ["read_digits", "read_fashion_mnist", "read_idx", "IDX_FILES"]

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

DIGITS_TEST_FRACTION = 0.2
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", IDX_IMAGES_MAGIC),
    "train_labels": ("train-labels-idx1-ubyte", IDX_LABELS_MAGIC),
    "test_images": ("t10k-images-idx3-ubyte", IDX_IMAGES_MAGIC),
    "test_labels": ("t10k-labels-idx1-ubyte", IDX_LABELS_MAGIC),
}


def read_digits(info: DatasetInfo) -> Arrays:
    """The 1797 8x8 digits bundled with scikit-learn, split 80/20 with the fixed seed 0."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise UserError(f"digits: scikit-learn is not importable ({one_line(exc)}); "
                        f"{info.how_to_get}") from exc
    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float32)[:, None, :, :]  # values 0..16
    y = np.asarray(bunch.target, dtype=np.int64)
    order = stratified_order(y, np.random.default_rng(0))
    n_test = round(DIGITS_TEST_FRACTION * len(y))
    test_idx = np.sort(order[:n_test])
    train_idx = np.sort(order[n_test:])
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def _idx_folder(info: DatasetInfo, root: Path) -> Path:
    """The first of `root` and its direct sub-folders (sorted) that holds all four IDX files.

    All four come from one folder: MNIST and Fashion-MNIST share file names and sizes, so
    picking each file on its own could train on one data set and test on the other unnoticed.
    """
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    names = [base for base, _magic in IDX_FILES.values()]

    def missing(folder: Path) -> list[str]:
        return [b for b in names if not any((folder / n).is_file() for n in (b, b + ".gz"))]

    for folder in folders:
        if not missing(folder):
            return folder
    partial = [f for f in folders if len(missing(f)) < len(names)]
    where = partial[0] if partial else root
    raise UserError(f"{info.name}: no {', '.join(f'{b}(.gz)' for b in missing(where))} under "
                    f"{where} (all four files must be in one folder); {info.how_to_get}")


def _idx_file(folder: Path, base: str) -> Path:
    """`base` or, failing that, `base.gz` in `folder` (`_idx_folder` checked one exists)."""
    plain = folder / base
    return plain if plain.is_file() else folder / (base + ".gz")


def read_idx(info: DatasetInfo, path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (optionally gzip'ed) of unsigned bytes; anything else -> UserError."""
    bad = f"{info.name}: {path} is not a valid IDX file"
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{bad} ({one_line(exc)}); {info.how_to_get}") from exc
    if len(data) < 4:
        raise UserError(f"{bad} (only {len(data)} bytes); {info.how_to_get}")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise UserError(
            f"{bad} (magic number {found}, expected {magic}); {info.how_to_get}"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{bad} (truncated header); {info.how_to_get}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    body = np.frombuffer(data, dtype=np.uint8, offset=header)
    size = math.prod(dims)  # Python ints: a crafted header cannot wrap around to the body's size
    if body.size != size:
        raise UserError(
            f"{bad} (header says {'x'.join(map(str, dims))} = {size} bytes, "
            f"found {body.size}); {info.how_to_get}"
        )
    return body.reshape(dims)


def _read_pair(info: DatasetInfo, folder: Path, images_key: str, labels_key: str) -> tuple[
    np.ndarray, np.ndarray
]:
    """Images [N, 1, S, S] and labels [N] of one split (in `folder`, from `_idx_folder`),
    checked against each other."""
    img_name, img_magic = IDX_FILES[images_key]
    lab_name, lab_magic = IDX_FILES[labels_key]
    img_path = _idx_file(folder, img_name)
    lab_path = _idx_file(folder, lab_name)
    images = read_idx(info, img_path, img_magic)
    labels = read_idx(info, lab_path, lab_magic)
    size = info.image_size
    if images.shape[1:] != (size, size):
        raise UserError(
            f"{info.name}: {img_path} holds {images.shape[1]}x{images.shape[2]} images, "
            f"expected {size}x{size}; {info.how_to_get}"
        )
    if len(images) != len(labels):
        raise UserError(
            f"{info.name}: {img_path} has {len(images)} images but {lab_path} has "
            f"{len(labels)} labels; {info.how_to_get}"
        )
    if labels.size and int(labels.max()) >= info.num_classes:
        raise UserError(
            f"{info.name}: {lab_path} has label {int(labels.max())}, expected "
            f"0..{info.num_classes - 1}; {info.how_to_get}"
        )
    return images[:, None, :, :], labels.astype(np.int64)


def read_fashion_mnist(info: DatasetInfo, root: Path) -> Arrays:
    """Fashion-MNIST's official 60k/10k train/test split from the four IDX files under `root`."""
    folder = _idx_folder(info, root)
    train = _read_pair(info, folder, "train_images", "train_labels")
    test = _read_pair(info, folder, "test_images", "test_labels")
    return train, test
