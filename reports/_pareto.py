"""Pareto fronts and hypervolume over plain numbers: no Optuna, no pandas, no plotting.

Everything here works on sequences of floats plus one direction per objective
(``"maximize"`` or ``"minimize"``; Optuna's ``StudyDirection`` works too), so the same code
serves a live study, a CSV read back months later, and property tests against brute force.
Internally every objective is turned into a minimisation by negating the maximised ones.

Conventions, chosen to agree with Optuna's ``study.best_trials``:

- ``p`` dominates ``q`` when ``p`` is no worse in every objective and better in at least one;
  two equal points do not dominate each other, so duplicates on the front are all kept.
- A hypervolume counts the region dominated by the points and bounded by a reference point.
  A point that is not strictly better than the reference in every objective adds nothing.

Normalisation: with ``normalize=True`` each objective is rescaled to ``(v - ideal) /
(reference - ideal)`` (in the minimisation frame), where ``ideal`` is the best value of the
points given (or the ``ideal`` argument). The box [ideal, reference] becomes the unit cube and
the hypervolume a fraction in [0, 1], so an axis of 1e8 MACs no longer dwarfs an accuracy
axis of 0..1, and fronts of one study can be read at a glance.

>>> hypervolume([(1, 3), (2, 2), (3, 1)], reference=(4, 4), directions=["minimize", "minimize"])
6.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from snnprune.errors import UserError

__all__ = ["HypervolumeSummary", "default_reference", "feasible", "hypervolume", "hypervolume_history", "pareto_front",
           "pareto_mask", "study_hypervolume", "to_minimize"]

Point = Sequence[float]
Direction = Any  # "maximize" | "minimize" | optuna.study.StudyDirection


def _signs(directions: Sequence[Direction], dim: int | None = None) -> np.ndarray:
    """+1 for a minimised objective, -1 for a maximised one (checks names and count)."""
    signs = []
    for d in directions:
        name = str(getattr(d, "name", d)).lower()
        if name not in ("maximize", "minimize"):
            raise UserError(f"direction must be 'maximize' or 'minimize', got {d!r}")
        signs.append(-1.0 if name == "maximize" else 1.0)
    if not signs:
        raise UserError("at least one objective direction is needed")
    if dim is not None and dim != len(signs):
        raise UserError(f"points have {dim} objectives but {len(signs)} directions were given")
    return np.asarray(signs, dtype=float)


def to_minimize(points: Sequence[Point], directions: Sequence[Direction]) -> np.ndarray:
    """Points as an (n, d) float array in which every objective is minimised.

    Non-finite values cannot be ranked, so NaN is refused; +-inf is allowed and compares as usual.
    """
    signs = _signs(directions)
    if not len(points):
        return np.empty((0, len(signs)))
    try:
        arr = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise UserError("points must be numbers, each with one value per objective") from None
    if arr.ndim != 2 or arr.shape[1] != len(signs):
        raise UserError(f"points have shape {arr.shape}, expected (n, {len(signs)})")
    if np.isnan(arr).any():
        raise UserError("objective values contain NaN: drop unfinished trials before ranking")
    return arr * signs


def _nondominated(arr: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of a minimisation array, in blocks (memory O(n))."""
    n = len(arr)
    keep = np.ones(n, dtype=bool)
    for start in range(0, n, 256):
        block = arr[start:start + 256, None, :]  # (b, 1, d) against (1, n, d)
        no_worse = (arr[None, :, :] <= block).all(axis=2)
        better = (arr[None, :, :] < block).any(axis=2)
        keep[start:start + 256] = ~(no_worse & better).any(axis=1)
    return keep


def pareto_mask(points: Sequence[Point], directions: Sequence[Direction]) -> list[bool]:
    """Which points are non-dominated (equal points are all kept, as Optuna does).

    >>> pareto_mask([(0.9, 10), (0.8, 20), (0.9, 10)], ["maximize", "minimize"])
    [True, False, True]
    """
    arr = to_minimize(points, directions)
    return [bool(v) for v in _nondominated(arr)] if len(arr) else []


