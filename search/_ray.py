"""The Ray Tune backend: the same study, the same trials, run on a Ray cluster.

Ray's `OptunaSearch` drives an Optuna study that `open_study` created (directions, metric names
and the space attached), so both backends write the same study and every tool that reads one
reads the other. A trial means the same thing in both: the define-by-run function passed to
`OptunaSearch` calls `suggest` and `trial_config`, records the config on the Optuna trial, and
hands it to the Tune trainable, which runs `run_trial` on a worker and reports once.

`OptunaSearch` alone would mark every trial COMPLETE (it cannot prune multi-objective trials)
and record no user attributes, so `_StudySearch` overrides its completion hook: it copies the
trial's attributes (config, metrics, artifacts, fail reason...) into the study and tells the
state the Optuna backend would: COMPLETE, PRUNED for trials stopped by multi-fidelity (with
their partial values as attributes) or FAIL.

    summary = ray_optimize(load_space("demo"), run_dir=Path("runs/demo"), trials=8)

In ``promote`` mode the searcher does what `_room` does for the Optuna backend: before each new
trial it queues a promotion if one is due (Optuna's ``ask`` then takes it), and it ends the run
itself (Tune's samples are unbounded) once the configurations are done and nothing is queued or
running; a promotion's trial reaches the trainable with the checkpoint to resume.

Crash and resume work as with the Optuna backend. Trials run in Ray workers, so the driver keeps
the heartbeats of the trials it has open (a thread, every interval of ``SNNPRUNE_HEARTBEAT``).
Before it starts and before each new trial, the driver fails the trials whose heartbeat went
stale (a driver killed with ``kill -9``), with their reason, and queues each again once with the
same parameters (`RetryOnce`), exactly what `Study.optimize` does for the Optuna backend. The
study is the only state a resume reads: each run starts a fresh Tune run (Tune's own experiment
folder, possibly left half-written by the kill, is never restored).

On a multi-node cluster the run folder (artifacts, dense cache, rung store) and the storage must
be reachable from every node: a shared disk and a PostgreSQL/MySQL URL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from snnprune.errors import UserError, first_line, make_folder
from snnprune.spaces import SearchSpace, parse_space

from ._gate import _counted, _finished
from ._interrupt import USER_INTERRUPT, requeue_interrupted
from ._notes import check_data, goal_met_note, resume_note, say
from ._optuna import (
    _jsonable,
    as_space,
    check_timeout,
    constraint_values,
    make_runtime,
    make_sampler,
    open_study,
    quiet_optuna,
    record_constraints,
    record_goal,
    resumes_left,
    rung_scope,
    summarize,
    trial_config,
    whole,
)
from ._progress import polled_bar
from ._promote import (
    RESUME_CHECKPOINT,
    RESUMES,
    drop_resumed_checkpoint,
    is_resume,
    make_promoter,
    paused_note,
    rung_attr,
    waiting_resumes,
)
from ._resume import record_space
from ._rundir import claim_run_dir, resolve_storage
from ._runner import run_trial
from ._storage import open_storage, redact
from ._suggest import suggest
from ._trial import TrialConfig

__all__ = ["ray_optimize"]

logger = logging.getLogger(__name__)

#: Result key carrying the trial's Optuna attributes and outcome, as a JSON string (Tune
#: flattens nested dicts in results; a string travels intact).
PAYLOAD = "snnprune_payload"
#: Config key carrying the `TrialConfig` from the define-by-run function to the trainable.
CONFIG = "snnprune_config"
#: Config key of a promotion's trial: the paused line it goes on and the checkpoint.
RESUME = "snnprune_resume"


class _DefineByRun:
    """`OptunaSearch`'s ``space``: samples with `suggest`, records the config on the trial.

    A class rather than a closure so that Tune can pickle the searcher into its checkpoints.
    """

    def __init__(self, space_dict: dict[str, Any], source: str, study: str) -> None:
        self.space_dict, self.source, self.study = space_dict, source, study

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        space = parse_space(self.space_dict, source=self.source)
        pruner, sparsity, hp = suggest(trial, space)
        config = trial_config(space, pruner, sparsity, hp, trial.number, self.study)
        trial.set_user_attr("config", config.to_dict())
        if trial.user_attrs.get(RESUMES) is None:
            return {CONFIG: config.to_dict()}
        return {CONFIG: config.to_dict(),
                RESUME: {"line": trial.user_attrs[RESUMES], "checkpoint": trial.user_attrs.get(RESUME_CHECKPOINT)}}


def _trainable(tune_config: dict[str, Any], *, space_dict: dict[str, Any], source: str, run_dir: str,
               device: str, scope: str | None = None) -> None:
    """One Tune trial: rebuild the space, run the config, report once (also on failure)."""
    import torch
    from ray import tune

    space = parse_space(space_dict, source=source)
    torch.set_num_threads(max(1, int(space.resources.cpu)))
    config = TrialConfig.from_dict(tune_config[CONFIG])
    runtime = make_runtime(space, Path(run_dir), device=device, quiet=True, scope=scope)
    rungs: dict[str, list[float]] = {}
    resume = tune_config.get(RESUME) or {}
    try:
        result = run_trial(config, runtime, trial_key=f"{resume.get('line', config.trial)}",
                           resume=resume.get("checkpoint"),
                           on_rung=lambda epoch, values: rungs.__setitem__(rung_attr(epoch), list(values)))
    except Exception as exc:  # recorded as FAIL with its reason, never fatal (as with the Optuna backend)
        attrs: dict[str, Any] = {"fail_reason": f"{type(exc).__name__}: {exc}".splitlines()[0][:300], **rungs}
        if not isinstance(exc, (UserError, ArithmeticError)) and "Diverged" not in type(exc).__name__:
            attrs["traceback"] = traceback.format_exc()[-2000:]
        nans = {name: float("nan") for name in space.metric_names}  # Tune insists on the metrics
        tune.report({**nans, PAYLOAD: json.dumps({"attrs": attrs, "outcome": "fail"})})
        return
    tune.report(_report(space, result, rungs))


def _report(space: SearchSpace, result: Any, rungs: dict[str, list[float]]) -> dict[str, Any]:
    """The Tune result: scalar metrics for Tune's own logs, and the payload for the study."""
    metrics = {k: v for k, v in result.metrics.items() if _jsonable(v)}
    values = [float(metrics[name]) for name in space.metric_names]
    attrs: dict[str, Any] = {
        "metrics": metrics, "dense": result.dense, "artifacts": result.artifacts, "cache_hit": result.cache_hit,
        "constraints": constraint_values(space, metrics),  # recorded by the searcher, as the Optuna backend does
        **rungs,
    }
    outcome = "complete"
    if result.stopped_at is not None:
        attrs.update(stopped_at_rung=result.stopped_at, partial_values=values)
        if result.paused_checkpoint:
            attrs["paused_checkpoint"] = result.paused_checkpoint
            if result.paused_unjudged:
                attrs["paused_unjudged"] = True
        outcome = "pruned"
    elif any(not math.isfinite(v) for v in values):
        attrs["fail_reason"] = f"non-finite objective values {values}"
        outcome = "fail"
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    payload = json.dumps({"attrs": attrs, "outcome": outcome, "values": values}, default=str)
    return {**scalars, "stopped_at_rung": result.stopped_at if result.stopped_at is not None else -1,
            PAYLOAD: payload}


