"""Notes printed once before a search starts: what the user asked for that will not happen as written.

Neither is an error: a GPU space on a machine without CUDA still runs (on the CPU), and a study
resumed with other settings still resumes. Each is one line on stderr, so that a slow search or
a front mixing two budgets does not come as a surprise, and is in the summary's ``notes`` (what
``--json`` prints). ``-q`` drops the bars, not these lines.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import optuna

from snnprune.spaces import SearchSpace

__all__ = ["check_data", "device_note", "resume_note", "say", "space_changes"]


#: Keys whose change does not change what a trial computes: how long to search, and where the data lives.
_RESUME_IGNORED = ("trials", "timeout", "study", "data.root")


def say(notes: list[str], note: str | None) -> None:
    """Print a note (if any) on stderr and keep it for the summary."""
    if note:
        notes.append(note)
        print(f"snnprune: note: {note}", file=sys.stderr)


def space_changes(stored: dict[str, Any] | None, space: SearchSpace, *, limit: int = 4) -> list[str]:
    """``key: old -> new`` for each setting of ``space`` that differs from the one a study was run with.

    A resumed study puts old and new trials in one front; when the budget, the data, the model or
    the seed moved, the two are not comparable (a different dense network, other epochs), so the
    search says which settings moved. Search length and the data's folder are not compared.
    """
    if not isinstance(stored, dict):
        return []
    if isinstance(stored.get("rungs"), dict) and "mode" not in stored["rungs"]:
        # a study from before rung modes: its trials were stopped, never paused
        stored = {**stored, "rungs": {**stored["rungs"], "mode": "stop"}}
    if isinstance(stored.get("rungs"), dict) and "margin" not in stored["rungs"]:
        # a study from before accuracy margins: plain dominance
        stored = {**stored, "rungs": {**stored["rungs"], "margin": 0}}
    new = json.loads(json.dumps(space.to_dict(), default=str))
    old_flat, new_flat = _flatten(stored), _flatten(new)
    keys = sorted(k for k in old_flat.keys() | new_flat.keys()
                  if old_flat.get(k) != new_flat.get(k)
                  and not any(k == i or k.startswith(i + ".") for i in _RESUME_IGNORED))
    shown = [f"{k}: {old_flat.get(k, '(unset)')!s} -> {new_flat.get(k, '(unset)')!s}" for k in keys[:limit]]
    if len(keys) > limit:
        shown.append(f"and {len(keys) - limit} more")
    return shown


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def resume_note(handle: optuna.Study, space: SearchSpace) -> str | None:
    """One line when ``handle`` already holds trials run with other settings than ``space``."""
    changes = space_changes(handle.user_attrs.get("space"), space)
    if not changes or not handle.get_trials(deepcopy=False):
        return None
    return (f"study {handle.study_name!r} resumes with other settings than its earlier trials: "
            f"{'; '.join(changes)}; old and new trials share one front")


def goal_met_note(study: str, finished: int, total: int) -> str | None:
    """One line when the study already has the trials asked for, so a re-run that runs nothing
    says so (it printed the old summary, as if it had just run)."""
    if finished < total:
        return None
    return (f"study {study!r} already has {finished} finished trial(s) and --trials asks for {total} in all: "
            f"nothing to run; give --trials above {finished} to add more")


def device_note(space: SearchSpace, device: str) -> str | None:
    """What to tell a user whose space asks for a GPU that ``--device auto`` will not find.

    The Ray backend refuses such a space (a cluster would wait for a GPU forever); one local
    process runs its trials anyway, on the CPU, and says so once rather than being silently slow.
    """
    from snnprune.engine import resolve_device

    resolved = resolve_device(device)
    if space.resources.gpu > 0 and device in (None, "auto") and resolved.type == "cpu":
        return (f"the space asks for {space.resources.gpu:g} GPU per trial but this machine has no CUDA GPU; "
                "trials run on the CPU (--device cpu says so and hides this note)")
    return None


def check_data(space: SearchSpace) -> None:
    """Refuse a space whose data folder is not on this machine, before a study is created.

    Every trial would fail the same way, one after the other, and leave a study of failed trials;
    the same one line `load_dataset` gives is more use. Only the folder is checked (reading the
    data set is the trials' work); the data sets without a folder (digits) pass.
    """
    from snnprune.data import dataset_info
    from snnprune.data._info import resolve_root

    info = dataset_info(space.data.name)
    if info.name != "digits":
        resolve_root(info, space.data.root)
