"""Readers for the RGB sets the user downloads by hand: CIFAR-10/100 and Tiny ImageNet.

Each returns raw uint8 arrays ((images [N, 3, S, S], labels [N]) for train and test);
`_prepare.build_splits` splits and normalises them. Nothing is downloaded and nothing is
written into the user's data folder.

`root` may be the data set's own folder (cifar-10-batches-py, cifar-100-python,
tiny-imagenet-200) or its parent, because both are what people naturally pass.
Tiny ImageNet's official val split (with labels) serves as the test split; its unlabelled
official test split is ignored.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from snnprune.data._info import DatasetInfo, one_line
from snnprune.errors import UserError

__all__ = ["read_cifar", "read_tiny_imagenet", "CIFAR_LAYOUT"]

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

# name -> (folder name, training files, test files, label key)
CIFAR_LAYOUT: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], bytes]] = {
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
    ),
    "cifar100": ("cifar-100-python", ("train",), ("test",), b"fine_labels"),
}
_IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _own_folder(root: Path, folder: str, marker: str) -> Path:
    """`root` itself when it holds `marker`, else `root/folder` when that does, else `root`."""
    if (root / marker).exists():
        return root
    if (root / folder / marker).exists():
        return root / folder
    return root


def _labels(raw: object) -> np.ndarray | None:
    """`raw` as int64 labels [N], or None when it is not a flat sequence of integers.

    A hand-made or damaged batch may hold strings, floats, nesting or huge numbers: each is
    refused here rather than truncated (1.7 -> 1) or left to fail deep inside numpy.
    """
    try:
        values = np.asarray(raw)
    except (ValueError, TypeError, OverflowError):  # ragged nesting
        return None
    if values.ndim != 1:
        return None
    if values.size == 0:
        return values.astype(np.int64)
    if not np.issubdtype(values.dtype, np.integer) or values.max() > np.iinfo(np.int64).max:
        return None  # Python ints beyond int64 arrive as dtype object
    return values.astype(np.int64)


def _unpickle(info: DatasetInfo, path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 3, 32, 32] uint8 and labels [N] from one CIFAR python-pickle batch file."""
    bad = f"{info.name}: {path} is not a valid CIFAR batch file"
    try:
        with path.open("rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # unpickling a damaged file can raise almost anything
        raise UserError(f"{bad} ({type(exc).__name__}: {one_line(exc)}); "
                        f"{info.how_to_get}") from exc
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise UserError(
            f"{bad} (no b'data' / {label_key!r} entries); {info.how_to_get}"
        )
    data = np.asarray(batch[b"data"])
    labels = _labels(batch[label_key])
    if labels is None:
        raise UserError(f"{bad} ({label_key!r} is not a list of integer class labels); "
                        f"{info.how_to_get}")
    side = info.image_size
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * side * side:
        raise UserError(
            f"{bad} (data is {data.dtype} {data.shape}, expected uint8 [N, {3 * side * side}]); "
            f"{info.how_to_get}"
        )
    if len(labels) != len(data) or (labels.size and not (
        0 <= labels.min() and labels.max() < info.num_classes
    )):
        raise UserError(f"{bad} (labels do not match the images); {info.how_to_get}")
    return data.reshape(-1, 3, side, side), labels


def read_cifar(info: DatasetInfo, root: Path) -> Arrays:
    """CIFAR-10 (5 data batches + test batch) or CIFAR-100 (train + test) pickles."""
    folder, train_files, test_files, label_key = CIFAR_LAYOUT[info.name]
    base = _own_folder(root, folder, train_files[0])
    missing = [name for name in train_files + test_files if not (base / name).is_file()]
    if missing:
        raise UserError(
            f"{info.name}: no {', '.join(missing)} under {base}; {info.how_to_get}"
        )

    def read(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        parts = [_unpickle(info, base / name, label_key) for name in names]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    return read(train_files), read(test_files)


def _images_in(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted so the sample order is stable."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()
    )


def _decode_all(info: DatasetInfo, paths: list[Path]) -> np.ndarray:
    """Decode `paths` to one uint8 [N, 3, S, S] array, in threads (Pillow releases the GIL)."""
    from PIL import Image  # imported here: only Tiny ImageNet needs Pillow

    side = info.image_size
    out = np.empty((len(paths), 3, side, side), dtype=np.uint8)

    def decode(i: int) -> None:
        path = paths[i]
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
                if rgb.size != (side, side):
                    rgb = rgb.resize((side, side), Image.BILINEAR)
                out[i] = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
        except (OSError, Image.DecompressionBombError) as exc:  # OSError has UnidentifiedImageError
            raise UserError(
                f"{info.name}: cannot decode image {path} ({one_line(exc)}); {info.how_to_get}"
            ) from exc

    workers = max(1, min(16, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(decode, range(len(paths))):
            pass
    return out


def _lines(info: DatasetInfo, path: Path) -> list[str]:
    """The lines of a UTF-8 text file of the data set; unreadable or not UTF-8 -> UserError."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{info.name}: cannot read {path} as UTF-8 text ({one_line(exc)}); "
                        f"{info.how_to_get}") from exc


def read_tiny_imagenet(info: DatasetInfo, root: Path) -> Arrays:
    """Tiny ImageNet: train/<wnid>/images/* for training, val/ (with labels) as test.

    Class ids are the sorted wnids of wnids.txt, so labels do not depend on the file's order.
    """
    base = _own_folder(root, "tiny-imagenet-200", "wnids.txt")
    wnids_file = base / "wnids.txt"
    if not wnids_file.is_file():
        raise UserError(f"{info.name}: no wnids.txt under {root}; {info.how_to_get}")
    wnids = sorted({line.strip() for line in _lines(info, wnids_file) if line.strip()})
    if len(wnids) > info.num_classes or not wnids:
        raise UserError(
            f"{info.name}: {wnids_file} lists {len(wnids)} classes, expected 1..{info.num_classes}; "
            f"{info.how_to_get}"
        )
    label_of = {w: i for i, w in enumerate(wnids)}

    train_paths: list[Path] = []
    train_labels: list[int] = []
    for wnid in wnids:
        folder = base / "train" / wnid / "images"
        if not folder.is_dir():
            raise UserError(f"{info.name}: no folder {folder}; {info.how_to_get}")
        images = _images_in(folder)
        train_paths += images
        train_labels += [label_of[wnid]] * len(images)

    if not train_paths:
        raise UserError(f"{info.name}: no training images under {base / 'train'}; "
                        f"{info.how_to_get}")
    annotations = base / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise UserError(f"{info.name}: no {annotations}; {info.how_to_get}")
    test_paths: list[Path] = []
    test_labels: list[int] = []
    for n, line in enumerate(_lines(info, annotations), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1].strip() not in label_of:
            raise UserError(
                f"{info.name}: line {n} of {annotations} names no known class; {info.how_to_get}"
            )
        path = base / "val" / "images" / fields[0].strip()
        if not path.is_file():
            raise UserError(f"{info.name}: no image {path}; {info.how_to_get}")
        test_paths.append(path)
        test_labels.append(label_of[fields[1].strip()])

    train = (_decode_all(info, train_paths), np.asarray(train_labels, dtype=np.int64))
    test = (_decode_all(info, test_paths), np.asarray(test_labels, dtype=np.int64))
    return train, test
