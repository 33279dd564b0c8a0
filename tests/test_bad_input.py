"""Malformed input of every kind a user can give ends in exit code 2 and one line.

Each case is one CLI invocation through `snnprune.cli._app.main` with its files written into
tmp_path. Every case must: return 2; print exactly one line on stderr, starting with
``snnprune: error:``; name what is wrong (a file name, a key or a flag); print no traceback;
and create no store (no study.db, journal, results.db) anywhere under tmp_path.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import yaml

from snnprune.cli._app import main

SECRET = "s3cr3t-pw"


def _space(**changes) -> dict:
    """A tiny valid space (digits); ``changes`` replace top-level keys, None deletes one."""
    space = {
        "study": "bad",
        "model": {"name": "cnn", "width": 0.25, "T": 2},
        "data": {"name": "digits", "subset": 200},
        "budget": {"pretrain_epochs": 1, "prune_epochs": 1, "finetune_epochs": 1, "batch_size": 64,
                   "lr": 0.1, "finetune_lr": 0.02},
        "pruners": {"gmp": {"sparsity": {"type": "float", "low": 0.3, "high": 0.9}}},
        "objectives": ["accuracy", "macs"],
        "trials": 2,
        "seed": 0,
    }
    for key, value in changes.items():
        if value is None:
            space.pop(key, None)
        else:
            space[key] = value
    return space


def _gmp(**sparsity) -> dict:
    return {"gmp": {"sparsity": {"type": "float", **sparsity}}}


def _space_case(space: dict | str, *named: str):
    """A bad space file for `search`: the line names the file and ``named``."""
    return _search(space), ["space.yaml", *named]


def _search(space: dict | str, *extra: str):
    """argv for `search` on a space file written from ``space`` (a dict, or raw YAML text)."""
    def make(tmp: Path) -> list[str]:
        path = tmp / "space.yaml"
        path.write_text(space if isinstance(space, str) else yaml.safe_dump(space))
        return ["search", str(path), "--out", str(tmp / "runs"), "-q", *(a.replace("{tmp}", str(tmp)) for a in extra)]
    return make


def _argv(*args: str):
    """argv with ``{tmp}`` replaced by the test's folder."""
    return lambda tmp: [a.replace("{tmp}", str(tmp)) for a in args]


def _with_files(files: dict[str, bytes], *args: str):
    """Write ``files`` (paths relative to tmp) first, then argv as in `_argv`."""
    def make(tmp: Path) -> list[str]:
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        return _argv(*args)(tmp)
    return make


def _search_with(files: dict[str, bytes], *extra: str):
    """`search` on the tiny valid space, with ``files`` written first (a bad storage file)."""
    def make(tmp: Path) -> list[str]:
        return _with_files(files, *_search(_space(), *extra)(tmp))(tmp)
    return make


def _with_run(*args: str):
    """A run folder that exists but holds no study (nothing to report or export)."""
    def make(tmp: Path) -> list[str]:
        (tmp / "runs" / "empty").mkdir(parents=True)
        return _argv(*args)(tmp)
    return make


