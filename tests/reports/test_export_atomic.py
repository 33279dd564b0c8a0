"""`export` finds a run folder's own artifacts and writes all or nothing.

The study is recorded with Optuna alone and real artifact files (a tiny cnn's masks and sparse
model, as the runner saves them), so nothing trains.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import torch

from snnprune.cli._app import main
from snnprune.compaction import save_sparse
from snnprune.engine import atomic_torch_save
from snnprune.models import build_model, seeded
from snnprune.search._storage import default_storage, open_storage

CONFIG = {"pruner": "gmp", "sparsity": 0.5, "hyperparameters": {}, "model": {"name": "cnn"},
          "data": {"name": "digits"}, "seed": 0}


def _artifacts(folder: Path) -> dict[str, str]:
    """A tiny cnn pruned by half, saved as the runner saves a trial (masks.pt, model_sparse.pt)."""
    with seeded(0):
        net = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2, width=0.25)
    masks = {name: {"weight": (torch.rand_like(m.weight) > 0.5).float()}
             for name, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    return {"masks": str(atomic_torch_save(masks, folder / "masks.pt")),
            "model": str(save_sparse(folder / "model_sparse.pt", net, masks))}


def _study_with_artifacts(run: Path, recorded: callable, trials: int = 2) -> None:
    """runs/<run> holding study "ex" whose trial N's files are in trials/0000N/ and whose
    recorded artifact paths are ``recorded(run, N)``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="ex", storage=open_storage(default_storage(run), heartbeat=False),
                                directions=["maximize", "minimize"])
    for n in range(trials):
        _artifacts(run / "trials" / f"{n:05d}")
        trial = study.ask()
        trial.set_user_attr("config", {**CONFIG, "trial": n})
        trial.set_user_attr("metrics", {"accuracy": 0.9 - n / 10, "test_accuracy": 0.9, "macs": 100.0 + n,
                                        "sparsity": 0.5})
        trial.set_user_attr("artifacts", recorded(run, n))
        study.tell(trial, [0.9 - n / 10, 100.0 - n])


def test_a_run_folder_exports_its_own_files_from_any_directory(tmp_path, monkeypatch, capsys):
    """The bug: the search stored paths relative to its working directory ("runs/two/trials/
    00000/masks.pt"), so export from elsewhere said the artifacts were not on this machine, and
    a copied run folder exported the original's files."""
    monkeypatch.chdir(tmp_path)
    _study_with_artifacts(Path("runs/two"), lambda run, n: {
        "masks": f"runs/two/trials/{n:05d}/masks.pt", "model": f"runs/two/trials/{n:05d}/model_sparse.pt"})
    shutil.copytree("runs/two", "archive/two")
    (tmp_path / "archive" / "two" / "trials" / "00000" / "masks.pt").write_bytes(
        (tmp_path / "runs" / "two" / "trials" / "00001" / "masks.pt").read_bytes())  # tell the copies apart
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["export", str(tmp_path / "archive" / "two"), "--trial", "0", "--out", "ex"]) == 0, \
        capsys.readouterr().err
    exported = (elsewhere / "ex" / "trial-00000" / "masks.pt").read_bytes()
    assert exported == (tmp_path / "archive" / "two" / "trials" / "00000" / "masks.pt").read_bytes()
    assert exported != (tmp_path / "runs" / "two" / "trials" / "00000" / "masks.pt").read_bytes()


def _absolute(run: Path, n: int) -> dict[str, str]:
    folder = (run / "trials" / f"{n:05d}").resolve()
    return {"masks": str(folder / "masks.pt"), "model": str(folder / "model_sparse.pt")}


def test_a_failure_halfway_writes_no_export(tmp_path, cli_error):
    """The bug: --pareto wrote trial 0's folder, then stopped at trial 1's missing model; the
    same command then refused, because trial-00000 existed."""
    run = tmp_path / "run"
    _study_with_artifacts(run, _absolute)
    (run / "trials" / "00001" / "model_sparse.pt").unlink()
    assert "trial 1" in cli_error(["export", str(run), "--pareto", "--out", str(tmp_path / "ex")])
    assert not (tmp_path / "ex").exists() or not any((tmp_path / "ex").iterdir())


def test_force_keeps_a_good_export_when_the_new_one_fails(tmp_path, capsys, cli_error):
    """The bug: --force deleted the complete export first, then failed on a damaged model and
    left a folder with config.yaml and masks.pt only."""
    run = tmp_path / "run"
    _study_with_artifacts(run, _absolute)
    out = tmp_path / "ex"
    assert main(["export", str(run), "--trial", "1", "--out", str(out)]) == 0
    good = sorted(p.name for p in (out / "trial-00001").iterdir())
    (run / "trials" / "00001" / "model_sparse.pt").write_bytes(b"damaged")
    capsys.readouterr()
    cli_error(["export", str(run), "--trial", "1", "--out", str(out), "--force"])
    assert sorted(p.name for p in (out / "trial-00001").iterdir()) == good
    assert sorted(p.name for p in out.iterdir()) == ["trial-00001"]  # no staging folder left


def test_force_replaces_a_plain_file_in_the_way(tmp_path, cli_error):
    """The bug: shutil.rmtree on a file, a NotADirectoryError traceback."""
    run = tmp_path / "run"
    _study_with_artifacts(run, _absolute, trials=1)
    out = tmp_path / "ex"
    out.mkdir()
    (out / "trial-00000").write_text("in the way")
    assert "--force" in cli_error(["export", str(run), "--trial", "0", "--out", str(out)])
    assert main(["export", str(run), "--trial", "0", "--out", str(out), "--force"]) == 0
    assert (out / "trial-00000" / "model_compact.pt").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["trial-00000"]
