"""The results store: ``runs/<study>/results.db``, a flat SQLite copy of a study, read with pandas.

The Optuna storage stays the one source of truth: every worker, local or on another machine, and
both backends (Optuna, Ray Tune) write there. `sync_store` rebuilds the store from it, so reports
read one flat table whatever wrote the study, without unpickling Optuna objects or knowing the
nesting of our user attributes. Tables:

- ``trials``: one row per trial, keyed by its number: state, one column per objective (named by
  the study's metric names), pruner, target sparsity, model, data, seed, the hyperparameters as
  JSON (``hp``) and flattened (``hp_<name>``), every metric flattened (``m_<name>``), the dense
  network's metrics (``dense_<name>``), partial values of a stopped trial (``partial_<name>``),
  start/complete times, duration, ``stopped_at_rung``, ``fail_reason``, ``cache_hit``, artifact
  paths (``artifact_<kind>``), the whole config as JSON, the constraint violations (JSON list),
  ``feasible`` (1/0, NULL without constraint values) and ``on_front`` (1 for the trials of
  ``study.best_trials``, the front the search and every other command show: see `_feasible`);
- ``curves``: per-epoch history (trial, phase, epoch, train_loss, val_accuracy, ...) where a trial
  recorded it (attribute ``history``), plus its rung checkpoints (phase ``rung``);
- ``meta``: key -> JSON value: study, metric names, directions, value columns, space, sync time.

A sync is one SQLite transaction (readers see the old store or the new one, never half) and an
upsert keyed by trial number, so running it again, or from two places, never duplicates a row.

>>> sync_store("sqlite:///runs/demo/study.db", "demo", "runs/demo/results.db")  # doctest: +SKIP
>>> load_trials("runs/demo/results.db").query("state == 'COMPLETE'")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import sqlite_utils
from optuna.trial import FrozenTrial

from snnprune.errors import UserError, first_line
from snnprune.search._promote import promoted_numbers
from snnprune.search._storage import open_storage, redact, retried_failures

from ._feasible import breaks_constraints, study_front

__all__ = ["load_curves", "load_meta", "load_trials", "sync_store", "trial_row", "value_columns"]

Row = dict[str, Any]

# columns every trials row has; an objective named like one of them gets a ``value_`` prefix
BASE_COLUMNS: dict[str, Any] = {
    "number": int, "state": str, "pruner": str, "sparsity_target": float, "model": str, "data": str,
    "seed": int, "hp": str, "datetime_start": str, "datetime_complete": str, "duration_s": float,
    "stopped_at_rung": int, "fail_reason": str, "cache_hit": int, "config": str, "artifacts": str,
    "constraint_violation": str, "feasible": int, "on_front": int, "retried": int,
    "resumes": int, "resume_rung": int, "paused": int,
}
CURVE_COLUMNS: dict[str, Any] = {"trial": int, "phase": str, "epoch": int}
_RUNG = re.compile(r"^rung_(\d+)$")


def _column(name: str) -> str:
    """A column-safe name: letters, digits and underscores."""
    return re.sub(r"\W", "_", str(name)).strip("_") or "x"


def value_columns(metric_names: list[str] | None, n_objectives: int) -> list[str]:
    """Column names of the objective values: the metric names, or ``value_<i>`` without them."""
    if not metric_names:
        return [f"value_{i}" for i in range(n_objectives)]
    out = []
    for name in metric_names:
        col = _column(name)
        out.append(f"value_{col}" if col in BASE_COLUMNS or col.startswith(("m_", "hp_")) else col)
    return out


def _scalar(value: Any) -> Any:
    """What SQLite stores as is; nested values become JSON text, non-finite floats NULL."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _flatten(prefix: str, mapping: Any) -> Row:
    if not isinstance(mapping, dict):
        return {}
    return {f"{prefix}{_column(k)}": _scalar(v) for k, v in mapping.items()}


