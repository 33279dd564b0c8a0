"""Data sets for pruning searches: loaded once, held as tensors, served in seeded batches.

    from snnprune.data import load_dataset
    splits = load_dataset("cifar10", "~/data/cifar-10-batches-py", subset=5000, seed=1)
    for x, y in splits.train.batches(128, shuffle=True, device="cuda"):
        ...

`dataset_info` answers shape questions from a static table without reading data. Nothing is
ever downloaded: a missing or damaged data set raises `snnprune.errors.UserError` with one line
saying what is missing and how to get it. torchvision is never imported.
"""

from __future__ import annotations

from snnprune.data._dvs import FrameSplit
from snnprune.data._info import DatasetInfo, dataset_info, list_datasets
from snnprune.data._load import load_dataset
from snnprune.data._split import DataSplits, Split

__all__ = [
    "DataSplits",
    "DatasetInfo",
    "FrameSplit",
    "Split",
    "dataset_info",
    "list_datasets",
    "load_dataset",
]
