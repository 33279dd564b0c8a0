"""The Optuna backend: a multi-objective study over a search space, resumable, shareable.

The space travels inside the study (a user attribute), so `worker` needs only the storage and
the study name to join from another machine. Trials record their config, every metric, the
artifact paths and, when multi-fidelity stops them, their partial values (state PRUNED). A
trial that diverges or raises is FAIL with its reason, and the study goes on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from snnprune.errors import UserError, make_folder
from snnprune.spaces import SearchSpace, load_space, parse_space

from ._cache import DenseCache
from ._fidelity import RungStore
from ._gate import _finished, _room, _stop_at
from ._interrupt import USER_INTERRUPT, InterruptFlag, requeue_interrupted, sigint_ignored, stop_workers, watch_parent
from ._notes import check_data, device_note, goal_met_note, resume_note, say
from ._partial import PartialVectors
from ._progress import StudyProgress
from ._promote import (
    RESUME_CHECKPOINT,
    RESUMES,
    drop_resumed_checkpoint,
    make_promoter,
    paused_note,
    promoted_numbers,
    rung_attr,
    waiting_resumes,
)
from ._resume import check_resumable, record_space
from ._rundir import claim_run_dir, display_storage, refuse_other_study, resolve_storage, run_id
from ._runner import RungPolicy, TrialRuntime, run_trial
from ._storage import open_storage, redact, retried_failures
from ._suggest import suggest
from ._trial import TrialConfig

__all__ = ["TrialFailed", "quiet_optuna", "make_objective", "make_runtime", "make_sampler", "open_study", "optimize",
           "run_worker", "summarize"]



#: Trials of this process stopped by Ctrl-C: Optuna's failure warnings about them are dropped
#: (the CLI says once that the running trials were queued again).
_INTERRUPTED: set[int] = set()


def _no_trial_failed_traceback(record: logging.LogRecord) -> bool:
    """A `TrialFailed` is expected and recorded (``fail_reason``, ``traceback`` user attributes):
    Optuna's warning about it keeps its line but not the traceback. A trial stopped by Ctrl-C
    gets no warning at all."""
    if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
        return False
    if any(record.getMessage().startswith(f"Trial {number} failed") for number in _INTERRUPTED):
        return False
    if record.exc_info and isinstance(record.exc_info[1], TrialFailed):
        record.exc_info = None
        record.exc_text = None
    return True


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Our bar and summary say what matters; Optuna's per-trial log lines and its notes on
    the experimental APIs we rely on (metric names, grouped TPE) would drown them."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial_log = logging.getLogger("optuna.study._optimize")
    trial_log.addFilter(_no_trial_failed_traceback)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            yield
        finally:
            trial_log.removeFilter(_no_trial_failed_traceback)
            optuna.logging.set_verbosity(level)


class TrialFailed(Exception):
    """A trial that could not finish (diverged, raised): recorded as FAIL, the study goes on."""


def make_sampler(space: SearchSpace, salt: int = 0) -> optuna.samplers.BaseSampler:
    """TPE, NSGA-II or random, seeded from the space (constraints: `record_constraints`); with
    rungs it sees a stopped or paused trial by its partial vector (`PartialVectors`).

    ``salt`` (the trials already in the study, plus a worker index) keeps a resumed study or
    a second worker from replaying the same parameters the seed gave the first time.
    """
    seed = (int(space.seed) + 7919 * int(salt)) % (2**32)
    sampler: optuna.samplers.BaseSampler
    if space.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif space.sampler == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(multivariate=True, group=True,
                                             n_startup_trials=startup_trials(space.trials), seed=seed)
    if space.rungs.enabled:
        return PartialVectors(sampler)  # a trial stopped at a rung still says where the front is
    return sampler


def constraint_values(space: SearchSpace, metrics: dict[str, Any]) -> dict[str, float]:
    """How far a trial breaks each constraint of the space (0 where it holds), keyed by its text.

    Recorded on the trial with ``Trial.set_constraint`` (`record_constraints`), which Optuna 5's
    samplers and ``best_trials`` read whatever the sampler: a sampler's ``constraints_func`` (what
    this replaced) is deprecated, printed a warning per search, and random search had none, so
    its front kept trials that broke the constraints.
    """
    out = {}
    for c in space.constraints:
        measured = float(metrics[c.metric])
        out[str(c)] = 0.0 if c.holds(measured) else abs(measured - c.value) + 1e-9
    return out


def record_constraints(trial: optuna.Trial, violations: dict[str, float]) -> None:
    """Store the constraint values on a running trial (and, for the reports, as a user attribute)."""
    trial.set_user_attr("constraint_violation", list(violations.values()))
    for key, value in violations.items():
        trial.set_constraint(key, value)


def startup_trials(trials: int) -> int:
    """Random trials before TPE models the front: a quarter of the budget, between 4 and 10.

    Optuna's fixed 10 leaves a 16-trial search (a typical CPU budget) only 6 guided trials,
    little better than random search; large budgets keep Optuna's 10.
    """
    return max(4, min(10, -(-int(trials) // 4)))


def open_study(space: SearchSpace, storage: str, *, study: str | None = None, worker: int = 0) -> optuna.Study:
    """Create the study (or load it to resume), label its metrics, store the space in it."""
    name = study or space.study
    backend = open_storage(storage)
    try:
        existing = len(optuna.load_study(study_name=name, storage=backend).trials)
    except KeyError:
        existing = 0
    handle = optuna.create_study(study_name=name, storage=backend, directions=list(space.directions),
                                 sampler=make_sampler(space, salt=existing + 1000 * worker),
                                 load_if_exists=True)
    if list(handle.directions) != [optuna.study.StudyDirection[d.upper()] for d in space.directions]:
        raise UserError(f"study {name!r} in {redact(storage)} has other objectives; choose another --study")
    if handle.metric_names is None:
        handle.set_metric_names(list(space.metric_names))
    check_resumable(handle, space, f"study {name!r} in {redact(storage)}")
    if "space" not in handle.user_attrs:
        handle.set_user_attr("space", space.to_dict())
    return handle


#: The study's user attribute with the trials the last search asked for in all (``--trials``).
GOAL_ATTR = "trials_goal"


def record_goal(study: optuna.Study, total: int) -> None:
    """Keep in the study how many trials its search asks for in all, so that a worker joining it
    without ``--trials`` works towards that total, not the space file's ``trials``."""
    if study.user_attrs.get(GOAL_ATTR) != int(total):
        study.set_user_attr(GOAL_ATTR, int(total))


