"""Crash and resume: kill -9 a real `snnprune search` mid-trial, run the same command again.

What must hold after the second run: the trials that had completed are kept as they were, the
trial that was running is FAIL ("interrupted") and was retried once with the same parameters
(``retry_of``), the study counts exactly --trials finished trials, no trial number is duplicated
(in the study or the results store), and the dense-checkpoint cache holds no half-written file.
Heartbeats are made short (``SNNPRUNE_HEARTBEAT=1,2``) so the dead trial is found in seconds.

Both backends: the Optuna one (SQLite and a journal file) and Ray Tune, whose driver, local
cluster and trial workers are killed together (the whole process group, as a shell's kill of a
job would), and none of them may survive.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import yaml
from optuna.trial import TrialState

from snnprune.engine import read_checkpoint
from snnprune.errors import UserError
from snnprune.reports import load_trials, sync_store
from snnprune.search import open_storage
from snnprune.search._storage import open_rdb
from snnprune.search._optuna import _finished

GRACE = 2
#: Set in the environment of the search processes: every process they start inherits it, so a
#: survivor of the kill is found by it even if it left the process group.
MARK = "SNNPRUNE_CRASH_TEST"
SPACE = {
    "study": "crash",
    "model": {"name": "cnn", "width": 0.25, "T": 2},
    "data": {"name": "digits", "subset": 300},
    "budget": {"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 2, "batch_size": 64,
               "lr": 0.1, "finetune_lr": 0.02},
    "pruners": {"gmp": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9}, "prune_steps": 2}},
    "objectives": ["accuracy", "macs"],
    "seed": 0,
}

no_ray = importlib.util.find_spec("ray") is None


def _env(mark: str) -> dict[str, str]:
    return {**os.environ, "SNNPRUNE_HEARTBEAT": f"1,{GRACE}", "OMP_NUM_THREADS": "1",
            "RAY_USAGE_STATS_ENABLED": "0", "PYTHONWARNINGS": "ignore", MARK: mark}


def _load(storage: str) -> optuna.Study | None:
    """The study, read without creating tables. Even so, opening stamps Optuna's schema version,
    which races the search stamping it ("UNIQUE constraint failed: alembic_version"; the flaky
    failure of this test, 1 run in 14 to 35): `open_rdb` opens again on that, as the dashboard does."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if storage.startswith("sqlite:///"):
            if not Path(storage[len("sqlite:///"):]).is_file():
                return None
            handle = open_rdb(storage, lambda: optuna.storages.RDBStorage(
                storage, skip_table_creation=True, skip_compatibility_check=True))
        else:
            handle = open_storage(storage, heartbeat=False, create=False)
        return optuna.load_study(study_name="crash", storage=handle)
    except (KeyError, UserError, sqlalchemy.exc.OperationalError):  # not created yet
        return None


def _processes(keep) -> list[int]:
    """Live processes (zombies aside) for which ``keep(stat fields after the name, environ)``."""
    if not sys.platform.startswith("linux"):
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X") and keep(fields, environ):
            found.append(int(entry.name))
    return found


def _marked(mark: str) -> list[int]:
    """The processes whose environment carries ``MARK=mark``: the search's, wherever they went."""
    needle = f"{MARK}={mark}".encode()
    return _processes(lambda fields, environ: needle in environ.split(b"\0"))


def _session(sid: int) -> list[int]:
    """The processes of session ``sid``: Ray's trial workers take process groups of their own."""
    return _processes(lambda fields, environ: int(fields[3]) == sid)


def _survivors(mark: str, wait: float = 15.0) -> list[int]:
    """The marked processes still alive after ``wait`` seconds (none, when all is well)."""
    deadline = time.monotonic() + wait
    while (left := _marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.3)
    return left


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _complete_and_running(trials: list[optuna.trial.FrozenTrial]) -> bool:
    states = {t.state for t in trials}
    return TrialState.COMPLETE in states and TrialState.RUNNING in states


def _start_and_kill(argv: list[str], env: dict[str, str], storage: str, mark: str, log_path: Path,
                    ready=_complete_and_running) -> float:
    """Start the search, kill -9 it and all it started once ``ready(trials)`` (by default: the
    study holds a COMPLETE and a RUNNING trial); the moment of the kill."""
    # its own session: the kill takes the search and all it started (Ray's local cluster and its
    # trial workers, which sit in process groups of their own), as closing its terminal would
    with open(log_path, "wb") as log:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the search ended before it could be killed: " + log_path.read_text()[-2000:]
            study = _load(storage)
            if study is not None and ready(study.get_trials(deepcopy=False)):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"{ready.__name__} not seen within 120 s")
        os.killpg(proc.pid, signal.SIGKILL)
        _kill(_session(proc.pid))
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        left = _survivors(mark)
        _kill(left)  # ours: started by the search under test
    assert proc.returncode == -signal.SIGKILL
    assert not left, f"processes of the killed search survived: {left}"
    return time.monotonic()


