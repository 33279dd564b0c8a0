"""CIFAR10-DVS as fixed-number event frames, read lazily from spikingjelly's processed folder.

spikingjelly integrates the events of each recording into T frames and saves one compressed
`.npz` (key `frames`, [T, 2, 128, 128]) per sample under
`<root>/frames_number_<T>_split_by_number/<class>/`. Those frames are read here directly with
numpy, file by file as batches are asked for: the whole set is ~10 GB as float32, too big to
hold in memory, and reading files avoids importing `spikingjelly.datasets`, which imports
torchvision.

Only when the frames folder is missing is spikingjelly's `CIFAR10DVS` called to build it, from
`<root>/events_np` or from the ten class zips in `<root>/download`. spikingjelly downloads any
zip it finds missing or damaged, so all ten are checked (name and MD5) first: nothing is ever
downloaded at run time.

The set has no official split: a seeded (fixed seed 0) stratified 90/10 train/test split is made
here, so the test recordings are the same whatever the run seed. Frames are event counts and
are not normalised; there is no augmentation.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from snnprune.data._info import DatasetInfo, one_line
from snnprune.data._prepare import plan_indices, stratified_order
from snnprune.data._split import DataSplits, check_batch_size, count_batches
from snnprune.errors import UserError

__all__ = ["FrameSplit", "read_cifar10_dvs", "frames_folder_name", "CLASS_NAMES"]

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
# The MD5 sums spikingjelly checks (CIFAR10DVS.resource_url_md5), copied so that checking them
# needs no torchvision import.
ZIP_MD5 = {
    "airplane.zip": "0afd5c4bf9ae06af762a77b180354fdd",
    "automobile.zip": "8438dfeba3bc970c94962d995b1b9bdd",
    "bird.zip": "a9c207c91c55b9dc2002dc21c684d785",
    "cat.zip": "52c63c677c2b15fa5146a8daf4d56687",
    "deer.zip": "b6bf21f6c04d21ba4e23fc3e36c8a4a3",
    "dog.zip": "f379ebdf6703d16e0a690782e62639c3",
    "frog.zip": "cad6ed91214b1c7388a5f6ee56d08803",
    "horse.zip": "e7cbbf77bec584ffbf913f00e682782a",
    "ship.zip": "41c7bd7d6b251be82557c6cce9a7d5c9",
    "truck.zip": "89f3922fd147d9aeff89e76a2b0b70a7",
}
TEST_FRACTION = 0.1
_WORKERS = 8  # threads decompressing one batch's files (zlib releases the GIL)


def frames_folder_name(frames: int) -> str:
    """The folder spikingjelly writes for `frames_number=frames, split_by='number'`."""
    return f"frames_number_{frames}_split_by_number"


def _load_frames(path: Path, shape: tuple[int, ...] | None, name: str) -> np.ndarray:
    """One sample's frames as float32, checked against the expected shape."""
    try:
        with np.load(path) as npz:
            frames = np.asarray(npz["frames"], dtype=np.float32)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(
            f"{name}: cannot read frames from {path} ({one_line(exc)}); delete the frames "
            "folder and let spikingjelly rebuild it"
        ) from exc
    if shape is not None and frames.shape != shape:
        raise UserError(
            f"{name}: {path} holds frames of shape {frames.shape}, expected {shape}; delete "
            "the frames folder and let spikingjelly rebuild it"
        )
    return frames


