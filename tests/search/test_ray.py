"""The Ray Tune backend writes the same Optuna study as the Optuna backend.

One local Ray (2 CPUs) serves the module; the runs share a parent folder, so they share the
dense-checkpoint cache and only the first trial pre-trains.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time

import optuna
import pytest
import yaml

from snnprune.errors import UserError

ray = pytest.importorskip("ray")

from snnprune.search._ray import PAYLOAD, _check_resources, _DefineByRun, _heartbeats, _searcher_class, ray_optimize  # noqa: E402
from snnprune.search._storage import open_storage  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_worker_niceness", "0")  # as `_start_ray`: trials not starved on a busy machine
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("ray")


def test_trials_land_in_the_optuna_study(local_ray, base, tiny_space):
    run_dir = base / "api"
    summary = ray_optimize(tiny_space(study="api", trials=2), run_dir=run_dir, quiet=True)
    assert (summary["trials"], summary["complete"], summary["failed"]) == (2, 2, 0)
    study = optuna.load_study(study_name="api", storage=f"sqlite:///{run_dir / 'study.db'}")
    assert study.metric_names == ["accuracy", "macs"]
    assert study.user_attrs["space"]["study"] == "api"
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert len(trial.values) == 2
        config, metrics = trial.user_attrs["config"], trial.user_attrs["metrics"]
        assert config["trial"] == trial.number and config["pruner"] == "gmp"
        assert config["sparsity"] == trial.params["gmp.sparsity"]  # the trial means what it says
        assert trial.values == [metrics["accuracy"], metrics["macs"]]
        assert os.path.exists(trial.user_attrs["artifacts"]["masks"])
    assert (run_dir / "ray" / "api").is_dir()
    # resume: the study already holds its trials, nothing more runs
    again = ray_optimize(tiny_space(study="api", trials=2), run_dir=run_dir, quiet=True)
    assert again["trials"] == 2
    # resume with one more: the sampler is seeded apart from the first run, which it replayed
    # before (trial 2 ran trial 0's parameters again)
    ray_optimize(tiny_space(study="api", trials=3), run_dir=run_dir, quiet=True)
    params = [t.params for t in optuna.load_study(study_name="api", storage=f"sqlite:///{run_dir / 'study.db'}").trials]
    assert len(params) == 3 and params[2] not in params[:2]


def test_timeout_starts_no_trial_after_it_and_lets_the_running_ones_finish(local_ray, base, tiny_space):
    """As the Optuna backend's --timeout. Tune's time budget stopped the running trials: FAILED."""
    import datetime

    started = datetime.datetime.now()
    summary = ray_optimize(tiny_space(study="budget", trials=40), run_dir=base / "budget", timeout=6, quiet=True)
    assert summary["failed"] == 0 and 1 <= summary["complete"] < 40
    study = optuna.load_study(study_name="budget", storage=f"sqlite:///{base / 'budget' / 'study.db'}")
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    latest = max(t.datetime_start for t in study.trials)
    assert (latest - started).total_seconds() < 6 + 5  # nothing began well after the deadline


def test_gpu_request_on_cpu_cluster_fails_at_once(local_ray, base, tiny_space):
    space = tiny_space(study="gpu", resources={"cpu": 1, "gpu": 1})
    start = time.perf_counter()
    with pytest.raises(UserError, match="GPU .* but the Ray cluster has none"):
        ray_optimize(space, run_dir=base / "gpu", quiet=True)
    assert time.perf_counter() - start < 10


def test_cli_search_with_ray_backend(local_ray, base, capsys, space_dict):
    from snnprune.cli._app import main

    space_file = base / "space.yaml"
    space_file.write_text(yaml.safe_dump(space_dict(study="from-yaml")))
    db = base / "cli.db"
    code = main(["search", str(space_file), "--backend", "ray", "--trials", "2", "--storage", f"sqlite:///{db}",
                 "--study", "s", "--out", str(base), "--json"])
    assert code == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(objects) == 1
    summary = objects[0]
    assert (summary["study"], summary["trials"], summary["complete"]) == ("s", 2, 2)
    assert summary["run_dir"] == str((base / "s").resolve())


def test_cli_workers_caps_the_trials_ray_runs_at_once(local_ray, base, capsys, space_dict):
    """`--workers 1` with Ray: one trial at a time although the 2-CPU cluster fits two."""
    from snnprune.cli._app import main

    space_file = base / "serial.yaml"
    space_file.write_text(yaml.safe_dump(space_dict(study="serial")))
    db = base / "serial.db"
    code = main(["search", str(space_file), "--backend", "ray", "--trials", "2", "--workers", "1",
                 "--storage", f"sqlite:///{db}", "--out", str(base), "-q", "--json"])
    assert code == 0, capsys.readouterr().err
    trials = sorted(optuna.load_study(study_name="serial", storage=f"sqlite:///{db}").trials,
                    key=lambda t: t.datetime_start)
    assert len(trials) == 2
    for earlier, later in itertools.pairwise(trials):
        assert later.datetime_start >= earlier.datetime_complete  # never two at once
    assert main(["search", str(space_file), "--backend", "ray", "--workers", "0", "--out", str(base), "-q"]) == 2


def test_cli_ray_search_shows_the_study_bar_and_nothing_of_ray(tmp_path, space_dict):
    # bug: without -q, Tune's "== Status ==" tables every 5 s, Ray's INFO lines, its warning that
    # the local cluster chose token authentication, and a SystemExit traceback from each idle
    # trial worker Ray stopped, all under the user's progress; and there was no study bar
    import subprocess
    import sys

    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(space_dict(study="loud", trials=2)))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run([sys.executable, "-m", "snnprune", "search", str(space_file), "--backend", "ray",
                          "--out", str(tmp_path / "runs"), "--device", "cpu"],
                         env=env, capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    text = run.stdout + run.stderr
    for noise in ("== Status ==", "Token authentication", "Traceback", "INFO", "pid=", "Tuner.restore"):
        assert noise not in text, text[-3000:]
    assert "loud (ray)" in run.stderr and "2/2" in run.stderr  # the study bar, at the end
    assert "study loud: 2 complete" in run.stdout


@pytest.mark.slow  # the searcher's part: test_searcher_queues_promotions_and_ends_the_run_itself; the
# trainable's resume: tests/search/test_promote_runner.py
def test_ray_search_in_promote_mode_resumes_paused_trials_in_the_same_study(local_ray, base, tiny_space):
    """The same promotions as the Optuna backend: the searcher queues them, Tune runs them as
    trials that resume a checkpoint, and it ends the run itself (its samples are unbounded)."""
    from snnprune.search._promote import is_resume, promoted_numbers

    space = tiny_space(study="promote", trials=4, rungs={"epochs": [1], "mode": "promote", "min_trials": 1})
    summary = ray_optimize(space, run_dir=base / "promote", quiet=True)
    trials = optuna.load_study(study_name="promote", storage=f"sqlite:///{base / 'promote' / 'study.db'}").trials
    assert sum(not is_resume(t) for t in trials) == 4  # each configuration once
    assert any(is_resume(t) for t in trials)  # the first trial pauses: nothing judges it at rung 1
    paused = {t.user_attrs.get("paused_checkpoint"): t for t in trials if t.state == optuna.trial.TrialState.PRUNED}
    for t in trials:
        if is_resume(t):
            assert paused[t.user_attrs["resume_checkpoint"]].params == t.params
            assert t.user_attrs["config"]["trial"] == t.number  # its own artifacts folder
    assert summary["paused"] == len(promoted_numbers(trials)) >= 1
    assert summary["complete"] + summary["pruned"] + summary["paused"] + summary["failed"] == len(trials)


# --- the searcher's bookkeeping, without running trials -------------------------------------------

def _searcher(tmp_path, tiny_space, heartbeat=False):
    from snnprune.search import make_sampler, open_study

    space = tiny_space(study="hook")
    url = f"sqlite:///{tmp_path / 'hook.db'}"
    open_study(space, url)
    searcher = _searcher_class()(space=_DefineByRun(space.to_dict(), "<test>", "hook"), metric=["accuracy", "macs"],
                                 mode=["max", "min"], sampler=make_sampler(space), study_name="hook",
                                 storage=open_storage(url, heartbeat=heartbeat))
    return searcher, url


def test_searcher_tells_pruned_and_failed_with_attributes(tmp_path, tiny_space):
    searcher, url = _searcher(tmp_path, tiny_space)
    outcomes = {
        "a": {"attrs": {"metrics": {"accuracy": 0.9}}, "outcome": "complete", "values": [0.9, 100.0]},
        "b": {"attrs": {"stopped_at_rung": 1, "partial_values": [0.2, 90.0]}, "outcome": "pruned",
              "values": [0.2, 90.0]},
        "c": {"attrs": {"fail_reason": "UserError: boom"}, "outcome": "fail"},
    }
    for trial_id, payload in outcomes.items():
        config = searcher.suggest(trial_id)
        assert config["snnprune_config"]["pruner"] == "gmp"
        searcher.on_trial_complete(trial_id, result={PAYLOAD: json.dumps(payload), "accuracy": 0.0})
    searcher.suggest("d")
    searcher.close_unfinished()  # Tune never completed it: FAIL, not RUNNING forever
    trials = optuna.load_study(study_name="hook", storage=url).trials
    State = optuna.trial.TrialState
    assert [t.state for t in trials] == [State.COMPLETE, State.PRUNED, State.FAIL, State.FAIL]
    assert trials[0].values == [0.9, 100.0] and trials[0].user_attrs["metrics"] == {"accuracy": 0.9}
    assert trials[1].values is None and trials[1].user_attrs["partial_values"] == [0.2, 90.0]
    assert trials[2].user_attrs["fail_reason"] == "UserError: boom"
    assert "without a result" in trials[3].user_attrs["fail_reason"]
    assert all("config" in t.user_attrs for t in trials)


def test_searcher_queues_promotions_and_ends_the_run_itself(tmp_path, tiny_space):
    """Promote mode without running trials: a paused trial the rule lets go on is the next config
    Tune gets (with the checkpoint to resume), the configurations stop at the total, the searcher
    waits while a trial runs and says FINISHED once none does; the resumed checkpoint goes once
    that trial is recorded."""
    from ray.tune.search import Searcher

    from snnprune.search import RungPolicy, RungStore

    searcher, url = _searcher(tmp_path, tiny_space)
    store = RungStore(tmp_path / "rungs.db")
    searcher.promotion = (store, RungPolicy((1,), 0.25, 1, "promote"), ["maximize", "minimize"], "s", 2)
    checkpoint = tmp_path / "paused_at_1.pt"
    checkpoint.write_bytes(b"weights")

    first = searcher.suggest("a")  # configuration 1: pauses at rung 1 (nothing judges it yet)
    assert "snnprune_resume" not in first
    store.record("s", "0", 1, [0.9, 10.0])
    store.pause("s", "0", 1, str(checkpoint), number=0)
    paused = {"attrs": {"stopped_at_rung": 1, "partial_values": [0.9, 10.0], "paused_checkpoint": str(checkpoint)},
              "outcome": "pruned", "values": [0.9, 10.0]}
    searcher.on_trial_complete("a", result={PAYLOAD: json.dumps(paused)})
    second = searcher.suggest("b")  # configuration 2, which goes on past rung 1
    assert "snnprune_resume" not in second
    store.record("s", "1", 1, [0.5, 50.0])
    resume = searcher.suggest("c")  # trial 0 is now judged by trial 1, and not dominated: promoted
    assert resume["snnprune_resume"] == {"line": 0, "checkpoint": str(checkpoint)}
    assert resume["snnprune_config"]["trial"] == 2 and resume["gmp.sparsity"] == first["gmp.sparsity"]
    assert searcher.suggest("d") is None  # both configurations started, two trials run: wait, not FINISHED
    done = {"attrs": {}, "outcome": "complete", "values": [0.5, 50.0]}
    searcher.on_trial_complete("b", result={PAYLOAD: json.dumps(done)})
    assert searcher.suggest("e") is None  # the promotion still runs
    searcher.on_trial_complete("c", result={PAYLOAD: json.dumps({**done, "values": [0.95, 10.0]})})
    assert not checkpoint.exists()  # recorded: the checkpoint it resumed from has served
    assert searcher.suggest("f") == Searcher.FINISHED
    trials = optuna.load_study(study_name="hook", storage=url).trials
    State = optuna.trial.TrialState
    assert [t.state for t in trials] == [State.PRUNED, State.COMPLETE, State.COMPLETE]
    assert trials[2].user_attrs["resumes"] == 0 and trials[2].params == trials[0].params


def test_searcher_fails_the_trials_of_a_dead_driver_and_retries_each_once(tmp_path, tiny_space, monkeypatch):
    """What a re-run's driver does before each new trial: a trial whose heartbeat went stale is
    FAIL ("interrupted") and asked again once with its parameters; a trial whose driver still
    beats (`_heartbeats`) is left running."""
    monkeypatch.setenv("SNNPRUNE_HEARTBEAT", "1,2")
    State = optuna.trial.TrialState
    dead, url = _searcher(tmp_path, tiny_space, heartbeat=True)
    dead.suggest("a")  # trial 0: its first heartbeat, then its driver "dies" (beats no more)
    time.sleep(3.2)  # past the grace period
    alive, _ = _searcher(tmp_path, tiny_space, heartbeat=True)
    config = alive.suggest("b")
    trials = optuna.load_study(study_name="hook", storage=url).trials
    assert [t.state for t in trials] == [State.FAIL, State.RUNNING]
    assert trials[0].user_attrs["fail_reason"].startswith("interrupted")
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == trials[0].params
    assert config["snnprune_config"]["trial"] == 1
    assert config["snnprune_config"]["sparsity"] == trials[0].params["gmp.sparsity"]
    with _heartbeats(alive):  # trial 1 beats while its driver lives
        time.sleep(3.2)
        alive.suggest("c")
    trials = optuna.load_study(study_name="hook", storage=url).trials
    assert [t.state for t in trials] == [State.FAIL, State.RUNNING, State.RUNNING]
    assert "retry_of" not in trials[2].user_attrs
    assert [t.number for t in alive.open_trials()] == [1, 2]


def test_concurrency_from_cluster_resources(tiny_space):
    assert _check_resources(tiny_space(resources={"cpu": 1}), {"CPU": 8}) == 8
    assert _check_resources(tiny_space(resources={"cpu": 3}), {"CPU": 8}) == 2
    assert _check_resources(tiny_space(resources={"cpu": 1, "gpu": 0.5}), {"CPU": 8, "GPU": 1}) == 2
    with pytest.raises(UserError, match="4 CPUs per trial"):
        _check_resources(tiny_space(resources={"cpu": 4}), {"CPU": 2})


def test_ctrl_c_during_fit_fails_the_open_trials_as_interrupted_and_queues_them(tmp_path, tiny_space):
    """Tune handles SIGINT itself (it logs "Stop signal received" and ends its trials without a
    result); the driver notices that record, fails what was running as interrupted by the user
    and queues each again, as the Optuna backend does."""
    import logging

    from snnprune.search._interrupt import USER_INTERRUPT, requeue_interrupted
    from snnprune.search._ray import _watch_interrupt

    searcher, url = _searcher(tmp_path, tiny_space)
    searcher.suggest("a")
    searcher.suggest("b")
    searcher.on_trial_complete("a", result={PAYLOAD: json.dumps(
        {"attrs": {}, "outcome": "complete", "values": [0.9, 100.0]}), "accuracy": 0.9})
    with _watch_interrupt(searcher.interrupt):
        logging.getLogger("ray.tune.tune").warning("Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run.")
    assert searcher.interrupt.set
    searcher.close_unfinished()
    assert requeue_interrupted(searcher.study, searcher.trial_numbers()) == [1]
    State = optuna.trial.TrialState
    trials = optuna.load_study(study_name="hook", storage=url).trials
    assert [t.state for t in trials] == [State.COMPLETE, State.FAIL, State.WAITING]
    assert trials[1].user_attrs["fail_reason"] == USER_INTERRUPT
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].params == trials[1].params


NICENESS = """
import logging, os, ray
from snnprune.search._ray import _start_ray

