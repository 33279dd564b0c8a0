"""Where the runner saves a trial's artifacts, and the paths it records for them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from snnprune.models import build_model, seeded
from snnprune.search import TrialConfig, TrialRuntime
from snnprune.search._runner import _save


@pytest.mark.parametrize("trial, folder", [(3, "00003"), (-1, "no-number")])
def test_artifacts_are_recorded_absolute_under_the_trials_number(trial, folder, tmp_path, monkeypatch):
    """Paths were recorded relative to the search's working directory (export from another
    directory could not find them), and a config without a number saved under "trials/-0001"."""
    monkeypatch.chdir(tmp_path)
    with seeded(0):
        net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2, width=0.25)
    conv = next(n for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d))
    masks = {conv: {"weight": torch.ones_like(net.get_submodule(conv).weight)}}
    outcome = SimpleNamespace(masks=masks, structured=False, model=net)
    config = TrialConfig(pruner="gmp", sparsity=0.5, hyperparameters={}, model={"name": "cnn"},
                         data={"name": "digits"}, budget={}, seed=0, trial=trial)
    saved = _save(config, outcome, TrialRuntime(run_dir=Path("runs/x"), cache=None))
    for path in map(Path, saved.values()):
        assert path.is_absolute() and path.is_file()
        assert path.parent == tmp_path / "runs" / "x" / "trials" / folder
