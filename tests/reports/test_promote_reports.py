"""Reports of a promote-mode study: a trial paused at a rung that went on as a later trial is
counted as "paused", not "stopped early", left off the plots (its resuming trial stands for it),
and `export --trial` of it names the trial to export instead."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from snnprune.errors import UserError
from snnprune.reports import format_runs, list_runs, load_trials, select_trials, sync_store, trials_view
from snnprune.reports._plots import _usable
from snnprune.search._storage import default_storage, open_storage

DIST = {"x": optuna.distributions.FloatDistribution(0, 1)}


def _promoted_study(folder):
    """Trial 0 paused at rung 1 and went on as trial 2; trial 1 stopped for good."""
    folder.mkdir(parents=True)
    spec = default_storage(folder)
    study = optuna.create_study(study_name="p", storage=open_storage(spec, heartbeat=False),
                                directions=["maximize", "minimize"])
    study.set_metric_names(["accuracy", "macs"])

    def add(state, attrs, values=None):
        study.add_trial(optuna.trial.create_trial(state=state, params={"x": 0.5}, distributions=DIST,
                                                  values=values, user_attrs=attrs))

    add(TrialState.PRUNED, {"stopped_at_rung": 1, "partial_values": [0.5, 10.0], "paused_checkpoint": "/c/0.pt",
                            "metrics": {"accuracy": 0.5, "macs": 10.0}})
    add(TrialState.PRUNED, {"stopped_at_rung": 1, "partial_values": [0.2, 30.0], "paused_checkpoint": "/c/1.pt",
                            "metrics": {"accuracy": 0.2, "macs": 30.0}})
    add(TrialState.COMPLETE, {"resumes": 0, "resume_rung": 1, "resume_checkpoint": "/c/0.pt",
                              "metrics": {"accuracy": 0.9, "macs": 10.0}}, values=[0.9, 10.0])
    return spec, study


def test_a_paused_trial_that_went_on_is_counted_apart_and_off_the_plots(tmp_path):
    folder = tmp_path / "runs" / "p"
    spec, _ = _promoted_study(folder)
    sync_store(spec, "p", folder / "results.db")
    df = load_trials(folder / "results.db")
    assert df.set_index("number")["paused"].tolist() == [1, 0, 0]
    assert df.set_index("number")["resumes"].tolist()[2] == 0
    assert sorted(_usable(trials_view(df), "macs", "accuracy")["number"]) == [1, 2]  # 0 is drawn as trial 2

    row = list_runs(tmp_path / "runs")[0]
    assert row["paused"] == 1
    line = format_runs([row]).splitlines()[1].split()
    assert line[3:8] == ["3", "1", "1", "1", "0"]  # trials, complete, pruned, paused, failed


def test_export_of_a_paused_trial_names_the_trial_that_went_on(tmp_path):
    _, study = _promoted_study(tmp_path / "p")
    with pytest.raises(UserError, match="paused at a rung .* went on as trial 2"):
        select_trials(study, trial=0)
    with pytest.raises(UserError, match="stopped early"):
        select_trials(study, trial=1)
    assert [t.number for t in select_trials(study, trial=2)] == [2]


def test_report_md_counts_the_paused_trial_apart(tmp_path):
    from snnprune.reports import build_report, resolve_run

    folder = tmp_path / "runs" / "p"
    _promoted_study(folder)
    build_report(resolve_run(str(folder)))
    text = (folder / "report.md").read_text()
    assert "1 paused and resumed later" in text and "1 pruned" in text