# Ray runs as many trials at once as the cores allow: with 2 trials the killed run holds one
# complete and one running (or two running), and the re-run only has the retries to do, which
# keeps two starts of a local Ray cluster within a minute.
@pytest.mark.parametrize("kind,backend,total", [
    ("sqlite", "optuna", 4),
    ("journal", "optuna", 4),
    # slow (about 60 s: two starts of a local Ray cluster): out of `make test`, in `make test-all`.
    # The Ray driver's part, failing a dead run's trials and queueing each once, is covered in CI
    # by tests/search/test_ray.py::test_searcher_fails_the_trials_of_a_dead_driver_and_retries_each_once
    pytest.param("sqlite", "ray", 2, marks=[pytest.mark.skipif(no_ray, reason="ray is not installed"),
                                            pytest.mark.slow]),
])
def test_kill_minus_9_then_rerun_resumes(tmp_path: Path, kind: str, backend: str, total: int):
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({**SPACE, "trials": total}))
    out = tmp_path / "runs"
    storage = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "journal.log")
    argv = [sys.executable, "-m", "snnprune", "search", str(space_file), "--trials", str(total),
            "--storage", storage, "--study", "crash", "--out", str(out), "-q", "--device", "cpu",
            "--backend", backend]
    mark = uuid.uuid4().hex
    env = _env(mark)

    # the kill must land while a trial runs; one may end between the last poll and the kill,
    # leaving nothing running (1 run in 30): then the same command starts it again, as a user would
    for attempt in range(3):
        killed_at = _start_and_kill(argv, env, storage, mark, tmp_path / f"run-{attempt}.log")
        # the study as the killed process left it
        before = {t.number: t for t in _load(storage).get_trials(deepcopy=False)}
        running = [n for n, t in before.items() if t.state == TrialState.RUNNING]
        complete = {n: list(t.values) for n, t in before.items() if t.state == TrialState.COMPLETE}
        if running:
            break
    assert running and complete, {n: t.state.name for n, t in before.items()}
    if backend == "optuna":  # one process, one trial at a time; Ray runs as many as fit at once
        assert len(running) == 1, {n: t.state.name for n, t in before.items()}

    time.sleep(max(0.0, GRACE + 1.0 - (time.monotonic() - killed_at)))  # past the grace period
    try:
        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240, check=False)
    finally:
        left = _survivors(mark)
        _kill(left)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Traceback" not in again.stderr, again.stderr[-2000:]
    assert not left, f"processes of the finished search survived: {left}"

    study = _load(storage)
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials))), "duplicate or missing trial numbers"
    by_number = {t.number: t for t in trials}
    for number, values in complete.items():  # completed trials kept, unchanged
        assert by_number[number].state == TrialState.COMPLETE
        assert list(by_number[number].values) == values
    for dead in running:  # failed with a reason, retried exactly once with the same parameters
        assert by_number[dead].state == TrialState.FAIL
        assert "interrupted" in by_number[dead].user_attrs.get("fail_reason", ""), by_number[dead].user_attrs
        retries = [t for t in trials if t.user_attrs.get("retry_of") == dead]
        assert len(retries) == 1, [t.user_attrs for t in trials]
        # killed before its parameters were all drawn (the trial exists from `Study.ask` on, and
        # the kill can land while the sampler works): the retry keeps those drawn, draws the rest
        assert retries[0].params.items() >= before[dead].params.items()
        assert set(retries[0].params) == set(by_number[min(complete)].params)
        assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert _finished(study) == total  # the retries replace the dead trials in the count
    assert len(trials) == total + len(running)

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


def _a_resume_running(trials: list[optuna.trial.FrozenTrial]) -> bool:
    return any(t.state == TrialState.RUNNING and t.user_attrs.get("resumes") is not None for t in trials)


@pytest.mark.slow  # about 25 s; in CI the pieces: tests/search/test_promote.py (retries of a resume, verdicts)
def test_kill_minus_9_while_a_promotion_runs_then_rerun_resumes_it_from_its_checkpoint(tmp_path: Path):
    """Promote mode: the search is killed while a trial that resumes a paused one runs. The re-run
    fails it as interrupted and runs its retry, which goes on from the same checkpoint (still
    there: a checkpoint goes only once its resuming trial is recorded), and the study ends with
    each configuration once."""
    from snnprune.search._promote import is_resume

    total = 4
    # a pause goes on unless every other trial at the rung dominates it: the first trial, paused
    # with nothing to judge it, is all but sure to be promoted
    space = {**SPACE, "trials": total, "rungs": {"epochs": [1], "mode": "promote", "min_trials": 1,
                                                 "dominated_fraction": 1.0},
             "budget": {**SPACE["budget"], "finetune_epochs": 4}}
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(space))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    argv = [sys.executable, "-m", "snnprune", "search", str(space_file), "--storage", storage, "--study", "crash",
            "--out", str(tmp_path / "runs"), "-q", "--device", "cpu"]
    mark = uuid.uuid4().hex
    env = _env(mark)
    killed_at = _start_and_kill(argv, env, storage, mark, tmp_path / "run.log", ready=_a_resume_running)
    [dead] = [t for t in _load(storage).get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    assert Path(dead.user_attrs["resume_checkpoint"]).is_file()

    time.sleep(max(0.0, GRACE + 1.0 - (time.monotonic() - killed_at)))  # past the grace period
    try:
        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240, check=False)
    finally:
        _kill(_survivors(mark))
    assert again.returncode == 0, again.stderr[-2000:]
    trials = _load(storage).get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    assert by_number[dead.number].state == TrialState.FAIL
    [retry] = [t for t in trials if t.user_attrs.get("retry_of") == dead.number]
    for key in ("resumes", "resume_rung", "resume_checkpoint"):
        assert retry.user_attrs[key] == dead.user_attrs[key]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED) and retry.params == dead.params
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert sum(not is_resume(t) for t in trials) == total and _finished(_load(storage)) == total
