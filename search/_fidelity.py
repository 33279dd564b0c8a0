"""Multi-fidelity stopping for Pareto searches.

Optuna cannot prune multi-objective trials, and ASHA on one metric biases a Pareto front
towards that metric. Our rule looks at the whole objective vector: at each rung (a fine-tune
epoch) a trial records its partial vector (validation accuracy so far, and the cost figures,
which are fixed once pruning is over); it stops when at least ``dominated_fraction`` of the
trials that reached the same rung dominate it, and at least ``min_trials`` did reach it.

The rung records live in a small SQLite file in the run folder, so the rule is the same for
the Optuna and Ray backends and for workers on one machine.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from snnprune.spaces import Rungs

__all__ = ["RungStore", "dominates", "should_stop"]


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def should_stop(partial: Sequence[float], others: Sequence[Sequence[float]], directions: Sequence[str],
                *, dominated_fraction: float = Rungs.dominated_fraction,
                min_trials: int = Rungs.min_trials) -> bool:
    """The stopping rule on plain numbers (see the module docstring)."""
    if len(others) < max(1, min_trials):
        return False
    dominated_by = sum(1 for other in others if dominates(other, partial, directions))
    return dominated_by >= dominated_fraction * len(others)


class RungStore:
    """Partial objective vectors per (study, rung), shared by every process of a search."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS rungs (study TEXT, trial TEXT, rung INTEGER, "
                       "vals TEXT, PRIMARY KEY (study, trial, rung))")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def record(self, study: str, trial: str, rung: int, values: Sequence[float]) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO rungs VALUES (?, ?, ?, ?)",
                       (study, trial, int(rung), json.dumps([float(v) for v in values])))

    def others(self, study: str, trial: str, rung: int) -> list[list[float]]:
        with self._connect() as db:
            rows = db.execute("SELECT vals FROM rungs WHERE study = ? AND rung = ? AND trial != ?",
                              (study, int(rung), trial)).fetchall()
        return [json.loads(row[0]) for row in rows]
