"""Pareto masks and hypervolumes against brute force, Optuna, and cases worked by hand."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snnprune.errors import UserError
from snnprune.reports._pareto import (default_reference, hypervolume, hypervolume_history, pareto_front,
                                      pareto_mask, study_hypervolume)

MIN, MAX = "minimize", "maximize"
FAST = settings(max_examples=40, deadline=None)


@st.composite
def problems(draw, max_points: int = 12, low: int = 0, high: int = 6):
    """Small integer points (many ties and duplicates) in 2 or 3 objectives, mixed directions."""
    d = draw(st.sampled_from([2, 3]))
    directions = draw(st.lists(st.sampled_from([MIN, MAX]), min_size=d, max_size=d))
    points = draw(st.lists(st.tuples(*[st.integers(low, high)] * d), min_size=0, max_size=max_points))
    return [tuple(float(v) for v in p) for p in points], directions


def _as_min(points, directions):
    return [tuple(-v if s == MAX else v for v, s in zip(p, directions)) for p in points]


def brute_mask(points, directions):
    pts = _as_min(points, directions)
    return [not any(all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p)) for q in pts)
            for p in pts]


def inclusion_exclusion(points, reference, directions):
    """Exact volume of the union of boxes [p, r) by inclusion-exclusion (small n only)."""
    pts, (ref,) = _as_min(points, directions), _as_min([reference], directions)
    total = 0.0
    for k in range(1, len(pts) + 1):
        for subset in itertools.combinations(pts, k):
            corner = [max(c) for c in zip(*subset)]
            total += (-1) ** (k + 1) * math.prod(max(r - c, 0.0) for r, c in zip(ref, corner))
    return total


def grid_count(points, reference, directions):
    """Unit cells of the integer grid inside the union of the boxes [p, r) (integer inputs)."""
    pts, (ref,) = _as_min(points, directions), _as_min([reference], directions)
    low = [min([r] + [p[i] for p in pts]) for i, r in enumerate(ref)]
    cells = itertools.product(*[range(int(lo), int(r)) for lo, r in zip(low, ref)])
    return sum(any(all(p[i] <= c[i] for i in range(len(c))) for p in pts) for c in cells)


@FAST
@given(problems(max_points=25))
def test_mask_equals_brute_force(problem):
    points, directions = problem
    assert pareto_mask(points, directions) == brute_mask(points, directions)


@settings(max_examples=15, deadline=None)
@given(problems(max_points=10))
def test_mask_agrees_with_optuna_best_trials(problem):
    points, directions = problem
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=directions)
    for p in points:
        study.add_trial(optuna.trial.create_trial(values=list(p)))
    expected = {t.number for t in study.best_trials} if points else set()
    assert {i for i, keep in enumerate(pareto_mask(points, directions)) if keep} == expected


@FAST
@given(problems(max_points=6, low=-2, high=5))
def test_hypervolume_equals_inclusion_exclusion(problem):
    points, directions = problem
    reference = tuple(-1.0 if s == MAX else 4.0 for s in directions)  # some points lie beyond it
    got = hypervolume(points, reference, directions)
    assert got == pytest.approx(inclusion_exclusion(points, reference, directions), abs=1e-9)


@FAST
@given(problems(max_points=15, low=0, high=5))
def test_hypervolume_equals_grid_count(problem):
    points, directions = problem
    reference = tuple(-1.0 if s == MAX else 6.0 for s in directions)
    assert hypervolume(points, reference, directions) == pytest.approx(grid_count(points, reference, directions))


@FAST
@given(problems(max_points=15), st.lists(st.booleans(), min_size=15, max_size=15))
def test_history_is_monotone_and_ends_at_the_total(problem, missing):
    points, directions = problem
    if not points:
        return
    reference = default_reference(points, directions)
    sequence = [None if gap else p for p, gap in zip(points, missing)] + points  # failed trials add nothing
    history = hypervolume_history(sequence, reference, directions)
    assert len(history) == len(sequence)
    assert all(b >= a - 1e-12 for a, b in zip(history, history[1:]))
    assert history[-1] == pytest.approx(hypervolume(points, reference, directions))
    normalised = hypervolume_history(sequence, reference, directions, normalize=True)
    assert all(b >= a - 1e-12 for a, b in zip(normalised, normalised[1:]))
    assert 0.0 <= normalised[-1] <= 1.0 + 1e-12


@FAST
@given(problems(max_points=10))
def test_normalised_is_raw_over_the_box(problem):
    points, directions = problem
    if not points:
        return
    reference = default_reference(points, directions)
    ideal = [max(c) if s == MAX else min(c) for c, s in zip(zip(*points), directions)]
    box = math.prod(abs(r - i) for r, i in zip(reference, ideal))
    assert hypervolume(points, reference, directions, normalize=True) == pytest.approx(
        hypervolume(points, reference, directions) / box)


def test_known_cases():
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4), [MIN, MIN]) == 6.0
    assert hypervolume([(0.9, 10)], (0.0, 20), [MAX, MIN]) == pytest.approx(9.0)
    assert hypervolume([(1, 1, 1)], (2, 3, 4), [MIN] * 3) == 6.0
    assert hypervolume([(0, 0, 1), (1, 1, 0)], (2, 2, 2), [MIN] * 3) == 5.0  # 4 + 2 - 1 shared
    assert hypervolume([(4, 1), (1, 4)], (4, 4), [MIN, MIN]) == 0.0  # on the reference: nothing
    assert hypervolume([], (1, 1), [MIN, MIN]) == 0.0
    big = hypervolume([(0.9, 1e8), (0.5, 2e7)], (0.0, 2e8), [MAX, MIN])
    assert big == pytest.approx(0.9 * 1e8 + 0.5 * 8e7)
    assert hypervolume([(0.9, 1e8), (0.5, 2e7)], (0.0, 2e8), [MAX, MIN], normalize=True) < 1.0
    assert pareto_mask([(0.9, 10), (0.8, 20), (0.9, 10)], [MAX, MIN]) == [True, False, True]
    assert pareto_mask([], [MAX, MIN]) == []


def test_default_reference_rule():
    assert default_reference([(0.5, 100), (0.9, 300)], [MAX, MIN]) == pytest.approx([0.46, 320.0])
    assert default_reference([(0.5, 100)], [MAX, MIN], margin=0.0) == pytest.approx([0.5, 100.0])
    assert default_reference([(0.5, 100), (0.5, 200)], [MAX, MIN]) == pytest.approx([0.4, 210.0])


def test_front_of_records_skips_unfinished():
    records = [{"n": 0, "acc": 0.9, "macs": 10}, {"n": 1, "acc": 0.8, "macs": 20},
               {"n": 2, "acc": None, "macs": 1}, {"n": 3, "acc": 0.5, "macs": 5}]
    assert [r["n"] for r in pareto_front(records, ["acc", "macs"], [MAX, MIN])] == [0, 3]


def test_study_hypervolume_counts_complete_trials_only():
    records = [{"number": 0, "state": "COMPLETE", "acc": 0.5, "macs": 10.0},
               {"number": 1, "state": "FAIL", "acc": None, "macs": None},
               {"number": 2, "state": "PRUNED", "acc": 0.99, "macs": 1.0},
               {"number": 3, "state": "TrialState.COMPLETE", "acc": 0.9, "macs": 20.0}]
    hv = study_hypervolume(records, ["acc", "macs"], [MAX, MIN], reference=(0.0, 30.0))
    assert hv.hypervolume == pytest.approx(0.5 * 20 + 0.4 * 10)
    assert hv.numbers == (0, 1, 2, 3) and hv.history[1] == hv.history[2] <= hv.history[3]
    assert study_hypervolume(records[1:3], ["acc", "macs"], [MAX, MIN]) is None


@pytest.mark.parametrize("call", [
    lambda: pareto_mask([(1, 2)], ["up", MIN]),
    lambda: pareto_mask([(1, 2, 3)], [MIN, MIN]),
    lambda: pareto_mask([(float("nan"), 2)], [MIN, MIN]),
    lambda: hypervolume([(1, 2)], (3,), [MIN, MIN]),
    lambda: default_reference([], [MIN, MIN]),
])
def test_user_errors_are_one_line(call):
    with pytest.raises(UserError) as err:
        call()
    assert "\n" not in str(err.value)
