"""The spaces bench/search.py runs: the demo space (parts 1, 3, 4) and part 2's variants."""

from __future__ import annotations

from typing import Any

from snnprune.spaces import SearchSpace, load_space, parse_space


def base_space(quick: bool) -> dict[str, Any]:
    """The demo space (or a tiny digits space for --quick), rungs off, as plain data."""
    raw = load_space("demo").to_dict()
    if quick:
        raw["model"].update(width=0.25, T=2)
        raw["data"]["subset"] = 400
        raw["budget"].update(pretrain_epochs=1, prune_epochs=1, finetune_epochs=2)
    raw["rungs"] = {"epochs": []}
    return raw


#: Part 2's data sets (``--mf-data``). Digits is the demo's own, but its validation split is
#: about 145 images and the demo's networks score 97-99 % on it, so the accuracy a rung sees moves
#: in steps of 0.7 points inside a narrow band and tells few trials apart. Fashion-MNIST (a 2000-
#: image subset, 400 validation images, a half-width T = 2 network to keep CPU time near the
#: digits run's) is the unsaturated case: accuracy near 80 %, in steps of 0.25 points.
MF_DATA: dict[str, dict[str, Any]] = {
    "digits": {},
    "fashion-mnist": {"data": {"name": "fashion-mnist", "root": None, "subset": 2000, "val_fraction": 0.2},
                      "model": {"width": 0.5, "T": 2}},
}


#: Part 2's spaces (``--mf-space``). ``demo`` is the 12-trial first search: three methods that all
#: do well on digits, so its front is found within the first few trials and a stopping rule has
#: little to save (see the page). ``compare`` is the product's large search (every method, 120
#: trials by default): many methods and hyperparameters that do badly, the case the rungs exist for.
MF_SPACES = ("demo", "compare")


def mf_space(raw: dict[str, Any], data: str, quick: bool, space: str = "demo") -> dict[str, Any]:
    """Part 2's space: ``--mf-space`` (demo: ``raw`` itself) on ``--mf-data`` (the model's other options kept)."""
    if space != "demo":
        raw = load_space(space).to_dict()
        raw["rungs"] = {"epochs": []}
        if quick:
            raw["model"].update(width=0.25, T=2)
            raw["data"]["subset"] = 400
            raw["budget"].update(pretrain_epochs=1, prune_epochs=1, finetune_epochs=2)
    over = MF_DATA[data]
    if not over:
        return raw
    out = {**raw, "data": dict(over["data"]), "model": {**raw["model"], **over["model"]}}
    if quick:
        out["data"]["subset"] = 400
        out["model"].update(width=0.25, T=2)
    return out


def make_space(raw: dict[str, Any], **over: Any) -> SearchSpace:
    raw = {**raw, **over}
    return parse_space(raw, source="<bench/search.py>")
