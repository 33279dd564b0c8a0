"""Optuna storage from what the user typed: a URL, a journal file path, or the default.

- nothing: ``sqlite:///RUN_DIR/study.db`` (one process);
- a URL (``sqlite:///``, ``postgresql://``, ``mysql://``): an RDB storage with heartbeats, so a
  trial whose process died is marked failed and retried once;
- a plain path: Optuna's journal file, safe for several local worker processes (SQLite under
  several writers hits "database is locked"). Optuna 5's `JournalStorage` has no heartbeats of
  its own, so `HeartbeatJournalStorage` adds them: each running trial touches a file in
  ``JOURNAL.heartbeat/`` every interval, and a trial whose file went stale is failed and retried
  once, exactly as with a database.

Heartbeats: a running trial records one every *interval* seconds; one silent for more than the
*grace* period is taken for dead (its process was killed, its machine lost), marked FAIL, and a
copy with the same parameters is queued (user attribute ``retry_of``: the dead trial's number);
a retry that dies too is not retried again. The dead trial's ``fail_reason`` says it was
interrupted (`INTERRUPTED`). The defaults are 30 s and 90 s; the environment
variable ``SNNPRUNE_HEARTBEAT="INTERVAL,GRACE"`` (whole seconds, ``0 < INTERVAL < GRACE``)
changes both, e.g. ``SNNPRUNE_HEARTBEAT=5,20`` to resume sooner after a crash. Every process
sharing a study should use the same setting; grace must exceed the longest pause a live process
can take (a swap storm, a suspended laptop), or live trials get retried.

Passwords never reach a message or a log: `redact` hides them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages._rdb import models as rdb_models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, TrialState

from snnprune.errors import UserError, first_line, make_folder

from ._promote import resume_attrs

__all__ = ["HEARTBEAT_ENV", "INTERRUPTED", "HeartbeatJournalStorage", "HeartbeatRDBStorage", "RetryOnce",
           "check_optuna_sqlite", "default_storage", "heartbeat_settings", "is_url", "open_rdb", "open_storage",
           "redact", "retried_failures", "sqlite_file", "sqlite_url"]

_PASSWORD = re.compile(r"(://[^:/@]+:)([^@]*)(@)")

#: ``"INTERVAL,GRACE"`` in seconds; see the module docstring.
HEARTBEAT_ENV = "SNNPRUNE_HEARTBEAT"
DEFAULT_HEARTBEAT = (30, 90)
#: The ``fail_reason`` of a trial failed because its heartbeat went stale.
INTERRUPTED = "interrupted: no heartbeat for more than {grace} s (its process was killed or its machine lost)"


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(r"\1***\3", str(url))


def is_url(spec: str) -> bool:
    return "://" in str(spec)


def default_storage(run_dir: Path) -> str:
    return sqlite_url(Path(run_dir) / "study.db")


def heartbeat_settings() -> tuple[int, int]:
    """(interval, grace) in seconds from ``SNNPRUNE_HEARTBEAT``, default (30, 90)."""
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT
    try:
        interval, grace = (int(part) for part in raw.split(","))
    except ValueError:
        raise UserError(f"{HEARTBEAT_ENV}={raw!r}: expected INTERVAL,GRACE in whole seconds, e.g. 30,90") from None
    if not 0 < interval < grace:
        raise UserError(f"{HEARTBEAT_ENV}={raw!r}: need 0 < INTERVAL < GRACE")
    return interval, grace


def retried_failures(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the FAIL trials that were queued again (some trial's ``retry_of``): dead or
    interrupted runs whose copy stands in for them, not failures of their configuration."""
    queued = {t.user_attrs["retry_of"] for t in trials if t.user_attrs.get("retry_of") is not None}
    return {t.number for t in trials if t.state == TrialState.FAIL and t.number in queued}


