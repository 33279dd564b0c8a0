"""`build_report` on tiny studies recorded as the search records them (see conftest.py)."""

from __future__ import annotations

import sqlite3

import optuna
import pandas as pd
import pytest

from snnprune.errors import UserError
from snnprune.reports import build_report, list_runs, resolve_run, select_trials, study_hypervolume
from snnprune.reports._plots import front_line
from snnprune.reports._store import load_trials, sync_store
from snnprune.reports._summary import trials_view
from snnprune.search._storage import default_storage, open_storage


def _study(folder) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=open_storage(default_storage(folder), heartbeat=False))


def _front_rows(markdown: str) -> list[int]:
    """Trial numbers in the report's front table."""
    section = markdown.split("## Pareto front", 1)[1].split("##", 1)[0]
    return sorted(int(line.split("|")[1]) for line in section.splitlines()
                  if line.startswith("| ") and not line.startswith("| trial"))


def test_report_front_leaves_infeasible_trials_off_as_search_runs_and_export_do(run_folder):
    # bug: report drew its own front over every complete trial, so trial 0 (macs 40k, breaks
    # macs >= 50000) was the whole front and widened the hypervolume
    result = build_report(resolve_run(run_folder))
    text = (run_folder / "report.md").read_text()
    search_front = sorted(t.number for t in _study(run_folder).best_trials)
    assert search_front == [1, 2]
    assert _front_rows(text) == search_front and "- Pareto front: 2 trial(s)" in text
    assert "macs >= 50000; 1 of 4 complete trial(s) break them" in text
    assert list_runs(run_folder.parent)[0]["front_size"] == 2
    assert list_runs(run_folder.parent)[0]["best_accuracy"] == pytest.approx(0.85)  # not trial 0's 0.9
    assert [t.number for t in select_trials(_study(run_folder), pareto=True)] == search_front
    view = trials_view(load_trials(run_folder / "results.db"))
    assert sorted(view.loc[view["on_front"] == 1, "number"]) == search_front
    assert sorted(front_line(view, "macs", "accuracy", ["minimize", "maximize"])["number"]) == search_front
    feasible = [r for r in view.to_dict("records") if r["number"] != 0]
    expected = study_hypervolume(feasible, ["accuracy", "macs"], ["maximize", "minimize"])
    assert result["hypervolume"] == pytest.approx(expected.normalized)
    assert f"Hypervolume {expected.hypervolume:.6g}" in text


def test_report_of_a_study_no_trial_of_which_is_feasible_has_no_front(make_run, tmp_path):
    # bug: with `accuracy > 2` search and runs showed no front, report.md "Pareto front: 1 trial(s)"
    folder = tmp_path / "runs" / "tiny"
    make_run(folder, constraints=[("accuracy", ">", 2.0)])
    result = build_report(resolve_run(folder))
    text = (folder / "report.md").read_text()
    assert "- Pareto front: 0 trial(s)" in text and "4 of 4 complete trial(s) break them" in text
    assert "No complete trial meets the constraints, so no front." in text
    assert result["hypervolume"] is None and "hypervolume.png" not in result["plots"]
    assert list_runs(folder.parent)[0]["front_size"] == 0
    assert list_runs(folder.parent)[0]["best_accuracy"] is None  # was 0.9, from a trial off every front


def test_an_old_results_store_gets_the_feasibility_columns_on_its_next_sync(run_folder):
    db = run_folder / "results.db"
    sync_store(default_storage(run_folder), "tiny", db)
    with sqlite3.connect(db) as conn:  # a store written before these columns existed
        for col in ("constraint_violation", "feasible", "on_front"):
            conn.execute(f"ALTER TABLE trials DROP COLUMN {col}")
    build_report(resolve_run(run_folder))
    df = load_trials(db).set_index("number")
    assert list(df["feasible"].iloc[:4]) == [0, 1, 1, 1] and pd.isna(df.loc[4, "feasible"])
    assert list(df["on_front"]) == [0, 1, 1, 0, 0]
    assert _front_rows((run_folder / "report.md").read_text()) == [1, 2]