def pareto_front(records: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                 directions: Sequence[Direction]) -> list[Mapping[str, Any]]:
    """The non-dominated records, in input order; records lacking a finite objective are skipped.

    Records are plain dicts (a trial's metrics), so a front can be taken over any objectives,
    not only the ones the study optimised.
    """
    _signs(directions, len(objectives))
    usable = [r for r in records if all(_finite(r.get(name)) for name in objectives)]
    if not usable:
        return []
    mask = pareto_mask([[float(r[name]) for name in objectives] for r in usable], directions)
    return [r for r, keep in zip(usable, mask) if keep]


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def default_reference(points: Sequence[Point], directions: Sequence[Direction],
                      margin: float = 0.1) -> list[float]:
    """The nadir (worst value of each objective over the points) moved outward by ``margin``
    of that objective's range, so the extreme points of the front still add volume.

    Where every point has the same value the range is 0; the step is then ``margin * max(|v|, 1)``.
    The reference depends on the points: give one explicitly to compare studies.

    >>> default_reference([(0.5, 100), (0.9, 300)], ["maximize", "minimize"])
    [0.46, 320.0]
    """
    if margin < 0:
        raise UserError(f"margin must be >= 0, got {margin}")
    signs = _signs(directions)
    arr = to_minimize(points, directions)
    arr = arr[np.isfinite(arr).all(axis=1)]
    if not len(arr):
        raise UserError("no finite points to place a hypervolume reference point from")
    nadir, ideal = arr.max(axis=0), arr.min(axis=0)
    span = nadir - ideal
    step = np.where(span > 0, margin * span, margin * np.maximum(np.abs(nadir), 1.0))
    return [round(float(v), 12) for v in (nadir + step) * signs]