class RetryOnce:
    """Heartbeat-stale callback: queue the dead trial again with the same parameters, once.

    Like Optuna's ``RetryHeartbeatStaleTrialCallback(max_retry=1)`` (its ``failed_trial`` and
    ``retry_history`` system attributes are kept, so its helpers work), but the retry carries
    only ``retry_of`` among user attributes: the dead trial's partial attributes are not facts
    about the new run. A trial that resumed a paused one keeps what it resumes (`resume_attrs`).
    """

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if "retry_of" in trial.user_attrs or len(history) > 1:
            return  # a retry that died as well: not retried again
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
            user_attrs={"retry_of": trial.number, **resume_attrs(trial.user_attrs)},
            system_attrs={"failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                          "retry_history": history}))


def _mark_interrupted(storage: optuna.storages.BaseStorage, trial_ids: list[int], grace: int) -> list[int]:
    """Give the stale trials their ``fail_reason`` while they still take attributes: Optuna's
    ``fail_stale_trials`` asks for them, then fails them (a finished trial takes no attribute)."""
    for trial_id in trial_ids:
        try:
            storage.set_trial_user_attr(trial_id, "fail_reason", INTERRUPTED.format(grace=grace))
        except UpdateFinishedTrialError:
            pass  # another process failed it first
    return trial_ids


class _BeatOnStart:
    """Record a running trial's first heartbeat when the storage makes it RUNNING.

    Optuna starts a trial's heartbeat thread only after `Study.ask` has sampled its parameters
    (TPE: up to a second), and a RUNNING trial without any heartbeat is never taken for stale:
    a process killed in that window left its trial RUNNING for good. Beating at creation (and
    when a queued trial is taken) closes the window on every storage that beats.
    """

    def _beat_if_running(self, trial_id: int, template_trial: FrozenTrial | None) -> None:
        """After a trial was created: beat when it starts out RUNNING (not a queued WAITING copy)."""
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            self.record_heartbeat(trial_id)  # type: ignore[attr-defined]

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)  # type: ignore[misc]
        if changed and state == TrialState.RUNNING:  # a WAITING trial (a retry) taken by a worker
            self.record_heartbeat(trial_id)  # type: ignore[attr-defined]
        return changed


def never_beaten_stale(trials: list[FrozenTrial], grace: float) -> list[int]:
    """The trial ids of RUNNING trials that never beat and started more than ``grace`` seconds ago.

    The first beat follows the trial's creation in the storage (`_BeatOnStart`); a process killed
    between the two (a few milliseconds, but a kill timed by watching the study for a new running
    trial lands there) left a trial that no heartbeat check took for stale, and a resumed search
    then waited for it for ever, saying nothing under ``-q``. Every process that runs trials beats
    (heartbeats cannot be turned off), so a trial without a beat long after it started is dead. Its
    start time is from the creating process's clock, read here with the same convention (Optuna
    records naive local time): clocks of a cluster must agree to well within the grace period.
    """
    stale = []
    for trial in trials:
        start = trial.datetime_start
        if start is None:
            continue
        now = datetime.now(start.tzinfo) if start.tzinfo is not None else datetime.now()
        if (now - start).total_seconds() > grace:
            stale.append(trial._trial_id)
    return stale


class HeartbeatRDBStorage(_BeatOnStart, RDBStorage):
    """`RDBStorage` whose stale trials say why they failed (`INTERRUPTED`), and which also takes
    for stale a running trial that never beat (`never_beaten_stale`): Optuna's skips those."""

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        # Optuna's cache in front of an RDB storage calls this one, not `create_new_trial`
        trial = super()._create_new_trial(study_id, template_trial)
        self._beat_if_running(trial._trial_id, template_trial)
        return trial

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = self.grace_period if self.grace_period is not None else 2 * (self.heartbeat_interval or 0)
        stale = super()._get_stale_trial_ids(study_id)
        with _create_scoped_session(self.scoped_session) as session:
            unbeaten = [trial_id for (trial_id,) in session.query(rdb_models.TrialModel.trial_id)
                        .outerjoin(rdb_models.TrialHeartbeatModel)
                        .filter(rdb_models.TrialModel.study_id == study_id,
                                rdb_models.TrialModel.state == TrialState.RUNNING,
                                rdb_models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))]
        trials = [self.get_trial(trial_id) for trial_id in unbeaten]
        return _mark_interrupted(self, stale + never_beaten_stale(trials, grace), grace)


