"""Re-apply an exported trial: check its ``config.yaml``, then re-run it to reproduce its model.

The runner is a pure function of the config and its seed, so the same machine gives the same
masks, MACs and sparsity as the exported trial.

A config is often edited by hand, so `load_config` checks every key before anything runs or is
written, and fails with the space loader's one-line shape, ``<file>: <dotted.key>: <what is
allowed>``. The ``model``, ``data`` and ``budget`` blocks are exactly a search space's blocks
(an exported trial's config is built from its space's `ModelSpec`, `DataSpec` and `Budget`), so
they go through the space loader's own readers: one schema, one set of messages, and the
options `build_model` accepts are the ones a space may set.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnprune.errors import UserError
from snnprune.spaces import check_sample
from snnprune.spaces._common import (
    check_keys,
    fail,
    join,
    one_line,
    read_choice,
    read_float,
    read_int,
    read_mapping,
    read_str,
)
from snnprune.spaces._parse import read_budget, read_data, read_model, read_objectives, read_yaml
from snnprune.spaces._pruners import check_value, sparsity_param

from ._export import as_number

if TYPE_CHECKING:
    from snnprune.pruners import PrunerSpec
    from snnprune.search import TrialConfig

__all__ = ["CONFIG_KEYS", "apply_config", "load_config", "parse_config", "resolve_config"]

#: Keys of a config.yaml, as `export` writes them; REQUIRED have no sensible default.
CONFIG_KEYS = ("pruner", "sparsity", "hyperparameters", "model", "data", "budget", "seed", "objectives", "study",
               "trial")
REQUIRED = ("pruner", "sparsity", "model", "data", "budget")
DEFAULT_OBJECTIVES = ("accuracy", "macs")


def resolve_config(path: str | Path) -> Path:
    """The config file to read: ``path`` itself, or the ``config.yaml`` in a trial's folder
    (what `export` prints is the folder, so users pass either)."""
    path = Path(path)
    if path.is_dir():
        inside = path / "config.yaml"
        if not inside.is_file():
            raise UserError(f"config {path} is a folder with no config.yaml in it; give the config.yaml "
                            "of an exported trial (or its folder)")
        return inside
    if not path.exists():
        raise UserError(f"config {path} does not exist")
    return path


def load_config(path: str | Path) -> TrialConfig:
    """Read and check a config.yaml (or a trial folder holding one) without running anything."""
    path = resolve_config(path)
    return parse_config(read_yaml(path), source=str(path))


def parse_config(payload: Any, source: str = "<dict>") -> TrialConfig:
    """Check every key of a parsed config and return the `TrialConfig` it describes.

    Unknown keys are refused rather than dropped, so a typo never silently runs the default.
    """
    from snnprune.search import TrialConfig

    raw = _top_level(payload, source)
    spec = _pruner(raw["pruner"], source)
    sparsity = _sparsity(raw["sparsity"], source)
    return TrialConfig(
        pruner=spec.name,
        sparsity=sparsity,
        hyperparameters=_hyperparameters(raw.get("hyperparameters"), spec, sparsity, source),
        model=read_model(raw["model"], source).to_dict(),
        data=read_data(raw["data"], source).to_dict(),
        budget=dataclasses.asdict(read_budget(raw["budget"], source)),
        seed=read_int(raw.get("seed", 0), source, "seed", low=0, high=2**32 - 1),
        objectives=_objective_names(raw.get("objectives"), source),
        study="" if raw.get("study") is None else read_str(raw["study"], source, "study"),
        trial=-1 if raw.get("trial") is None else read_int(raw["trial"], source, "trial", low=0),
    )


def _top_level(payload: Any, source: str) -> Mapping[str, Any]:
    """The document as a mapping with only known keys and every required one."""
    if payload is None:
        fail(source, "", f"the file is empty; a config needs the keys {', '.join(REQUIRED)}")
    if not isinstance(payload, Mapping):
        fail(source, "", f"a config must be a mapping with the keys {', '.join(REQUIRED)}; "
                         f"got {type(payload).__name__}")
    raw = read_mapping(payload, source, "")
    check_keys(raw, CONFIG_KEYS, source, "")
    for key in REQUIRED:
        if raw.get(key) is None:
            fail(source, key, f"missing; a config needs the keys {', '.join(REQUIRED)}")
    return raw


def _pruner(raw: Any, source: str) -> PrunerSpec:
    from snnprune.pruners import get_pruner, list_pruners

    return get_pruner(read_choice(raw, [s.name for s in list_pruners()], source, "pruner", "pruner"))


def _sparsity(raw: Any, source: str) -> float:
    """The target sparsity, in the range every pruner's search space allows."""
    hp = sparsity_param()
    return read_float(raw, source, "sparsity", low=hp.low, high=hp.high, low_open=hp.low_exclusive,
                      high_open=hp.high_exclusive)


