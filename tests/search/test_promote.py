"""Promote mode: the rung store's promotions (one at a time, never twice, in order) and the
searches of both backends that run them (each configuration once, the pause kept PRUNED, the
trial that resumes it counted with it)."""

from __future__ import annotations

import threading

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from snnprune.search import RungStore, optimize, passes, run_worker
from snnprune.search._promote import is_resume, promoted_numbers
from snnprune.search._storage import open_storage

DIRS = ("maximize", "minimize")


def _store(tmp_path, records: dict[str, list[float]], rung: int = 1) -> RungStore:
    store = RungStore(tmp_path / "rungs.db")
    for trial, vector in records.items():
        store.record("s", trial, rung, vector)
    return store


def test_passes_needs_enough_judges_and_fewer_than_the_fraction_dominating():
    others = [[0.95, 100], [0.5, 10], [0.6, 20], [0.7, 30]]
    assert not passes([0.99, 1], others[:1], DIRS, min_trials=2)  # the best, but too few to judge it yet
    assert passes([0.99, 1], others, DIRS, min_trials=4)
    assert not passes([0.8, 150], others, DIRS, min_trials=4)  # dominated by one of four (the default: a tenth)
    assert passes([0.8, 150], others, DIRS, min_trials=4, dominated_fraction=0.3)  # one is under 0.3 of four


def test_promote_one_takes_the_highest_rung_then_the_oldest_and_never_twice(tmp_path):
    store = _store(tmp_path, {"0": [0.9, 10], "1": [0.8, 20], "2": [0.7, 30], "10": [0.95, 5]})
    store.record("s", "1", 3, [0.85, 20])
    store.record("s", "5", 3, [0.1, 90])
    store.pause("s", "2", 1, "c2")
    store.pause("s", "10", 1, "c10")
    store.pause("s", "1", 3, "c1")
    queued = []
    promote = {"dominated_fraction": 0.25, "min_trials": 1, "enqueue": queued.append}
    assert store.promote_one("s", DIRS, **promote).checkpoint == "c1"  # rung 3 first
    # "2" is dominated by three of three at rung 1: never promoted; "10" is promoted next
    assert store.promote_one("s", DIRS, **promote).checkpoint == "c10"
    assert store.promote_one("s", DIRS, **promote) is None
    assert [p.checkpoint for p in queued] == ["c1", "c10"]
    assert [p.trial for p in store.paused("s")] == ["2"]


def test_a_pause_that_too_few_trials_judge_waits_then_goes(tmp_path):
    store = _store(tmp_path, {"0": [0.9, 10]})
    store.pause("s", "0", 1, "c0")
    rule = {"dominated_fraction": 0.25, "min_trials": 2, "enqueue": lambda p: None}
    assert store.promote_one("s", DIRS, **rule) is None  # one trial at the rung: nothing judges it
    store.record("s", "1", 1, [0.5, 50])
    assert store.promote_one("s", DIRS, **rule) is None  # one judge of the two it needs
    store.record("s", "2", 1, [0.4, 60])
    assert store.promote_one("s", DIRS, **rule).trial == "0"


def test_the_backends_verdict_decides_what_a_promotable_pause_becomes(tmp_path):
    from snnprune.search._fidelity import DROP, QUEUED, READY, WAIT

    store = _store(tmp_path, {"0": [0.9, 10], "1": [0.8, 20], "2": [0.5, 50]})
    store.pause("s", "0", 1, "c0", number=0)
    store.pause("s", "1", 1, "c1", number=1)
    queued, verdicts = [], {"c0": WAIT, "c1": DROP}
    rule = {"dominated_fraction": 1.0, "min_trials": 1, "enqueue": queued.append,
            "check": lambda pause: verdicts[pause.checkpoint]}
    # not recorded yet (WAIT): left paused; died before its record landed (DROP): dropped
    assert store.promote_one("s", DIRS, **rule) is None and queued == []
    assert [p.checkpoint for p in store.paused("s")] == ["c0"]
    verdicts["c0"] = QUEUED  # a killed worker queued it already: marked, not queued again
    assert store.promote_one("s", DIRS, **rule).checkpoint == "c0" and queued == []
    store.record("s", "3", 1, [0.99, 60])  # a resumed line paused again, trial 7 of the study
    store.pause("s", "3", 1, "c2", number=7)
    verdicts["c2"] = READY
    assert store.promote_one("s", DIRS, **rule).number == 7
    assert [p.checkpoint for p in queued] == ["c2"] and store.paused("s") == []


def test_an_enqueue_that_raises_leaves_the_pause_for_the_next_worker(tmp_path):
    store = _store(tmp_path, {"0": [0.9, 10], "1": [0.5, 50]})
    store.pause("s", "0", 1, "c0")

    def broken(pause):
        raise OSError("storage down")

    with pytest.raises(OSError):
        store.promote_one("s", DIRS, dominated_fraction=0.25, min_trials=1, enqueue=broken)
    assert [p.trial for p in store.paused("s")] == ["0"]