def _hv_min(arr: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of minimisation points strictly inside the reference box.

    2-D by sorting and a sweep; more objectives by slicing along the last one (points sorted
    by it; each slab's cross-section is the (d-1)-D hypervolume of the points below it).
    """
    arr = arr[(arr < ref).all(axis=1)]
    if not len(arr):
        return 0.0
    arr = np.unique(arr[_nondominated(arr)], axis=0)
    d = arr.shape[1]
    if d == 1:
        return float(ref[0] - arr[:, 0].min())
    if d == 2:
        order = np.lexsort((arr[:, 1], arr[:, 0]))  # by x, then y
        volume, y_best = 0.0, float(ref[1])
        for x, y in arr[order]:
            if y < y_best:
                volume += (ref[0] - x) * (y_best - y)
                y_best = y
        return float(volume)
    order = np.argsort(arr[:, -1], kind="stable")
    arr = arr[order]
    volume = 0.0
    for i in range(len(arr)):
        top = arr[i + 1, -1] if i + 1 < len(arr) else ref[-1]
        if top > arr[i, -1]:
            volume += _hv_min(arr[: i + 1, :-1], ref[:-1]) * (top - arr[i, -1])
    return float(volume)


def _scaled(arr: np.ndarray, ref: np.ndarray, ideal: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rescale so [ideal, reference] is the unit box (ideal: best of the points if not given)."""
    low = ideal if ideal is not None else (arr.min(axis=0) if len(arr) else ref)
    span = ref - low
    span = np.where(span > 0, span, 1.0)  # no point beats such a reference anyway
    return (arr - low) / span, (ref - low) / span


def hypervolume(points: Sequence[Point], reference: Point, directions: Sequence[Direction], *,
                normalize: bool = False, ideal: Point | None = None) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (exact; see module docstring).

    ``normalize=True`` divides each objective by ``reference - ideal`` first (``ideal``: the best
    value of the points unless given), so the result is a fraction of that box.
    """
    signs = _signs(directions)
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if len(ref) != len(signs) or not np.isfinite(ref).all():
        raise UserError(f"reference point must be {len(signs)} finite numbers, got {list(reference)}")
    ref = ref * signs
    arr = to_minimize(points, directions)
    if normalize:
        low = None if ideal is None else np.asarray(ideal, dtype=float).reshape(-1) * signs
        arr, ref = _scaled(arr, ref, low)
    return _hv_min(arr, ref)


def hypervolume_history(points_in_trial_order: Sequence[Point | None], reference: Point,
                        directions: Sequence[Direction], *, normalize: bool = False) -> list[float]:
    """Hypervolume of the first k points, for every k: how the search's front grew.

    ``None`` entries (failed or pruned trials) keep the list aligned with trial numbers and add
    nothing. With ``normalize=True`` one ideal point (the best over all points) scales every
    step, so the curve is non-decreasing like the raw one. Only a point that enters the front
    triggers a recomputation.
    """
    signs = _signs(directions)
    present = [p for p in points_in_trial_order if p is not None]
    ideal = None
    if normalize and present:
        ideal = list(to_minimize(present, directions).min(axis=0) * signs)
    front: list[Point] = []
    current, out = 0.0, []
    for point in points_in_trial_order:
        if point is not None:
            candidate = [*front, point]
            mask = pareto_mask(candidate, directions)
            if mask[-1]:
                front = [p for p, keep in zip(candidate, mask) if keep]
                current = hypervolume(front, reference, directions, normalize=normalize, ideal=ideal)
        out.append(current)
    return out


def feasible(record: Mapping[str, Any]) -> bool:
    """False only for a record marked ``feasible`` 0 (the results store's column); a record
    without the mark (no constraints, a hand-made frame, NULL) is feasible."""
    mark = record.get("feasible")
    return not (_finite(mark) and float(mark) == 0)


@dataclass(frozen=True)
class HypervolumeSummary:
    """A study's hypervolume, its reference point and how it grew, trial by trial."""

    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    reference: tuple[float, ...]
    reference_rule: str
    hypervolume: float
    normalized: float
    numbers: tuple[int, ...]
    history: tuple[float, ...]


def study_hypervolume(records: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                      directions: Sequence[Direction], *, reference: Point | None = None,
                      margin: float = 0.1) -> HypervolumeSummary | None:
    """Hypervolume of finished trials given as dicts (``number``, ``state``, the objectives).

    Only COMPLETE trials (or records without a ``state``) with finite objectives count, less
    those with ``feasible`` 0 (they break the space's constraints, so they are off the front
    the search and report show, and must not widen its volume); the history is in trial-number
    order and normalised, so its curve reads as a fraction of the box between the best values
    seen and the reference. None when no trial counts.
    """
    names = tuple(str(getattr(d, "name", d)).lower() for d in directions)
    _signs(names, len(objectives))
    ordered = sorted(records, key=lambda r: int(r.get("number", 0)))
    points: list[list[float] | None] = []
    for r in ordered:
        state = str(r.get("state", "COMPLETE")).upper().rsplit(".", 1)[-1]
        ok = state == "COMPLETE" and feasible(r) and all(_finite(r.get(name)) for name in objectives)
        points.append([float(r[name]) for name in objectives] if ok else None)
    present = [p for p in points if p is not None]
    if not present:
        return None
    rule = "given"
    if reference is None:
        reference = default_reference(present, names, margin)
        rule = f"nadir of complete trials + {margin:g} x range"
    ref = tuple(float(v) for v in reference)
    return HypervolumeSummary(
        objectives=tuple(objectives), directions=names, reference=ref, reference_rule=rule,
        hypervolume=hypervolume(present, ref, names), normalized=hypervolume(present, ref, names, normalize=True),
        numbers=tuple(int(r.get("number", i)) for i, r in enumerate(ordered)),
        history=tuple(hypervolume_history(points, ref, names, normalize=True)))