def _hyperparameters(raw: Any, spec: PrunerSpec, sparsity: float, source: str) -> dict[str, Any]:
    """Each value checked against the registry (as a space's fixed value is), then the
    pruner's cross-constraints; only the given keys are kept, as the search stored them."""
    block = read_mapping(raw, source, "hyperparameters")
    known = {hp.name: hp for hp in spec.hyperparams}
    values: dict[str, Any] = {}
    for name, value in block.items():
        key = join("hyperparameters", name)
        if name not in known:
            fail(source, key, f"pruner {spec.name} has no hyperparameter {name!r}; "
                              f"it has: {', '.join(known) or 'none'}")
        values[name] = check_value(known[name], value, spec.name, source, key)
    try:
        check_sample(spec.name, {"sparsity": sparsity, **values})
    except UserError as err:
        fail(source, "hyperparameters", one_line(err))
    return values


def _objective_names(raw: Any, source: str) -> tuple[str, ...]:
    if raw is None:
        return DEFAULT_OBJECTIVES
    return tuple(o.name for o in read_objectives(raw, source))


def apply_config(path: str | Path, *, out: str | Path | None = None, device: str = "auto",
                 quiet: bool = True) -> dict[str, Any]:
    """Re-run an exported (or hand-written) config.yaml; compare with its metrics.json if present.

    The config is checked in full before anything is trained or written.
    """
    from snnprune.search import DenseCache, TrialRuntime, run_trial

    path = resolve_config(path)
    config = load_config(path)
    before = _reference(path.parent / "metrics.json")  # checked before the run, not after it
    run_dir = Path(out) if out else path.parent / "applied"
    _refuse_search_folder(run_dir)
    runtime = TrialRuntime(run_dir=run_dir, cache=DenseCache(run_dir / ".cache"), device=device, quiet=quiet)
    result = run_trial(config, runtime)
    report: dict[str, Any] = {"config": str(path), "run_dir": str(run_dir), "metrics": result.metrics,
                              "artifacts": result.artifacts}
    if before is not None:
        report.update(_compare(before, result.metrics))
    return report


_SEARCH_MARKERS = ("study.json", "study.db", "journal.log")


def _refuse_search_folder(run_dir: Path) -> None:
    """A re-run writes ``trials/NNNNN/`` under its folder: in a search's run folder that would
    replace the trial's own masks and model, which `export` then pairs with its old metrics."""
    marker = next((m for m in _SEARCH_MARKERS if (run_dir / m).exists()), None)
    if marker is not None:
        raise UserError(f"--out {run_dir} is a search's run folder (it holds {marker}); a re-run there "
                        "would replace that search's trial artifacts: choose another folder")


def _reference(path: Path) -> dict[str, Any] | None:
    """The ``metrics`` an export recorded beside its config (None without metrics.json)."""
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: not a metrics file written by `snnprune export` "
                        f"({one_line(exc)}); fix or remove it to re-run without the comparison") from None
    metrics = payload.get("metrics") if isinstance(payload, dict) else None
    if not isinstance(metrics, dict):
        raise UserError(f"{path}: not a metrics file written by `snnprune export` (no 'metrics' mapping); "
                        "fix or remove it to re-run without the comparison")
    return metrics


def _compare(before: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What the exported trial measured beside what the re-run did."""
    out: dict[str, Any] = {
        "reference": {k: before.get(k) for k in ("accuracy", "test_accuracy", "macs", "sparsity")},
        "same_macs": before.get("macs") == metrics.get("macs"),
        "same_sparsity": before.get("sparsity") == metrics.get("sparsity"),
    }
    reference = as_number(before.get("test_accuracy"))
    if reference is not None:
        out["accuracy_delta"] = float(metrics["test_accuracy"]) - reference
    return out
