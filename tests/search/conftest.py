"""A tiny search space on digits: every search test runs in seconds per trial."""

from __future__ import annotations

import pytest


def tiny_space_dict(study: str = "t", trials: int = 2, rungs: dict | None = None, pruners: dict | None = None,
                    **extra) -> dict:
    space = {
        "study": study,
        "model": {"name": "cnn", "width": 0.25, "T": 2},
        "data": {"name": "digits", "subset": 400},
        "budget": {"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 2, "batch_size": 64,
                   "lr": 0.1, "finetune_lr": 0.02},
        "pruners": pruners or {"gmp": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9},
                                       "prune_steps": 2}},
        "objectives": ["accuracy", "macs"],
        "trials": trials,
        "seed": 0,
    }
    if rungs:
        space["rungs"] = rungs
    space.update(extra)
    return space


@pytest.fixture
def space_dict():
    """The tiny space as plain data (to write as YAML)."""
    return tiny_space_dict


@pytest.fixture
def tiny_space():
    from snnprune.spaces import parse_space

    def make(**kw):
        return parse_space(tiny_space_dict(**kw), source="<test>")
    return make
