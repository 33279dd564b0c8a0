from __future__ import annotations

import json
import subprocess
import sys

import pytest

from snnprune.cli._app import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_vgg16_matches_the_independent_count(capsys):
    code, out, _ = run(capsys, "inspect", "--model", "vgg16", "--dataset", "cifar10", "--json")
    assert code == 0
    payload = json.loads(out)
    assert abs(payload["conv_macs"] - 313.2e6) / 313.2e6 < 0.005
    assert abs(payload["params"] - 14.7e6) / 14.7e6 < 0.01
    assert payload["linear_macs"] == 512 * 10
    assert payload["input_shape"] == [3, 32, 32]


def test_inspect_human_output(capsys):
    code, out, _ = run(capsys, "inspect", "-m", "cnn", "-d", "fashion-mnist")
    assert code == 0 and "MACs per time step" in out and "features.0" in out


@pytest.mark.parametrize("argv,fragment", [
    (["inspect", "-m", "alexnet", "-d", "digits"], "unknown model"),
    (["inspect", "-m", "cnn", "-d", "mnist-ish"], "unknown data set"),
    (["inspect", "-m", "cnn", "-d", "digits", "--neuron", "hh"], "unknown neuron"),
    (["inspect", "-m", "cnn", "-d", "digits", "--width", "0"], "width"),
    (["inspect", "-m", "cnn", "-d", "digits", "--width", "abc"], "width"),
    (["inspect", "-m", "cnn"], "dataset"),
    (["train", "-m", "cnn", "-d", "digits", "--epochs", "0"], "epochs"),
    (["train", "-m", "cnn", "-d", "fashion-mnist", "--data-root", "/nonexistent/fm"], "fashion-mnist"),
    (["train", "-m", "cnn", "-d", "cifar10"], "cifar10"),
    (["no-such-command"], "No such command"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnprune: error:"), err
    assert fragment.lower() in lines[0].lower()
    assert "Traceback" not in err


def test_train_json_reports_accuracy_metrics_and_checkpoint(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "-m", "cnn", "-d", "digits", "--epochs", "2", "--width", "0.5",
                       "--T", "4", "--out", str(tmp_path / "run"), "--json")
    assert code == 0
    payload = json.loads(out)
    for key in ("test_accuracy", "macs", "sops", "energy_uj", "params", "checkpoint", "firing_rates"):
        assert key in payload
    assert payload["test_accuracy"] > 0.5
    assert (tmp_path / "run" / "model.pt").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_accuracy"] == payload["test_accuracy"]


def test_console_script_prints_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "snnprune", "inspect", "-m", "cnn", "-d", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("snnprune: error:") and "Traceback" not in proc.stderr


def test_train_human_output_says_one_epoch_not_one_epochs(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "-m", "cnn", "-d", "digits", "--epochs", "1", "--width", "0.25", "--T", "2",
                       "--subset", "100", "-q", "--out", str(tmp_path / "run"))
    assert code == 0 and "after 1 epoch " in out and "1 epochs" not in out


def test_prune_says_when_min_channels_keeps_more_than_the_target(capsys, tmp_path):
    """Widths 8/16/32 (cnn at width 0.25) with min_channels=16 keep 8 + 16 + 16: at most 0.2857 of
    the channels can go, not 0.5. The run goes on there and says so (before: nothing said)."""
    argv = ["prune", "-p", "l1-filter", "-m", "cnn", "-d", "digits", "--width", "0.25", "--T", "2",
            "--subset", "100", "--epochs", "1", "--prune-epochs", "1", "--finetune-epochs", "1", "-q",
            "--sparsity", "0.5", "--set", "min_channels=16", "--set", "scope=global"]
    code, out, _ = run(capsys, *argv, "--out", str(tmp_path / "human"))
    assert code == 0
    assert "note: l1-filter: min_channels=16 keeps at least 40 of the 56 channels, so channel sparsity " \
           "0.2857 at most, not 0.5" in out
    code, out, _ = run(capsys, *argv, "--out", str(tmp_path / "json"), "--json")
    assert code == 0 and len(json.loads(out)["notes"]) == 1


def test_prune_into_a_reused_out_keeps_one_runs_model(capsys, tmp_path):
    """A structured run, then an unstructured one into the same --out, left the first run's
    model_compact.pt beside the second's model_sparse.pt."""
    argv = ["prune", "-m", "cnn", "-d", "digits", "--width", "0.25", "--T", "2", "--subset", "100", "--epochs", "1",
            "--prune-epochs", "1", "--finetune-epochs", "1", "-q", "--sparsity", "0.5", "--out", str(tmp_path)]
    assert run(capsys, *argv, "-p", "l1-filter")[0] == 0
    assert (tmp_path / "model_compact.pt").is_file()
    assert run(capsys, *argv, "-p", "random-unstructured")[0] == 0
    assert (tmp_path / "model_sparse.pt").is_file() and not (tmp_path / "model_compact.pt").exists()
