"""`snnprune report | dashboard | runs | export | apply`: what users do after a search."""

from __future__ import annotations

from pathlib import Path

import click

from snnprune.errors import UserError

from ._app import cli, emit
from ._options import json_option, out_folder

__all__: list[str] = []


def _study(target: str | None, storage: str | None, study: str | None):
    """(optuna study, storage spec, run folder) from a run folder or --storage/--study."""
    import optuna

    from snnprune.reports import resolve_run
    from snnprune.search import open_storage

    ref = resolve_run(target, storage=storage, study=study)
    try:
        handle = optuna.load_study(study_name=ref.study, storage=open_storage(ref.storage, heartbeat=False))
    except KeyError:
        raise UserError(f"no study {ref.study!r} in {ref}") from None  # RunRef's str redacts passwords
    return handle, ref


@cli.command("export")
@click.argument("run_dir", required=False)
@click.option("--storage", default=None, help="Instead of RUN_DIR: an Optuna storage ...")
@click.option("--study", default=None, help="... and the study in it.")
@click.option("--pareto", is_flag=True, help="Every trial on the Pareto front.")
@click.option("--trial", type=int, default=None, help="One trial by number.")
@click.option("--best", default=None, help="The best trial under a condition, e.g. 'accuracy>=0.9'.")
@click.option("--minimize", default="macs", show_default=True, help="With --best: the metric to minimise.")
@click.option("--out", type=click.Path(), required=True, help="Folder for the exported trials.")
@click.option("--force", is_flag=True, help="Overwrite existing exports.")
@json_option
def export_cmd(run_dir: str | None, storage: str | None, study: str | None, pareto: bool, trial: int | None,
               best: str | None, minimize: str, out: str, force: bool, as_json: bool) -> None:
    """Write config.yaml, nni_config_list.json, masks.pt, model_compact.pt and metrics.json per trial."""
    from snnprune.reports import export_trials, select_trials

    handle, ref = _study(run_dir, storage, study)
    chosen = select_trials(handle, pareto=pareto, trial=trial, best=best, minimize=minimize)
    out_folder(out)
    folders = export_trials(chosen, out, force=force, run_dir=ref.run_dir)
    payload = {"study": handle.study_name, "exported": [str(f) for f in folders],
               "trials": [t.number for t in chosen]}
    emit(payload, as_json, "\n".join([f"exported {len(folders)} trial(s) of {handle.study_name}:"] +
                                     [f"  {f}" for f in folders] +
                                     [f"re-run one with: snnprune apply {folders[0]}/config.yaml"]))


@cli.command("apply")
@click.argument("config", type=click.Path())
@click.option("--out", type=click.Path(), default=None, help="Where to write (default: beside the config).")
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True)
@json_option
def apply_cmd(config: str, out: str | None, device: str, quiet: bool, as_json: bool) -> None:
    """Re-run an exported configuration (its config.yaml, or the trial's folder) and compare with
    the figures it was exported with."""
    from snnprune.reports import apply_config, load_config

    load_config(config)  # a bad config is one line before --out is created or anything trains
    if out:
        out_folder(out)
    report = apply_config(config, out=out, device=device, quiet=quiet or as_json)
    m = report["metrics"]
    first = (f"re-ran {report['config']}: test accuracy {m['test_accuracy']:.4f}, sparsity {m['sparsity']:.4f}, "
             f"MACs/step {m['macs']:,}")
    lines = [first]
    if "reference" in report:
        ref = report["reference"]
        lines.append(f"  exported with: test accuracy {ref.get('test_accuracy')}, MACs {ref.get('macs')}; "
                     f"same MACs: {report['same_macs']}, same sparsity: {report['same_sparsity']}, "
                     f"accuracy delta {report.get('accuracy_delta', float('nan')):+.4f}")
    lines.append(f"  artifacts in {report['run_dir']}")
    emit(report, as_json, "\n".join(lines))


@cli.command("report")
@click.argument("run_dir", required=False)
@click.option("--storage", default=None, help="Instead of RUN_DIR: an Optuna storage ...")
@click.option("--study", default=None, help="... and the study in it.")
@click.option("--x", "x", default="macs", show_default=True, help="Cost axis of the front plot.")
@click.option("--y", "y", default="accuracy", show_default=True, help="Quality axis of the front plot.")
@click.option("--out", type=click.Path(), default=None, help="Folder for the report (default: the run folder).")
@json_option
def report_cmd(run_dir: str | None, storage: str | None, study: str | None, x: str, y: str, out: str | None,
               as_json: bool) -> None:
    """Sync results.db and write the Pareto plots (PNG + HTML), trials.csv and report.md."""
    from snnprune.reports import build_report, resolve_run

    ref = resolve_run(run_dir, storage=storage, study=study)
    if out:
        out_folder(out)
    result = build_report(ref, out=out, x=x, y=y)
    hv = result["hypervolume"]
    plots = sorted(name for name in result["plots"] if not name.endswith(".js"))  # not the shared plotly.js
    emit(result, as_json, "\n".join([
        f"report of {result['study']} ({result['trials']} trials): {result['report']}",
        f"  plots: {', '.join(plots)}" if plots else "  plots: none (no finished trial)",
        f"  hypervolume (normalised): {hv:.4f}" if hv is not None else "  hypervolume: n/a",
        f"  open the dashboard: {result['dashboard']}"]))


@cli.command("dashboard")
@click.argument("target")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="0: any free port.")
def dashboard_cmd(target: str, host: str, port: int) -> None:
    """Serve optuna-dashboard on a run folder or a storage URL / journal file (Ctrl-C stops it)."""
    from snnprune.reports import resolve_run, serve_dashboard

    source = resolve_run(target) if Path(target).is_dir() else target
    serve_dashboard(source, host=host, port=port, block=True)


@cli.command("runs")
@click.argument("root", required=False, default="runs")
@json_option
def runs_cmd(root: str, as_json: bool) -> None:
    """List the studies under a folder with their trial counts and best figures."""
    from snnprune.reports import format_runs, list_runs

    runs = list_runs(root)
    emit({"root": root, "runs": runs}, as_json, format_runs(runs) if runs else f"no runs under {root}")
