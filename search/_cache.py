"""The dense-checkpoint cache: structured pruning starts from a trained dense network, and
every trial with the same (model, data, pre-training budget, seed) starts from the same one.

It is trained once. Several workers asking at the same time wait on a file lock while the
first trains; the checkpoint is written atomically, so a crash never leaves half a file, and a
corrupt file is retrained rather than trusted.

Beside each checkpoint a small JSON file keeps what every trial would otherwise measure again on
the same dense network (its test accuracy: one pass over the test set per trial, seconds per
trial on CIFAR-sized test sets). Retraining a checkpoint drops it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import nn

from snnprune.engine import atomic_write_bytes, read_checkpoint, save_checkpoint
from snnprune.errors import UserError

__all__ = ["DenseCache", "cache_digest"]


def cache_digest(key: dict[str, Any]) -> str:
    """Stable short digest of a JSON-like key (order of keys does not matter)."""
    canonical = json.dumps(key, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def _plain(key: dict[str, Any]) -> Any:
    """The key as it reads back from JSON (tuples become lists), for comparing stored keys."""
    return json.loads(json.dumps(key, default=str))


class DenseCache:
    """Dense pre-trained state dicts under ``root``, one file per key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, key: dict[str, Any]) -> Path:
        return self.root / f"dense-{cache_digest(key)}.pt"

    def _figures_path(self, key: dict[str, Any]) -> Path:
        return self.root / f"dense-{cache_digest(key)}.json"

    def figures(self, key: dict[str, Any]) -> dict[str, float]:
        """What was measured on the cached dense network ({} when nothing, or unreadable)."""
        try:
            payload = json.loads(self._figures_path(key).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(payload, dict) or payload.get("key") != _plain(key):
            return {}
        values = payload.get("figures")
        return {k: float(v) for k, v in values.items() if isinstance(v, (int, float))} \
            if isinstance(values, dict) else {}

    def save_figures(self, key: dict[str, Any], figures: dict[str, float]) -> None:
        """Store measurements of the cached dense network (atomic; the same values from any worker)."""
        payload = {"key": _plain(key),
                   "figures": {k: float(v) for k, v in figures.items()}}
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._figures_path(key), json.dumps(payload, sort_keys=True).encode())

    def get_or_train(self, key: dict[str, Any], train: Callable[[], nn.Module],
                     ) -> tuple[dict[str, torch.Tensor], bool]:
        """(state dict, True if it came from the cache). ``train`` runs at most once per key."""
        path = self.path_for(key)
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=-1):
            # a writer killed mid-save leaves its temporary file (never a half checkpoint): tidy up
            for stale in self.root.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            if path.is_file():
                try:
                    payload = read_checkpoint(path)
                    if payload.get("meta", {}).get("key") == _plain(key):
                        return payload["state_dict"], True
                except UserError:
                    pass  # corrupt: retrain below and replace it atomically
            self._figures_path(key).unlink(missing_ok=True)  # measured on the network being replaced
            model = train()
            save_checkpoint(path, model, key=_plain(key))
            return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, False