def test_workers_racing_for_one_promotion_queue_it_once(tmp_path):
    store = _store(tmp_path, {"0": [0.9, 10], "1": [0.5, 50]})
    store.pause("s", "0", 1, "c0")
    queued, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        RungStore(tmp_path / "rungs.db").promote_one("s", DIRS, dominated_fraction=0.25, min_trials=1,
                                                     enqueue=queued.append)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(queued) == 1


def _promote_space(space_dict, study: str, trials: int, margin: str | float = 0) -> dict:
    return space_dict(study=study, trials=trials,
                      rungs={"epochs": [1, 2], "mode": "promote", "min_trials": 2, "margin": margin},
                      budget={"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 3, "batch_size": 64,
                              "lr": 0.1, "finetune_lr": 0.02})


def _check_lines(trials: list[optuna.trial.FrozenTrial], configurations: int) -> None:
    """Each configuration once; every trial that resumes one goes on from a PRUNED pause of the
    same parameters, whose checkpoint is gone once it has served."""
    assert sum(not is_resume(t) for t in trials) == configurations
    by_number = {t.number: t for t in trials}
    paused = {t.user_attrs["paused_checkpoint"]: t for t in trials if t.user_attrs.get("paused_checkpoint")}
    for t in trials:
        if is_resume(t):
            before = paused[t.user_attrs["resume_checkpoint"]]
            assert before.state == TrialState.PRUNED and before.params == t.params
            assert before.user_attrs["stopped_at_rung"] == t.user_attrs["resume_rung"]
            assert by_number[t.user_attrs["resumes"]].params == t.params
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
                assert not __import__("pathlib").Path(t.user_attrs["resume_checkpoint"]).exists()
    assert promoted_numbers(trials) == {paused[t.user_attrs["resume_checkpoint"]].number
                                        for t in trials if is_resume(t)}


def test_optuna_search_in_promote_mode_runs_each_configuration_once(tmp_path, space_dict, capsys):
    from snnprune.cli._app import main

    space_file = tmp_path / "p.yaml"
    space_file.write_text(yaml.safe_dump(_promote_space(space_dict, "p", 5)))
    assert main(["search", str(space_file), "--out", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr().out
    study = optuna.load_study(study_name="p", storage=f"sqlite:///{tmp_path / 'p' / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    _check_lines(trials, 5)
    assert any(is_resume(t) for t in trials)  # the first trial always pauses: nothing judges it at rung 1
    assert trials[0].state == TrialState.PRUNED and trials[0].user_attrs["stopped_at_rung"] == 1
    paused = len(promoted_numbers(trials))
    assert f"{paused} paused and resumed later" in out


def test_two_workers_in_promote_mode_run_each_configuration_once(tmp_path, space_dict):
    from snnprune.spaces import parse_space

    journal = tmp_path / "j.log"
    summary = optimize(parse_space(_promote_space(space_dict, "w", 6), source="<t>"), run_dir=tmp_path / "w",
                       storage=str(journal), workers=2, device="cpu", quiet=True)
    trials = optuna.load_study(study_name="w", storage=open_storage(str(journal), heartbeat=False)).trials
    _check_lines(trials, 6)
    assert summary["complete"] + summary["pruned"] + summary["paused"] + summary["failed"] == len(trials)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)


def test_a_worker_with_its_own_trial_count_still_queues_promotions(tmp_path, space_dict):
    """`worker --trials N` runs without the study's count gate, where a search queues its
    promotions: each of its trials' ends queues the one due, and its next ask runs it; its last
    trial's end queues nothing (with ``margin: auto`` this search has a promotion due there, which
    used to be left WAITING in the study as a seventh trial)."""
    from snnprune.spaces import parse_space

    journal = tmp_path / "j.log"
    run_worker(parse_space(_promote_space(space_dict, "n", 4, margin="auto"), source="<t>"), str(journal), "n", tmp_path / "n",
               trials=6, total=4, timeout=None, device="cpu")
    trials = optuna.load_study(study_name="n", storage=open_storage(str(journal), heartbeat=False)).trials
    assert len(trials) == 6 and any(is_resume(t) for t in trials)
    assert all(t.state != TrialState.WAITING for t in trials)  # nothing queued after its last trial
    _check_lines(trials, sum(not is_resume(t) for t in trials))


def test_the_study_decides_when_a_pause_is_promoted(tmp_path):
    """A pause recorded by the runner is promoted only once its backend has recorded the trial
    PRUNED; one whose trial died before that record, or whose checkpoint was deleted to free the
    disk, is dropped (the retry of its configuration stands for it, or it stays stopped)."""
    from snnprune.search import RungPolicy
    from snnprune.search._promote import make_promoter, waiting_resumes

    study = optuna.create_study(directions=["maximize", "minimize"])
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    files = {n: tmp_path / f"c{n}.pt" for n in range(4)}
    for n in (0, 1, 2):
        files[n].write_bytes(b"checkpoint")
    running = study.ask(dist)  # trial 0: paused in its runner, not yet told
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params={"x": 0.2}, distributions=dist))
    for n in (2, 3):
        study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, params={"x": 0.1 * n}, distributions=dist,
                                                  user_attrs={"paused_checkpoint": str(files[n])}))
    store = _store(tmp_path, {"0": [0.9, 10], "1": [0.8, 20], "2": [0.95, 30], "3": [0.99, 40]})
    for n in range(4):
        store.pause("s", str(n), 1, str(files[n]), number=n)
    promote = make_promoter(study, store, RungPolicy((1,), 1.0, 1, "promote"), DIRS, "s")
    # trial 0 waits (RUNNING), 1 is dropped (FAIL), 2 goes on; 3 has no checkpoint any more: dropped
    assert promote()
    [queued] = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert queued.params == {"x": 0.2} and queued.user_attrs == {"resumes": 2, "resume_rung": 1,
                                                                  "resume_checkpoint": str(files[2])}
    assert not promote()
    assert [p.number for p in store.paused("s")] == [0] and waiting_resumes(study.get_trials()) == 1
    running.set_user_attr("paused_checkpoint", str(files[0]))
    study.tell(running, state=TrialState.PRUNED)
    assert promote() and store.paused("s") == []
    stop_mode = make_promoter(study, store, RungPolicy((1,), 1.0, 1, "stop"), DIRS, "s")
    assert stop_mode() is False


