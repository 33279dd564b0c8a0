"""Shared fixtures: the embedded digits data and tiny networks, so every test stays fast."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


BENCH = Path(__file__).resolve().parents[1] / "bench"
_BENCH_MODULES: dict[str, ModuleType] = {}


@pytest.fixture(scope="session")
def bench_module():
    """Load a bench script (``bench/NAME.py``) as a module, once; its sibling imports resolve."""
    def load(name: str) -> ModuleType:
        if name not in _BENCH_MODULES:
            sys.path.insert(0, str(BENCH))
            try:
                spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(BENCH))
            _BENCH_MODULES[name] = module
        return _BENCH_MODULES[name]

    return load


@pytest.fixture(scope="session")
def digits():
    """The digits splits (seed 0), loaded once per session."""
    import snnprune

    return snnprune.load_dataset("digits", seed=0)


@pytest.fixture
def tiny_cnn():
    """A small cnn for 8x8 single-channel digits, seeded."""
    from snnprune.models import build_model, seeded

    def make(width: float = 0.5, T: int = 2, seed: int = 0, **kw):
        with seeded(seed):
            return build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=T, width=width, **kw)

    return make


@pytest.fixture
def cli_error(capsys):
    """``cli_error(argv)`` runs the CLI and returns its error line, checking the contract for bad
    input: exit code 2, exactly one ``snnprune: error:`` line on stderr, no traceback anywhere."""
    from snnprune.cli._app import main

    def run(argv: list[str]) -> str:
        code = main(argv)
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, f"exit {code}; stderr: {err[-1500:]}"
        assert lines[0].startswith("snnprune: error:") and "Traceback" not in err + out
        return lines[0]
    return run
