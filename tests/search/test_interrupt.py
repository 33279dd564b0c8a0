"""Ctrl-C during a search: running trials fail with a reason, are queued again, and the count holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import snnprune.search._optuna as backend
from snnprune.search import open_storage
from snnprune.search._interrupt import USER_INTERRUPT, requeue_interrupted
from snnprune.search._optuna import _finished, open_study, run_worker


def _load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))


def test_ctrl_c_in_a_trial_queues_it_again_and_the_resume_runs_it(tmp_path, tiny_space, monkeypatch):
    space = tiny_space(trials=1)
    storage = str(tmp_path / "j.log")
    real = backend.run_trial

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(backend, "run_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_worker(space, storage, "t", tmp_path / "run", trials=None, total=1, timeout=None, device="cpu")
    study = _load(storage, "t")
    first, retry = study.get_trials(deepcopy=False)
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == USER_INTERRUPT
    assert retry.state == TrialState.WAITING and retry.user_attrs == {"retry_of": first.number}
    assert retry.params == first.params
    assert _finished(study) == 0  # the interrupted trial does not use up --trials

    monkeypatch.setattr(backend, "run_trial", real)
    run_worker(space, storage, "t", tmp_path / "run", trials=None, total=1, timeout=None, device="cpu")
    study = _load(storage, "t")
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.COMPLETE] and _finished(study) == 1
    assert study.trials[1].params == first.params  # the same configuration ran again
    summary = backend.summarize(study, storage=storage, run_dir=tmp_path / "run")
    assert (summary["complete"], summary["failed"], summary["retried"]) == (1, 0, 1)


def test_a_trial_left_running_is_failed_then_queued_once(tmp_path, tiny_space):
    study = open_study(tiny_space(), str(tmp_path / "j.log"))
    running = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert requeue_interrupted(study, [running.number]) == [running.number]
    assert requeue_interrupted(study, [running.number]) == []  # queued once, never twice
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[0].user_attrs["fail_reason"] == USER_INTERRUPT and trials[1].user_attrs["retry_of"] == 0


@pytest.mark.timeout(240)
@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_on_two_workers_leaves_no_running_trial(tmp_path, space_dict):
    space = space_dict(study="w", trials=8)
    space["budget"]["finetune_epochs"] = 8  # trials long enough to be caught running
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(space))
    storage = str(tmp_path / "j.log")
    proc = subprocess.Popen([sys.executable, "-m", "snnprune", "search", str(tmp_path / "s.yaml"), "--workers", "2",
                             "--storage", storage, "--out", str(tmp_path / "runs"), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:  # until both workers run a trial
            time.sleep(0.5)
            if os.path.exists(storage) and os.path.getsize(storage) > 0:
                with backend.quiet_optuna():
                    running = [t for t in _load(storage, "w").get_trials(deepcopy=False)
                               if t.state == TrialState.RUNNING]
                if len(running) == 2:
                    break
        else:
            pytest.fail("the two workers never ran a trial at the same time")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    trials = _load(storage, "w").get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs.get("fail_reason") == USER_INTERRUPT for t in failed)
    assert sorted(t.user_attrs.get("retry_of") for t in trials if t.state == TrialState.WAITING) == \
        sorted(t.number for t in failed)


def test_an_interrupted_retry_is_queued_again(tmp_path, tiny_space):
    study = open_study(tiny_space(), str(tmp_path / "j.log"))
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    first = study.ask(dist)
    requeue_interrupted(study, [first.number])
    retry = study.ask()  # the queued copy
    assert retry.user_attrs["retry_of"] == first.number and retry.params == first.params
    assert requeue_interrupted(study, [retry.number]) == [retry.number]
    assert study.get_trials(deepcopy=False)[-1].user_attrs["retry_of"] == retry.number
    assert _finished(study) == 0


def test_a_ctrl_c_lost_in_a_callback_still_stops_the_search_after_its_trial(tmp_path, tiny_space, monkeypatch):
    """Python drops a KeyboardInterrupt raised inside a GC/weakref callback ("Exception ignored"):
    the search must stop anyway, at the end of the trial, with that trial recorded."""
    real = backend.run_trial

    def swallowed(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the handler runs here; what it raises is lost, as in a weakref callback
        except KeyboardInterrupt:
            pass
        return real(*args, **kwargs)

    monkeypatch.setattr(backend, "run_trial", swallowed)
    storage = str(tmp_path / "j.log")
    with pytest.raises(KeyboardInterrupt):
        run_worker(tiny_space(trials=3), storage, "t", tmp_path / "run", trials=None, total=3, timeout=None,
                   device="cpu")
    assert [t.state for t in _load(storage, "t").get_trials(deepcopy=False)] == [TrialState.COMPLETE]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_the_study_bar_does_not_count_an_interrupted_trial_as_failed(tmp_path, tiny_space):
    from snnprune.search._progress import StudyProgress

    study = open_study(tiny_space(), str(tmp_path / "j.log"))
    cut = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    requeue_interrupted(study, [cut.number])
    bar = StudyProgress(total=3, done=0, desc="t", quiet=False)
    bar(study, study.get_trials(deepcopy=False)[0])
    assert "failed=0" in bar.bar.postfix
    bar.close()


ORPHAN = """
import multiprocessing, os, sys, time

def child(flag, parent):
    from snnprune.search._interrupt import watch_parent
    try:
        watch_parent(parent, 0.1)
        time.sleep(60)
    except KeyboardInterrupt:
        open(flag, "w").write("stopped")

if __name__ == "__main__":
    proc = multiprocessing.get_context("spawn").Process(target=child, args=(sys.argv[1], os.getpid()))
    proc.start()
    time.sleep(float(sys.argv[2]))
    os._exit(0)  # as kill -9 or SIGTERM would end it: no cleanup, the child left behind
"""


def test_a_worker_stops_when_its_parent_search_is_gone(tmp_path):
    """SIGTERM or kill -9 of the parent of `--workers N` left the workers running the study
    on their own; each now stops as on Ctrl-C (its trial queued again) within about a second."""
    flag, script = tmp_path / "stopped", tmp_path / "orphan.py"  # a file: spawn imports the child from it
    script.write_text(ORPHAN)
    subprocess.run([sys.executable, str(script), str(flag), "0.5"], check=True, timeout=60)
    deadline = time.monotonic() + 15
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert flag.exists()
