"""`build_report`: the results store synced, then the plots, trials.csv and report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snnprune.search._storage import redact

from ._feasible import constraint_texts
from ._pareto import study_hypervolume
from ._plots import PLOT_STEMS, write_plots
from ._runs import STORAGE_FILES, RunRef
from ._store import load_meta, load_trials, sync_store
from ._summary import trials_view, write_report_md, write_trials_csv

__all__ = ["build_report"]


def build_report(ref: RunRef, *, out: str | Path | None = None, x: str = "macs", y: str = "accuracy"
                 ) -> dict[str, Any]:
    """Rebuild ``results.db`` from the study's storage and write every report file.

    Returns the paths written, the trial counts and the hypervolume. An ``x`` or ``y`` that
    cannot be plotted is a `UserError` before any report file is written; a study with no trial
    yet gets an empty report. The front is the search's (feasible trials only, see `_feasible`).
    """
    out_dir = Path(out) if out else ref.run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = sync_store(ref.storage, ref.study, ref.results_db)
    trials = load_trials(ref.results_db)
    meta = load_meta(ref.results_db)
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
    return {"study": ref.study, "run_dir": str(ref.run_dir), "results_db": str(ref.results_db), "trials": rows,
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


def _dashboard_target(ref: RunRef) -> str:
    """The run folder when the storage is in it, else the storage itself (``runs/<study>`` holds
    only the results of a study given by URL); a password stays hidden."""
    if any((ref.run_dir / name).is_file() for name in STORAGE_FILES):
        return str(ref.run_dir)
    return redact(ref.storage)
