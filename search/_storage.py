"""Optuna storage from what the user typed: a URL, a journal file path, or the default.

- nothing: ``sqlite:///RUN_DIR/study.db`` (one process);
- a URL (``sqlite:///``, ``postgresql://``, ``mysql://``): an RDB storage with heartbeats, so a
  trial whose process died is marked failed and retried once;
- a plain path: Optuna's journal file, safe for several local worker processes (SQLite under
  several writers hits "database is locked").
Passwords never reach a message or a log: `redact` hides them.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from snnprune.errors import UserError

__all__ = ["default_storage", "is_url", "open_storage", "redact"]

_PASSWORD = re.compile(r"(://[^:/@]+:)([^@]*)(@)")


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(r"\1***\3", str(url))


def is_url(spec: str) -> bool:
    return "://" in str(spec)


def default_storage(run_dir: Path) -> str:
    return f"sqlite:///{(Path(run_dir) / 'study.db').as_posix()}"


def open_storage(spec: str, *, heartbeat: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage object; an unreachable database is a one-line `UserError`."""
    if is_url(spec):
        if spec.startswith("sqlite:///"):
            Path(spec[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {}
        try:
            with warnings.catch_warnings():
                # heartbeats are "experimental" in Optuna 5 but are the documented way to
                # retry a trial whose process died
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if heartbeat:
                    kwargs = dict(heartbeat_interval=30, grace_period=90,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
                return RDBStorage(spec, engine_kwargs=_engine_kwargs(spec), **kwargs)
        except Exception as exc:  # sqlalchemy raises many kinds; all mean "cannot use it"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot open storage {redact(spec)}: {redact(reason)[:160]}") from None
    path = Path(spec)
    if path.is_dir():
        raise UserError(f"storage {spec} is a folder; give a journal file path or a database URL")
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def _engine_kwargs(spec: str) -> dict:
    if spec.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}