class HeartbeatJournalStorage(_BeatOnStart, JournalStorage, BaseHeartbeat):
    """A journal file with heartbeats: one small file per running trial whose modification time
    is its last heartbeat, so the journal itself does not grow with them. "Now" is read from a
    file touched in the same folder, so on a shared disk every worker uses the file server's
    clock. Every running trial gets its file when it starts (`_BeatOnStart`); one without a file
    whose process died before it was made is found by its start time (`never_beaten_stale`).
    """

    def __init__(self, path: str | os.PathLike, *, interval: int, grace: int,
                 callback: Callable[[optuna.Study, FrozenTrial], None] | None) -> None:
        super().__init__(JournalFileBackend(str(path)))
        self.heartbeat_dir = Path(str(path) + ".heartbeat")
        self.heartbeat_interval = interval
        self.grace_period = grace
        self.heartbeat_stale_trial_callback = callback

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        self._beat_if_running(trial_id, template_trial)
        return trial_id

    def _beat_file(self, trial_id: int) -> Path:
        return self.heartbeat_dir / f"trial-{trial_id}"

    def record_heartbeat(self, trial_id: int) -> None:
        self.heartbeat_dir.mkdir(parents=True, exist_ok=True)
        self._beat_file(trial_id).touch()

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return []
        self.heartbeat_dir.mkdir(parents=True, exist_ok=True)
        clock = self.heartbeat_dir / ".now"
        clock.touch()
        now = clock.stat().st_mtime
        stale = []
        unbeaten = []
        for trial in running:
            try:
                last = self._beat_file(trial._trial_id).stat().st_mtime
            except FileNotFoundError:
                unbeaten.append(trial)
                continue
            if now - last > self.grace_period:
                stale.append(trial._trial_id)
        return _mark_interrupted(self, stale + never_beaten_stale(unbeaten, self.grace_period), self.grace_period)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        if changed and state.is_finished():
            self._beat_file(trial_id).unlink(missing_ok=True)
        return changed

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.heartbeat_stale_trial_callback


_CREATE_RACE_RETRIES = 3
#: What the loser of the race sees: a table created twice, or the one version row / schema stamp
#: inserted twice (SQLite, PostgreSQL, MySQL wordings). Opening writes nothing else.
_CREATE_RACE_MARKS = ("already exists", "alembic_version", "UNIQUE constraint failed", "duplicate key",
                      "Duplicate entry")


def open_rdb(spec: str, make: Callable[[], RDBStorage]) -> RDBStorage:
    """``make()`` (an `RDBStorage` on ``spec``), retried while another process creates the database.

    Every `RDBStorage` writes Optuna's version row and stamps its schema version when it opens,
    even a reader that skips table creation. Two processes opening a new database at once (a
    search and its workers, or the dashboard started beside the search) race on that: the loser
    sees "table ... already exists" or a unique-key failure on ``alembic_version``. The other
    process has written it by then, so opening again works. Any other failure, or the race
    outlasting the retries, is a one-line `UserError` naming the (redacted) URL.
    """
    for attempt in range(_CREATE_RACE_RETRIES + 1):
        try:
            with warnings.catch_warnings():
                # heartbeats are "experimental" in Optuna 5 but are the documented way to retry a
                # trial whose process died; a reader's skip flags warn too
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return make()
        except Exception as exc:  # sqlalchemy raises many kinds; all mean "cannot use it"
            reason = first_line(exc)
            if any(mark in reason for mark in _CREATE_RACE_MARKS) and attempt < _CREATE_RACE_RETRIES:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise UserError(f"cannot open storage {redact(spec)}: {redact(reason)[:160]}") from None
    raise UserError(f"cannot open storage {redact(spec)}")  # not reached: the loop returns or raises


