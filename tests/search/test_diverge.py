"""A trial that diverges for real: the loss turns NaN inside the training engine, nothing patched.

The space's learning rate (``budget.lr``, legal: any positive number) is absurd, and only the
training that uses it diverges: with no pre-training and no pruning epochs, NNI's TaylorPruner
still takes its ``training_steps`` scoring steps at that rate, while a one-shot pruner only
fine-tunes (at the sane ``finetune_lr``). The study queues one of each, diverging first, and runs
through the public `optimize`; then the results store and the report read it.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from snnprune.reports import build_report, load_trials, resolve_run
from snnprune.search import open_study, optimize
from snnprune.spaces import parse_space


def _space():
    return parse_space({
        "study": "diverge",
        "model": {"name": "cnn", "width": 0.25, "T": 2},
        "data": {"name": "digits", "subset": 300},
        "budget": {"pretrain_epochs": 0, "prune_epochs": 0, "finetune_epochs": 1, "batch_size": 64,
                   "lr": 1.0e20, "finetune_lr": 0.02},
        "pruners": {"nni:TaylorPruner": {"sparsity": 0.5, "training_steps": 3},
                    "random-unstructured": {"sparsity": 0.5}},
        "objectives": ["accuracy", "macs"],
        "trials": 2,
        "seed": 0,
    }, source="<test>")


def test_a_diverging_trial_fails_with_its_reason_and_the_study_goes_on(tmp_path):
    space = _space()
    run_dir = tmp_path / "diverge"
    storage = f"sqlite:///{run_dir / 'study.db'}"
    queued = open_study(space, storage)
    queued.enqueue_trial({"pruner": "nni:TaylorPruner"})  # diverges
    queued.enqueue_trial({"pruner": "random-unstructured"})  # runs after it, and completes

    summary = optimize(space, run_dir=run_dir, storage=storage, device="cpu", quiet=True)

    assert (summary["trials"], summary["failed"], summary["complete"]) == (2, 1, 1), summary
    assert "all_failed" not in summary
    study = optuna.load_study(study_name="diverge", storage=storage)
    diverged, after = study.trials
    assert diverged.state == TrialState.FAIL
    reason = diverged.user_attrs["fail_reason"]
    assert reason.startswith("TrainingDiverged: loss became") and ("nan" in reason or "inf" in reason), reason
    assert "traceback" not in diverged.user_attrs  # an expected failure, not a bug to debug
    assert diverged.user_attrs["config"]["pruner"] == "nni:TaylorPruner"
    assert after.state == TrialState.COMPLETE
    assert after.user_attrs["config"]["pruner"] == "random-unstructured"
    assert after.datetime_start >= diverged.datetime_complete  # it ran after the failure
    assert all(math.isfinite(v) for v in after.values)

    # the results store and the report take the failed trial in, reason included
    report = build_report(resolve_run(run_dir))
    rows = load_trials(report["results_db"]).set_index("number")
    assert list(rows.index) == [0, 1]
    assert rows.loc[0, "state"].upper().endswith("FAIL") and rows.loc[0, "fail_reason"] == reason
    assert rows.loc[1, "state"].upper().endswith("COMPLETE") and pd.isna(rows.loc[1, "fail_reason"])
    csv = pd.read_csv(report["csv"]).set_index("number")
    assert csv.loc[0, "fail_reason"] == reason
    text = Path(report["report"]).read_text()
    assert "1 complete" in text and "1 fail" in text, text