def study_goal(study: optuna.Study, space: SearchSpace) -> int:
    """The trials a study's search asked for in all (`record_goal`); the space's for an older study."""
    goal = study.user_attrs.get(GOAL_ATTR)
    return goal if isinstance(goal, int) and not isinstance(goal, bool) and goal >= 1 else space.trials


def make_runtime(space: SearchSpace, run_dir: Path, *, device: str = "auto", quiet: bool = True,
                 cache_dir: Path | None = None, scope: str | None = None) -> TrialRuntime:
    """What the trials of this process share; ``scope``: whose rung records count (`rung_scope`)."""
    run_dir = Path(run_dir)
    return TrialRuntime(
        run_dir=run_dir,
        cache=DenseCache(cache_dir or run_dir.parent / ".cache"),
        rung_store=RungStore(run_dir / "rungs.db") if space.rungs.enabled else None,
        rungs=RungPolicy(tuple(space.rungs.epochs), space.rungs.dominated_fraction, space.rungs.min_trials,
                         space.rungs.mode, space.rungs.margin),
        directions=space.directions, device=device, quiet=quiet, scope=scope,
    )


def rung_scope(study: optuna.Study) -> str:
    """The key of a study's rung records: its name and run id, so a study deleted and created
    again under the same name is not judged against the old one's trials."""
    return f"{study.study_name}/{run_id(study)}"


def trial_config(space: SearchSpace, pruner: str, sparsity: float, hp: dict[str, Any], number: int,
                 study: str) -> TrialConfig:
    return TrialConfig(pruner=pruner, sparsity=sparsity, hyperparameters=hp, model=space.model.to_dict(),
                       data=space.data.to_dict(), budget=asdict(space.budget), seed=space.seed,
                       objectives=space.metric_names, study=study, trial=number)


