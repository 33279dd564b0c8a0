"""Finding runs: a run folder or ``--storage URL --study NAME`` to a `RunRef`, and `list_runs`.

Every reading command (report, export, dashboard, runs) starts here, so they agree on what a run
is: ``runs/<study>/`` holding ``study.db`` (SQLite, one process) or ``journal.log`` (several local
workers), or any Optuna storage URL with a study name. What a user can get wrong (a typo in the
folder, a folder without a storage, a storage with several studies, a database that does not
answer) is a one-line `UserError`, with passwords redacted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.trial import TrialState

from snnprune.errors import UserError, first_line
from snnprune.search._promote import promoted_numbers
from snnprune.search._rundir import MARKER, marker_storage, recorded_storage, storage_in_folder
from snnprune.search._storage import (
    check_exists,
    check_optuna_sqlite,
    is_url,
    open_storage,
    redact,
    retried_failures,
    sqlite_file,
    sqlite_url,
)

from ._feasible import breaks_constraints, study_front

__all__ = ["RunRef", "format_runs", "list_runs", "resolve_run", "storage_kind"]

StorageKind = Literal["sqlite", "journal", "rdb"]
STORAGE_FILES = ("study.db", "journal.log")


@dataclass(frozen=True)
class RunRef:
    """Where a study lives: the storage spec Optuna opens, its study name, and the run folder
    whose ``results.db`` and exports belong to it (``runs/<study>`` for a bare URL)."""

    storage: str
    study: str
    run_dir: Path
    kind: StorageKind

    @property
    def results_db(self) -> Path:
        return self.run_dir / "results.db"

    def __str__(self) -> str:
        return f"{self.study} ({self.kind}: {redact(self.storage)})"


def storage_kind(spec: str) -> StorageKind:
    """``sqlite`` for ``sqlite:///`` URLs, ``rdb`` for other URLs, ``journal`` for a file path."""
    if is_url(spec):
        return "sqlite" if spec.startswith("sqlite") else "rdb"
    return "journal"


def _storage_in(folder: Path) -> str:
    """The storage of a run folder: the one its ``study.json`` names (the search's own choice,
    `search._rundir`), in the folder or, given with ``--storage``, elsewhere; a folder from before
    study.json that holds both files gets the SQLite one."""
    spec = storage_in_folder(folder) or recorded_storage(folder)
    if spec is None:
        named = marker_storage(folder)
        if named is not None:
            raise UserError(f"{folder} keeps its study in {named}, which cannot be opened from here (a file that is "
                            "gone, or a password that is never written down); give --storage URL --study NAME")
        raise UserError(f"no study.db or journal.log in {folder}; give --storage URL --study NAME instead")
    if (file := sqlite_file(spec)) is not None:
        return sqlite_url(file.resolve())
    return spec


def study_names(spec: str) -> list[str]:
    """The study names in a storage; any failure to read it is a one-line `UserError`.

    Read without writing: opening a storage creates Optuna's tables, so a SQLite file without
    them is not opened. One with no table at all holds no study yet; one with tables of its own
    (a results store, another program's database) is refused (`check_optuna_sqlite`).
    """
    check_exists(spec)
    if not check_optuna_sqlite(spec):
        return []
    storage = open_storage(spec, heartbeat=False, create=False)
    try:
        return sorted(s.study_name for s in storage.get_all_studies())
    except Exception as exc:  # a journal of another format, a database without Optuna's tables
        reason = first_line(exc)
        raise UserError(f"cannot read studies from {redact(spec)}: {redact(reason)[:160]}") from None


def _pick(names: list[str], study: str | None, fallback: str | None, spec: str) -> str:
    if study is not None:
        if study not in names:
            have = ", ".join(names[:10]) or "none"
            raise UserError(f"no study {study!r} in {redact(spec)} (studies: {have})")
        return study
    if len(names) == 1:
        return names[0]
    if not names:
        raise UserError(f"storage {redact(spec)} holds no study yet")
    if fallback in names:
        return str(fallback)
    raise UserError(f"storage {redact(spec)} holds {len(names)} studies ({', '.join(names[:10])}); "
                    f"choose one with --study")


def resolve_run(target: str | os.PathLike | None = None, *, storage: str | None = None,
                study: str | None = None, runs_root: str | os.PathLike = "runs") -> RunRef:
    """A run folder, or a storage URL/journal path with a study name, as a `RunRef`.

    In a folder the study is the storage's only one, else the one named like the folder.
    ``resolve_run("runs/demo")``; ``resolve_run(storage="postgresql://u:p@db/x", study="demo")``.
    """
    if target is not None and storage is not None:
        raise UserError("give a run folder or --storage, not both")
    if storage is not None:
        name = _pick(study_names(storage), study, None, storage)
        return RunRef(storage=storage, study=name, run_dir=Path(runs_root) / name, kind=storage_kind(storage))
    if target is None:
        raise UserError("give a run folder (runs/<study>) or --storage URL --study NAME")
    if is_url(str(target)):  # `snnprune report sqlite:///x.db`: what the dashboard takes too
        return resolve_run(storage=str(target), study=study, runs_root=runs_root)
    folder = Path(target)
    if not folder.exists():
        raise UserError(f"run folder {target} does not exist")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a run folder; give runs/<study> or --storage {folder}")
    spec = _storage_in(folder)
    name = _pick(study_names(spec), study, folder.resolve().name, spec)
    return RunRef(storage=spec, study=name, run_dir=folder, kind=storage_kind(spec))


