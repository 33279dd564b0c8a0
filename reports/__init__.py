"""Reports: the results store, Pareto fronts and hypervolume, plots, report.md and trials.csv,
the dashboard launcher, and export / re-apply of the best pruned configurations."""

from __future__ import annotations

from ._apply import apply_config, load_config
from ._build import build_report
from ._dashboard import DashboardServer, dashboard_command, serve_dashboard
from ._export import export_trials, select_trials
from ._pareto import (HypervolumeSummary, default_reference, hypervolume, hypervolume_history, pareto_front,
                      pareto_mask, study_hypervolume)
from ._plots import write_plots
from ._runs import RunRef, format_runs, list_runs, resolve_run
from ._store import load_curves, load_meta, load_trials, sync_store
from ._summary import trials_view, write_report_md, write_trials_csv

__all__ = [
    "DashboardServer",
    "HypervolumeSummary",
    "RunRef",
    "apply_config",
    "build_report",
    "dashboard_command",
    "default_reference",
    "export_trials",
    "format_runs",
    "hypervolume",
    "hypervolume_history",
    "list_runs",
    "load_config",
    "load_curves",
    "load_meta",
    "load_trials",
    "pareto_front",
    "pareto_mask",
    "resolve_run",
    "select_trials",
    "serve_dashboard",
    "study_hypervolume",
    "sync_store",
    "trials_view",
    "write_plots",
    "write_report_md",
    "write_trials_csv",
]
