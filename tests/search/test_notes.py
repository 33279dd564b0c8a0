"""The one-line notes before a search: a GPU space without CUDA, a study resumed with other settings."""

from __future__ import annotations

import optuna
import pytest

from snnprune.search._notes import device_note, resume_note, space_changes
from snnprune.search._optuna import open_study
from snnprune.spaces import parse_space


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the note is about machines without CUDA")
def test_a_gpu_space_on_a_cpu_machine_gets_one_note_and_no_error(tiny_space):
    gpu_space = tiny_space(resources={"cpu": 1, "gpu": 0.5})
    note = device_note(gpu_space, "auto")
    assert note is not None and "0.5 GPU" in note and "--device cpu" in note
    assert device_note(gpu_space, "cpu") is None  # the user chose the CPU
    assert device_note(tiny_space(), "auto") is None  # no GPU asked for
    with pytest.raises(Exception, match="tpu"):
        device_note(tiny_space(), "tpu")


def test_resuming_with_other_settings_names_what_moved(tmp_path, tiny_space, space_dict):
    first = tiny_space(trials=2)
    storage = str(tmp_path / "j.log")
    handle = open_study(first, storage)
    assert resume_note(handle, first) is None  # a new study: nothing to compare with
    handle.add_trial(optuna.trial.create_trial(values=[0.9, 1000.0]))

    longer = space_dict(trials=50)  # only how long the search runs, and where the data lives
    longer["data"]["root"] = str(tmp_path / "elsewhere")
    assert resume_note(open_study(parse_space(longer, source="<t>"), storage), first) is None

    moved = space_dict(trials=2)
    moved["budget"]["finetune_epochs"] = 5
    moved["seed"] = 3
    moved_space = parse_space(moved, source="<t>")
    note = resume_note(open_study(moved_space, storage), moved_space)
    assert note is not None and "'t'" in note
    assert "budget.finetune_epochs: 2 -> 5" in note and "seed: 0 -> 3" in note
    assert len(space_changes(first.to_dict(), moved_space, limit=1)) == 2  # one shown, "and 1 more"
    assert space_changes(None, moved_space) == []  # a study made by hand holds no space


@pytest.mark.parametrize("backend", ["optuna", "worker", "ray"])
def test_a_missing_data_folder_is_refused_before_a_study_is_created(tmp_path, space_dict, backend):
    """The bug: every trial failed on the missing folder, one after the other, and the search
    exited 0 with a study of failed trials."""
    from snnprune.errors import UserError
    from snnprune.search import optimize, ray_optimize, run_worker
    from snnprune.spaces import parse_space

    space = parse_space({**space_dict(), "data": {"name": "cifar10", "root": str(tmp_path / "nowhere")}},
                        source="<test>")
    run_dir = tmp_path / "run"
    with pytest.raises(UserError, match="cifar10: data root .*nowhere is not a folder"):
        if backend == "optuna":
            optimize(space, run_dir=run_dir, trials=1, quiet=True)
        elif backend == "worker":
            run_worker(space, str(tmp_path / "journal.log"), "t", run_dir, trials=1, total=1, timeout=None)
        else:
            ray_optimize(space, run_dir=run_dir, trials=1, quiet=True)
    assert not (run_dir / "study.db").exists() and not (tmp_path / "journal.log").exists()


def test_quiet_and_json_searches_keep_the_resume_note(tmp_path, tiny_space, space_dict, capsys):
    """`-q` and `--json` dropped the note (printed only when not quiet): a front mixing two
    budgets came without a word. Now it is on stderr and in the summary's notes."""
    import json

    import yaml

    from snnprune.cli._app import main
    from snnprune.search import optimize

    optimize(tiny_space(trials=1), run_dir=tmp_path / "t", quiet=True)
    capsys.readouterr()
    moved = space_dict(trials=1)
    moved["budget"]["lr"] = 0.05
    (tmp_path / "moved.yaml").write_text(yaml.safe_dump(moved))
    code = main(["search", str(tmp_path / "moved.yaml"), "--out", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    summary = json.loads(out)
    # the resume note, and (the study has its 1 trial already) that nothing ran
    assert len(summary["notes"]) == 2 and "budget.lr: 0.1 -> 0.05" in summary["notes"][0]
    assert "nothing to run" in summary["notes"][1]
    assert "budget.lr: 0.1 -> 0.05" in err
    assert summary["storage"] == f"sqlite:///{(tmp_path / 't' / 'study.db').resolve().as_posix()}"  # absolute
