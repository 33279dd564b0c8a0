"""Promotions in the study: a paused trial goes on as a new trial that resumes it.

In ``promote`` mode a paused trial is told PRUNED with its partial values, as a stopped one is
(the study stays plain Optuna, and nothing is left RUNNING between workers), and its pause is
recorded in the rung store. When a worker is free, `promote` asks the rung store for the first
paused trial the rule now lets go on and queues a WAITING trial with the same parameters and
three user attributes naming what it resumes (``resumes``: the paused line's first trial,
``resume_rung``, ``resume_checkpoint``). Optuna's ``ask`` (both backends) takes WAITING trials
first, so the promotion runs next, on whichever worker asks.

Such a trial is not a new configuration: it does not count towards ``--trials`` (`is_resume`),
and the paused trial it goes on from is reported as "paused", not "stopped early".

The sampler sees each configuration once, a paused one by its partial vector, and a paused
one that went on as the trial that resumed it (`_partial.PartialVectors`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ._fidelity import DROP, QUEUED, READY, WAIT, Pause

if TYPE_CHECKING:  # the runner pulls in torch; readers of a study (reports) import this module
    from ._fidelity import RungStore
    from ._runner import RungPolicy

__all__ = ["RESUME_ATTRS", "drop_resumed_checkpoint", "is_resume", "make_promoter", "paused_note",
           "promoted_numbers", "resume_attrs", "rung_attr", "rung_of", "waiting_resumes"]

#: The user attributes of a trial that resumes a paused one; a retry of it carries them too.
RESUMES, RESUME_RUNG, RESUME_CHECKPOINT = "resumes", "resume_rung", "resume_checkpoint"
RESUME_ATTRS = (RESUMES, RESUME_RUNG, RESUME_CHECKPOINT)
#: The user attribute a trial's partial vector at a rung is recorded under (both backends).
RUNG_ATTR = "rung_"


def rung_attr(epoch: int) -> str:
    """The user attribute of a trial's partial vector at fine-tune epoch ``epoch``."""
    return f"{RUNG_ATTR}{int(epoch)}"


def rung_of(key: str) -> int | None:
    """The rung a `rung_attr` names; None for any other attribute."""
    tail = key[len(RUNG_ATTR):] if key.startswith(RUNG_ATTR) else ""
    return int(tail) if tail.isdigit() else None


def resume_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What of a trial's user attributes says it resumes a paused trial (empty for a new one)."""
    return {k: attrs[k] for k in RESUME_ATTRS if k in attrs}


def is_resume(trial: FrozenTrial | optuna.Trial) -> bool:
    """A trial that goes on from a paused one: not a configuration of its own."""
    return trial.user_attrs.get(RESUMES) is not None


def waiting_resumes(trials: Iterable[FrozenTrial]) -> int:
    """Promotions queued and not started yet: a worker must not leave while there are some."""
    return sum(1 for t in trials if t.state == TrialState.WAITING and is_resume(t))


def promoted_numbers(trials: Iterable[FrozenTrial], resumed_by: Collection[TrialState] | None = None) -> set[int]:
    """Numbers of the PRUNED trials that went on as a later trial (paused, then promoted);
    ``resumed_by``: only those whose resuming trial is in one of these states (None: any).

    A line paused twice (rung 1, then 3) is keyed by its first trial in the rung store, so the
    trial promoted at the later rung is found by its checkpoint, which lives in its own folder.
    """
    trials = list(trials)
    checkpoints = {str(t.user_attrs.get(RESUME_CHECKPOINT)) for t in trials
                   if is_resume(t) and (resumed_by is None or t.state in resumed_by)}
    return {t.number for t in trials if t.state == TrialState.PRUNED
            and str(t.user_attrs.get("paused_checkpoint")) in checkpoints}


def make_promoter(study: optuna.Study, store: RungStore | None, policy: RungPolicy, directions: Sequence[str],
                  scope: str) -> Callable[[], bool]:
    """``promote()``: queue the trial that resumes the first promotable paused trial, if any;
    True when it queued one. A no-op (False) unless the space's rungs promote."""
    if policy.mode != "promote" or store is None:
        return lambda: False

    def paused_trial(pause: Pause) -> FrozenTrial | None:
        return next((t for t in study.get_trials(deepcopy=False) if t.number == pause.number), None)

    def check(pause: Pause) -> str:
        if any(t.user_attrs.get(RESUME_CHECKPOINT) == pause.checkpoint for t in study.get_trials(deepcopy=False)):
            return QUEUED  # a worker was killed after queueing it, before marking it
        if not Path(pause.checkpoint).is_file():
            return DROP  # deleted to free the disk: that trial stays stopped
        paused = paused_trial(pause)
        if paused is None or paused.state in (TrialState.RUNNING, TrialState.WAITING):
            return WAIT  # paused in the runner, not yet recorded PRUNED by its backend
        if paused.state != TrialState.PRUNED or not paused.user_attrs.get("paused_checkpoint"):
            return DROP  # it died before its record landed: the retry of its configuration stands for it
        return READY

    def enqueue(pause: Pause) -> None:
        paused = paused_trial(pause)
        if paused is None:  # `check` said READY under the same lock: it is there
            return
        line = int(pause.trial) if pause.trial.isdigit() else paused.number
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=paused.params, distributions=paused.distributions,
            user_attrs={RESUMES: line, RESUME_RUNG: pause.rung, RESUME_CHECKPOINT: pause.checkpoint}))

    def promote() -> bool:
        done = store.promote_one(scope, directions, dominated_fraction=policy.dominated_fraction,
                                 min_trials=policy.min_trials, enqueue=enqueue, check=check)
        return done is not None

    return promote


def drop_resumed_checkpoint(trial: FrozenTrial) -> None:
    """Once a resuming trial is recorded COMPLETE or PRUNED (paused again: it saved its own), the
    checkpoint it went on from has served; a FAIL keeps it for the retry."""
    path = trial.user_attrs.get(RESUME_CHECKPOINT)
    if path and trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        Path(path).unlink(missing_ok=True)


def paused_checkpoints(run_dir: str | Path) -> list[Path]:
    """The checkpoints of trials still paused in a run folder (each deleted once resumed)."""
    return sorted(Path(run_dir).glob("trials/*/paused_at_*.pt"))


def paused_note(run_dir: str | Path) -> str | None:
    """One line on the disk the still-paused trials' checkpoints take, or None without any."""
    files = paused_checkpoints(run_dir)
    if not files:
        return None
    size = sum(f.stat().st_size for f in files if f.is_file()) / 1e6
    return (f"{len(files)} paused trial(s) keep a checkpoint "
            f"({size:.1f} MB in {Path(run_dir)}/trials/*/paused_at_*.pt) "
            "so that a later run with more --trials can still resume them; delete them to free the space "
            "(those trials then stay stopped)")