def _iso(moment: _dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def trial_row(trial: FrozenTrial, columns: list[str]) -> Row:
    """One flat row of a trial; ``columns`` are the objective value columns (`value_columns`).

    Trials written without our attributes (a plain Optuna study, a Ray worker that failed early)
    still give a row: missing attributes become NULL, hyperparameters fall back to the params.
    """
    attrs = trial.user_attrs
    config = attrs.get("config") if isinstance(attrs.get("config"), dict) else {}
    hp = config.get("hyperparameters")
    if not isinstance(hp, dict):
        hp = {k: v for k, v in trial.params.items() if k not in ("pruner", "sparsity")}
    duration = None
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
    artifacts = attrs.get("artifacts") if isinstance(attrs.get("artifacts"), dict) else {}
    row: Row = {
        "number": trial.number, "state": trial.state.name,
        "pruner": _scalar(config.get("pruner", trial.params.get("pruner"))),
        "sparsity_target": _scalar(config.get("sparsity", trial.params.get("sparsity"))),
        "model": _scalar((config.get("model") or {}).get("name")),
        "data": _scalar((config.get("data") or {}).get("name")),
        "seed": _scalar(config.get("seed")),
        "hp": json.dumps(hp, sort_keys=True, default=str),
        "datetime_start": _iso(trial.datetime_start), "datetime_complete": _iso(trial.datetime_complete),
        "duration_s": duration, "stopped_at_rung": _scalar(attrs.get("stopped_at_rung")),
        "fail_reason": _scalar(attrs.get("fail_reason")), "cache_hit": _scalar(attrs.get("cache_hit")),
        "config": json.dumps(config, sort_keys=True, default=str) if config else None,
        "artifacts": json.dumps(artifacts, sort_keys=True) if artifacts else None,
        "constraint_violation": _scalar(attrs.get("constraint_violation")),
        "resumes": _scalar(attrs.get("resumes")), "resume_rung": _scalar(attrs.get("resume_rung")),
        "feasible": int(not breaks_constraints(trial)) if trial.constraints else None,
    }
    values = trial.values or []
    partial = attrs.get("partial_values") if isinstance(attrs.get("partial_values"), list) else []
    for i, col in enumerate(columns):
        row[col] = _scalar(values[i]) if i < len(values) else None
        row[f"partial_{col}"] = _scalar(partial[i]) if i < len(partial) else None
    row.update(_flatten("hp_", hp))
    row.update(_flatten("m_", attrs.get("metrics")))
    row.update(_flatten("dense_", attrs.get("dense")))
    row.update(_flatten("artifact_", artifacts))
    return row


def curve_rows(trial: FrozenTrial, columns: list[str]) -> list[Row]:
    """Per-epoch rows of a trial: ``history`` (``{phase: [record]}`` or a list) and its rungs."""
    rows: list[Row] = []
    history = trial.user_attrs.get("history")
    phases = history if isinstance(history, dict) else {"fit": history} if isinstance(history, list) else {}
    for phase, records in phases.items():
        for index, record in enumerate(records if isinstance(records, list) else []):
            if not isinstance(record, dict):
                continue
            row = _flatten("", record)
            row.update(trial=trial.number, phase=str(phase), epoch=int(record.get("epoch", index + 1)))
            rows.append(row)
    for key, values in trial.user_attrs.items():
        match = _RUNG.match(key)
        if match and isinstance(values, list):
            row = {col: _scalar(v) for col, v in zip(columns, values)}
            row.update(trial=trial.number, phase="rung", epoch=int(match.group(1)))
            rows.append(row)
    return rows


def _types(rows: list[Row], known: dict[str, Any]) -> dict[str, Any]:
    """Column types from the first non-NULL value, so a column first seen as NULL is not TEXT
    (TEXT affinity would turn every later number into a string)."""
    types: dict[str, Any] = dict(known)
    for row in rows:
        for key, value in row.items():
            if value is not None and types.get(key, bytes) is bytes:
                types[key] = type(value)
            types.setdefault(key, bytes)  # untyped (BLOB affinity) until a value says otherwise
    return types


def _uniform(rows: list[Row], columns: list[str]) -> list[Row]:
    """Every row with every column, so an upsert overwrites what an earlier sync wrote."""
    return [{c: row.get(c) for c in columns} for row in rows]


def _connect(db_path: Path) -> sqlite_utils.Database:
    """The store, recreated when it is not a SQLite file: it is derived data, never the truth."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(sqlite3.connect(str(db_path), timeout=30))
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError:
        db.close()
        db_path.unlink()
        db = sqlite_utils.Database(sqlite3.connect(str(db_path), timeout=30))
    return db


def sync_store(storage_spec: str, study_name: str, db_path: str | os.PathLike) -> int:
    """Rebuild ``db_path`` from the study in the Optuna storage; returns the number of trials.

    One transaction: upsert every trial by number, drop rows of trials the storage no longer has
    (a study deleted and created again), replace the curves, refresh the meta rows.
    """
    storage = open_storage(storage_spec, heartbeat=False)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage,
                                  sampler=optuna.samplers.RandomSampler())
    except KeyError:
        raise UserError(f"no study {study_name!r} in {redact(storage_spec)}") from None
    trials = study.get_trials(deepcopy=False)
    columns = value_columns(study.metric_names, len(study.directions))
    rows = [trial_row(t, columns) for t in trials]
    front = {t.number for t in study_front(study)}
    retried = retried_failures(trials)  # interrupted and queued again: not failures of their configuration
    paused = promoted_numbers(trials)  # stopped at a rung, then went on as a later trial (promote mode)
    for row in rows:
        row["on_front"] = int(row["number"] in front)
        row["retried"] = int(row["number"] in retried)
        row["paused"] = int(row["number"] in paused)
    curves = [row for t in trials for row in curve_rows(t, columns)]
    meta = {
        "study": study.study_name, "storage": redact(storage_spec),
        "metric_names": study.metric_names or columns, "value_columns": columns,
        "directions": [d.name.lower() for d in study.directions],
        "space": study.user_attrs.get("space"), "n_trials": len(trials),
        "synced_at": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    path = Path(db_path)
    try:
        db = _connect(path)
        try:
            with db.atomic():  # nested sqlite-utils writes become savepoints of this one transaction
                _write_trials(db, rows)
                _write_curves(db, curves)
                db["meta"].upsert_all([{"key": k, "value": json.dumps(v, default=str)} for k, v in meta.items()],
                                      pk="key", columns={"key": str, "value": str})
        finally:
            db.close()
    except (sqlite3.OperationalError, OSError) as exc:  # a read-only folder or disk: one line, not sqlite's traceback
        raise UserError(f"cannot write the results store {path}: {first_line(exc)} (a read-only folder? "
                        "give the report another --out)") from None
    return len(trials)


def _write_trials(db: sqlite_utils.Database, rows: list[Row]) -> None:
    table = db["trials"]
    types = _types(rows, {**BASE_COLUMNS, **(table.columns_dict if table.exists() else {})})
    if not table.exists():
        table.create(dict(BASE_COLUMNS), pk="number")
    names = list(dict.fromkeys([*table.columns_dict, *(k for row in rows for k in row)]))
    if rows:
        table.upsert_all(_uniform(rows, names), pk="number", alter=True,
                         columns={k: types[k] for k in names if k not in table.columns_dict})
    numbers = json.dumps([row["number"] for row in rows])
    db.execute("DELETE FROM trials WHERE number NOT IN (SELECT value FROM json_each(?))", [numbers])


def _write_curves(db: sqlite_utils.Database, rows: list[Row]) -> None:
    table = db["curves"]
    if not table.exists():
        table.create(dict(CURVE_COLUMNS), pk=("trial", "phase", "epoch"))
    db.execute("DELETE FROM curves")
    if rows:
        existing = table.columns_dict
        types = _types(rows, {**CURVE_COLUMNS, **existing})
        names = list(dict.fromkeys([*existing, *(k for row in rows for k in row)]))
        table.upsert_all(_uniform(rows, names), pk=("trial", "phase", "epoch"), alter=True,
                         columns={k: types[k] for k in names if k not in existing})


def _read(db_path: str | os.PathLike, sql: str) -> pd.DataFrame:
    """A read-only query: reading a store never locks out a sync."""
    path = Path(db_path)
    if not path.is_file():
        raise UserError(f"results store {path} does not exist; run `snnprune report` or sync_store first")
    conn = sqlite3.connect(f"file:{path.resolve().as_posix()}?mode=ro", uri=True, timeout=30)
    try:
        return pd.read_sql_query(sql, conn)
    except (sqlite3.OperationalError, pd.errors.DatabaseError) as exc:
        if "no such table" in str(exc):
            return pd.DataFrame()
        raise UserError(f"results store {path} cannot be read: {str(exc).splitlines()[0][:160]}") from None
    finally:
        conn.close()


def load_trials(db_path: str | os.PathLike) -> pd.DataFrame:
    """One row per trial, ordered by number, times parsed as datetimes."""
    frame = _read(db_path, "SELECT * FROM trials ORDER BY number")
    for col in ("datetime_start", "datetime_complete"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col], errors="coerce")
    return frame


def load_curves(db_path: str | os.PathLike) -> pd.DataFrame:
    """Per-epoch rows (trial, phase, epoch, ...); empty when no trial recorded a history."""
    return _read(db_path, "SELECT * FROM curves ORDER BY trial, phase, epoch")


def load_meta(db_path: str | os.PathLike) -> dict[str, Any]:
    """The meta rows as a dict of decoded JSON values (metric_names, directions, space, ...)."""
    frame = _read(db_path, "SELECT key, value FROM meta")
    return {row.key: json.loads(row.value) for row in frame.itertuples()} if len(frame) else {}