CORRUPT_IDX = {f"fm/{name}": b"\x00\x00\x08\x03 definitely not an idx file" for name in (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
PRUNE = ["prune", "-p", "gmp", "-m", "cnn", "-d", "digits", "--width", "0.25", "--T", "2", "--subset", "100",
         "--epochs", "1", "--prune-epochs", "1", "--finetune-epochs", "1", "-q", "--out", "{tmp}/out"]

CASES = {
    # -- space files ---------------------------------------------------------------------------
    "yaml syntax": _space_case("study: bad\nmodel: {name: cnn\n  width: [1, 2\n"),
    "unknown top-level key": _space_case(_space(colour="blue"), "colour"),
    "unknown model key": _space_case(_space(model={"name": "cnn", "widht": 0.5}), "widht"),
    "wrong type": _space_case(_space(trials="many"), "trials"),
    "inverted range": _space_case(_space(pruners=_gmp(low=0.9, high=0.3)), "sparsity"),
    "empty categorical": _space_case(_space(pruners={"l1-filter": {
        "sparsity": {"type": "float", "low": 0.2, "high": 0.5},
        "scope": {"type": "categorical", "choices": []}}}), "scope"),
    "log low <= 0": _space_case(_space(pruners={"pq-rewiring": {
        "sparsity": 0.5, "eta": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}}), "eta"),
    "pq p above q": _space_case(_space(pruners={"pq-rewiring": {
        "sparsity": 0.5, "p": {"type": "float", "low": 0.8, "high": 0.9},
        "q": {"type": "float", "low": 0.2, "high": 0.5}}}), "p", "q"),
    "sparsity 1.2": _space_case(_space(pruners={"gmp": {"sparsity": 1.2}}), "sparsity"),
    "unknown pruner": _space_case(_space(pruners={"magic-pruner": {"sparsity": 0.5}}), "magic-pruner"),
    "unknown model": _space_case(_space(model={"name": "alexnet"}), "alexnet"),
    "unknown data set": _space_case(_space(data={"name": "mnist-ish"}), "mnist-ish"),
    "unknown objective": _space_case(_space(objectives=["accuracy", "latency"]), "latency"),
    "four objectives": _space_case(_space(objectives=["accuracy", "macs", "sops", "params"]), "objectives"),
    "missing space file": (_argv("search", "{tmp}/nope.yaml", "--out", "{tmp}/runs"), ["nope.yaml"]),
    "space is a list": (_search("- study\n- model\n"), ["space.yaml"]),
    # -- CLI flags -----------------------------------------------------------------------------
    "search --trials 0": (_search(_space(), "--trials", "0"), ["--trials"]),
    "search --workers 0": (_search(_space(), "--workers", "0"), ["--workers"]),
    "search --seed -1": (_search(_space(), "--seed", "-1"), ["--seed"]),
    "search --timeout -5": (_search(_space(), "--timeout", "-5"), ["--timeout"]),
    "search --device tpu": (_search(_space(), "--device", "tpu"), ["tpu"]),
    "search --backend nope": (_search(_space(), "--backend", "nope"), ["--backend"]),
    "train --epochs 0": (_argv("train", "-m", "cnn", "-d", "digits", "--epochs", "0", "--out", "{tmp}/o"),
                         ["--epochs"]),
    "train --width -1": (_argv("train", "-m", "cnn", "-d", "digits", "--width", "-1", "--epochs", "1",
                               "--out", "{tmp}/o"), ["width"]),
    "prune --sparsity 1.5": (_argv(*PRUNE, "--sparsity", "1.5"), ["--sparsity"]),
    "prune --set unknown=1": (_argv(*PRUNE, "--sparsity", "0.5", "--set", "unknown=1"), ["unknown"]),
    "prune --lr beyond float32": (_argv(*PRUNE, "--sparsity", "0.5", "--lr", "1e300"), ["learning rate (lr)", "float32"]),
    "prune --set without =": (_argv(*PRUNE, "--sparsity", "0.5", "--set", "end"), ["--set"]),
    "pq --set p=0.9 q=0.5": (_argv(*[a if a != "gmp" else "pq-rewiring" for a in PRUNE], "--sparsity", "0.5",
                                   "--set", "p=0.9", "--set", "q=0.5"), ["p", "q"]),
    # -- data and files ------------------------------------------------------------------------
    "corrupt idx": (_with_files(CORRUPT_IDX, "train", "-m", "cnn", "-d", "fashion-mnist", "--data-root",
                                "{tmp}/fm", "--epochs", "1", "--out", "{tmp}/o"), ["ubyte"]),
    "missing data root": (_argv("train", "-m", "cnn", "-d", "fashion-mnist", "--data-root", "{tmp}/no-fm",
                                "--epochs", "1", "--out", "{tmp}/o"), ["no-fm"]),
    "corrupt checkpoint": (_with_files({"dense.pt": b"PK\x03\x04 not a zip at all"},
                                       *PRUNE, "--sparsity", "0.5", "--from", "{tmp}/dense.pt"), ["dense.pt"]),
    "unreachable storage": (_search(_space(), "--storage",
                                    f"postgresql://snn:{SECRET}@127.0.0.1:1/snnprune"), ["storage", "127.0.0.1"]),
    "storage is a folder": (_search(_space(), "--storage", "{tmp}"), ["storage"]),
    "storage is not a journal": (_search_with({"notes.txt": b"garbage\n"}, "--storage", "{tmp}/notes.txt"),
                                 ["notes.txt", "journal"]),
    "storage is a sqlite file without sqlite:///": (
        _with_files({"old.db": b"SQLite format 3\x00" + bytes(100)}, "report", "--storage", "{tmp}/old.db",
                    "--study", "s"), ["sqlite:///"]),
    "worker on a binary file": (_with_files({"model.bin": bytes(range(256)) * 4}, "worker", "--storage",
                                            "{tmp}/model.bin", "--study", "s"), ["model.bin", "journal"]),
    # -- run folders ---------------------------------------------------------------------------
    "report missing run": (_argv("report", "{tmp}/runs/missing"), ["missing"]),
    "export missing run": (_argv("export", "{tmp}/runs/missing", "--pareto", "--out", "{tmp}/exp"), ["missing"]),
    "dashboard missing run": (_argv("dashboard", "{tmp}/runs/missing"), ["missing"]),
    "runs missing root": (_argv("runs", "{tmp}/no-runs"), ["no-runs"]),
    "runs of a storage URL": (_argv("runs", "sqlite:///{tmp}/x.db"), ["storage URL", "--storage"]),
    "dashboard on an empty sqlite file": (_with_files({"new.db": b""}, "dashboard", "sqlite:///{tmp}/new.db",
                                                      "--port", "0"), ["no Optuna study yet"]),
    "dashboard on a sqlite URL to garbage": (_with_files({"bad.db": b"garbage\n" * 20}, "dashboard",
                                                         "sqlite:///{tmp}/bad.db", "--port", "0"),
                                             ["not a SQLite database"]),
    "report empty run": (_with_run("report", "{tmp}/runs/empty"), ["empty"]),
    "worker missing storage": (_argv("worker", "--storage", "{tmp}/j.log", "--study", "s"), ["j.log"]),
    # -- folders that cannot be made (under a regular file) ------------------------------------
    "train --out under a file": (_with_files({"afile": b"x"}, "train", "-m", "cnn", "-d", "digits", "--width", "0.25",
                                             "--T", "2", "--subset", "100", "--epochs", "1", "-q",
                                             "--out", "{tmp}/afile/o"), ["--out", "afile"]),
    "prune --out under a file": (_with_files({"afile": b"x"}, *PRUNE, "--sparsity", "0.5", "--out", "{tmp}/afile/o"),
                                 ["--out", "afile"]),
    "search --out under a file": (_search_with({"afile": b"x"}, "--out", "{tmp}/afile/r"), ["--out", "afile"]),
    "journal storage under a file": (_search_with({"afile": b"x"}, "--storage", "{tmp}/afile/j.log"),
                                     ["storage", "afile"]),
    "sqlite storage under a file": (_search_with({"afile": b"x"}, "--storage", "sqlite:///{tmp}/afile/s.db"),
                                    ["storage", "afile"]),
    "dashboard --port -1": (_argv("dashboard", "{tmp}", "--port", "-1"), ["--port"]),
    "dashboard on a sqlite file without sqlite:///": (
        _with_files({"old.db": b"SQLite format 3\x00" + b"\xb2" * 100}, "dashboard", "{tmp}/old.db", "--port", "0"),
        ["sqlite:///"]),
    "runs on a file": (_with_files({"afile": b"x"}, "runs", "{tmp}/afile"), ["afile", "not a folder"]),
    "search --data-root that is not there": (
        _search(_space(data={"name": "cifar10", "root": "{tmp}/in-the-space"}), "--data-root", "{tmp}/elsewhere"),
        ["elsewhere"]),  # the option did not exist, though the data error told users to pass it
    "inspect --T other than the event data's frames": (
        _argv("inspect", "-m", "cnn", "-d", "cifar10-dvs", "--T", "4"), ["--T 4", "10 frames"]),
    "worker unknown study": (_with_files({"j.log": b""}, "worker", "--storage", "{tmp}/j.log", "--study", "ghost"),
                             ["ghost"]),
}

STORES = ("study.db", "results.db", "rungs.db", "*.log", "*.journal", "*.heartbeat")


def _one_error_line(name: str, argv: list[str], capsys) -> tuple[str, str]:
    """Run the CLI; check exit 2, exactly one ``snnprune: error:`` line on stderr and no
    traceback there; return that line and stdout."""
    code = main(argv)
    out, err = capsys.readouterr()
    print(name, "->", err.strip())
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}; stderr: {err[-1500:]}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr: {err[-1500:]}"
    assert lines[0].startswith("snnprune: error:"), lines[0]
    assert "Traceback" not in err
    return lines[0], out


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_no_store(name, tmp_path, capsys, monkeypatch):
    make_argv, fragments = CASES[name]
    argv = make_argv(tmp_path)
    monkeypatch.chdir(tmp_path)  # a default ./runs lands here, never in the repository
    before = {p for pattern in STORES for p in tmp_path.rglob(pattern)}

    line, out = _one_error_line(name, argv, capsys)
    assert "Traceback" not in out
    assert SECRET not in line and SECRET not in out  # stderr is that one line
    for fragment in fragments:
        assert fragment.lower() in line.lower(), f"{fragment!r} not named in: {line}"
    created = {p for pattern in STORES for p in tmp_path.rglob(pattern)} - before
    assert not created, f"stores created: {sorted(map(str, created))}"


def _recorded_run(tmp: Path) -> Path:
    """runs/tiny: two complete trials as the search records them (a dict-valued firing_rates
    metric, a config) and a failed one, written with Optuna alone (no training)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from snnprune.search._storage import default_storage, open_storage

    folder = tmp / "runs" / "tiny"
    folder.mkdir(parents=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="tiny", storage=open_storage(default_storage(folder), heartbeat=False),
                                directions=["maximize", "minimize"])
    for acc, macs in ((0.9, 6e4), (0.8, 5e4)):
        metrics = {"accuracy": acc, "test_accuracy": acc, "macs": macs, "sparsity": 0.5,
                   "firing_rates": {"features.2": 0.1}}
        study.add_trial(create_trial(values=[acc, macs], user_attrs={
            "metrics": metrics, "config": {"pruner": "gmp", "sparsity": 0.5, "hyperparameters": {"lr": 0.1}}}))
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "TrainingDiverged: nan"}))
    return folder


@pytest.mark.parametrize("axis", [["--x", "firing_rates"], ["--x", "config"], ["--x", "pruner"], ["--x", "hp"],
                                  ["--y", "fail_reason"]])
def test_report_axis_that_is_not_a_number_is_one_line_and_writes_no_report(axis, tmp_path, cli_error):
    # bug: exit 0 with no pareto.* and no hypervolume.*, and an earlier pareto.png left beside it
    folder = _recorded_run(tmp_path)
    line = cli_error(["report", str(folder), *axis])
    assert f"column '{axis[1]}' is not a number per trial" in line and "plottable: accuracy, " in line
    assert not [p.name for p in folder.iterdir() if p.suffix in (".png", ".html", ".md", ".csv")]


@pytest.mark.parametrize("selection", [["--best", "accuracy>=."], ["--best", "accuracy>=1.2.3"],
                                       ["--best", "accuracy>=e"], ["--best", "accuracy>=-"],
                                       ["--best", "accuracy>=0.5", "--minimize", "firing_rates"]])
def test_export_best_with_no_number_or_a_dict_metric_is_one_line(selection, tmp_path, cli_error):
    # bug: a ValueError / TypeError traceback, exit 1
    folder = _recorded_run(tmp_path)
    line = cli_error(["export", str(folder), "--out", str(tmp_path / "exp"), *selection])
    assert selection[-1] in line
    assert not (tmp_path / "exp").exists()


# -- core commands: width, seeds, checkpoints, diverging training -------------------------------
# Each case: (argv maker, fragments the line names, fragments it must not contain).

TRAIN = ["train", "-m", "cnn", "-d", "digits", "--width", "0.25", "--T", "2", "--subset", "100", "--epochs", "1",
         "-q", "--out", "{tmp}/o"]


def _with_model_file(kind: str, *args: str):
    """Write ``{tmp}/saved.pt`` first: a dense checkpoint of width 1.0 (``dense``) or a compact
    model (``compact``) of the digits cnn, then argv as in `_argv`."""
    def make(tmp: Path) -> list[str]:
        from snnprune.compaction import save_compact
        from snnprune.engine import save_checkpoint
        from snnprune.models import build_model

        net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2, width=1.0)
        (save_checkpoint if kind == "dense" else save_compact)(tmp / "saved.pt", net)
        return _argv(*args)(tmp)
    return make


def _with_folder(*args: str):
    def make(tmp: Path) -> list[str]:
        (tmp / "ckpt").mkdir()
        return _argv(*args)(tmp)
    return make


WEIGHTS_ONLY_ADVICE = ["weights_only", "PyTorch 2.6", "Re-running"]
CORE_CASES = {
    "inspect --width inf": (_argv("inspect", "-m", "cnn", "-d", "digits", "--width", "inf"), ["width", "inf"], []),
    "inspect --width 1e9": (_argv("inspect", "-m", "cnn", "-d", "digits", "--width", "1e9"), ["width", "16"], []),
    "train --width nan": (_argv(*TRAIN, "--width", "nan"), ["width", "nan"], []),
    "train --seed 2**63": (_argv(*TRAIN, "--seed", str(2**63)), ["--seed", str(2**63)], []),
    "train --lr nan": (_argv(*TRAIN, "--lr", "nan"), ["learning rate", "a finite number in (0, 3.4e38] (float32), got nan"], []),
    "prune --seed 2**32": (_argv(*PRUNE, "--sparsity", "0.5", "--seed", str(2**32)), ["--seed"], []),
    "--from a text file": (_with_files({"text.txt": b"hello\n"}, *PRUNE, "--sparsity", "0.5", "--from",
                                       "{tmp}/text.txt"), ["text.txt", "not a torch checkpoint"], []),
    "--from a YAML file": (_with_files({"y.yaml": b"a: 1\n"}, *PRUNE, "--sparsity", "0.5", "--from", "{tmp}/y.yaml"),
                           ["y.yaml", "not a torch checkpoint"], []),
    "--from a pickle": (_with_files({"obj.pkl": pickle.dumps(object, protocol=4)},
                                    *PRUNE, "--sparsity", "0.5", "--from", "{tmp}/obj.pkl"),
                        ["obj.pkl", "UnpicklingError"], WEIGHTS_ONLY_ADVICE),
    "--from a folder": (_with_folder(*PRUNE, "--sparsity", "0.5", "--from", "{tmp}/ckpt"),
                        ["ckpt", "is a folder"], ["does not exist"]),
    "--from another width": (_with_model_file("dense", *PRUNE, "--sparsity", "0.5", "--from", "{tmp}/saved.pt"),
                             ["saved.pt", "features.0.weight", "32x1x3x3", "8x1x3x3", "width=1.0", "width=0.25"], []),
    "--from a compact model": (_with_model_file("compact", *PRUNE, "--sparsity", "0.5", "--from", "{tmp}/saved.pt"),
                               ["saved.pt", "compact model", "load_compact"], []),
    "train diverges": (_argv(*TRAIN, "--lr", "1e38", "--json"), ["training diverged", "loss became", "lower --lr"], []),
    # int(1.5) kept one training sample, silently
    "train --subset 1.5": (_argv(*[a for a in TRAIN if a not in ("--subset", "100")], "--subset", "1.5"),
                           ["--subset", "whole", "1.5"], []),
    "prune --set twice": (_argv(*PRUNE, "--sparsity", "0.5", "--set", "prune_steps=2", "--set", "prune_steps=3"),
                          ["--set prune_steps", "twice"], []),  # the last one won, silently
    "train --out a file": (_with_files({"f.txt": b"x"}, *[a for a in TRAIN if a not in ("--out", "{tmp}/o")],
                                       "--out", "{tmp}/f.txt"), ["f.txt", "is a file, not a folder"], ["File exists"]),
    "prune fine-tuning diverges": (_argv(*PRUNE, "--sparsity", "0.5", "--epochs", "0", "--prune-epochs", "0",
                                         "--finetune-lr", "1e38", "--json"),
                                   ["training diverged", "--finetune-lr"], []),
}


@pytest.mark.parametrize("name", list(CORE_CASES))
def test_core_bad_input_is_one_line_exit_2(name, tmp_path, capsys, monkeypatch):
    make_argv, fragments, absent = CORE_CASES[name]
    argv = make_argv(tmp_path)
    monkeypatch.chdir(tmp_path)

    line, out = _one_error_line(name, argv, capsys)
    assert not out.strip(), out[-500:]
    for fragment in fragments:
        assert fragment.lower() in line.lower(), f"{fragment!r} not named in: {line}"
    for fragment in absent:
        assert fragment.lower() not in line.lower(), f"{fragment!r} shown in: {line}"


@pytest.mark.parametrize("extra", [["--timeout", "-1"], ["--timeout", "nan"], ["--device", "foo"]],
                         ids=["timeout-negative", "timeout-nan", "device-unknown"])
def test_a_refused_search_leaves_no_run_folder(extra, tmp_path, cli_error):
    """The bug: the CLI made runs/<study>/ before the search checked its flags, so each refusal
    left an empty run folder behind (which `runs` then listed)."""
    cli_error(_search(_space(), *extra)(tmp_path))
    assert not (tmp_path / "runs").exists()


def test_a_space_whose_data_folder_is_missing_leaves_no_run_folder(tmp_path, cli_error):
    space = {**_space(), "data": {"name": "cifar10", "root": str(tmp_path / "nowhere")}}
    line = cli_error(_search(space)(tmp_path))
    assert "nowhere" in line and not (tmp_path / "runs").exists()
