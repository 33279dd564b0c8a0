"""After a search: report, export the front, re-apply an exported trial and get the same model."""

from __future__ import annotations

import json

import pytest
import yaml

import snnprune
from snnprune.cli._app import main
from snnprune.search import optimize
from snnprune.spaces import parse_space

SPACE = {
    "study": "ex",
    "model": {"name": "cnn", "width": 0.25, "T": 2},
    "data": {"name": "digits", "subset": 400},
    "budget": {"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 1, "batch_size": 64,
               "lr": 0.1, "finetune_lr": 0.02},
    "pruners": {"gmp": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9}, "prune_steps": 2},
                "l1-filter": {"sparsity": {"type": "float", "low": 0.2, "high": 0.6}}},
    "objectives": ["accuracy", "macs"],
    "trials": 3,
    "sampler": "random",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    optimize(parse_space(SPACE, source="<test>"), run_dir=root / "ex", quiet=True)
    return root / "ex"


def test_report_writes_plots_csv_and_markdown(run_dir, capsys):
    assert main(["report", str(run_dir), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    for name in ("pareto.png", "pareto.html", "accuracy_vs_sparsity.png", "accuracy_vs_macs.html",
                 "trials.csv", "report.md", "results.db"):
        assert (run_dir / name).is_file(), name
    assert "Pareto" in (run_dir / "report.md").read_text()
    assert payload["trials"] == 3


def test_report_of_a_storage_url_points_the_dashboard_at_the_storage(run_dir, tmp_path, capsys, monkeypatch):
    # bug: given by URL, the results went to runs/<study> and the hint named that folder, which
    # holds no study for the dashboard to open
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{run_dir / 'study.db'}"
    assert main(["report", url, "--out", str(tmp_path / "rep"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["dashboard"] == f"snnprune dashboard {url}"
    assert payload["trials"] == 3
    assert main(["report", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dashboard"] == f"snnprune dashboard {run_dir}"


def test_export_pareto_then_apply_reproduces(run_dir, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--pareto", "--out", str(out), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)["exported"]
    assert exported
    folder = out / exported[0].split("/")[-1]
    for name in ("config.yaml", "nni_config_list.json", "masks.pt", "model_compact.pt", "metrics.json"):
        assert (folder / name).is_file(), name
    model = snnprune.load_compact(folder / "model_compact.pt")  # without the original
    assert model(snnprune.load_dataset("digits").test.x[:2]).shape == (2, 10)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert {"pruner", "sparsity", "hyperparameters", "model", "data", "budget", "seed"} <= set(config)

    # refuses to overwrite without --force
    assert main(["export", str(run_dir), "--pareto", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err

    assert main(["apply", str(folder / "config.yaml"), "--out", str(tmp_path / "again"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["same_macs"] and report["same_sparsity"]
    assert abs(report["accuracy_delta"]) <= 0.005


def test_export_names_what_is_wrong_with_the_selection(run_dir, tmp_path, capsys):
    out = str(tmp_path / "exp")
    cases = [(["--best", "acuracy>=0.5"], "--best acuracy: trials have no such metric; known: accuracy"),
             (["--pareto", "--trial", "0"], "give only one of --pareto"),
             ([], "say which trials to export")]
    for extra, fragment in cases:
        assert main(["export", str(run_dir), "--out", out, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err


@pytest.mark.parametrize("argv,fragment", [
    (["export", "/nonexistent/run", "--pareto", "--out", "x"], "does not exist"),
    (["report", "/nonexistent/run"], "does not exist"),
    (["apply", "/nonexistent/config.yaml"], "does not exist"),
])
def test_missing_inputs_are_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
