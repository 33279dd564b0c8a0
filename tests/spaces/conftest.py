"""Fixtures for the search-space tests: a small valid space and a writer for YAML files.

The base space uses only gmp and criticality-unstructured, the first pruners registered, so the
tests of the schema do not wait on the other pruners; tests that need another pruner skip with
a reason while it is not registered.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

BASE: dict[str, Any] = {
    "study": "t",
    "model": {"name": "cnn", "width": 1.0, "T": 4},
    "data": {"name": "digits"},
    "budget": {"pretrain_epochs": 2, "prune_epochs": 2, "finetune_epochs": 4},
    "pruners": {
        "criticality-unstructured": {
            "sparsity": {"type": "float", "low": 0.5, "high": 0.95},
            "regen_ratio": {"type": "float", "low": 0.0, "high": 0.8},
            "aggregation": {"type": "categorical", "choices": ["max", "mean"]},
            "prune_steps": {"type": "int", "low": 2, "high": 10, "step": 2},
        },
        "gmp": {"sparsity": 0.9},
    },
    "objectives": ["accuracy", "macs"],
    "constraints": ["accuracy >= 0.5"],
    "rungs": {"epochs": [1, 2]},
}


def registered_names() -> set[str]:
    """Names in the pruner registry right now."""
    from snnprune.pruners import list_pruners

    return {spec.name for spec in list_pruners()}


def skip_unless_registered(*names: str) -> None:
    """Skip the calling test while one of ``names`` is not registered."""
    missing = sorted(set(names) - registered_names())
    if missing:
        pytest.skip(f"pruner(s) not registered yet: {', '.join(missing)}")


@pytest.fixture
def need():
    """``need("sca", ...)`` skips the test while one of the pruners is not registered."""
    return skip_unless_registered


@pytest.fixture
def base() -> dict[str, Any]:
    """A fresh deep copy of the valid base space, to mutate."""
    return copy.deepcopy(BASE)


@pytest.fixture
def write(tmp_path: Path):
    """Write YAML text (or a mapping, dumped) to ``tmp_path/name`` and return the path."""
    def _write(content: str | dict[str, Any], name: str = "space.yaml") -> Path:
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
