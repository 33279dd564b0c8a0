"""Reading commands never write into a storage, and a report never writes into another study's folder.

Two bugs. `report --storage sqlite:///runs/two/results.db` (a results store, not an Optuna
database) answered "no study 'x'" but left Optuna's whole schema in results.db, and `runs` did
the same to any non-Optuna ``study.db`` it listed. And `report --storage URL --study two` wrote
its rows into ``runs/two/results.db`` even when ``runs/two`` served study ``two`` of another
storage, then pointed the user at ``snnprune dashboard runs/two``, which opens that other study.
"""

from __future__ import annotations

import contextlib
import sqlite3
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from snnprune.cli._app import main
from snnprune.errors import UserError
from snnprune.reports import list_runs, resolve_run
from snnprune.reports._dashboard import dashboard_storage
from snnprune.reports._store import load_meta
from snnprune.search._rundir import MARKER, claim_run_dir
from snnprune.search._storage import default_storage, open_storage


def _tables(path: Path) -> set[str]:
    """The tables of a SQLite file, read without writing to it."""
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _not_optuna(path: Path) -> Path:
    """A SQLite file with tables of its own, none of them Optuna's (a results store, a log)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE trials (number INTEGER PRIMARY KEY, accuracy REAL)")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('study', '\"two\"')")
        db.commit()
    return path


def _study(spec: str, name: str, accuracies: tuple[float, ...]) -> optuna.Study:
    """Study ``name`` in ``spec``: one complete trial per accuracy and a failed one, no training."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=open_storage(spec, heartbeat=False),
                                directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "macs"])
    for acc in accuracies:
        study.add_trial(create_trial(values=[acc, 5e4], user_attrs={
            "metrics": {"accuracy": acc, "macs": 5e4, "sparsity": 0.5},
            "config": {"pruner": "gmp", "sparsity": 0.5}}))
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "TrainingDiverged: nan"}))
    return study


def _search_folder(folder: Path, name: str = "two") -> str:
    """A run folder as `snnprune search` leaves it: its study in study.db, claimed in study.json."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = default_storage(folder)
    claim_run_dir(folder, spec, _study(spec, name, (0.9, 0.8)))
    return spec


# -- bug A: a reader never writes Optuna's schema ------------------------------------------------

@pytest.mark.parametrize("command", [
    ["report", "--storage", "sqlite:///{db}", "--study", "x"],
    ["export", "--storage", "sqlite:///{db}", "--study", "x", "--pareto", "--out", "{tmp}/exp"],
    ["worker", "--storage", "sqlite:///{db}", "--study", "x"],
    ["dashboard", "sqlite:///{db}", "--port", "0"],
])
def test_a_reader_refuses_a_sqlite_file_that_is_not_optuna_and_leaves_it_as_it_was(command, tmp_path, cli_error):
    db = _not_optuna(tmp_path / "runs" / "two" / "results.db")
    before = db.read_bytes()
    line = cli_error([a.format(db=db, tmp=tmp_path) for a in command])
    assert "is not an Optuna study database" in line and str(db) in line
    assert _tables(db) == {"trials", "meta"} and db.read_bytes() == before
    assert not (tmp_path / "exp").exists()


def test_open_storage_for_a_reader_refuses_a_sqlite_file_that_is_not_optuna(tmp_path):
    db = _not_optuna(tmp_path / "x.db")
    with pytest.raises(UserError, match=r"x\.db is not an Optuna study database"):
        open_storage(f"sqlite:///{db}", heartbeat=False, create=False)
    with pytest.raises(UserError, match=r"x\.db is not an Optuna study database"):
        resolve_run(storage=f"sqlite:///{db}", study="x")
    assert _tables(db) == {"trials", "meta"}


def test_runs_lists_a_study_db_that_is_not_optuna_as_unreadable_and_leaves_it_as_it_was(tmp_path):
    root = tmp_path / "runs"
    _search_folder(root / "two")
    odd = _not_optuna(root / "sub" / "study.db")
    before = odd.read_bytes()
    rows = {r["run"]: r for r in list_runs(root)}
    assert rows["two"]["study"] == "two" and rows["two"]["trials"] == 3 and "error" not in rows["two"]
    assert "is not an Optuna study database" in rows["sub"]["error"] and str(odd.name) in rows["sub"]["error"]
    assert _tables(odd) == {"trials", "meta"} and odd.read_bytes() == before


def test_an_empty_sqlite_file_holds_no_study_and_gains_no_table(tmp_path, cli_error):
    """An empty file (a new database, or one a search is about to fill) reads as holding no study,
    as before, but the reader no longer writes Optuna's schema into it."""
    root = tmp_path / "runs"
    empty = root / "new" / "study.db"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    assert list_runs(root) == [{"run": "new", "path": str(root / "new"), "kind": "sqlite",
                                "storage": f"sqlite:///{empty.resolve().as_posix()}", "error": "no study in it yet"}]
    line = cli_error(["report", "--storage", f"sqlite:///{empty}", "--study", "x"])
    assert "no study 'x'" in line and "(studies: none)" in line
    assert "no Optuna study yet" in cli_error(["worker", "--storage", f"sqlite:///{empty}", "--study", "x"])
    assert empty.read_bytes() == b""


