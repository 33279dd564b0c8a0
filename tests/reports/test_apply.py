"""`apply` on a hand-edited config.yaml: every bad value is one line naming the file and the key.

No test here trains: `run_trial` is replaced by a stub, so a config that slips past the checks
fails the test at once instead of spending minutes, and the folder case sees what the re-run was
given.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from snnprune.cli._app import main
from snnprune.errors import UserError
from snnprune.reports import apply_config, load_config
from snnprune.search import TrialConfig

#: What `snnprune export` writes for a tiny gmp trial (every block complete).
CONFIG = {
    "pruner": "gmp",
    "sparsity": 0.5,
    "hyperparameters": {"prune_steps": 2},
    "model": {"name": "cnn", "width": 0.25, "T": 2, "neuron": "lif", "tau": 2.0, "v_threshold": 1.0,
              "surrogate": "atan", "alpha": 2.0},
    "data": {"name": "digits", "root": None, "subset": 400, "val_fraction": 0.1},
    "budget": {"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 1, "batch_size": 64, "lr": 0.1,
               "finetune_lr": 0.02, "optimizer": "sgd"},
    "seed": 0,
    "objectives": ["accuracy", "macs"],
    "study": "ex",
    "trial": 3,
}


def _edited(key: str, value: object) -> bytes:
    """CONFIG with one (dotted) key set to ``value``, as YAML."""
    config = json.loads(json.dumps(CONFIG))
    block, _, name = key.rpartition(".")
    (config[block] if block else config)[name] = value
    return yaml.safe_dump(config, sort_keys=False).encode()


#: (case, file content, what the line must say after "<file>: ")
BAD = [
    ("unknown budget key", _edited("budget.epochs", 3), "budget.epochs: unknown key; allowed here: pretrain_epochs"),
    ("budget not a mapping", _edited("budget", [1]), "budget: must be a mapping"),
    ("data not a mapping", _edited("data", "digits"), "data: must be a mapping"),
    ("model not a mapping", _edited("model", "cnn"), "model: must be a mapping"),
    ("unknown model option", _edited("model.depth", 3), "model.depth: unknown key; allowed here: name, width, T"),
    ("sparsity not a number", _edited("sparsity", "x"), "sparsity: must be a number"),
    ("trial not an integer", _edited("trial", "x"), "trial: must be an integer"),
    ("not UTF-8", _edited("study", "cafe").replace(b"study: cafe", b"study: caf\xe9"), "cannot read it: 'utf-8'"),
]


@pytest.fixture
def fake_run(monkeypatch):
    """Replace the runner: record each config it is given and return fixed figures."""
    calls: list[TrialConfig] = []

    def run_trial(config, runtime, **_kw):
        calls.append(config)
        metrics = {"accuracy": 0.5, "test_accuracy": 0.5, "sparsity": 0.5, "macs": 10}
        return SimpleNamespace(metrics=metrics, artifacts={})

    monkeypatch.setattr("snnprune.search.run_trial", run_trial)
    return calls


@pytest.fixture
def no_run(monkeypatch):
    """A bad config must be refused before the runner (where it used to fail, after training)."""
    def run_trial(config, runtime, **_kw):
        raise AssertionError(f"the config reached run_trial unchecked: {config}")

    monkeypatch.setattr("snnprune.search.run_trial", run_trial)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnprune: error: "), err
    return lines[0]


@pytest.mark.parametrize("content,expected", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_bad_config_is_one_line_naming_the_key(content, expected, tmp_path, capsys, no_run):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(UserError) as err:
        apply_config(path, out=out)
    assert f"{path}: {expected}" in str(err.value) and "\n" not in str(err.value)

    assert main(["apply", str(path), "--out", str(out)]) == 2
    assert f"{path}: {expected}" in _one_error_line(capsys)
    assert not out.exists()


def test_a_trial_folder_applies_its_config_yaml(tmp_path, capsys, fake_run):
    folder = tmp_path / "trial-00003"
    folder.mkdir()
    (folder / "config.yaml").write_bytes(_edited("seed", 0))
    report = apply_config(folder)
    assert report["config"] == str(folder / "config.yaml")
    assert report["run_dir"] == str(folder / "applied")
    assert fake_run == [load_config(folder / "config.yaml")]

    assert main(["apply", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"] == str(folder / "config.yaml")


def test_a_folder_without_config_yaml_says_it_is_a_folder(tmp_path, capsys, no_run):
    assert main(["apply", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "is a folder with no config.yaml" in line and str(tmp_path) in line


def test_a_missing_config_creates_no_out_folder(tmp_path, capsys, no_run):
    out = tmp_path / "D"
    assert main(["apply", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert not out.exists()


def test_an_exported_config_loads_as_the_trial_config_it_came_from(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    expected = TrialConfig.from_dict(CONFIG)
    assert load_config(path) == expected
    assert load_config(path).cache_key() == expected.cache_key()  # same dense cache as the search


def test_values_the_run_would_refuse_are_refused_by_key_first(tmp_path):
    """These gave one line before too (from deep in the run); now they name the file's key."""
    cases = {"pruner": ("nope", "pruner: unknown pruner 'nope'; choose one of"),
             "sparsity": (1.5, "sparsity: 1.5 is out of range [0.0, 1.0)"),
             "seed": (-1, "seed: -1 is out of range"),
             "hyperparameters.foo": (1, "hyperparameters.foo: pruner gmp has no hyperparameter 'foo'; it has:"),
             "budget.pretrain_epochs": (-1, "budget.pretrain_epochs: -1 is out of range"),
             "model.name": ("mlp", "model.name: unknown model 'mlp'; choose one of cnn")}
    for key, (value, expected) in cases.items():
        path = tmp_path / f"{key}.yaml"
        path.write_bytes(_edited(key, value))
        with pytest.raises(UserError) as err:
            load_config(path)
        assert f"{path}: {expected}" in str(err.value), key


@pytest.mark.parametrize("marker", ["study.json", "study.db", "journal.log"])
def test_apply_refuses_a_search_run_folder_as_out(marker, tmp_path, capsys, no_run):
    """The bug: `apply --out runs/two` replaced runs/two/trials/00000/'s masks and model, which
    `export` then paired with trial 0's old metrics."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    run = tmp_path / "runs" / "two"
    run.mkdir(parents=True)
    (run / marker).write_text("")
    assert main(["apply", str(config), "--out", str(run), "-q"]) == 2
    line = _one_error_line(capsys)
    assert "run folder" in line and marker in line


@pytest.mark.parametrize("content", ["{broken", "[1, 2]", json.dumps({"metrics": [1]})],
                         ids=["not-json", "a-list", "metrics-not-a-mapping"])
def test_apply_checks_the_reference_metrics_before_it_runs(content, tmp_path, capsys, no_run):
    """The bug: a damaged metrics.json beside the config raised JSONDecodeError/AttributeError
    after the whole re-run, and its result was lost."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "metrics.json").write_text(content)
    assert main(["apply", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "metrics.json" in _one_error_line(capsys)


def test_apply_skips_a_reference_figure_that_is_not_a_number(tmp_path, capsys, fake_run):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"test_accuracy": "x", "macs": 10}}))
    assert main(["apply", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "o"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["same_macs"] is True and "accuracy_delta" not in report
