"""The static table of supported data sets, and the helpers every reader shares.

The table answers "how many classes, channels, pixels?" without touching the disk, so models can
be built and search spaces checked before any data is read. Each entry also carries the one line
that tells a user how to get the data, so every reader can fail with the same advice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from snnprune.errors import UserError

__all__ = ["DatasetInfo", "dataset_info", "list_datasets", "resolve_root", "one_line"]


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a data set: enough to size a network without reading the data.

    `time_steps` is set only for event data (cifar10-dvs: frames per sample); static images
    leave it None and the model repeats them over its own number of steps.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    time_steps: int | None = None
    default_root: str | None = None
    how_to_get: str = ""


_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

_TABLE: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="digits",
            num_classes=10,
            in_channels=1,
            image_size=8,
            how_to_get="it ships with scikit-learn (pip install scikit-learn)",
        ),
        DatasetInfo(
            name="fashion-mnist",
            num_classes=10,
            in_channels=1,
            image_size=28,
            default_root="/usr/share/datasets/fashion-mnist",
            how_to_get=(
                "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
                "or pass --data-root to a folder holding the four IDX files"
            ),
        ),
        DatasetInfo(
            name="cifar10",
            num_classes=10,
            in_channels=3,
            image_size=32,
            how_to_get=(
                f"download cifar-10-python.tar.gz from {_CIFAR_URL}, extract it and pass "
                "--data-root pointing at the cifar-10-batches-py folder"
            ),
        ),
        DatasetInfo(
            name="cifar100",
            num_classes=100,
            in_channels=3,
            image_size=32,
            how_to_get=(
                f"download cifar-100-python.tar.gz from {_CIFAR_URL}, extract it and pass "
                "--data-root pointing at the cifar-100-python folder"
            ),
        ),
        DatasetInfo(
            name="tiny-imagenet",
            num_classes=200,
            in_channels=3,
            image_size=64,
            how_to_get=(
                "download http://cs231n.stanford.edu/tiny-imagenet-200.zip, extract it and pass "
                "--data-root pointing at the tiny-imagenet-200 folder"
            ),
        ),
        DatasetInfo(
            name="cifar10-dvs",
            num_classes=10,
            in_channels=2,
            image_size=128,
            time_steps=10,
            how_to_get=(
                "download the ten class zips (airplane.zip ... truck.zip) from "
                "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 into "
                "<root>/download, or put spikingjelly's frames_number_10_split_by_number folder "
                "under <root>, and pass --data-root <root>"
            ),
        ),
    )
}


def list_datasets() -> list[str]:
    """Names `load_dataset` accepts, in a stable order for help texts and search spaces."""
    return list(_TABLE)


def dataset_info(name: str) -> DatasetInfo:
    """Facts about `name` from the static table; reads no data, so it is cheap to call anywhere."""
    if not isinstance(name, str) or name not in _TABLE:
        raise UserError(f"unknown data set {name!r}; known data sets: {', '.join(_TABLE)}")
    return _TABLE[name]


def one_line(text: object) -> str:
    """Collapse an exception's text to one line, so a UserError wrapping it stays one line."""
    return " ".join(str(text).split())


def resolve_root(info: DatasetInfo, root: str | os.PathLike[str] | None) -> Path:
    """The folder to read from: `root`, else the table's default; missing -> UserError.

    Data sets without a default location (everything the user downloads by hand) need `root`;
    the message says where to get the data rather than just that a path is missing.
    """
    if root is None:
        if info.default_root is None:
            raise UserError(f"{info.name}: no data root given; {info.how_to_get}")
        path = Path(info.default_root)
    else:
        path = Path(os.fspath(root)).expanduser()
    if not path.is_dir():
        raise UserError(f"{info.name}: data root {path} is not a folder; {info.how_to_get}")
    return path
