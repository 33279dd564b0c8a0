from __future__ import annotations

import json

import optuna
import pytest
import yaml

from snnprune.cli._app import main
from snnprune.search import open_study, optimize
from snnprune.search._storage import open_storage


def _write(tmp_path, space_dict, **kw):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space_dict(**kw)))
    return path


def test_cli_search_leaves_finished_trials_readable_by_plain_optuna(tmp_path, capsys, space_dict):
    space = _write(tmp_path, space_dict)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    code = main(["search", str(space), "--trials", "2", "--storage", db, "--study", "s",
                 "--out", str(tmp_path / "runs"), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)
    assert summary["complete"] + summary["pruned"] == 2
    study = optuna.load_study(study_name="s", storage=db)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 2
    assert study.metric_names == ["accuracy", "macs"]
    for t in finished:
        assert len(t.values) == 2
        assert t.user_attrs["config"]["pruner"] == "gmp"
        assert t.user_attrs["metrics"]["macs"] == t.values[1]
    # the second trial reused the dense network the first one trained
    hits = sorted(t.user_attrs["cache_hit"] for t in finished)
    assert hits == [False, True]


def test_rerunning_resumes_the_study(tiny_space, tmp_path):
    space = tiny_space(study="resume", trials=1)
    first = optimize(space, run_dir=tmp_path / "resume", quiet=True)
    assert first["complete"] + first["pruned"] == 1
    second = optimize(space, run_dir=tmp_path / "resume", trials=2, quiet=True)
    assert second["trials"] == 2  # one kept, one added
    assert not any("nothing to run" in n for n in first["notes"] + second["notes"])
    third = optimize(space, run_dir=tmp_path / "resume", trials=2, quiet=True)
    assert third["trials"] == 2  # it printed the old summary as if it had run: now it says so
    assert any("already has 2 finished trial(s)" in n and "nothing to run" in n for n in third["notes"])


def test_failing_trials_are_recorded_and_the_study_goes_on(tiny_space, tmp_path, monkeypatch):
    import snnprune.search._optuna as backend

    def explode(*_a, **_k):
        raise FloatingPointError("loss became nan")

    monkeypatch.setattr(backend, "run_trial", explode)
    summary = optimize(tiny_space(study="fails", trials=2), run_dir=tmp_path / "fails", quiet=True)
    assert summary["failed"] == 2
    assert "every trial failed" in summary["all_failed"]
    study = optuna.load_study(study_name="fails", storage=f"sqlite:///{tmp_path / 'fails' / 'study.db'}")
    assert all("nan" in t.user_attrs["fail_reason"] for t in study.trials)


def test_a_search_whose_every_trial_failed_exits_1(tmp_path, capsys, monkeypatch, space_dict):
    """It exited 0, so a script could not tell a search that produced nothing from one that did."""
    import snnprune.search._optuna as backend

    def explode(*_a, **_k):
        raise FloatingPointError("loss became nan")

    monkeypatch.setattr(backend, "run_trial", explode)
    space = _write(tmp_path, space_dict)
    code = main(["search", str(space), "--trials", "1", "--out", str(tmp_path / "runs"), "--json", "-q"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and "every trial failed" in summary["all_failed"]


def test_two_workers_on_a_journal_file_run_every_trial_once(tiny_space, tmp_path):
    journal = tmp_path / "journal.log"
    summary = optimize(tiny_space(study="pair", trials=4), run_dir=tmp_path / "pair", storage=str(journal),
                       workers=2, quiet=True)
    study = optuna.load_study(study_name="pair", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    finished = [t for t in study.trials if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL]
    # 5 only if both workers end a trial in the same instant (`_stop_at`); before, 5 was usual
    assert 4 <= len(finished) <= 5
    assert summary["complete"] + summary["pruned"] == len(finished)
    assert study.user_attrs["trials_goal"] == 4  # what a `worker` joining it works towards


def test_workers_refuse_a_shared_sqlite_file(tiny_space, tmp_path):
    from snnprune.errors import UserError

    with pytest.raises(UserError, match="database is locked"):
        optimize(tiny_space(), run_dir=tmp_path / "w", storage=f"sqlite:///{tmp_path / 'a.db'}", workers=2)


def test_unreachable_storage_is_one_line_without_the_password(tmp_path, capsys, space_dict):
    space = _write(tmp_path, space_dict)
    code = main(["search", str(space), "--storage", "postgresql://me:hunter2@127.0.0.1:1/none",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "hunter2" not in err and "***" in err


@pytest.mark.parametrize(("trials", "startup"), [(1, 4), (8, 4), (16, 4), (20, 5), (40, 10), (1000, 10)])
def test_tpe_startup_is_a_quarter_of_the_budget_between_4_and_10(trials, startup):
    from snnprune.search._optuna import startup_trials

    assert startup_trials(trials) == startup


def test_tpe_sampler_of_a_small_search_starts_modelling_early(tiny_space):
    from snnprune.search import make_sampler

    sampler = make_sampler(tiny_space(trials=16, sampler="tpe"))
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == 4



def test_a_worker_joins_towards_the_total_the_search_asked_for(tiny_space, tmp_path, capsys):
    """`search --trials 16` on a space whose file says 4: a `worker` without -n stopped at 4 (it read
    the stored space), so it ran nothing while the search's own workers had 12 to go."""
    from snnprune.search._optuna import GOAL_ATTR, record_goal, study_goal

    journal = str(tmp_path / "j.log")
    space = tiny_space(trials=1)
    handle = open_study(space, journal)
    record_goal(handle, 2)  # what `search --trials 2` records when it starts
    assert handle.user_attrs[GOAL_ATTR] == 2 and study_goal(handle, space) == 2
    code = main(["worker", "--storage", journal, "--study", "t", "--out", str(tmp_path / "runs"), "-q", "--json"])
    assert code == 0
    study = optuna.load_study(study_name="t", storage=open_storage(journal, heartbeat=False))
    assert len([t for t in study.trials if t.state.is_finished()]) == 2