class FrameSplit:
    """A split of event-frame files read on demand: same `batches()` interface as `Split`.

    Batches are x float32 [B, T, 2, H, W] and y int64 [B]. `augment` is always False.
    """

    def __init__(
        self,
        files: Sequence[Path],
        labels: Sequence[int] | np.ndarray,
        *,
        frame_shape: tuple[int, ...] | None = None,
        seed: int = 0,
        name: str = "cifar10-dvs",
    ) -> None:
        if len(files) != len(labels):
            raise UserError(f"{name}: {len(files)} frame files but {len(labels)} labels")
        self.files = [Path(f) for f in files]
        self.y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.frame_shape = frame_shape
        self.augment = False
        self.name = name
        self._generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = _load_frames(self.files[i], self.frame_shape, self.name)
        return torch.from_numpy(frames), self.y[i]

    def __repr__(self) -> str:
        return f"FrameSplit(n={len(self)}, frames={self.frame_shape})"

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches per epoch, e.g. to size a learning-rate schedule before training."""
        return count_batches(len(self), batch_size, drop_last)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (x [B, T, 2, H, W], y [B]) on `device`, files decoded in threads."""
        check_batch_size(batch_size)
        n = len(self)
        gen = generator if generator is not None else self._generator
        dev = torch.device(device)
        if shuffle:
            order = torch.randperm(n, generator=gen, device=gen.device).cpu().tolist()
        else:
            order = list(range(n))
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                if drop_last and len(idx) < batch_size:
                    break
                arrays = list(
                    pool.map(lambda i: _load_frames(self.files[i], self.frame_shape, self.name),
                             idx)
                )
                x = torch.from_numpy(np.stack(arrays))
                y = self.y[torch.tensor(idx, dtype=torch.long)]
                yield x.to(dev), y.to(dev)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _build_frames(info: DatasetInfo, root: Path, frames: int) -> None:
    """Have spikingjelly integrate the frames, after making sure it will not download."""
    target = root / frames_folder_name(frames)
    for marker in (root / "events_np.building", target.with_name(target.name + ".building")):
        if marker.exists():
            raise UserError(
                f"{info.name}: an earlier preprocessing run under {root} was interrupted; "
                f"remove {marker} and the folder next to it, then retry"
            )
    if not (root / "events_np").is_dir():
        download = root / "download"
        missing = [z for z in ZIP_MD5 if not (download / z).is_file()]
        if missing:
            raise UserError(
                f"{info.name}: no {', '.join(missing)} under {download}; {info.how_to_get}"
            )
        damaged = [z for z, md5 in ZIP_MD5.items() if _md5(download / z) != md5]
        if damaged:
            raise UserError(
                f"{info.name}: {', '.join(damaged)} under {download} fail the MD5 check "
                f"(damaged or incomplete); {info.how_to_get}"
            )
    try:
        from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS
    except Exception as exc:  # torchvision broken or missing: anything can come out of it
        raise UserError(
            f"{info.name}: building {target} needs spikingjelly.datasets, which failed to import "
            f"({type(exc).__name__}: {one_line(exc)}); build it once where it imports with "
            f"CIFAR10DVS(root, data_type='frame', frames_number={frames}, split_by='number') "
            f"and copy it under {root}"
        ) from exc
    try:
        CIFAR10DVS(str(root), data_type="frame", frames_number=frames, split_by="number")
    except Exception as exc:  # spikingjelly's own failures, reported as one line
        raise UserError(
            f"{info.name}: spikingjelly could not build {target} "
            f"({type(exc).__name__}: {one_line(exc)}); {info.how_to_get}"
        ) from exc


def _frames_root(info: DatasetInfo, root: Path, frames: int) -> Path:
    """The processed frames folder: `root` itself, `root/frames_number_...`, or built now."""
    name = frames_folder_name(frames)
    if root.name == name:
        return root
    if (root / name).is_dir():
        return root / name
    if (root / "events_np").is_dir() or (root / "download").is_dir():
        _build_frames(info, root, frames)
        if (root / name).is_dir():
            return root / name
    raise UserError(f"{info.name}: no {name}, events_np or download folder under {root}; "
                    f"{info.how_to_get}")


def read_cifar10_dvs(
    info: DatasetInfo,
    root: Path,
    *,
    subset: int | float | None,
    val_fraction: float,
    seed: int,
) -> DataSplits:
    """Lazy train/val/test `FrameSplit`s of CIFAR10-DVS with `info.time_steps` frames each."""
    frames = info.time_steps or 10
    folder = _frames_root(info, root, frames)
    files: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(CLASS_NAMES):
        class_dir = folder / cls
        if not class_dir.is_dir():
            raise UserError(f"{info.name}: no class folder {class_dir}; {info.how_to_get}")
        found = sorted(class_dir.glob("*.npz"))
        files += found
        labels += [label] * len(found)
    if not files:
        raise UserError(f"{info.name}: no .npz frame files under {folder}; {info.how_to_get}")
    shape = (frames, info.in_channels, info.image_size, info.image_size)
    _load_frames(files[0], shape, info.name)  # fail now, not in the middle of training

    y = np.asarray(labels, dtype=np.int64)
    order = stratified_order(y, np.random.default_rng(0))
    n_test = round(TEST_FRACTION * len(y))
    test_all = np.sort(order[:n_test])
    train_all = np.sort(order[n_test:])
    train_idx, val_idx, test_idx = plan_indices(
        y[train_all], y[test_all], subset=subset, val_fraction=val_fraction, seed=seed
    )

    def make(pool: np.ndarray, idx: np.ndarray, offset: int) -> FrameSplit:
        chosen = pool[idx]
        return FrameSplit(
            [files[i] for i in chosen], y[chosen], frame_shape=shape, seed=seed * 3 + offset,
            name=info.name,
        )

    return DataSplits(
        info=info,
        train=make(train_all, train_idx, 0),
        val=make(train_all, val_idx, 1),
        test=make(test_all, test_idx, 2),
    )
