"""Tests for snnprune.data: every reader on tiny fixtures built here, plus the real digits set.

Each fixture encodes a sample's id in its first pixel, so tests can recover which raw sample
ended up where after shuffling and normalisation (raw = x * std + mean).
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snnprune.data import (
    DatasetInfo,
    DataSplits,
    FrameSplit,
    Split,
    dataset_info,
    list_datasets,
    load_dataset,
)
from snnprune.data._prepare import plan_indices
from snnprune.data._split import augment_batch
from snnprune.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- fixtures built in tmp_path
def write_idx(path: Path, arr: np.ndarray, magic: int) -> None:
    head = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def make_fashion(root: Path, *, gz: bool, n_train: int = 60, n_test: int = 30) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    sfx = ".gz" if gz else ""
    for prefix, n, first_id in (("train", n_train, 0), ("t10k", n_test, 100)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = np.arange(first_id, first_id + n)
        write_idx(root / f"{prefix}-images-idx3-ubyte{sfx}", images, 2051)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{sfx}", np.arange(n) % 10, 2049)
    return root


def make_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        data = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
        data[:, 0] = np.arange(20) + 20 * b  # ids 0..99 train, 100..119 test
        batch = {b"data": data, b"labels": [int(i) % 10 for i in range(20)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    return folder


def make_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name, n in (("train", 200), ("test", 100)):
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": [i % 100 for i in range(n)],
            b"coarse_labels": [i % 20 for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    return folder


def make_tiny_imagenet(root: Path) -> Path:
    from PIL import Image

    base = root / "tiny-imagenet-200"
    wnids = ["n03", "n01", "n02"]  # unsorted on purpose: labels follow the sorted ids
    rng = np.random.default_rng(4)
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for w in wnids:
        folder = base / "train" / w / "images"
        folder.mkdir(parents=True)
        for i in range(4):
            img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(img).save(folder / f"{w}_{i}.JPEG")
        for i in range(2):
            name = f"val_{w}_{i}.JPEG"
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
                base / "val" / "images" / name
            )
            lines.append(f"{name}\t{w}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return base


def make_dvs_frames(root: Path, per_class: int = 3) -> Path:
    folder = root / "frames_number_10_split_by_number"
    for c, cls in enumerate(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    ):
        (folder / cls).mkdir(parents=True)
        for i in range(per_class):
            frames = np.zeros((10, 2, 128, 128), dtype=np.float32)
            frames[0, 0, 0, 0] = c * per_class + i  # sample id
            np.savez_compressed(folder / cls / f"{cls}_{i}.npz", frames=frames)
    return root


def ids(split: Split, splits: DataSplits) -> np.ndarray:
    """Recover each sample's id from its first pixel (undoing the normalisation)."""
    raw = split.x[:, 0, 0, 0] * splits.std[0] + splits.mean[0]
    return raw.round().long().numpy()


def assert_one_line_user_error(excinfo: pytest.ExceptionInfo[UserError]) -> str:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


# ---------------------------------------------------------------- static table
def test_list_and_info() -> None:
    assert list_datasets() == [
        "digits", "fashion-mnist", "cifar10", "cifar100", "tiny-imagenet", "cifar10-dvs",
    ]  # fmt: skip
    info = dataset_info("cifar10-dvs")
    assert isinstance(info, DatasetInfo)
    assert (info.num_classes, info.in_channels, info.image_size, info.time_steps) == (10, 2, 128, 10)
    assert dataset_info("tiny-imagenet").num_classes == 200
    assert dataset_info("fashion-mnist").default_root == "/usr/share/datasets/fashion-mnist"
    with pytest.raises(UserError) as exc:
        dataset_info("imagenet")
    assert "cifar10" in assert_one_line_user_error(exc)


# ---------------------------------------------------------------- digits (real data)
def test_digits_real_and_seeded() -> None:
    a = load_dataset("digits", seed=0)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.train.x.shape[1:] == (1, 8, 8) and a.train.x.dtype == torch.float32
    assert a.train.y.dtype == torch.int64 and set(a.train.y.tolist()) == set(range(10))
    assert len(a.test) == 359 and not a.train.augment
    assert abs(a.train.x.mean().item()) < 1e-4 and abs(a.train.x.std().item() - 1) < 1e-2
    b = load_dataset("digits", seed=0)
    c = load_dataset("digits", seed=1)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert not torch.equal(a.train.x, c.train.x)
    # the test split does not depend on the run seed (compare raw pixels)
    raw_a = a.test.x * a.std[0] + a.mean[0]
    raw_c = c.test.x * c.std[0] + c.mean[0]
    assert torch.allclose(raw_a, raw_c, atol=1e-4)


