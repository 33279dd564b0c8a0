"""snnprune: find how far a spiking neural network can be pruned, and with which method.

The core (models, data, engine, metrics, compaction) lives here; pruners, search spaces, the
search backends and the reports are the subpackages `snnprune.pruners`, `snnprune.spaces`,
`snnprune.search` and `snnprune.reports`.
"""

from __future__ import annotations

import logging as _logging
import os as _os

# torch warns at import on machines without Triton (every CPU box): noise for our users.
_logging.getLogger("torch._library.triton").setLevel(_logging.ERROR)
_os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from snnprune._version import __version__  # noqa: E402
from snnprune.compaction import compact, load_compact, load_sparse, save_compact, save_sparse  # noqa: E402
from snnprune.data import DataSplits, DatasetInfo, dataset_info, list_datasets, load_dataset  # noqa: E402
from snnprune.engine import Callback, FitResult, evaluate, fit, load_checkpoint, save_checkpoint  # noqa: E402
from snnprune.errors import UserError  # noqa: E402
from snnprune.metrics import ModelMetrics, measure  # noqa: E402
from snnprune.models import build_model, list_models  # noqa: E402

__all__ = [
    "Callback",
    "DataSplits",
    "DatasetInfo",
    "FitResult",
    "ModelMetrics",
    "UserError",
    "__version__",
    "build_model",
    "compact",
    "dataset_info",
    "evaluate",
    "fit",
    "list_datasets",
    "list_models",
    "load_checkpoint",
    "load_compact",
    "load_dataset",
    "load_sparse",
    "measure",
    "save_checkpoint",
    "save_compact",
    "save_sparse",
]
