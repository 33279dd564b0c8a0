"""Sparsity and rate schedules used by the gradual pruners (ALGORITHMS.md sections 2 and 4).

Pure functions of their arguments: the pruners call them with the current training step.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from snnprune.errors import UserError

__all__ = ["cosine_decay", "gradual_sparsity", "pruning_steps"]


def _check_int(name: str, value: int, minimum: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}{hint}")


def _check_steps(t0: int, n: int, dt: int) -> None:
    _check_int("t0", t0, 0)
    one_shot = " (for one-shot pruning use n=1 and s_i = s_f)"
    _check_int("n", n, 1, one_shot)
    _check_int("dt", dt, 1, one_shot)


def gradual_sparsity(step: int, s_i: float, s_f: float, t0: int, n: int, dt: int) -> float:
    """Target sparsity at a training step under the cubic schedule of Zhu & Gupta (2017).

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))^3

    with t = step clamped into [t0, t0 + n*dt]: s_i before and at t0, s_f at and after the end.
    The cubic prunes fast while many redundant weights remain and slowly near the target, when
    each removed weight costs more accuracy. Pruning happens at `pruning_steps(t0, n, dt)`;
    between those steps the mask keeps the last target.

    Requires 0 <= s_i <= s_f < 1, t0 >= 0, n >= 1 and dt >= 1. n = 0 or dt = 0 are rejected
    rather than read as one-shot: one-shot pruning is n = 1 with s_i = s_f (the target is s_f
    from t0 on).
    """
    _check_steps(t0, n, dt)
    for name, v in (("s_i", s_i), ("s_f", s_f)):
        if not (isinstance(v, Real) and math.isfinite(v)):
            raise UserError(f"{name} must be a finite number, got {v!r}")
    if not 0 <= s_i <= s_f < 1:
        raise UserError(f"gradual sparsity needs 0 <= s_i <= s_f < 1, got s_i={s_i}, s_f={s_f}")
    if isinstance(step, bool) or not isinstance(step, Integral):
        raise UserError(f"step must be an integer, got {step!r}")
    span = n * dt
    t = min(max(int(step), t0), t0 + span)
    remaining = 1.0 - (t - t0) / span
    return float(s_f + (s_i - s_f) * remaining**3)


def pruning_steps(t0: int, n: int, dt: int) -> list[int]:
    """The n + 1 steps at which gradual pruning updates the mask: t0, t0+dt, ..., t0+n*dt.

    Same argument rules as `gradual_sparsity` (t0 >= 0, n >= 1, dt >= 1).
    """
    _check_steps(t0, n, dt)
    return [int(t0) + k * int(dt) for k in range(int(n) + 1)]


def cosine_decay(step: int, total: int, start: float, end: float = 0.0) -> float:
    """Cosine-annealed rate, e.g. GraNet's death (drop-and-regrow) rate.

    rate = end + (start - end) * (1 + cos(pi * t / total)) / 2,   t = step clamped to [0, total]

    Starts at `start` for step 0, falls smoothly to `end` at step `total` and stays there, so
    the sparse topology is explored early and settles late. Requires total >= 1 and
    end <= start (both finite).
    """
    _check_int("total", total, 1)
    for name, v in (("start", start), ("end", end)):
        if not (isinstance(v, Real) and math.isfinite(v)):
            raise UserError(f"{name} must be a finite number, got {v!r}")
    if end > start:
        raise UserError(f"cosine decay needs end <= start, got start={start}, end={end}")
    if isinstance(step, bool) or not isinstance(step, Integral):
        raise UserError(f"step must be an integer, got {step!r}")
    t = min(max(int(step), 0), int(total))
    return float(end + (start - end) * (1.0 + math.cos(math.pi * t / total)) / 2.0)
