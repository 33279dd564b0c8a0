"""`snnprune search` and `snnprune worker`: run a search, or join one."""

from __future__ import annotations

from pathlib import Path

import click

from snnprune.errors import Interrupted, UserError

from ._app import cli, emit
from ._options import json_option, out_folder, writable_folder

__all__: list[str] = []


def _human(summary: dict) -> str:
    again = f", {summary['retried']} interrupted and run again" if summary.get("retried") else ""
    paused = f", {summary['paused']} paused and resumed later" if summary.get("paused") else ""
    lines = [f"study {summary['study']}: {summary['complete']} complete, {summary['pruned']} stopped early{paused}, "
             f"{summary['failed']} failed{again}  (storage {summary['storage']})"]
    if summary.get("all_failed"):
        lines.append(f"  {summary['all_failed']}")
    metrics = summary.get("metrics") or []
    for item in summary["pareto"]:
        values = ", ".join(f"{m}={v:.4g}" for m, v in zip(metrics, item["values"]))
        reached = item.get("sparsity")
        target = item.get("target_sparsity")
        aimed = f"target {target:.3f}" if isinstance(target, (int, float)) else ""
        at = (f"sparsity {reached:.3f}" + (f" ({aimed})" if aimed else "")
              if isinstance(reached, (int, float)) else aimed or "?")
        lines.append(f"  pareto trial {item['trial']:>4}: {item['pruner']} @ {at}  {values}")
    lines.append(f"  run folder {summary['run_dir']}; inspect with: snnprune dashboard {summary['run_dir']}")
    return "\n".join(lines)


@cli.command("search")
@click.argument("space_file")
@click.option("--trials", "-n", type=int, default=None, help="Trials to finish in all (default: the space's).")
@click.option("--timeout", type=float, default=None, help="Stop starting trials after this many seconds.")
@click.option("--storage", default=None, help="Optuna URL or journal file path (default sqlite in the run folder).")
@click.option("--study", default=None, help="Study name (default: the space's).")
@click.option("--backend", type=click.Choice(["optuna", "ray"]), default="optuna", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (auto, ray://host:port); --backend ray.")
@click.option("--workers", type=int, default=None,
              help="Local worker processes (default 1); with --backend ray, the most trials run at once "
                   "(default: as many as the cluster's resources fit).")
@click.option("--seed", type=int, default=None, help="Override the space's seed.")
@click.option("--data-root", type=click.Path(), default=None,
              help="Folder holding the data set (overrides the space's data.root).")
@click.option("--out", type=click.Path(), default="runs", show_default=True, help="Parent of the run folder.")
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@json_option
def search_cmd(space_file: str, trials: int | None, timeout: float | None, storage: str | None,
               study: str | None, backend: str, address: str | None, workers: int | None, seed: int | None,
               data_root: str | None, out: str, device: str, quiet: bool, as_json: bool) -> None:
    """Search the pruners and hyperparameters of SPACE_FILE (a YAML file or a built-in name)."""
    from snnprune.spaces import load_space

    if trials is not None and trials < 1:
        raise UserError(f"--trials must be >= 1, got {trials}")
    if seed is not None and seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    space = load_space(space_file)
    overrides = {k: v for k, v in (("study", study), ("seed", seed), ("trials", trials),
                                   ("data_root", data_root)) if v is not None}
    if overrides:
        space = space.with_overrides(**overrides)
    run_dir = writable_folder(Path(out) / space.study)  # created by the search, after its checks
    if backend == "ray":
        from snnprune.search import ray_optimize

        try:
            summary = ray_optimize(space, run_dir=run_dir, storage=storage, trials=trials, timeout=timeout,
                                   address=address, device=device, quiet=quiet or as_json,
                                   max_concurrent=workers)
        except KeyboardInterrupt:
            _interrupted()
    else:
        if address:
            raise UserError("--address is for --backend ray")
        from snnprune.search import optimize

        try:
            summary = optimize(space, run_dir=run_dir, storage=storage, trials=trials, timeout=timeout,
                               workers=workers or 1, device=device, quiet=quiet or as_json)
        except KeyboardInterrupt:
            _interrupted()
    _finish(summary, as_json)


def _finish(summary: dict, as_json: bool) -> None:
    """Print the summary; a study whose every trial failed, or that a dead worker process left
    short of its total, exits 1, so a script sees it failed."""
    emit(summary, as_json, _human(summary))
    if summary.get("all_failed") or summary.get("incomplete"):
        raise click.exceptions.Exit(1)


def _interrupted() -> None:
    """Ctrl-C in a local search or worker: the running trials were failed and queued again."""
    raise Interrupted("interrupted; the running trials are queued again, the same command resumes")


@cli.command("worker")
@click.option("--storage", required=True, help="The study's Optuna storage (URL or journal file).")
@click.option("--study", required=True, help="The study to join.")
@click.option("--trials", "-n", type=int, default=None, help="Trials for this worker (default: until the study has the total its search asked for).")
@click.option("--data-root", type=click.Path(), default=None,
              help="Folder holding the data set on this machine (overrides the space's data.root).")
@click.option("--out", type=click.Path(), default="runs", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True)
@json_option
def worker_cmd(storage: str, study: str, trials: int | None, data_root: str | None, out: str, device: str,
               quiet: bool, as_json: bool) -> None:
    """Join a running study from any machine: the space is read from the study itself."""
    import optuna

    from snnprune.search import open_storage, run_worker, summarize
    from snnprune.search._optuna import _finished, study_goal
    from snnprune.spaces import parse_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if trials is not None and trials < 1:
        raise UserError(f"--trials must be >= 1, got {trials}")
    handle = open_storage(storage, heartbeat=False, create=False)
    try:
        loaded = optuna.load_study(study_name=study, storage=handle)
    except KeyError:
        raise UserError(f"no study {study!r} in that storage") from None
    if "space" not in loaded.user_attrs:
        raise UserError(f"study {study!r} was not created by snnprune (no space attached)")
    space = parse_space(loaded.user_attrs["space"], source=f"study {study}")
    if data_root is not None:  # the data folder is this machine's: not part of what the study means
        space = space.with_overrides(data_root=data_root)
    run_dir = out_folder(Path(out) / study)
    total = study_goal(loaded, space) if trials is None else _finished(loaded) + trials  # --trials: this worker's own
    try:
        run_worker(space, storage, study, run_dir, trials=trials, total=total, timeout=None, device=device,
                   quiet=True, progress=not (quiet or as_json))
    except KeyboardInterrupt:
        _interrupted()
    summary = summarize(optuna.load_study(study_name=study, storage=handle), storage=storage, run_dir=run_dir)
    _finish(summary, as_json)