def _value(trial: optuna.trial.FrozenTrial, metric: str, names: list[str]) -> float | None:
    """A metric of a trial: its objective value when it is one, else its recorded metric."""
    if trial.values is not None and metric in names:
        return float(trial.values[names.index(metric)])
    value = (trial.user_attrs.get("metrics") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def summarize_study(spec: str, name: str) -> dict[str, Any]:
    """Counts by state, best accuracy, the front's size and smallest MACs, the last update.

    The best accuracy is that of a trial meeting the space's constraints, as the front's are: a
    study whose every trial breaks one shows none rather than a figure no trial can stand for.
    """
    study = optuna.load_study(study_name=name, storage=open_storage(spec, heartbeat=False, create=False),
                              sampler=optuna.samplers.RandomSampler())
    trials = study.get_trials(deepcopy=False)
    states = {s.name: 0 for s in TrialState}
    for t in trials:
        states[t.state.name] += 1
    names = list(study.metric_names or [])
    complete = [t for t in trials if t.state == TrialState.COMPLETE and not breaks_constraints(t)]
    accuracies = [v for v in (_value(t, "accuracy", names) for t in complete) if v is not None]
    front = study_front(study)  # the search's own front: feasible trials only
    macs = [v for v in (_value(t, "macs", names) for t in front) if v is not None]
    moments = [m for t in trials for m in (t.datetime_complete, t.datetime_start) if m is not None]
    return {
        "study": name, "trials": len(trials), "states": {k: v for k, v in states.items() if v},
        "retried": len(retried_failures(trials)),  # dead or interrupted, and queued again: not failures
        "paused": len(promoted_numbers(trials)),  # stopped at a rung, went on as a later trial
        "best_accuracy": max(accuracies) if accuracies else None, "front_size": len(front),
        "min_front_macs": min(macs) if macs else None,
        "last_update": max(moments).isoformat(timespec="seconds") if moments else None,
    }


def list_runs(root: str | os.PathLike = "runs") -> list[dict[str, Any]]:
    """One entry per study in each run folder under ``root``, sorted by folder then study.

    A folder whose storage cannot be read (damaged, or a SQLite file that is no Optuna database)
    still gets an entry, with its ``error`` line, so one broken run never hides the others; the
    listing never creates tables in a storage.
    """
    base = Path(root)
    if is_url(str(root)):
        raise UserError(f"{redact(str(root))} is a storage URL; `snnprune runs` lists the run folders under a "
                        "folder (for one storage: snnprune report --storage URL --study NAME)")
    if not base.is_dir():
        raise UserError(f"runs folder {root} " + ("is a file, not a folder" if base.exists() else "does not exist"))
    out: list[dict[str, Any]] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        if not any((folder / name).is_file() for name in (*STORAGE_FILES, MARKER)):
            continue
        entry: dict[str, Any] = {"run": folder.name, "path": str(folder)}
        try:
            spec = _storage_in(folder)
            entry.update(kind=storage_kind(spec), storage=redact(spec))
            names = study_names(spec)
            if not names:
                out.append({**entry, "error": "no study in it yet"})
            for name in names:
                out.append({**entry, **summarize_study(spec, name)})
        except Exception as exc:  # noqa: BLE001 - a listing reports, never stops
            out.append({**entry, "error": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def format_runs(runs: list[dict[str, Any]]) -> str:
    """The table `snnprune runs` prints: one line per study."""
    if not runs:
        return "no runs found"
    # every trial in one column: running/waiting ones and the interrupted ones run again included,
    # so the counts add up to "trials"
    header = ["run", "study", "kind", "trials", "complete", "pruned", "paused", "failed", "rerun", "running",
              "best acc", "min MACs (front)", "last update"]
    lines = [header]
    for r in runs:
        if "error" in r:
            lines.append([r["run"], "-", r.get("kind", "-"), "error: " + r["error"], *[""] * (len(header) - 4)])
            continue
        s = r["states"]
        lines.append([r["run"], r["study"], r["kind"], str(r["trials"]), str(s.get("COMPLETE", 0)),
                      str(s.get("PRUNED", 0) - r.get("paused", 0)), str(r.get("paused", 0)),
                      str(s.get("FAIL", 0) - r.get("retried", 0)), str(r.get("retried", 0)),
                      str(s.get("RUNNING", 0) + s.get("WAITING", 0)), _fmt(r["best_accuracy"]),
                      _fmt(r["min_front_macs"]), _fmt(r["last_update"])])
    widths = [max([len(header[i])] + [len(row[i]) for row in lines if len(row[i]) < 60]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines)
