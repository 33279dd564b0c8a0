"""Plots, trials.csv and report.md from a small hand-made study (no training)."""

from __future__ import annotations

import json

import matplotlib.image
import optuna
import pandas as pd
import pytest

from snnprune.errors import UserError
from snnprune.reports._pareto import pareto_mask
from snnprune.reports._plots import front_line, log_scale, pruner_colors, write_plots
from snnprune.reports._summary import hyperparameters_of, write_report_md, write_trials_csv

DENSE = {"accuracy": 0.95, "macs": 2.0e8, "weights": 1.0e6, "params": 1.1e6}
METRICS, DIRECTIONS = ["accuracy", "macs"], ["maximize", "minimize"]


def make_study() -> optuna.Study:
    """Twelve trials shaped like `search._optuna.make_objective` records them."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=DIRECTIONS)
    dist = {"sparsity": optuna.distributions.FloatDistribution(0.0, 0.99)}
    for i in range(12):
        pruner = ("criticality", "magnitude")[i % 2]
        sparsity = 0.1 + 0.07 * i
        macs = DENSE["macs"] * (1 - sparsity) ** 2
        acc = 0.95 - 0.3 * sparsity ** 3 - 0.02 * (i % 2)
        metrics = {"accuracy": acc, "test_accuracy": acc - 0.01, "sparsity": sparsity, "macs": macs,
                   "params": DENSE["params"] * (1 - sparsity), "sops": 1e6 * (1 - sparsity),
                   "energy": 5.0 * (1 - sparsity),
                   "macs_ratio": macs / DENSE["macs"]}
        attrs = {"config": {"pruner": pruner, "sparsity": sparsity, "hyperparameters": {"alpha": i / 10}},
                 "metrics": metrics, "dense": DENSE}
        state = optuna.trial.TrialState.COMPLETE
        if i == 10:
            state, attrs["fail_reason"] = optuna.trial.TrialState.FAIL, "TrainingDiverged: loss is nan"
            attrs.pop("metrics")
        elif i == 11:
            state, attrs["stopped_at_rung"] = optuna.trial.TrialState.PRUNED, 1
        values = [acc, macs] if state == optuna.trial.TrialState.COMPLETE else None
        study.add_trial(optuna.trial.create_trial(state=state, values=values, user_attrs=attrs,
                                                  params={"sparsity": sparsity}, distributions=dist))
    return study


def frame(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        cfg, metrics = t.user_attrs["config"], t.user_attrs.get("metrics", {})
        rows.append({"number": t.number, "state": t.state.name, "pruner": cfg["pruner"],
                     "target_sparsity": cfg["sparsity"], "hyperparameters": cfg["hyperparameters"], **metrics})
    df = pd.DataFrame(rows)
    front = {t.number for t in study.best_trials}
    df["on_front"] = df["number"].isin(front)
    return df


@pytest.fixture(scope="module")
def study_df():
    study = make_study()
    return study, frame(study)


@pytest.fixture(scope="module")
def written(study_df, tmp_path_factory):
    _, df = study_df
    return write_plots(df, tmp_path_factory.mktemp("plots"), dense=DENSE, directions=dict(zip(METRICS, DIRECTIONS)))


def test_every_plot_is_written_as_png_and_html(written):
    stems = ["pareto", "accuracy_vs_sparsity", "accuracy_vs_macs", "hypervolume"]
    assert sorted(written) == sorted([f"{s}.{ext}" for s in stems for ext in ("png", "html")] + ["plotly.min.js"])
    for name, path in written.items():
        assert path.is_file() and path.stat().st_size > 5_000, name
        assert not list(path.parent.glob(".*.tmp")), "a temporary file was left behind"


def test_pngs_are_readable_images(written):
    for name in (n for n in written if n.endswith(".png")):
        image = matplotlib.image.imread(written[name])
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 0.01, name


def test_html_plots_share_one_plotly_js_beside_them(written):
    """Each HTML plot embedded its own plotly.js: 4.8 MB a file, 19 MB a report of four plots."""
    pages = [written[n] for n in written if n.endswith(".html")]
    assert len(pages) >= 3
    for page in pages:
        assert page.stat().st_size < 200_000, page
        assert '<script charset="utf-8" src="plotly.min.js"></script>' in page.read_text()
        assert (page.parent / "plotly.min.js").stat().st_size > 1_000_000


def test_html_is_offline_and_holds_the_trials(written):
    for name in (n for n in written if n.endswith(".html")):
        html = written[name].read_text()
        assert '<script src="http' not in html and "cdn.plot.ly" not in html.split("</script>")[-1], name
        assert "plotly" in html.lower()
    pareto = written["pareto.html"].read_text()
    assert "trial 0" in pareto and "trial 9" in pareto and "criticality" in pareto and "dense baseline" in pareto
    assert "trial 10" not in pareto  # the failed trial has nothing to show


def test_front_line_and_helpers(study_df):
    study, df = study_df
    line = front_line(df, "macs", "accuracy", ["minimize", "maximize"])
    assert set(line["number"]) == {t.number for t in study.best_trials}
    assert list(line["macs"]) == sorted(line["macs"])
    assert log_scale("macs", [1e6, 2e8]) and not log_scale("macs", [1e6, 5e6]) and not log_scale("accuracy", [0.01, 1])
    assert pruner_colors(["b", "a", "b"]) == pruner_colors(["a", "b"])


def test_missing_column_is_a_user_error(study_df, tmp_path):
    with pytest.raises(UserError):
        write_plots(study_df[1], tmp_path, x="flops")


def test_report_has_front_table_dense_and_hypervolume(study_df, written, tmp_path):
    study, df = study_df
    report = write_report_md(df, written["pareto.png"].parent / "report.md", study="demo", metric_names=METRICS,
                             directions=DIRECTIONS, dense=DENSE, plots=written)
    text = report.read_text()
    assert text.startswith("# Pruning search report: demo")
    assert "| trial | pruner | target sparsity | accuracy (val) | test accuracy | sparsity | MACs |" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| trial")]
    assert len(table) == len(study.best_trials)
    assert "Dense baseline: test accuracy 0.9500, MACs 200M" in text
    assert "10 complete" in text and "1 fail" in text and "1 pruned" in text
    assert "Hypervolume" in text and "reference point (accuracy =" in text
    assert "![pareto](pareto.png) ([interactive](pareto.html))" in text
    assert "`alpha=0`" in text


def test_report_computes_front_without_on_front(study_df, tmp_path):
    _, df = study_df
    text = write_report_md(df.drop(columns="on_front"), tmp_path / "r.md", study="s", metric_names=METRICS,
                           directions=DIRECTIONS).read_text()
    done = df[df["state"] == "COMPLETE"]
    expected = sum(pareto_mask(done[METRICS].to_numpy().tolist(), DIRECTIONS))
    assert f"Pareto front: {expected} trial(s)" in text and "Dense baseline: not recorded." in text


def test_trials_csv_round_trips(study_df, tmp_path):
    _, df = study_df
    back = pd.read_csv(write_trials_csv(df, tmp_path / "trials.csv"))
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    pd.testing.assert_series_equal(back["macs"], df["macs"], check_exact=False)
    assert list(back["on_front"]) == list(df["on_front"]) and list(back["state"]) == list(df["state"])
    assert [json.loads(v) for v in back["hyperparameters"]] == list(df["hyperparameters"])
    assert hyperparameters_of(back.iloc[3].to_dict()) == {"alpha": 0.3}


def test_the_results_store_frame_works_as_is(tmp_path):
    """`reports._store` keeps metrics as ``m_*``, the target as ``sparsity_target``, the dense
    baseline as ``dense_*``: plots and report read that frame without renaming."""
    store = pytest.importorskip("snnprune.reports._store")
    study = make_study()
    columns = store.value_columns(METRICS, 2)
    df = pd.DataFrame([store.trial_row(t, columns) for t in study.trials])
    written = write_plots(df, tmp_path, x="sparsity", y="accuracy", directions=dict(zip(METRICS, DIRECTIONS)))
    assert {"pareto.png", "accuracy_vs_sparsity.html", "hypervolume.png"} <= set(written)
    assert "trial 11" in written["pareto.html"].read_text()  # stopped early, drawn at its metrics
    text = write_report_md(df, tmp_path / "report.md", study="store", metric_names=METRICS,
                           directions=DIRECTIONS).read_text()
    assert "Dense baseline: test accuracy 0.9500" in text and "`alpha=0.2`" in text
    assert "| 0 | criticality | 0.1 | 0.9497 | 0.9397 | 0.1 | 162M | 0.81 |" in text
