"""Run a network in eval mode and give every module back the mode it had.

``was = model.training; model.eval(); ...; model.train(was)`` sets every submodule to the
network's own flag on the way out, so a BN layer the user froze (``bn.eval()`` inside a network in
train mode) came back from `evaluate`, `measure` or a probe pass training again, and its running
statistics moved on the next step. Measuring must leave the network as it found it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every module in eval mode inside; each one's own train/eval flag restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