@pytest.mark.parametrize("axis, column", [("x", "firing_rates"), ("x", "config"), ("x", "pruner"), ("x", "hp"),
                                          ("y", "fail_reason"), ("x", "datetime_start")])
def test_report_refuses_an_axis_that_is_not_a_number_before_writing(run_folder, tmp_path, axis, column):
    # bug: exit 0, no pareto.* and no hypervolume.*, silently
    out = tmp_path / "rep"
    with pytest.raises(UserError, match=rf"^column '{column}' is not a number per trial.*plottable: accuracy, "):
        build_report(resolve_run(run_folder), out=out, **{axis: column})
    assert not any(out.iterdir())


def test_report_hypervolume_is_over_the_objectives_whatever_the_axes(run_folder):
    # bug: --x sparsity --y test_accuracy gave a hypervolume over 4 columns (axes + objectives)
    result = build_report(resolve_run(run_folder), x="sparsity", y="test_accuracy")
    html = (run_folder / "hypervolume.html").read_text()
    assert "reference accuracy=" in html and "macs=" in html
    assert "sparsity=" not in html and "test_accuracy=" not in html
    assert result["hypervolume"] == pytest.approx(build_report(resolve_run(run_folder))["hypervolume"])


def test_report_of_a_study_with_no_trial_is_an_empty_report(make_run, tmp_path):
    # bug: "trials have no column 'macs'; plottable: none"
    folder = tmp_path / "runs" / "tiny"
    make_run(folder, points=(), failed=False)
    (folder / "pareto.png").write_bytes(b"from an earlier report")
    result = build_report(resolve_run(folder))
    assert result["trials"] == 0 and result["plots"] == {} and result["hypervolume"] is None
    text = (folder / "report.md").read_text()
    assert "- trials: 0 (no trial yet)" in text and "No trial yet, so no front." in text
    assert not (folder / "pareto.png").exists()  # would show a front report.md does not
    assert pd.read_csv(folder / "trials.csv").empty
    with pytest.raises(UserError, match="no column 'foo'; plottable: accuracy"):
        build_report(resolve_run(folder), x="foo")


def test_trials_csv_has_each_metric_once(run_folder):
    # bug: m_accuracy beside accuracy, m_sops beside sops, sparsity_target beside target_sparsity
    build_report(resolve_run(run_folder))
    csv = pd.read_csv(run_folder / "trials.csv")
    assert not [c for c in csv.columns if c.startswith("m_")] and "sparsity_target" not in csv
    assert csv.columns.is_unique
    row = csv.set_index("number").loc[1]
    assert (row["accuracy"], row["sops"], row["target_sparsity"]) == (0.8, 20_000.0, 0.6)
    assert row["firing_rates"] == '{"features.2": 0.2}'  # a dict metric kept, not emptied to NaN


def test_report_counts_a_trial_that_was_interrupted_and_run_again_apart_from_failures(run_folder):
    """report.md counted it as a failure where `search` said "1 interrupted and run again": a dead
    or interrupted trial queued once more is not a failure of its configuration."""
    study = _study(run_folder)
    dead = study.ask()
    study.tell(dead, state=optuna.trial.TrialState.FAIL)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, params={},
                                              distributions={}, user_attrs={"retry_of": dead.number}))
    build_report(resolve_run(run_folder))
    text = (run_folder / "report.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("- trials:"))
    assert line.startswith("- trials: 7 (")  # the fixture's own failed trial stays a failure
    assert sorted(line[line.index("(") + 1:-1].split(", ")) == [
        "1 fail", "1 interrupted and run again", "1 waiting", "4 complete"]


def test_report_of_a_study_whose_every_trial_failed_says_so(make_run, tmp_path):
    """It said "No complete trial yet", as if the trials were still running."""
    folder = tmp_path / "runs" / "tiny"
    make_run(folder, points=(), failed=True)
    build_report(resolve_run(folder))
    assert "Every trial failed, so no front" in (folder / "report.md").read_text()
    assert "TrainingDiverged" in (folder / "trials.csv").read_text()