# ---------------------------------------------------------------- fashion-mnist (IDX)
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx(tmp_path: Path, gz: bool) -> None:
    sub = tmp_path / "nested"
    sub.mkdir()
    make_fashion(sub, gz=gz)  # one level of sub-folders is searched
    s = load_dataset("fashion-mnist", tmp_path, val_fraction=0.2, seed=5)
    assert s.train.x.shape == (48, 1, 28, 28) and len(s.val) == 12 and len(s.test) == 30
    assert s.train.x.dtype == torch.float32 and s.test.y.dtype == torch.int64
    mean = s.train.x.mean(dim=(0, 2, 3))
    std = s.train.x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(1), atol=1e-4)
    assert torch.allclose(std, torch.ones(1), atol=1e-2)
    tr, va, te = ids(s.train, s), ids(s.val, s), ids(s.test, s)
    assert set(tr).isdisjoint(va) and set(tr) | set(va) == set(range(60))
    assert set(te) == set(range(100, 130))
    assert (s.train.y.numpy() == tr % 10).all() and (s.test.y.numpy() == (te - 100) % 10).all()
    assert not s.train.augment


def test_seeds_and_subsets(tmp_path: Path) -> None:
    make_fashion(tmp_path, gz=True)
    a = load_dataset("fashion-mnist", tmp_path, seed=3)
    b = load_dataset("fashion-mnist", tmp_path, seed=3)
    c = load_dataset("fashion-mnist", tmp_path, seed=4)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.x, b.val.x)
    assert set(ids(a.val, a)) != set(ids(c.val, c))
    s = load_dataset("fashion-mnist", tmp_path, subset=20, val_fraction=0.1, seed=0)
    assert len(s.train) + len(s.val) == 20 and len(s.val) == 2
    assert len(s.test) == 30  # a small test set stays whole (floor of 1000)
    f = load_dataset("fashion-mnist", tmp_path, subset=0.5, val_fraction=0.0, seed=0)
    assert len(f.train) == 30 and len(f.val) == 0
    assert np.bincount(f.train.y.numpy()).tolist() == [3] * 10  # stratified
    assert list(f.val.batches(8, shuffle=True)) == [] and f.val.num_batches(8) == 0
    assert len(load_dataset("fashion-mnist", tmp_path, subset=10_000).train) == 54


def test_test_subset_rule() -> None:
    y_train, y_test = np.arange(10_000) % 10, np.arange(5_000) % 10
    tr, va, te = plan_indices(y_train, y_test, subset=0.1, val_fraction=0.1, seed=0)
    assert len(tr) + len(va) == 1000 and len(va) == 100 and len(te) == 1000
    tr, va, te = plan_indices(y_train, y_test, subset=0.5, val_fraction=0.0, seed=0)
    assert len(tr) == 5000 and len(va) == 0 and len(te) == 2500
    assert np.bincount(y_test[te]).tolist() == [250] * 10


def test_batches_cover_every_sample_once(tmp_path: Path) -> None:
    make_fashion(tmp_path, gz=False)
    s = load_dataset("fashion-mnist", tmp_path, val_fraction=0.0)
    gen = torch.Generator().manual_seed(0)
    seen: list[int] = []
    for xb, yb in s.train.batches(16, shuffle=True, generator=gen):
        assert xb.shape[1:] == (1, 28, 28) and xb.shape[0] == yb.shape[0]
        got = (xb[:, 0, 0, 0] * s.std[0] + s.mean[0]).round().long()
        assert torch.equal(yb, got % 10)  # x and y stay paired
        seen += got.tolist()
    assert sorted(seen) == list(range(60))
    order = [int(v) for v in torch.cat([y for _, y in s.train.batches(16, shuffle=False)])]
    assert order == s.train.y.tolist()
    assert s.train.num_batches(16) == 4 and s.train.num_batches(16, drop_last=True) == 3
    assert len(list(s.train.batches(16, shuffle=True, drop_last=True))) == 3
    x0, y0 = s.train[0]
    assert x0.shape == (1, 28, 28) and y0.dtype == torch.int64
    first = next(s.train.batches(4, shuffle=False))[0]
    first.zero_()  # batches are copies: the split is unchanged
    assert s.train.x[:4].abs().sum() > 0
    with pytest.raises(UserError):
        next(s.train.batches(0, shuffle=False))