def make_objective(space: SearchSpace, runtime: TrialRuntime, study_name: str):
    """The function Optuna calls per trial (a promotion's trial resumes its paused trial)."""
    def objective(trial: optuna.Trial) -> list[float]:
        pruner, sparsity, hp = suggest(trial, space)
        config = trial_config(space, pruner, sparsity, hp, trial.number, study_name)
        trial.set_user_attr("config", config.to_dict())
        line = trial.user_attrs.get(RESUMES, trial.number)  # the rung records of a paused line
        try:
            result = run_trial(config, runtime, trial_key=f"{line}", resume=trial.user_attrs.get(RESUME_CHECKPOINT),
                               on_rung=lambda epoch, values: trial.set_user_attr(rung_attr(epoch), values))
        except Exception as exc:  # recorded, never fatal to the study
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            trial.set_user_attr("fail_reason", reason)
            if not isinstance(exc, (UserError, ArithmeticError)) and "Diverged" not in type(exc).__name__:
                trial.set_user_attr("traceback", traceback.format_exc()[-2000:])
            raise TrialFailed(reason) from exc
        metrics = {k: v for k, v in result.metrics.items() if _jsonable(v)}
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("dense", result.dense)
        trial.set_user_attr("artifacts", result.artifacts)
        trial.set_user_attr("cache_hit", result.cache_hit)
        values = [float(metrics[name]) for name in space.metric_names]
        record_constraints(trial, constraint_values(space, metrics))
        if result.stopped_at is not None:
            trial.set_user_attr("stopped_at_rung", result.stopped_at)
            trial.set_user_attr("partial_values", values)
            if result.paused_checkpoint:
                trial.set_user_attr("paused_checkpoint", result.paused_checkpoint)
                if result.paused_unjudged:
                    trial.set_user_attr("paused_unjudged", True)
                raise optuna.TrialPruned(f"paused at fine-tune epoch {result.stopped_at}")
            raise optuna.TrialPruned(f"dominated at fine-tune epoch {result.stopped_at}")
        if any(not math.isfinite(v) for v in values):
            trial.set_user_attr("fail_reason", f"non-finite objective values {values}")
            raise TrialFailed("non-finite objective values")
        return values
    return objective


def _jsonable(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool, type(None), dict, list))


def run_worker(space: SearchSpace, storage: str, study_name: str, run_dir: Path, *, trials: int | None,
               total: int, timeout: float | None, device: str = "auto", quiet: bool = True,
               progress: bool = False, threads: int | None = None, worker: int = 0) -> None:
    """One process's share of a study: run trials until ``total`` have finished, or, with
    ``trials``, exactly that many in this process (`worker --trials N`)."""
    with quiet_optuna():
        _run_worker(space, storage, study_name, run_dir, trials=trials, total=total, timeout=timeout,
                    device=device, quiet=quiet, progress=progress, threads=threads, worker=worker)


def resumes_left(study: optuna.Study, space: SearchSpace, run_dir: Path) -> bool:
    """Once the configurations are done: whether trials that resume paused ones are still to run.

    A queued one, the retry of one whose process died (found stale here, failed and queued again
    once), or a promotion due now (queued by this call): a re-run after a kill must run them, as
    the killed run would have before it ended."""
    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    if waiting_resumes(study.get_trials(deepcopy=False)):
        return True
    scope = rung_scope(study)
    runtime = make_runtime(space, run_dir, scope=scope)
    return make_promoter(study, runtime.rung_store, runtime.rungs, runtime.directions, scope)()


