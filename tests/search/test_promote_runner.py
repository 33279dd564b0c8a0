"""Promote mode in the trial runner: a trial paused at a rung and resumed from its checkpoint
ends exactly as the same trial run straight through; the pause is recorded where workers look."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from snnprune.errors import UserError
from snnprune.search import RungPolicy, RungStore, TrialRuntime, run_trial
from snnprune.search._optuna import trial_config

CASES = [("gmp", 0.7, {"prune_steps": 2}), ("l1-filter", 0.4, {})]


def _runtime(tmp_path: Path, cache, mode: str | None, min_trials: int = 1) -> TrialRuntime:
    if mode is None:
        return TrialRuntime(run_dir=tmp_path / "straight", cache=cache, device="cpu")
    return TrialRuntime(run_dir=tmp_path / mode, cache=cache, rung_store=RungStore(tmp_path / mode / "rungs.db"),
                        rungs=RungPolicy((1, 2), 0.25, min_trials, mode), scope="s/1", device="cpu")


@pytest.fixture
def cache(tmp_path):
    from snnprune.search import DenseCache

    return DenseCache(tmp_path / "cache")


@pytest.mark.parametrize("pruner, sparsity, hp", CASES)
def test_a_paused_trial_resumed_ends_as_the_same_trial_never_paused(tmp_path, tiny_space, cache, pruner, sparsity, hp):
    torch.set_num_threads(1)
    space = tiny_space(budget={"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 3, "batch_size": 64,
                               "lr": 0.1, "finetune_lr": 0.02},
                       pruners={pruner: {"sparsity": {"type": "float", "low": 0.1, "high": 0.9}}})
    config = trial_config(space, pruner, sparsity, hp, 0, "s")
    straight = run_trial(config, _runtime(tmp_path, cache, None))

    runtime = _runtime(tmp_path, cache, "promote")
    runtime.rungs = RungPolicy((1, 2), 0.25, 1, "promote", margin="auto")
    first = run_trial(config, runtime, trial_key="0")  # nothing to compare with: pauses at rung 1
    assert first.stopped_at == 1 and first.paused_checkpoint
    assert Path(first.paused_checkpoint).name == "paused_at_1.pt"
    [pause] = runtime.rung_store.paused("s/1")
    assert (pause.trial, pause.rung, pause.checkpoint) == ("0", 1, first.paused_checkpoint)
    # the record carries its accuracy's margin on this val split (``auto``), the costs none
    with sqlite3.connect(runtime.rung_store.path) as db:
        vals, tol = db.execute("SELECT vals, tol FROM rungs WHERE trial = '0' AND rung = 1").fetchone()
    n_val = len(runtime.data(config.data, config.seed).val)
    assert json.loads(tol) == runtime.rungs.tolerance(config.objectives, json.loads(vals), n_val)
    assert json.loads(tol)[0] > 0 and json.loads(tol)[1:] == [0.0] * (len(config.objectives) - 1)

    # the resuming trial is another trial number (its own artifacts), on the same rung line "0"
    resumed_config = trial_config(space, pruner, sparsity, hp, 5, "s")
    runtime.rungs = RungPolicy((1, 2), 0.25, 1, "stop")  # judge nothing more: run to the end
    resumed = run_trial(resumed_config, runtime, trial_key="0", resume=first.paused_checkpoint)
    assert resumed.stopped_at is None and resumed.paused_checkpoint is None
    for name in ("accuracy", "test_accuracy", "macs", "sparsity", "nonzero_weights", "sops"):
        assert resumed.metrics[name] == straight.metrics[name], name
    assert [r["epoch"] for r in resumed.history["finetune"]] == [1, 2, 3]
    assert Path(resumed.artifacts["model"]).parent.name == "00005"
    [at_two] = runtime.rung_store.others("s/1", "x", 2)  # recorded on the paused trial's line
    assert at_two[0] == resumed.history["finetune"][1]["val_accuracy"]


def test_a_trial_enough_trials_judge_and_none_dominates_goes_on(tmp_path, tiny_space, cache):
    space = tiny_space(budget={"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 2, "batch_size": 64,
                               "lr": 0.1, "finetune_lr": 0.02})
    runtime = _runtime(tmp_path, cache, "promote")
    runtime.rungs = RungPolicy((1,), 0.25, 1, "promote")
    runtime.rung_store.record("s/1", "9", 1, [0.0, 1e12])  # worse on both objectives: judges, dominates nothing
    result = run_trial(trial_config(space, "gmp", 0.5, {"prune_steps": 2}, 0, "s"), runtime, trial_key="0")
    assert result.stopped_at is None and result.paused_checkpoint is None
    assert runtime.rung_store.paused("s/1") == []


def test_a_missing_or_foreign_checkpoint_is_one_line(tmp_path, tiny_space, cache):
    space = tiny_space()
    config = trial_config(space, "gmp", 0.5, {"prune_steps": 2}, 1, "s")
    runtime = _runtime(tmp_path, cache, None)
    with pytest.raises(UserError, match="checkpoint of the paused trial is gone"):
        run_trial(config, runtime, resume=tmp_path / "nope.pt")
    other = tmp_path / "other.pt"
    torch.save({"format": "something else"}, other)
    with pytest.raises(UserError, match="not a paused run"):
        run_trial(config, runtime, resume=other)
    torch.save({"format": "snnprune-paused-run/1", "masks": {}}, other)
    with pytest.raises(UserError, match="paused run without structured, dense.*damaged"):
        run_trial(config, runtime, resume=other)
    other.write_bytes(b"not torch")
    with pytest.raises(UserError, match="cannot read the paused trial's checkpoint"):
        run_trial(config, runtime, resume=other)