def test_an_optuna_database_still_reads(tmp_path):
    spec = _search_folder(tmp_path / "runs" / "two")
    assert resolve_run(storage=spec, study="two").study == "two"
    assert open_storage(spec, heartbeat=False, create=False).get_all_studies()[0].study_name == "two"
    dashboard_storage(spec)


# -- bug B: a report by URL never writes into another study's run folder -------------------------

def _folders(tmp_path: Path, monkeypatch, *, claimed: bool = True) -> tuple[Path, str, bytes]:
    """runs/two served by its own study.db (claimed in study.json, or a folder from before
    study.json), with a report in it; and other/x.db holding another study also named two.
    Returns the folder, the other storage and the folder's results.db as it was."""
    monkeypatch.chdir(tmp_path)
    folder = Path("runs") / "two"
    _search_folder(folder)
    if not claimed:
        (folder / MARKER).unlink()
    assert main(["report", str(folder)]) == 0
    Path("other").mkdir()
    other = "sqlite:///other/x.db"
    _study(other, "two", (0.5, 0.4, 0.3))
    return folder, other, (folder / "results.db").read_bytes()


@pytest.mark.parametrize("claimed", [True, False], ids=["study.json", "before study.json"])
def test_a_report_by_url_with_out_keeps_its_results_store_there(claimed, tmp_path, monkeypatch, capsys):
    folder, other, results = _folders(tmp_path, monkeypatch, claimed=claimed)
    capsys.readouterr()
    assert main(["report", "--storage", other, "--study", "two", "--out", "rep_other"]) == 0
    out = capsys.readouterr().out
    assert (folder / "results.db").read_bytes() == results  # the folder's own report is untouched
    assert load_meta(folder / "results.db")["storage"].endswith("runs/two/study.db")
    assert load_meta(Path("rep_other") / "results.db")["storage"] == other
    assert (Path("rep_other") / "report.md").is_file() and "(4 trials)" in out
    hint = next(line for line in out.splitlines() if "open the dashboard" in line)
    assert hint.endswith(f"snnprune dashboard {other}")


@pytest.mark.parametrize("claimed", [True, False], ids=["study.json", "before study.json"])
def test_a_report_by_url_into_another_studys_folder_is_refused_in_one_line(claimed, tmp_path, monkeypatch, cli_error):
    folder, other, results = _folders(tmp_path, monkeypatch, claimed=claimed)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    line = cli_error(["report", "--storage", other, "--study", "two"])
    assert str(folder) in line and "study.db" in line and "--out" in line
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before
    assert (folder / "results.db").read_bytes() == results


def test_a_report_by_url_of_the_folders_own_storage_still_writes_there(tmp_path, monkeypatch, capsys):
    folder, _, _ = _folders(tmp_path, monkeypatch)
    own = default_storage(folder)
    capsys.readouterr()
    assert main(["report", "--storage", own, "--study", "two"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"snnprune dashboard {folder}")
    assert load_meta(folder / "results.db")["storage"] == own


def test_a_report_of_a_run_folder_it_cannot_write_goes_to_out(run_folder, tmp_path, monkeypatch):
    """A read-only run folder (a read-only mount: root's chmod would not stop it, so the check is
    faked here) ended in sqlite's traceback, even with --out, leaving an empty --out folder."""
    from snnprune.reports import _build

    real = _build.os.access
    monkeypatch.setattr(_build.os, "access", lambda path, mode: False if Path(path) == run_folder else real(path, mode))
    before = sorted(p.name for p in run_folder.iterdir())
    out = tmp_path / "elsewhere"
    assert main(["report", str(run_folder), "--out", str(out)]) == 0
    assert (out / "results.db").is_file() and (out / "report.md").is_file()
    assert sorted(p.name for p in run_folder.iterdir()) == before
    # without --out, a store that cannot be written is one line
    (tmp_path / "blocker").write_text("a file where the store's folder would be")
    from snnprune.reports import sync_store
    with pytest.raises(UserError, match=r"cannot write the results store .*give the report another --out"):
        sync_store(resolve_run(run_folder).storage, "tiny", tmp_path / "blocker" / "results.db")
