"""The results store and run resolution, on studies built with plain Optuna (no training)."""

from __future__ import annotations

import json
import sqlite3
import warnings

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from snnprune.errors import UserError
from snnprune.reports._runs import format_runs, list_runs, resolve_run
from snnprune.reports._store import load_curves, load_meta, load_trials, sync_store
from snnprune.search._storage import default_storage, open_storage

DISTS = {"pruner": CategoricalDistribution(["gmp", "sca"]), "lr": FloatDistribution(1e-4, 1e-1, log=True)}


def _config(pruner: str, lr: float) -> dict:
    return {"pruner": pruner, "sparsity": 0.5, "hyperparameters": {"lr": lr, "tau": 2.0},
            "model": {"name": "cnn", "width": 0.5}, "data": {"name": "digits"}, "budget": {}, "seed": 0,
            "study": "demo", "trial": 0}


def _trials() -> list[optuna.trial.FrozenTrial]:
    history = {"pretrain": [{"epoch": 1, "train_loss": 2.0, "val_accuracy": 0.3}],
               "finetune": [{"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.6},
                            {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.8}]}
    return [
        create_trial(state=TrialState.COMPLETE, values=[0.9, 1.5e6], params={"pruner": "gmp", "lr": 0.01},
                     distributions=DISTS, user_attrs={
                         "config": _config("gmp", 0.01), "history": history, "rung_1": [0.6, 1.5e6],
                         "metrics": {"accuracy": 0.9, "macs": 1.5e6, "params": 1200, "sparsity": 0.5,
                                     "energy_uj": 0.7, "seconds": 3.2},
                         "dense": {"accuracy": 0.95}, "cache_hit": True,
                         "artifacts": {"masks": "runs/demo/trials/00000/masks.pt",
                                       "model": "runs/demo/trials/00000/model_sparse.pt"}}),
        create_trial(state=TrialState.PRUNED, params={"pruner": "sca", "lr": 0.001}, distributions=DISTS,
                     user_attrs={"config": _config("sca", 0.001), "stopped_at_rung": 1,
                                 "partial_values": [0.4, 2e6], "rung_1": [0.4, 2e6]}),
        create_trial(state=TrialState.FAIL, params={"pruner": "sca", "lr": 0.05}, distributions=DISTS,
                     user_attrs={"config": _config("sca", 0.05), "fail_reason": "TrainingDiverged: loss nan"}),
    ]


def _make_study(spec: str, name: str = "demo", trials: list | None = None) -> optuna.Study:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(study_name=name, storage=open_storage(spec, heartbeat=False),
                                    directions=["maximize", "minimize"])
        study.set_metric_names(["accuracy", "macs"])
    study.set_user_attr("space", {"study": name, "objectives": ["accuracy", "macs"]})
    for trial in _trials() if trials is None else trials:
        study.add_trial(trial)
    return study


@pytest.fixture(params=["sqlite", "journal"])
def run(request, tmp_path):
    """A run folder holding a three-trial study in either backend."""
    folder = tmp_path / "runs" / "demo"
    folder.mkdir(parents=True)
    spec = default_storage(folder) if request.param == "sqlite" else str(folder / "journal.log")
    _make_study(spec)
    return folder, spec


def test_sync_writes_one_row_per_trial_with_flat_columns(run):
    folder, spec = run
    db = folder / "results.db"
    assert sync_store(spec, "demo", db) == 3
    df = load_trials(db).set_index("number")
    assert list(df.index) == [0, 1, 2]
    assert list(df["state"]) == ["COMPLETE", "PRUNED", "FAIL"]
    for col in ("accuracy", "macs", "pruner", "sparsity_target", "hp", "hp_lr", "hp_tau", "m_params",
                "m_energy_uj", "dense_accuracy", "duration_s", "stopped_at_rung", "fail_reason",
                "artifact_masks", "partial_accuracy", "datetime_start", "datetime_complete"):
        assert col in df.columns, col
    assert df.loc[0, "accuracy"] == pytest.approx(0.9) and df.loc[0, "macs"] == pytest.approx(1.5e6)
    assert df.loc[0, "m_params"] == 1200 and df.loc[0, "cache_hit"] == 1
    assert json.loads(df.loc[0, "hp"]) == {"lr": 0.01, "tau": 2.0}
    assert df.loc[0, "artifact_masks"].endswith("masks.pt")
    # a stopped trial has no values, only its partial ones and its rung
    assert df["accuracy"].isna()[1] and df.loc[1, "partial_accuracy"] == pytest.approx(0.4)
    assert df.loc[1, "stopped_at_rung"] == 1
    assert df.loc[2, "fail_reason"].startswith("TrainingDiverged")
    assert str(df["datetime_start"].dtype).startswith("datetime64")


def test_curves_and_meta(run):
    folder, spec = run
    db = folder / "results.db"
    sync_store(spec, "demo", db)
    curves = load_curves(db)
    fine = curves[(curves.trial == 0) & (curves.phase == "finetune")]
    assert list(fine.epoch) == [1, 2] and list(fine.val_accuracy) == [0.6, 0.8]
    rungs = curves[curves.phase == "rung"].set_index("trial")
    assert rungs.loc[1, "accuracy"] == pytest.approx(0.4) and rungs.loc[0, "epoch"] == 1
    meta = load_meta(db)
    assert meta["metric_names"] == ["accuracy", "macs"]
    assert meta["directions"] == ["maximize", "minimize"]
    assert meta["space"]["objectives"] == ["accuracy", "macs"] and meta["study"] == "demo"


def test_sync_twice_has_no_duplicates_and_picks_up_new_trials(run):
    folder, spec = run
    db = folder / "results.db"
    sync_store(spec, "demo", db)
    sync_store(spec, "demo", db)
    assert len(load_trials(db)) == 3 and len(load_curves(db)) == 5
    study = optuna.load_study(study_name="demo", storage=open_storage(spec, heartbeat=False))
    study.add_trial(create_trial(state=TrialState.COMPLETE, values=[0.7, 5e5], params={"lr": 0.02},
                                 distributions={"lr": DISTS["lr"]}, user_attrs={"metrics": {"flops_new": 3}}))
    assert sync_store(spec, "demo", db) == 4
    df = load_trials(db)
    assert list(df.number) == [0, 1, 2, 3] and df.number.is_unique
    assert df.set_index("number").loc[3, "m_flops_new"] == 3
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM meta WHERE key = 'study'").fetchone()[0] == 1


def test_trials_without_history_or_our_attrs(tmp_path):
    spec = default_storage(tmp_path)
    _make_study(spec, trials=[create_trial(state=TrialState.COMPLETE, values=[0.5, 1.0])])
    sync_store(spec, "demo", tmp_path / "results.db")
    assert load_curves(tmp_path / "results.db").empty
    assert load_trials(tmp_path / "results.db").loc[0, "hp"] == "{}"


def test_readers_of_a_missing_store_say_so(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_trials(tmp_path / "nothing.db")


def test_resolve_run_finds_the_storage_and_the_single_study(run):
    folder, spec = run
    ref = resolve_run(folder)
    assert ref.study == "demo" and ref.run_dir == folder and ref.results_db == folder / "results.db"
    assert ref.kind == ("journal" if spec.endswith(".log") else "sqlite")
    by_url = resolve_run(storage=spec, study="demo", runs_root=folder.parent)
    assert by_url.run_dir == folder


def test_a_storage_url_where_a_run_folder_goes_is_the_storage(run, tmp_path):
    # bug: `snnprune report sqlite:///x.db` said "run folder sqlite:/x.db does not exist"
    folder, spec = run
    if not spec.startswith("sqlite:///"):
        pytest.skip("a journal path is a file path, not a URL")
    ref = resolve_run(spec, runs_root=tmp_path / "elsewhere")
    assert (ref.storage, ref.study, ref.run_dir) == (spec, "demo", tmp_path / "elsewhere" / "demo")


def test_list_runs_of_a_storage_url_says_what_it_lists():
    with pytest.raises(UserError, match=r"^postgresql://u:\*\*\*@db/x is a storage URL; `snnprune runs` lists"):
        list_runs("postgresql://u:pw@db/x")


def test_resolve_run_several_studies_uses_the_folder_name(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    for name in ("a", "b"):
        _make_study(default_storage(folder), name=name, trials=[])
    assert resolve_run(folder).study == "b"


def _several(tmp_path):
    folder = tmp_path / "several"
    folder.mkdir()
    for name in ("a", "b"):
        _make_study(default_storage(folder), name=name, trials=[])
    return {"target": folder}


@pytest.mark.parametrize("make, message", [
    (lambda p: {"target": p / "missing"}, "does not exist"),
    (lambda p: {"target": p}, "no study.db or journal.log"),
    (_several, "holds 2 studies"),
    (lambda p: {"storage": "postgresql://snn:s3cret@127.0.0.1:1/db", "study": "x"}, "cannot open storage"),
    (lambda p: {"storage": f"sqlite:///{p}/absent.db", "study": "x"}, "does not exist"),
    (lambda p: {"storage": str(p / "absent.log"), "study": "x"}, "does not exist"),
    (lambda p: {}, "give a run folder"),
])
def test_resolve_run_errors_are_one_line(tmp_path, make, message):
    with pytest.raises(UserError) as info:
        resolve_run(**make(tmp_path))
    text = str(info.value)
    assert message in text and "\n" not in text and "s3cret" not in text


def test_resolve_run_unknown_study_lists_the_others(run):
    folder, _ = run
    with pytest.raises(UserError, match="no study 'nope'.*demo"):
        resolve_run(folder, study="nope")


def test_list_runs_summarises_each_run(tmp_path):
    root = tmp_path / "runs"
    (root / "demo").mkdir(parents=True)
    _make_study(default_storage(root / "demo"))
    (root / "broken").mkdir()
    (root / "broken" / "study.db").write_text("not a database\n")
    (root / "empty").mkdir()
    (root / "empty" / "journal.log").write_text("")
    (root / "notes").mkdir()  # no storage: not a run
    rows = {r["run"]: r for r in list_runs(root)}
    assert set(rows) == {"demo", "broken", "empty"}
    demo = rows["demo"]
    assert demo["study"] == "demo" and demo["kind"] == "sqlite" and demo["trials"] == 3
    assert demo["states"] == {"COMPLETE": 1, "PRUNED": 1, "FAIL": 1}
    assert demo["best_accuracy"] == pytest.approx(0.9) and demo["min_front_macs"] == pytest.approx(1.5e6)
    assert demo["last_update"] and "error" in rows["broken"] and rows["empty"]["error"] == "no study in it yet"
    table = format_runs(list(rows.values()))
    assert "demo" in table and "error" in table


def test_list_runs_counts_an_interrupted_and_requeued_trial_apart_from_failures(tmp_path):
    from snnprune.search._interrupt import requeue_interrupted

    root = tmp_path / "runs"
    (root / "demo").mkdir(parents=True)
    storage = default_storage(root / "demo")
    _make_study(storage)  # 1 complete, 1 pruned, 1 failed (a configuration that failed)
    study = optuna.load_study(study_name="demo", storage=storage)
    cut = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    requeue_interrupted(study, [cut.number])  # Ctrl-C: FAIL, and queued again
    row = list_runs(root)[0]
    assert row["states"]["FAIL"] == 2 and row["retried"] == 1
    line = format_runs([row]).splitlines()[1].split()
    # complete, pruned, paused, failed: the interrupted one is not a failure
    assert line[4:8] == ["1", "1", "0", "1"]
    # ... it is counted as rerun, and its retry (queued, WAITING) as running: the row adds up to
    # its 5 trials (the table hid both)
    assert line[3] == "5" and line[8:10] == ["1", "1"]