def test_the_summary_says_what_the_paused_checkpoints_take(tmp_path):
    from snnprune.search._promote import paused_note

    assert paused_note(tmp_path) is None
    (tmp_path / "trials" / "00003").mkdir(parents=True)
    (tmp_path / "trials" / "00003" / "paused_at_1.pt").write_bytes(b"x" * 2_500_000)
    note = paused_note(tmp_path)
    assert note.startswith("1 paused trial(s) keep a checkpoint (2.5 MB") and "delete them" in note


def test_a_resuming_trial_that_dies_or_is_interrupted_is_retried_as_a_resume(tmp_path):
    """Its retry goes on from the same checkpoint (it was a full re-run of the configuration,
    counted as a second one) and still counts with the configuration it resumes."""
    from snnprune.search._gate import _counted
    from snnprune.search._interrupt import requeue_interrupted
    from snnprune.search._storage import RetryOnce

    study = optuna.create_study(directions=["maximize", "minimize"])
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    attrs = {"resumes": 0, "resume_rung": 1, "resume_checkpoint": "c0"}
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, params={"x": 0.5}, distributions=dist,
                                              user_attrs={"paused_checkpoint": "c0"}))
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params={"x": 0.5}, distributions=dist,
                                                  user_attrs=attrs))
    dead, cut = (study.ask() for _ in range(2))  # both promotions start; one dies, one is Ctrl-C'd
    study.tell(dead, state=TrialState.FAIL)
    RetryOnce()(study, study.get_trials()[dead.number])
    requeue_interrupted(study, [cut.number])
    retries = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert len(retries) == 2
    for retry in retries:
        assert {k: retry.user_attrs[k] for k in attrs} == attrs and retry.params == {"x": 0.5}
    assert _counted(study.get_trials()) == 1  # one configuration, however many trials went on with it


def test_a_rerun_with_every_configuration_done_still_runs_what_resumes_paused_trials(tmp_path, tiny_space):
    """A search killed while a promotion was queued, or due, left its configurations all counted:
    the re-run returned at once ("nothing to run") and the paused trials never went on."""
    from snnprune.search import open_study
    from snnprune.search._optuna import resumes_left
    from snnprune.search._storage import open_storage as storage_of

    space = tiny_space(trials=1, rungs={"epochs": [1], "mode": "promote", "min_trials": 1})
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = open_study(space, url)
    dist = {"gmp.sparsity": optuna.distributions.FloatDistribution(0.3, 0.9)}
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, params={"gmp.sparsity": 0.5},
                                              distributions=dist, user_attrs={"paused_checkpoint": "gone.pt"}))
    assert not resumes_left(study, space, tmp_path)  # paused, nothing due: the search is over
    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params={"gmp.sparsity": 0.5},
                                              distributions=dist, user_attrs={"resumes": 0, "resume_rung": 1,
                                                                              "resume_checkpoint": "gone.pt"}))
    again = optuna.load_study(study_name=space.study, storage=storage_of(url, heartbeat=False))
    assert resumes_left(again, space, tmp_path)