def _run_worker(space: SearchSpace, storage: str, study_name: str, run_dir: Path, *, trials: int | None,
                total: int, timeout: float | None, device: str, quiet: bool, progress: bool,
                threads: int | None, worker: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)
    check_data(space)
    refuse_other_study(run_dir, storage)
    study = open_study(space, storage, study=study_name, worker=worker)
    claim_run_dir(run_dir, storage, study)
    runtime = make_runtime(space, run_dir, device=device, quiet=quiet, scope=rung_scope(study))
    done = _finished(study)
    if done >= total and not resumes_left(study, space, run_dir):
        return
    deadline = time.monotonic() + timeout if timeout is not None else None
    bar = StudyProgress(total, done, study_name, quiet=not progress, count=_finished)
    objective = make_objective(space, runtime, study_name)
    promote = make_promoter(study, runtime.rung_store, runtime.rungs, runtime.directions, rung_scope(study))
    started: list[int] = []  # this process's trials, the last one running

    def tracked(trial: optuna.Trial) -> list[float]:
        started.append(trial.number)
        try:
            return objective(trial)
        except KeyboardInterrupt:
            _INTERRUPTED.add(trial.number)
            trial.set_user_attr("fail_reason", USER_INTERRUPT)  # Optuna then records it as FAIL
            raise

    # `worker --trials N` runs N trials in this process, whatever the others run (the shared
    # count stopped two such workers at N in all); otherwise the study's count gates every trial
    gate = [_stop_at(total, deadline, on_wait=bar.waiting, promote=promote)] if trials is None else []
    def queue_promotion(_study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        # not after this process's last trial: a queued promotion nobody asks for would wait in
        # the study as a WAITING trial; left paused, the next worker or search promotes it
        if (trials is not None and len(started) >= trials) or (deadline is not None and time.monotonic() >= deadline):
            return
        promote()

    # without the gate, promotions are still queued after each trial (the gate queues its own)
    promoted = [] if gate else [queue_promotion]
    try:
        with InterruptFlag() as flag:
            if gate and not _room(study, total, deadline, on_wait=bar.waiting, promote=promote):
                return
            if not gate:
                promote()
            study.optimize(tracked, n_trials=trials, timeout=timeout, catch=(TrialFailed,),
                           callbacks=[bar, _drop_checkpoint, *promoted, *gate, flag.check], gc_after_trial=True)
    except KeyboardInterrupt:
        with sigint_ignored():
            requeue_interrupted(study, started[-1:])
        raise
    finally:
        bar.close()



def _drop_checkpoint(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """After Optuna has recorded a trial that resumed a paused one: its checkpoint has served."""
    drop_resumed_checkpoint(trial)


def _worker_entry(space_dict: dict, source: str, storage: str, study_name: str, run_dir: str,
                  total: int, ends: float | None, device: str, threads: int, worker: int, parent: int) -> None:
    """A ``--workers`` process. ``ends`` is the search's deadline (wall clock): a ``--timeout``
    counted from each worker's start, after its imports, let trials start seconds late."""
    space = parse_space(space_dict, source=source)
    timeout = None if ends is None else max(1e-3, ends - time.time())
    try:
        watch_parent(parent)
        run_worker(space, storage, study_name, Path(run_dir), trials=None, total=total, timeout=timeout,
                   device=device, quiet=True, progress=False, threads=threads, worker=worker)
    except KeyboardInterrupt:
        sys.exit(130)  # its trial is recorded and queued again; the parent says so, once


def as_space(space: SearchSpace | str | os.PathLike[str]) -> SearchSpace:
    """A `SearchSpace`, or a YAML path / built-in name loaded as one (what the CLI takes)."""
    return space if isinstance(space, SearchSpace) else load_space(space)


def whole(value: Any, option: str) -> int:
    """A count of at least 1 from Python callers too (``trials=1.5`` ran 2 trials)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{option} must be a whole number >= 1, got {value!r}")
    if value < 1:
        raise UserError(f"{option} must be >= 1, got {value}")
    return value


def check_timeout(timeout: float | None) -> None:
    """A finite number of seconds > 0, or None (as a space file's ``timeout``)."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not math.isfinite(timeout) or timeout <= 0):
        raise UserError(f"--timeout must be a finite number of seconds > 0, got {timeout}")


def optimize(space: SearchSpace | str | os.PathLike[str], *, run_dir: Path, storage: str | None = None,
             study: str | None = None, trials: int | None = None, timeout: float | None = None, workers: int = 1,
             device: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) a search until ``trials`` trials have finished; returns `summarize`."""
    space = as_space(space)
    run_dir = Path(run_dir)
    name = study or space.study
    total = whole(trials if trials is not None else space.trials, "--trials")
    whole(workers, "--workers")
    check_timeout(timeout)
    notes: list[str] = []
    on_cpu = device_note(space, device)  # an unknown device is bad input, not a study of failed trials
    check_data(space)
    say(notes, on_cpu)
    make_folder(run_dir, "run folder")  # a file in its place is one line
    storage = resolve_storage(run_dir, storage, workers=workers)
    with quiet_optuna():
        handle = open_study(space, storage, study=name)  # fails early on a bad storage
        claim_run_dir(run_dir, storage, handle)
        record_goal(handle, total)
        resumed = resume_note(handle, space)
        record_space(handle, space)
        finished = _finished(handle)
        more = finished >= total and resumes_left(handle, space, run_dir)  # promotions of a killed run
    say(notes, resumed)
    say(notes, None if more else goal_met_note(name, finished, total))
    timeout = timeout if timeout is not None else space.timeout
    died = None
    if workers == 1:
        run_worker(space, storage, name, run_dir, trials=None, total=total, timeout=timeout, device=device,
                   quiet=True, progress=not quiet)
    else:  # never more processes than trials left: each would start one (3 ran for --trials 2)
        died = _run_processes(space, storage, name, run_dir, total, timeout, device,
                              max(1, min(workers, total - finished)), quiet)
        say(notes, died)
    say(notes, paused_note(run_dir))
    final = optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))
    summary = summarize(final, storage=storage, run_dir=run_dir, notes=notes)
    if died is not None and timeout is None and _finished(final) < total:
        summary["incomplete"] = True  # a dead worker left the study short of its total
    return summary


def _run_processes(space: SearchSpace, storage: str, name: str, run_dir: Path, total: int,
                   timeout: float | None, device: str, workers: int, quiet: bool) -> str | None:
    """Run ``workers`` processes on the study; a note on those that did not end cleanly."""
    ctx = multiprocessing.get_context("spawn")
    ends = time.time() + timeout if timeout is not None else None
    threads = max(1, (os.cpu_count() or 1) // workers)
    procs = [ctx.Process(target=_worker_entry, args=(space.to_dict(), space.source, storage, name, str(run_dir),
                                                      total, ends, device, threads, index + 1, os.getpid()),
                         daemon=False)
             for index in range(workers)]
    for p in procs:
        p.start()
    study = optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))
    bar = StudyProgress(total, _finished(study), f"{name} ({workers} workers)", quiet=quiet)
    flag = InterruptFlag()
    try:
        with flag:
            while any(p.is_alive() for p in procs):
                for p in procs:
                    p.join(timeout=2.0)
                    flag.check()
                bar.sync(study, _finished(study))
    except KeyboardInterrupt:
        with sigint_ignored():
            stop_workers(procs)  # each records its running trial and queues it again
        raise
    finally:
        bar.close()
        for p in procs:
            if p.is_alive():
                p.terminate()
    return worker_exit_note([p.exitcode for p in procs])


def worker_exit_note(codes: Sequence[int | None]) -> str | None:
    """One line for worker processes that did not end cleanly, or None.

    It was a RuntimeError traceback and no summary, even when the other workers had retried
    the dead one's trial and finished the study: the summary says what the study holds, and the
    command exits 1 only if it is short of its total (`optimize`)."""
    bad = [(index + 1, code) for index, code in enumerate(codes) if code not in (0, None)]
    if not bad:
        return None
    shown = ", ".join(f"worker {index} " + (f"killed by signal {-code}" if code < 0 else f"exit code {code}")
                      for index, code in bad)
    return (f"{shown}; a trial it was running is failed as interrupted and retried once, "
            "by another worker or the next run")


def summarize(study: optuna.Study, *, storage: str, run_dir: Path, notes: Sequence[str] = ()) -> dict[str, Any]:
    """Counts by state and the Pareto front, as plain data, with the notes the search printed."""
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    retried = len(retried_failures(trials))  # dead or interrupted, and queued again: not failures
    paused = len(promoted_numbers(trials))  # PRUNED, but went on as a later trial (promote mode)
    try:
        front = study.best_trials
    except ValueError:
        front = []
    out = {
        "study": study.study_name, "storage": display_storage(storage), "run_dir": str(run_dir),
        "metrics": study.metric_names, "directions": [d.name.lower() for d in study.directions],
        "trials": len(trials), "complete": states.count(TrialState.COMPLETE),
        "pruned": states.count(TrialState.PRUNED) - paused, "failed": states.count(TrialState.FAIL) - retried,
        "retried": retried, "paused": paused,
        "pareto": [{"trial": t.number, "values": t.values, "pruner": t.user_attrs.get("config", {}).get("pruner"),
                    "sparsity": t.user_attrs.get("metrics", {}).get("sparsity"),  # reached, as report.md
                    "target_sparsity": t.user_attrs.get("config", {}).get("sparsity")} for t in front],
        "notes": list(notes),
    }
    if out["trials"] and out["complete"] == 0 and out["pruned"] == 0 and out["paused"] == 0:
        reasons = sorted({t.user_attrs.get("fail_reason", "unknown") for t in trials})
        out["all_failed"] = f"every trial failed: {'; '.join(reasons)[:300]}"
    return out
