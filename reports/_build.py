"""`build_report`: the results store synced, then the plots, trials.csv and report.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from snnprune.errors import UserError
from snnprune.search._rundir import other_study, recorded_storage, same_storage, storage_in_folder
from snnprune.search._storage import redact

from ._feasible import constraint_texts
from ._pareto import study_hypervolume
from ._plots import PLOT_STEMS, PLOTLY_JS, write_plots
from ._runs import RunRef
from ._store import load_meta, load_trials, sync_store
from ._summary import trials_view, write_report_md, write_trials_csv

__all__ = ["build_report"]


def build_report(ref: RunRef, *, out: str | Path | None = None, x: str = "macs", y: str = "accuracy"
                 ) -> dict[str, Any]:
    """Rebuild ``results.db`` from the study's storage and write every report file.

    Returns the paths written, the trial counts and the hypervolume. An ``x`` or ``y`` that
    cannot be plotted is a `UserError` before any report file is written; a study with no trial
    yet gets an empty report. The front is the search's (feasible trials only, see `_feasible`).
    ``results.db`` goes to the run folder, or to ``out`` when that folder serves another study
    (`_results_db`).
    """
    results_db = _results_db(ref, out)
    out_dir = Path(out) if out else ref.run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = sync_store(ref.storage, ref.study, results_db)
    trials = load_trials(results_db)
    meta = load_meta(results_db)
    names = list(meta.get("metric_names") or [])
    directions = list(meta.get("directions") or [])
    view = trials_view(trials)
    records = view.to_dict("records")
    summary = study_hypervolume(records, names, directions) if names else None
    plots = write_plots(view, out_dir, x=x, y=y, directions=dict(zip(names, directions)))
    _remove_stale_plots(out_dir, plots)
    csv = write_trials_csv(view, out_dir / "trials.csv")
    md = write_report_md(view, out_dir / "report.md", study=ref.study, metric_names=names, directions=directions,
                         reference=summary.reference if summary else None,
                         hypervolume=summary, plots=plots, constraints=constraint_texts(meta.get("space")))
    return {"study": ref.study, "run_dir": str(results_db.parent), "results_db": str(results_db), "trials": rows,
            "report": str(md), "csv": str(csv), "plots": {k: str(v) for k, v in plots.items()},
            "hypervolume": getattr(summary, "normalized", None) if summary else None,
            "dashboard": f"snnprune dashboard {_dashboard_target(ref)}"}


def _remove_stale_plots(out_dir: Path, written: dict[str, Path]) -> None:
    """Delete the plots an earlier report left that this one did not write (no finished trial
    any more, another --x/--y): beside report.md they would show a front it does not."""
    for stem in PLOT_STEMS:
        for suffix in (".png", ".html"):
            if f"{stem}{suffix}" not in written:
                (out_dir / f"{stem}{suffix}").unlink(missing_ok=True)
    if PLOTLY_JS not in written:  # no HTML plot left to load it
        (out_dir / PLOTLY_JS).unlink(missing_ok=True)


def _results_db(ref: RunRef, out: str | Path | None) -> Path:
    """Where this report's results store goes: the run folder's ``results.db``, unless that folder
    serves a study in another storage.

    A study given by ``--storage URL --study NAME`` gets ``runs/NAME`` as its run folder, which a
    search of another study of that name (another storage) may own: its ``results.db`` was
    overwritten with this study's rows. The search refuses to write into such a folder; a report
    with ``--out`` keeps its results store there instead, beside report.md, where a user who
    asked for the report elsewhere looks for it. Without ``--out`` (or with ``--out`` that very
    folder) the report itself would land in the other study's folder: refused in one line, as the
    search refuses it, before anything is written.
    """
    elsewhere = out is not None and Path(out).resolve() != ref.run_dir.resolve()
    other = other_study(ref.run_dir, ref.storage, own_files=True)
    if other is None:
        # a run folder this process cannot write (read-only mount, another user's): with --out
        # the store goes there, beside report.md; it was sqlite's traceback and an empty --out
        if elsewhere and ref.run_dir.is_dir() and not os.access(ref.run_dir, os.W_OK):
            return Path(out) / "results.db"
        return ref.results_db
    if elsewhere:
        return Path(out) / "results.db"
    study, shown = other
    owner = f"study {study!r}" if study else "the study"
    raise UserError(f"{ref.run_dir} holds the trials of {owner} in {shown}, not of study {ref.study!r} in "
                    f"{redact(ref.storage)}; give this report its own --out")


def _dashboard_target(ref: RunRef) -> str:
    """The run folder when ``snnprune dashboard FOLDER`` opens this study's storage (the one in
    the folder, or the one its study.json records), else the storage itself: a study given by
    URL may have no such folder, or share its name with the study of another storage whose
    folder that is. A password stays hidden."""
    folder = storage_in_folder(ref.run_dir) or recorded_storage(ref.run_dir)
    if folder is not None and same_storage(folder, ref.storage):
        return str(ref.run_dir)
    return redact(ref.storage)
