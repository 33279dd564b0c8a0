"""Hypervolume accounting of bench/search.py: one frame for all arms, HV curves, compute to a
target, equal-compute cuts, and the oracle floor of the multi-fidelity figure."""

from __future__ import annotations

import itertools
from typing import Any

from snnprune.reports._pareto import default_reference, hypervolume, pareto_mask, to_minimize

Frame = tuple[list[float], list[float]]


def frame_of(points: list[list[float]], directions: list[str]) -> Frame:
    """ONE reference (nadir + 10 % of the range) and ONE ideal point from the union of points."""
    reference = default_reference(points, directions)
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    ideal = [float(v) * s for v, s in zip(to_minimize(points, directions).min(axis=0), signs)]
    return reference, ideal


def hv(points: list[list[float]], frame: Frame, directions: list[str]) -> float:
    if not points:
        return 0.0
    return hypervolume(points, frame[0], directions, normalize=True, ideal=frame[1])


def hv_curve(records: list[dict[str, Any]], frame: Frame,
             directions: list[str]) -> list[float]:
    """Normalised HV of the complete points among the first k trials, for every k."""
    points, out, current = [], [], 0.0
    for r in records:
        if r["values"] is not None:
            points.append(r["values"])
            current = hv(points, frame, directions)
        out.append(current)
    return out


def complete_points(records: list[dict[str, Any]]) -> list[list[float]]:
    return [r["values"] for r in records if r["values"] is not None]


def finetune_epochs(r: dict[str, Any], full: int) -> int:
    """Fine-tune epochs a trial ran: to its rung if stopped (or paused) there, else to the full
    budget (failed too), from the rung it resumed at for a promotion's trial (else from 0)."""
    end = int(r["stopped_at"]) if r["state"] == "PRUNED" and r["stopped_at"] is not None else full
    return end - int(r.get("resume_rung") or 0)


def trial_epochs(r: dict[str, Any], full: int, prune: int) -> int:
    """`finetune_epochs` plus the pruning epochs, which a promotion's trial does not run again."""
    return finetune_epochs(r, full) + (0 if r.get("resume_rung") else prune)


def equal_compute(records: list[dict[str, Any]], full: int, budget: int) -> list[dict[str, Any]]:
    """The leading trials whose fine-tune epochs together stay within ``budget``."""
    out, spent = [], 0
    for r in records:
        spent += finetune_epochs(r, full)
        if spent > budget:
            break
        out.append(r)
    return out


def to_reach(curve: list[float], cost: list[float], target: float) -> float | None:
    """Cumulative cost up to the first trial whose HV reaches ``target`` (None: never)."""
    total = 0.0
    for value, c in zip(curve, cost):
        total += c
        if value >= target - 1e-12:
            return total
    return None


def front_of(points: list[list[float]], directions: list[str]) -> list[list[float]]:
    """The non-dominated points (equal points all kept)."""
    return [p for p, keep in zip(points, pareto_mask(points, directions)) if keep]


def off_front(points: list[list[float]], directions: list[str]) -> int:
    """How many of the points some other point dominates: the trials no Pareto rule needs."""
    return len(points) - len(front_of(points, directions))


def smallest_reaching(front: list[list[float]], target: float, frame: Frame,
                      directions: list[str], max_subsets: int = 20000) -> int | None:
    """Size of the smallest subset of ``front`` whose HV reaches ``target`` (greedy past max_subsets)."""
    if hv(front, frame, directions) < target - 1e-12:
        return None
    if 2 ** len(front) <= max_subsets:
        for size in range(1, len(front) + 1):
            if any(hv(list(c), frame, directions) >= target - 1e-12 for c in itertools.combinations(front, size)):
                return size
    chosen: list[list[float]] = []  # greedy by HV gain: an upper bound on the smallest size
    rest = list(front)
    while hv(chosen, frame, directions) < target - 1e-12:
        best = max(rest, key=lambda p: hv(chosen + [p], frame, directions))
        chosen.append(best)
        rest.remove(best)
    return len(chosen)


def oracle_to_reach(records: list[dict[str, Any]], target: float, frame: Frame,
                    directions: list[str], full: int, rung: int) -> int | None:
    """Least fine-tune epochs with which a rule stopping at ``rung`` reaches ``target`` on these trials.

    Knowing every outcome, it runs in full only a smallest subset of the first k trials' front
    that reaches the target and stops every other trial at the rung; minimum over k.
    """
    best, points = None, []
    for k, r in enumerate(records, start=1):
        if r["values"] is not None:
            points.append(r["values"])
        need = smallest_reaching(front_of(points, directions), target, frame, directions) if points else None
        if need is not None:
            cost = need * full + (k - need) * rung
            best = cost if best is None else min(best, cost)
    return best