def _recover_interrupted(study: optuna.Study) -> None:
    """Fail the trials whose heartbeat went stale and queue each again once, as `Study.optimize`
    does before each trial for the Optuna backend: the storage from `open_storage` knows the
    grace period, records the reason and carries the retry callback (`RetryOnce`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _searcher_class() -> type:
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    class _StudySearch(OptunaSearch):
        """`OptunaSearch` that records attributes and tells PRUNED/FAIL like the Optuna backend,
        and keeps heartbeats for its open trials (see `_heartbeats`)."""

        def suggest(self, trial_id: str) -> dict | str | None:
            if self.deadline is not None and time.monotonic() >= self.deadline and trial_id not in self._ot_trials:
                return Searcher.FINISHED  # --timeout: start nothing more; the running trials finish
            new = trial_id not in self._ot_trials
            if new:  # a retry of a dead trial is WAITING: the ask below takes it first
                _recover_interrupted(self._ot_study)
                if self.promotion is not None and not self._promote_or_more():
                    # the configurations are done: wait for the running trials (one may make a
                    # paused trial promotable), then end; Tune's samples are unbounded here
                    return None if self.open_trials() else Searcher.FINISHED
            with warnings.catch_warnings():
                # heartbeats come from `_heartbeats`, not from `Study.optimize`: as meant
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                config = super().suggest(trial_id)
            return config

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.interrupt = _TuneInterrupt()
            self.deadline: float | None = None  # time.monotonic() after which no trial starts
            #: promote mode: (rung store, policy, directions, scope, configurations to finish);
            #: plain data, as Tune pickles the searcher into its checkpoints
            self.promotion: tuple[Any, Any, list[str], str, int] | None = None

        def _promote_or_more(self) -> bool:
            """Whether to ask for a trial: a promotion was queued now or before, or configurations
            are still to start (the Optuna backend's `_room`, without waiting)."""
            store, policy, directions, scope, total = self.promotion
            if make_promoter(self._ot_study, store, policy, directions, scope)():
                return True
            trials = self._ot_study.get_trials(deepcopy=False)
            running = sum(1 for t in trials if t.state == TrialState.RUNNING and not is_resume(t))
            return bool(waiting_resumes(trials)) or _counted(trials) + running < total

        @property
        def study(self) -> optuna.Study:
            return self._ot_study

        def trial_numbers(self) -> list[int]:
            """The study's numbers of every trial this searcher asked for."""
            return [t.number for t in self._ot_trials.values()]

        def open_trials(self) -> list[optuna.Trial]:
            """The study's trials this searcher asked for and has not told yet."""
            return [t for tid, t in list(self._ot_trials.items()) if tid not in self._completed_trials]

        def beat(self) -> None:
            self._record_heartbeats(self.open_trials())

        def _record_heartbeats(self, trials: list[optuna.Trial]) -> None:
            storage = self._ot_study._storage
            if is_heartbeat_enabled(storage):
                for trial in trials:
                    storage.record_heartbeat(trial._trial_id)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            raw = (result or {}).get(PAYLOAD)
            payload = json.loads(raw) if raw else {"attrs": {}, "outcome": "fail"}
            ot_trial = self._ot_trials[trial_id]
            attrs = payload.get("attrs", {})
            if (error or not raw) and self.interrupt.set:
                attrs["fail_reason"] = USER_INTERRUPT
            elif error or not raw:
                attrs.setdefault("fail_reason", "the Ray trial ended without a result: its worker died or "
                                                "Tune stopped it; see its error.txt")
            constraints = attrs.pop("constraints", None)
            for key, value in attrs.items():
                ot_trial.set_user_attr(key, value)
            if constraints:
                record_constraints(ot_trial, constraints)
            outcome = "fail" if error else payload.get("outcome", "fail")
            if outcome == "complete":
                told = self._ot_study.tell(ot_trial, payload["values"], state=TrialState.COMPLETE)
            else:
                told = self._ot_study.tell(ot_trial, state=TrialState.PRUNED if outcome == "pruned"
                                           else TrialState.FAIL)
            self._completed_trials.add(trial_id)
            drop_resumed_checkpoint(told)  # recorded: the checkpoint it resumed from has served

        def close_unfinished(self) -> None:
            """Trials Tune never completed (an interrupt) must not stay RUNNING in the study."""
            for trial_id in list(self._ot_trials):
                if trial_id not in self._completed_trials:
                    self.on_trial_complete(trial_id, error=True)

    return _StudySearch


def _check_resources(space: SearchSpace, cluster: dict[str, float]) -> int:
    """How many trials fit at once; a request the cluster can never meet is a `UserError`."""
    cpu, gpu = float(space.resources.cpu), float(space.resources.gpu)
    have_cpu, have_gpu = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    if gpu > 0 and have_gpu == 0:
        raise UserError(f"the space asks for GPU {gpu:g} per trial but the Ray cluster has none; "
                        "set resources.gpu: 0 or join a cluster with GPUs (--address)")
    if gpu > have_gpu:
        raise UserError(f"the space asks for GPU {gpu:g} per trial but the Ray cluster has {have_gpu:g}")
    if cpu > have_cpu:
        raise UserError(f"the space asks for {cpu:g} CPUs per trial but the Ray cluster has {have_cpu:g}")
    fits = int(have_cpu // cpu) if cpu > 0 else int(have_cpu)
    if gpu > 0:
        fits = min(fits, int(have_gpu // gpu))
    return max(1, fits)


def _start_ray(address: str | None) -> bool:
    """Start or join Ray unless this process already did; True when we must shut it down.

    Quiet in every mode: the study bar is the progress, the study holds each trial's outcome and
    traceback, so the workers' output stays in Ray's session logs (``log_to_driver=False``: it
    also held a SystemExit traceback from every idle worker Ray stops) and Ray logs warnings only.
    A local cluster keeps Ray's default, token authentication, without Ray's warning that it
    chose it (`_TokenDefaultNote`). Its workers run at niceness 0, not Ray's 15: at 15 a trial
    got 3 % of a core beside two busy processes on 2 cores, a 20x slower search than the Optuna
    backend on the same busy machine (``RAY_worker_niceness`` set by the user wins; a cluster
    joined by ``address`` keeps its own setting).
    """
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address:  # a cluster we start: trials at the priority the Optuna backend's have (below)
        os.environ.setdefault("RAY_worker_niceness", "0")
    note = logging.getLogger("ray._private.authentication.authentication_token_setup")
    hide = _TokenDefaultNote()
    note.addFilter(hide)
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=True)
    except ConnectionError as exc:
        raise UserError(f"cannot reach the Ray cluster at {address}: {str(exc).splitlines()[0][:160]}") from None
    finally:
        note.removeFilter(hide)
    return True


class _TokenDefaultNote(logging.Filter):
    """Drops Ray's warning that a new local cluster has token authentication, its default (set
    ``RAY_AUTH_MODE`` to choose). Its warning that authentication is *off* is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


def ray_optimize(space: SearchSpace | str | os.PathLike[str], *, run_dir: Path, storage: str | None = None,
                 trials: int | None = None, timeout: float | None = None, address: str | None = None,
                 device: str = "auto", quiet: bool = False, study: str | None = None,
                 max_concurrent: int | None = None) -> dict[str, Any]:
    """Run (or resume) a search on Ray until ``trials`` trials have finished; returns `summarize`.

    ``address``: None starts a local Ray, ``"auto"`` joins the cluster of this node,
    ``"ray://host:10001"`` connects a client. Each trial asks ``space.resources`` of the cluster,
    and as many trials run at once as fit, or ``max_concurrent`` if fewer (``--workers``): a
    shared cluster, or a sampler that should see results before it proposes more.
    """
    import ray

    space = as_space(space)
    name = study or space.study
    total = whole(trials if trials is not None else space.trials, "--trials")
    if max_concurrent is not None:
        whole(max_concurrent, "--workers")
    check_timeout(timeout)
    run_dir = Path(run_dir).resolve()
    if not address:  # a cluster's nodes have their own data folders: their trials will say
        check_data(space)
    make_folder(run_dir, "run folder")  # after the checks: bad input leaves no folder behind
    storage = resolve_storage(run_dir, storage)
    with quiet_optuna():
        handle = open_study(space, storage, study=name)  # fails early on a bad storage or other objectives
        scope = rung_scope(handle)
        claim_run_dir(run_dir, storage, handle)
        record_goal(handle, total)
        resumed = resume_note(handle, space)
        record_space(handle, space)
        remaining = total - _finished(handle)  # a dead trial is RUNNING, its retry WAITING: neither counts
        if remaining > 0:  # as the Optuna backend, which checks before each trial it runs
            _recover_interrupted(handle)  # trials of a killed run: FAIL, and queued again once
        more = remaining <= 0 and resumes_left(handle, space, run_dir)  # promotions of a killed run
    notes: list[str] = []
    say(notes, resumed)
    say(notes, None if more else goal_met_note(name, total - remaining, total))
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the old reporter honours verbose=0
    run = remaining > 0 or more
    started = _start_ray(address) if run else False
    try:
        if run:
            fits = _check_resources(space, ray.cluster_resources())
            concurrent = fits if max_concurrent is None else min(fits, max_concurrent)
            tuner, searcher = _make_tuner(space, name, storage, run_dir, samples=remaining, concurrent=concurrent,
                                          timeout=timeout if timeout is not None else space.timeout,
                                          device=device, scope=scope, salt=len(handle.get_trials(deepcopy=False)),
                                          total=total)
            try:
                with quiet_optuna(), _quiet_tune(), _heartbeats(searcher), _watch_interrupt(searcher.interrupt), \
                        polled_bar(_reader(storage, name), _finished, total, f"{name} (ray)", quiet=quiet):
                    tuner.fit()
            except KeyboardInterrupt:  # a second Ctrl-C skips Tune's own wind-down
                searcher.interrupt.set = True
                raise
            finally:
                searcher.close_unfinished()
                if searcher.interrupt.set:  # Ctrl-C: queue what Tune cut short again, as locally
                    with quiet_optuna():
                        requeue_interrupted(searcher.study, searcher.trial_numbers())
            if searcher.interrupt.set:
                raise KeyboardInterrupt
    finally:
        if started:
            ray.shutdown()
    say(notes, paused_note(run_dir))
    with quiet_optuna():
        final = optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))
    return summarize(final, storage=storage, run_dir=run_dir, notes=notes)


def _reader(storage: str, name: str) -> optuna.Study:
    """The study through a handle of its own, for the bar's thread (the searcher writes through its)."""
    with quiet_optuna():
        return optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))


def _make_tuner(space: SearchSpace, name: str, storage: str, run_dir: Path, *, samples: int, concurrent: int,
                timeout: float | None, device: str, scope: str, salt: int = 0, total: int = 0) -> tuple[Any, Any]:
    """The Tuner over our study, and its searcher (to close what Tune leaves open). ``salt`` (the
    trials already in the study) seeds the sampler apart from earlier runs: without it a resumed
    search replayed the random start-up of the first and ran the same parameters again."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    space_dict = _absolute_roots(space.to_dict())
    with quiet_optuna():  # it loads our study and says so
        searcher = _searcher_class()(
            space=_DefineByRun(space_dict, space.source, name), metric=list(space.metric_names),
            mode=[d[:3] for d in space.directions], sampler=make_sampler(space, salt=salt), study_name=name,
            storage=open_storage(storage))  # with heartbeats, grace period and retry callback
    # --timeout as in the Optuna backend: no trial starts after it, the running ones finish. Tune's
    # own time_budget_s would stop them mid-way, and they would end FAILED in the study.
    searcher.deadline = None if timeout is None else time.monotonic() + float(timeout)
    if space.rungs.enabled and space.rungs.mode == "promote":
        runtime = make_runtime(space, run_dir, device="cpu", scope=scope)
        searcher.promotion = (runtime.rung_store, runtime.rungs, list(space.directions), scope, total)
        samples = -1  # promotions are trials too: the searcher says when the run is over
    trainable = tune.with_parameters(_trainable, space_dict=space_dict, source=space.source,
                                     run_dir=str(run_dir), device=device, scope=scope)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": space.resources.cpu, "gpu": space.resources.gpu}),
        # the limiter caps concurrency; TuneConfig(max_concurrent_trials=) would wrap it a second time
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrent),
                                    num_samples=samples),
        run_config=tune.RunConfig(name=name, storage_path=str(run_dir / "ray"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    return tuner, searcher


@contextlib.contextmanager
def _heartbeats(searcher: Any) -> Iterator[None]:
    """Beat for the searcher's open trials every interval while Tune runs them. A thread of the
    driver, not of the trial: Tune owns the trials' processes, the driver owns their Optuna
    trials, and a killed driver is what leaves them RUNNING. Kept out of the searcher, which Tune
    pickles into its checkpoints."""
    storage = searcher._ot_study._storage
    if not is_heartbeat_enabled(storage):
        yield
        return
    interval = storage.get_heartbeat_interval()
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval):
            try:
                searcher.beat()
            except Exception as exc:  # a storage hiccup: the next beat may get through
                logger.warning("heartbeat not recorded: %s", redact(first_line(exc)[:160]))

    thread = threading.Thread(target=run, name="snnprune-heartbeats", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    """Tune logs where it wrote its files and how long it ran at INFO; our summary says both."""
    loggers = [logging.getLogger(n) for n in ("ray.tune", "ray.train")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


#: What Tune logs (logger ``ray.tune.tune``) when SIGINT stops a run, and what follows it: the
#: first marks the run interrupted; all three give way to our one line (their advice to resume
#: with ``Tuner.restore`` does not apply: the same snnprune command resumes).
_TUNE_INTERRUPT = "Stop signal received"
_TUNE_INTERRUPT_AFTER = ("Experiment has been interrupted", "Failed to fetch metrics")


class _TuneInterrupt(logging.Filter):
    """Notices Tune's own SIGINT handling (Tune replaces the handler during ``fit``)."""

    def __init__(self) -> None:
        super().__init__()
        self.set = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_TUNE_INTERRUPT):
            self.set = True
            return False
        return not (self.set and message.startswith(_TUNE_INTERRUPT_AFTER))


@contextlib.contextmanager
def _watch_interrupt(flag: _TuneInterrupt) -> Iterator[_TuneInterrupt]:
    loggers = [logging.getLogger(n) for n in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis")]
    for lg in loggers:
        lg.addFilter(flag)
    try:
        yield flag
    finally:
        for lg in loggers:
            lg.removeFilter(flag)


def _absolute_roots(space_dict: dict[str, Any]) -> dict[str, Any]:
    """Ray runs trials in their own folders: a relative data root must not depend on that."""
    root = space_dict.get("data", {}).get("root")
    if root and not Path(root).is_absolute() and Path(root).exists():
        space_dict = {**space_dict, "data": {**space_dict["data"], "root": str(Path(root).resolve())}}
    return space_dict