@ray.remote
def niceness():
    return os.nice(0)

_start_ray(None)
print("niceness", ray.get(niceness.remote()))
ray.shutdown()
"""


def test_a_local_ray_runs_trials_at_the_priority_of_the_optuna_backend(tmp_path):
    """Ray nices its workers to 15 by default: beside two busy processes a trial got 3 % of a core."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_worker_niceness"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    proc = subprocess.run([sys.executable, "-c", NICENESS], capture_output=True, text=True, timeout=300, check=False,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("niceness")]
    assert seen == [str(os.nice(0))]


@pytest.mark.parametrize("address,user,expected", [(None, None, "0"), (None, "7", "7"), ("auto", None, None)])
def test_the_users_niceness_wins_and_a_joined_cluster_keeps_its_own(monkeypatch, address, user, expected):
    """What `_start_ray` hands Ray (Ray reads ``RAY_worker_niceness`` when it starts its workers;
    the test above checks that a real local cluster honours it)."""
    import snnprune.search._ray as ray_module

    monkeypatch.delenv("RAY_worker_niceness", raising=False)
    if user is not None:
        monkeypatch.setenv("RAY_worker_niceness", user)
    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.setdefault("niceness", os.environ.get("RAY_worker_niceness")))
    assert ray_module._start_ray(address) is True
    assert seen["niceness"] == expected
