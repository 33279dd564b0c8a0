"""Crash and resume: kill -9 a real `snnprune search` mid-trial, run the same command again.

What must hold after the second run: the trials that had completed are kept as they were, the
trial that was running is FAIL and was retried once with the same parameters (``retry_of``),
the study counts exactly --trials finished trials, no trial number is duplicated (in the study
or the results store), and the dense-checkpoint cache holds no half-written file.
Heartbeats are made short (``SNNPRUNE_HEARTBEAT=1,2``) so the dead trial is found in seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from snnprune.reports import load_trials, sync_store
from snnprune.search import open_storage
from snnprune.search._optuna import _finished

from snnprune.engine import read_checkpoint
from snnprune.errors import UserError

TRIALS = 4
GRACE = 2
SPACE = {
    "study": "crash",
    "model": {"name": "cnn", "width": 0.25, "T": 2},
    "data": {"name": "digits", "subset": 300},
    "budget": {"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 2, "batch_size": 64,
               "lr": 0.1, "finetune_lr": 0.02},
    "pruners": {"gmp": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9}, "prune_steps": 2}},
    "objectives": ["accuracy", "macs"],
    "trials": TRIALS,
    "seed": 0,
}


def _env() -> dict[str, str]:
    env = {**os.environ, "SNNPRUNE_HEARTBEAT": f"1,{GRACE}", "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONWARNINGS": "ignore"}
    return env


def _load(storage: str) -> optuna.Study | None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name="crash", storage=open_storage(storage, heartbeat=False, create=False))
    except (KeyError, UserError):  # not created yet
        return None


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_kill_minus_9_then_rerun_resumes(tmp_path: Path, kind: str):
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(SPACE))
    out = tmp_path / "runs"
    storage = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "journal.log")
    argv = [sys.executable, "-m", "snnprune", "search", str(space_file), "--trials", str(TRIALS),
            "--storage", storage, "--study", "crash", "--out", str(out), "-q", "--device", "cpu"]

    with open(tmp_path / "first-run.log", "wb") as log:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(argv, env=_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the search ended before it could be killed: " + \
                (tmp_path / "first-run.log").read_text()[-2000:]
            study = _load(storage)
            if study is not None:
                trials = study.get_trials(deepcopy=False)
                states = {t.state for t in trials}
                if TrialState.COMPLETE in states and TrialState.RUNNING in states:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("no COMPLETE and RUNNING trial seen within 120 s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = time.monotonic()

    # the study as the killed process left it (a trial may have ended between the last poll and the kill)
    before = {t.number: t for t in _load(storage).get_trials(deepcopy=False)}
    running = [n for n, t in before.items() if t.state == TrialState.RUNNING]
    complete = {n: list(t.values) for n, t in before.items() if t.state == TrialState.COMPLETE}
    assert len(running) == 1 and complete, {n: t.state.name for n, t in before.items()}
    dead = running[0]

    time.sleep(max(0.0, GRACE + 1.0 - (time.monotonic() - killed_at)))  # past the grace period
    again = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=240,
                           check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Traceback" not in again.stderr, again.stderr[-2000:]

    study = _load(storage)
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials))), "duplicate or missing trial numbers"
    by_number = {t.number: t for t in trials}
    for number, values in complete.items():  # completed trials kept, unchanged
        assert by_number[number].state == TrialState.COMPLETE
        assert list(by_number[number].values) == values
    assert by_number[dead].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get("retry_of") == dead]
    assert len(retries) == 1, [t.user_attrs for t in trials]
    assert retries[0].params == before[dead].params
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert _finished(study) == TRIALS  # the retry replaces the dead trial in the count
    assert len(trials) == TRIALS + 1

    # the results store: one row per trial number
    rows = sync_store(storage, "crash", tmp_path / "results.db")
    frame = load_trials(tmp_path / "results.db")
    assert rows == len(trials) and frame["number"].is_unique and len(frame) == len(trials)

    # the dense cache: whole files only, and they load
    cache = out / ".cache"
    assert not list(cache.glob("*.tmp")) and not list(cache.glob(".*.tmp"))
    checkpoints = list(cache.glob("dense-*.pt"))
    assert checkpoints
    for path in checkpoints:
        assert read_checkpoint(path)["state_dict"]