def open_storage(spec: str, *, heartbeat: bool = True, create: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage object; an unreachable database is a one-line `UserError`.

    ``heartbeat``: for the processes that run trials (see the module docstring); readers that
    only load a study pass False. ``create=False`` (every reader, and a worker joining a study):
    a SQLite or journal file that does not exist is a `UserError` rather than a new empty file
    where the user mistyped a path, and so is a SQLite file without Optuna's tables
    (`check_optuna_sqlite`): opening it would write Optuna's whole schema into it.
    """
    interval, grace = heartbeat_settings() if heartbeat else (None, None)
    if not create:
        check_exists(spec)
        if not check_optuna_sqlite(spec):
            raise UserError(f"storage {redact(spec)} holds no Optuna study yet (a search creates its tables when "
                            "it starts)")
    if is_url(spec):
        if (file := sqlite_file(spec)) is not None:
            make_folder(file.parent, f"storage {spec}")
        if heartbeat:
            return open_rdb(spec, lambda: HeartbeatRDBStorage(
                spec, engine_kwargs=_engine_kwargs(spec), heartbeat_interval=interval, grace_period=grace,
                heartbeat_stale_trial_callback=RetryOnce()))
        return open_rdb(spec, lambda: RDBStorage(spec, engine_kwargs=_engine_kwargs(spec)))
    path = Path(spec)
    if path.is_dir():
        raise UserError(f"storage {spec} is a folder; give a journal file path or a database URL")
    check_journal(path, spec)
    make_folder(path.parent, f"storage {spec}")
    if heartbeat:
        drop_torn_record(path)
        return HeartbeatJournalStorage(path, interval=interval, grace=grace, callback=RetryOnce())
    return JournalStorage(JournalFileBackend(str(path)))


_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_journal(path: Path, spec: str) -> None:
    """Refuse a file that is not an Optuna journal before anything is appended to it.

    Optuna's reader skips a bad last line and then appends after it, so a mistyped path (a
    SQLite file without ``sqlite:///``, a log, a checkpoint) would get journal records written
    into it. Every complete line must be a JSON record with an ``op_code``; an incomplete last
    line is allowed only when it starts like one (another process may be writing it).
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        if f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
            raise UserError(f"storage {spec} is a SQLite database, not a journal file; "
                            f"use sqlite:///{path.as_posix()}")
        f.seek(0)
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                if line.lstrip().startswith(b"{"):
                    return  # a record being appended right now
                raise UserError(f"storage {spec} is not an Optuna journal file (line {number} is not a record)")
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                record = None
            if not isinstance(record, dict) or "op_code" not in record:
                raise UserError(f"storage {spec} is not an Optuna journal file (line {number} is not a record)")


def drop_torn_record(path: Path) -> bool:
    """Cut a journal's incomplete last line left by a writer that died mid-append; whether it did.

    Optuna's reader skips an incomplete last line, but its writer appends after it, and the two
    make one line that is not JSON: every later read of the study then raised
    ``JSONDecodeError``, for good. Writers append under the journal's lock, so while this process
    holds it an incomplete last line has no live writer: the record never took effect, and
    dropping it leaves the study as it stood. Only processes that run trials call this; readers
    leave the file alone.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return False
    lock = JournalFileSymlinkLock(str(path))  # the lock Optuna's `JournalFileBackend` takes
    lock.acquire()
    try:
        with open(path, "r+b") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return False
            keep = 0
            step = 1 << 16
            end = size
            while end > 0:  # the last newline, read backwards in blocks
                start = max(0, end - step)
                f.seek(start)
                at = f.read(end - start).rfind(b"\n")
                if at >= 0:
                    keep = start + at + 1
                    break
                end = start
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return True
    finally:
        lock.release()


def check_exists(spec: str) -> None:
    """A reader must not create an empty storage where the user mistyped a path."""
    if spec.startswith("sqlite:///"):
        path = sqlite_file(spec)
        if path is not None and not path.is_file():
            raise UserError(f"storage {redact(spec)} does not exist")
    elif not is_url(spec) and not Path(spec).exists():
        raise UserError(f"storage {spec} does not exist (neither a URL nor a journal file)")


def sqlite_file(spec: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (its query left out, its %XX decoded as SQLAlchemy
    decodes them); None for another storage or an in-memory database."""
    if not spec.startswith("sqlite:///"):
        return None
    path = unquote(spec[len("sqlite:///"):].split("?", 1)[0])
    return None if path in ("", ":memory:") else Path(path)


def sqlite_url(path: str | os.PathLike) -> str:
    """The ``sqlite:///`` URL of a file: SQLAlchemy decodes %XX in it and ends the path at ``?``,
    so a run folder ``pct%41dir`` wrote its study into ``pctAdir``; both are quoted here."""
    return "sqlite:///" + Path(path).as_posix().replace("%", "%25").replace("?", "%3F")


def check_optuna_sqlite(spec: str) -> bool:
    """Whether a SQLite storage holds Optuna's tables, checked without writing to it; a SQLite
    file with tables of its own but not Optuna's is refused in one line.

    Optuna's `RDBStorage` creates its tables and stamps its schema version whenever it opens,
    even with ``skip_table_creation``, so a reader pointed at a results store or any other
    database (``--storage sqlite:///runs/x/results.db``) left Optuna's schema in it, as
    `check_journal` prevents for journal files. Optuna's tables are created in one transaction, so
    a file without ``studies`` is either another program's or has no table at all.

    False: the file has no table (a new empty file, or one a search has only just created), so
    it holds no study; the caller says so rather than open it. True for everything else: a
    storage that is no SQLite file, one that does not exist (`check_exists` speaks for it), one
    locked (Optuna's handle waits or says what is wrong).
    """
    path = sqlite_file(spec)
    if path is None or not path.is_file():
        return True
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                                timeout=30)) as db:
            tables = sorted(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    except sqlite3.DatabaseError as exc:  # OperationalError (locked, unreadable) is one of them
        if "not a database" in str(exc):
            raise UserError(f"storage {redact(spec)} is not a SQLite database") from None
        return True
    if not tables:
        return False
    if "studies" not in tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise UserError(f"storage {redact(spec)} is not an Optuna study database (its tables: {shown}); "
                        "give the storage the search wrote")
    return True


def _engine_kwargs(spec: str) -> dict:
    if spec.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}