# ---------------------------------------------------------------- cifar + augmentation
@pytest.mark.parametrize("use_parent", [True, False])
def test_cifar10_and_augmentation(tmp_path: Path, use_parent: bool) -> None:
    folder = make_cifar10(tmp_path)
    s = load_dataset("cifar10", tmp_path if use_parent else folder, val_fraction=0.1, seed=0)
    assert s.train.x.shape == (90, 3, 32, 32) and len(s.val) == 10 and len(s.test) == 20
    assert torch.allclose(s.train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(s.train.x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)
    assert set(ids(s.test, s)) == set(range(100, 120))
    assert s.train.augment and not s.val.augment and not s.test.augment
    gen = torch.Generator().manual_seed(0)
    xb, yb = next(s.train.batches(90, shuffle=False, generator=gen))
    assert xb.shape == s.train.x.shape and not torch.equal(xb, s.train.x)
    assert torch.equal(yb, s.train.y)
    xt, _ = next(s.test.batches(20, shuffle=False))
    assert torch.equal(xt, s.test.x)  # no augmentation outside training
    assert torch.equal(s.train[3][0], s.train.x[3])


def test_augment_batch_is_crop_and_flip() -> None:
    x = torch.randn(6, 2, 5, 7)
    out = augment_batch(x, pad=2, generator=torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        candidates = [padded[i, :, dy : dy + 5, dx : dx + 7] for dy in range(5) for dx in range(5)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[i], c) for c in candidates)
    assert out.shape == x.shape


def test_cifar100(tmp_path: Path) -> None:
    make_cifar100(tmp_path)
    s = load_dataset("cifar100", tmp_path, subset=0.5, val_fraction=0.0, seed=2)
    assert len(s.train) == 100 and len(s.test) == 100
    assert s.info.num_classes == 100 and int(s.train.y.max()) < 100 and s.train.augment


# ---------------------------------------------------------------- tiny-imagenet
def test_tiny_imagenet(tmp_path: Path) -> None:
    base = make_tiny_imagenet(tmp_path)
    s = load_dataset("tiny-imagenet", base, val_fraction=0.25)
    assert s.train.x.shape == (9, 3, 64, 64) and len(s.val) == 3 and len(s.test) == 6
    assert sorted(s.test.y.tolist()) == [0, 0, 1, 1, 2, 2] and s.train.augment
    assert load_dataset("tiny-imagenet", tmp_path).train.x.shape[0] == 11  # parent works


# ---------------------------------------------------------------- cifar10-dvs (fake frames)
def test_cifar10_dvs_fake_frames(tmp_path: Path) -> None:
    make_dvs_frames(tmp_path)
    s = load_dataset("cifar10-dvs", tmp_path, val_fraction=0.1, seed=0)
    assert isinstance(s.train, FrameSplit) and len(s.test) == 3
    assert len(s.train) + len(s.val) == 27 and len(s.val) == 2
    seen = []
    for xb, yb in s.train.batches(8, shuffle=True):
        assert xb.shape[1:] == (10, 2, 128, 128) and xb.dtype == torch.float32
        got = xb[:, 0, 0, 0, 0].long()
        assert torch.equal(yb, got // 3)
        seen += got.tolist()
    assert len(seen) == len(set(seen)) == len(s.train)
    assert s.train.num_batches(8) == 4 and s.train[0][0].shape == (10, 2, 128, 128)


def test_cifar10_dvs_errors(tmp_path: Path) -> None:
    for root in (None, tmp_path):
        with pytest.raises(UserError) as exc:
            load_dataset("cifar10-dvs", root)
        assert "cifar10-dvs" in assert_one_line_user_error(exc)
    (tmp_path / "download").mkdir()
    (tmp_path / "download" / "airplane.zip").write_bytes(b"x")
    with pytest.raises(UserError) as exc:
        load_dataset("cifar10-dvs", tmp_path)
    assert "truck.zip" in assert_one_line_user_error(exc)
    events = tmp_path / "ev"
    (events / "events_np").mkdir(parents=True)
    with pytest.raises(UserError) as exc:  # spikingjelly either fails to import or to build
        load_dataset("cifar10-dvs", events)
    assert_one_line_user_error(exc)


# ---------------------------------------------------------------- user errors
def test_errors(tmp_path: Path) -> None:
    cases = []
    cases.append(lambda: load_dataset("mnist-3d"))
    cases.append(lambda: load_dataset("cifar10"))  # no root
    cases.append(lambda: load_dataset("tiny-imagenet", tmp_path / "nowhere"))
    cases.append(lambda: load_dataset("fashion-mnist", tmp_path))  # empty folder
    for bad in (0, -3, 1.5, 0.0, True, "half"):
        cases.append(lambda bad=bad: load_dataset("digits", subset=bad))
    for bad in (-0.1, 0.6, "x"):
        cases.append(lambda bad=bad: load_dataset("digits", val_fraction=bad))
    for case in cases:
        with pytest.raises(UserError) as exc:
            case()
        assert_one_line_user_error(exc)


def test_file_errors(tmp_path: Path) -> None:
    fm = make_fashion(tmp_path / "fm", gz=True)
    (fm / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError) as exc:
        load_dataset("fashion-mnist", fm)
    assert "t10k-labels-idx1-ubyte(.gz)" in assert_one_line_user_error(exc)
    write_idx(fm / "t10k-labels-idx1-ubyte.gz", np.zeros((30, 28, 28)), 2051)  # wrong magic
    with pytest.raises(UserError) as exc:
        load_dataset("fashion-mnist", fm)
    assert "magic number 2051, expected 2049" in assert_one_line_user_error(exc)
    (fm / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError) as exc:
        load_dataset("fashion-mnist", fm)
    assert "t10k-labels-idx1-ubyte.gz" in assert_one_line_user_error(exc)

    folder = make_cifar10(tmp_path / "c10")
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(UserError) as exc:
        load_dataset("cifar10", folder)
    assert "data_batch_3" in assert_one_line_user_error(exc)
    (folder / "test_batch").unlink()
    with pytest.raises(UserError) as exc:
        load_dataset("cifar10", folder)
    assert "test_batch" in assert_one_line_user_error(exc)

    base = make_tiny_imagenet(tmp_path / "tin")
    (base / "val" / "images" / "val_n01_0.JPEG").write_bytes(b"no jpeg")
    with pytest.raises(UserError) as exc:
        load_dataset("tiny-imagenet", base)
    assert "val_n01_0.JPEG" in assert_one_line_user_error(exc)
    (base / "wnids.txt").unlink()
    with pytest.raises(UserError) as exc:
        load_dataset("tiny-imagenet", base)
    assert "wnids.txt" in assert_one_line_user_error(exc)


def test_split_rejects_bad_shapes() -> None:
    with pytest.raises(UserError):
        Split(torch.zeros(4, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(UserError):
        Split(torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long))


def test_never_imports_torchvision() -> None:
    code = (
        "import sys, snnprune.data; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'torchvision']; "
        "sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70, 1.0, "3", True])
def test_load_dataset_rejects_a_seed_out_of_range(seed) -> None:
    """2**70 used to reach numpy/torch and fail there with an overflow traceback."""
    with pytest.raises(UserError, match="seed must be an integer in \\[0, 4294967295\\]") as exc:
        load_dataset("digits", seed=seed)
    assert_one_line_user_error(exc)


def test_load_dataset_accepts_the_largest_seed() -> None:
    data = load_dataset("digits", subset=100, seed=2**32 - 1)
    assert len(data.train) + len(data.val) == 100


# ---------------------------------------------------------------- damaged or mixed-up files
@pytest.mark.parametrize("labels", [
    ["cat"] * 20, None, 3, [[1]] * 20, [1.7] * 20, [2**70] * 20, [[1], [1, 2]] + [[0]] * 18,
], ids=["strings", "none", "scalar", "nested", "floats", "huge", "ragged"])
def test_cifar_labels_that_are_not_class_ids_are_one_line(tmp_path: Path, labels) -> None:
    """The bug: these raised ValueError/TypeError/OverflowError tracebacks, or (floats) were
    truncated to another class without a word."""
    folder = make_cifar10(tmp_path)
    batch = pickle.loads((folder / "data_batch_2").read_bytes())
    batch[b"labels"] = labels
    (folder / "data_batch_2").write_bytes(pickle.dumps(batch))
    with pytest.raises(UserError) as exc:
        load_dataset("cifar10", folder)
    msg = assert_one_line_user_error(exc)
    assert "data_batch_2" in msg and "labels" in msg


def test_a_damaged_dvs_frame_file_is_one_line(tmp_path: Path) -> None:
    """The bug: bytes damaged early in the deflate stream raised zlib.error, a traceback."""
    make_dvs_frames(tmp_path, per_class=1)
    for path in sorted((tmp_path / "frames_number_10_split_by_number").rglob("*.npz")):
        raw = bytearray(path.read_bytes())
        raw[80:110] = b"\xff" * 30
        path.write_bytes(bytes(raw))
    with pytest.raises(UserError) as exc:
        splits = load_dataset("cifar10-dvs", tmp_path, seed=0)
        for split in (splits.train, splits.val, splits.test):
            for _ in split.batches(4, shuffle=False):
                pass
    assert "cannot read frames" in assert_one_line_user_error(exc)


def test_fashion_mnist_files_come_from_one_folder(tmp_path: Path) -> None:
    """The bug: each file was looked up on its own, so a folder holding only the training files
    trained on them and tested on another sub-folder's files (MNIST shares the names)."""
    make_fashion(tmp_path / "a-fashion", gz=False, n_train=40, n_test=20)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / "a-fashion" / name).unlink()
    make_fashion(tmp_path / "b-mnist", gz=False, n_train=60, n_test=30)
    splits = load_dataset("fashion-mnist", tmp_path, seed=0)
    assert len(splits.train) + len(splits.val) == 60  # all four from b-mnist
    (tmp_path / "b-mnist" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError) as exc:
        load_dataset("fashion-mnist", tmp_path)
    msg = assert_one_line_user_error(exc)
    assert "one folder" in msg and "t10k-images-idx3-ubyte(.gz)" in msg


def test_an_idx_header_whose_size_overflows_is_one_line(tmp_path: Path) -> None:
    """The bug: int64 wrap-around made a huge header match an empty body (a reshape error)."""
    fm = make_fashion(tmp_path, gz=False)
    head = struct.pack(">I", 2051) + struct.pack(">3I", 2**22, 2**21, 2**21)
    (fm / "train-images-idx3-ubyte").write_bytes(head)
    with pytest.raises(UserError) as exc:
        load_dataset("fashion-mnist", fm)
    assert str(2**64) in assert_one_line_user_error(exc)


def test_tiny_imagenet_bad_text_and_huge_images_are_one_line(tmp_path: Path) -> None:
    """The bugs: a non-UTF-8 wnids.txt raised UnicodeDecodeError, and an image over Pillow's
    decompression-bomb limit raised DecompressionBombError, both as tracebacks."""
    from PIL import Image

    base = make_tiny_imagenet(tmp_path)
    wnids = (base / "wnids.txt").read_bytes()
    (base / "wnids.txt").write_bytes(b"\xff\xfe n1\n")
    with pytest.raises(UserError) as exc:
        load_dataset("tiny-imagenet", base)
    assert "wnids.txt" in assert_one_line_user_error(exc)
    (base / "wnids.txt").write_bytes(wnids)
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 64 * 64 // 4  # 64x64 is over twice this: a "bomb"
        with pytest.raises(UserError) as exc:
            load_dataset("tiny-imagenet", base)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    assert "cannot decode image" in assert_one_line_user_error(exc)


def test_an_empty_test_file_is_refused_at_load(tmp_path: Path) -> None:
    """It was found only after the whole training run, as 'no sample to measure SOPs on'."""
    folder = make_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps(
        {b"data": np.zeros((0, 3072), dtype=np.uint8), b"labels": []}))
    with pytest.raises(UserError) as exc:
        load_dataset("cifar10", folder)
    assert "test files hold no sample" in assert_one_line_user_error(exc)


@pytest.mark.parametrize("subset", [5, 9])
def test_a_small_subset_still_has_a_validation_sample(subset: int) -> None:
    """The bug: floor(0.1 * 9) = 0 left the validation split empty, and a search then
    selected on test accuracy."""
    splits = load_dataset("digits", subset=subset, val_fraction=0.1, seed=0)
    assert len(splits.val) == 1 and len(splits.train) == subset - 1
    y_tr, y_te = np.arange(100) % 10, np.arange(20) % 10
    _, val, _ = plan_indices(y_tr, y_te, subset=None, val_fraction=0.1, seed=0)
    assert len(val) == 10  # unchanged where the fraction gives one or more


def test_a_model_built_for_other_time_steps_than_the_frames_is_refused(tmp_path: Path) -> None:
    import snnprune

    make_dvs_frames(tmp_path, per_class=1)
    splits = load_dataset("cifar10-dvs", tmp_path, seed=0)
    net = snnprune.build_model("cnn", num_classes=10, in_channels=2, image_size=128, T=4, width=0.25)
    with pytest.raises(UserError, match="built for T=4 but the data holds 10 frames per sample"):
        snnprune.evaluate(net, splits.test)
