"""Which study a run folder serves, and which storage a search uses when none is given.

A run folder (``runs/<study>/``) holds one study's trial artifacts (``trials/00003/``, keyed by
trial number), its rung records and its reports. Two studies of one name in two storages would
share those folders: trial 3 of the second overwrote trial 3 of the first, whose exports then
paired one trial's config with another's masks. That happened by accident: a study run in the
default SQLite file and re-run with ``--workers 2`` (a journal file by default) forked into a
second study in the same folder. So:

- the default storage is the one already in the folder (``study.db`` or ``journal.log``), or the
  one its ``study.json`` names (a file given with ``--storage`` elsewhere), whatever ``--workers``
  says; a new folder gets SQLite for one worker, a journal for several;
- the folder records the study it serves in ``study.json`` (storage, study name, run id), and a
  search on another storage that would write into it is refused with one line, unless that
  other storage is a local file that no longer exists (the study was deleted: its folder is
  free again);
- each study carries a run id (user attribute ``run_id``, a random hex string set when the
  study is created), which scopes its rung records: a study deleted and created again under
  the same name starts with no rung records instead of being judged against the old ones.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import optuna

from snnprune.errors import UserError

from ._storage import is_url, redact, sqlite_file, sqlite_url

__all__ = ["MARKER", "claim_run_dir", "display_storage", "marker_storage", "other_study", "recorded_storage",
           "refuse_other_study", "resolve_storage", "run_id", "same_storage", "storage_in_folder"]

MARKER = "study.json"
_FILES = {"sqlite": "study.db", "journal": "journal.log"}


def _local_file(spec: str) -> Path | None:
    """The file behind a SQLite URL or a journal path; None for a database server."""
    if spec.startswith("sqlite:///"):
        return sqlite_file(spec)
    return None if is_url(spec) else Path(spec)


def _identity(spec: str) -> str:
    """A storage spec comparable across working directories (a relative and an absolute path
    to one file are the same storage); a server URL without its password."""
    path = _local_file(spec)
    return f"file:{path.resolve().as_posix()}" if path is not None else redact(spec)


def _read_marker(run_dir: Path) -> dict | None:
    try:
        marker = json.loads((run_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None  # absent, or damaged: the folder's own files decide
    return marker if isinstance(marker, dict) and isinstance(marker.get("identity"), str) else None


def storage_in_folder(run_dir: Path) -> str | None:
    """The storage of the study this folder already serves, if its file is in the folder."""
    run_dir = Path(run_dir)
    present = {kind: run_dir / name for kind, name in _FILES.items() if (run_dir / name).is_file()}
    if not present:
        return None
    marker = _read_marker(run_dir)
    if marker is not None:
        for kind, path in present.items():
            if marker["identity"] == _identity(_spec(kind, path)):
                return _spec(kind, path)
    kind = "sqlite" if "sqlite" in present else "journal"  # a folder from before study.json
    return _spec(kind, present[kind])


def recorded_storage(run_dir: Path) -> str | None:
    """The storage ``study.json`` names when it is not a file in the folder (``--storage`` gave a
    journal or SQLite file elsewhere, or a server): usable as it is when it is a file that still
    exists, or a server URL that needs no password (passwords are never written down)."""
    marker = _read_marker(Path(run_dir))
    shown = marker.get("storage") if marker is not None else None
    if not isinstance(shown, str) or _identity(shown) != marker["identity"]:
        return None  # a damaged record
    path = _local_file(shown)
    if path is None:
        return None if ":***@" in shown else shown  # `redact` left the password out
    return shown if path.is_file() else None


def marker_storage(run_dir: Path) -> str | None:
    """The storage ``study.json`` names, as written (passwords left out); None without one."""
    marker = _read_marker(Path(run_dir))
    shown = marker.get("storage") if marker is not None else None
    return shown if isinstance(shown, str) else None


def display_storage(storage: str) -> str:
    """A storage as the user should read it: a local file's absolute path, a URL without password."""
    path = _local_file(storage)
    if path is None:
        return redact(storage)
    return _spec("sqlite" if storage.startswith("sqlite") else "journal", path.resolve())


def _spec(kind: str, path: Path) -> str:
    return sqlite_url(path) if kind == "sqlite" else str(path)


def resolve_storage(run_dir: Path, storage: str | None, *, workers: int = 1) -> str:
    """The storage a search uses: the one given, else the folder's own, else a new one.

    Refuses, before anything is created, a storage that would fork the folder's study (see the
    module docstring) and SQLite for several local workers.
    """
    run_dir = Path(run_dir)
    given = storage is not None
    if storage is None:
        storage = storage_in_folder(run_dir) or recorded_storage(run_dir) or _spec(
            "journal" if workers > 1 else "sqlite", run_dir / _FILES["journal" if workers > 1 else "sqlite"])
    if workers > 1 and storage.startswith("sqlite"):
        if given:
            raise UserError("several workers on one SQLite file hit 'database is locked': give a journal "
                            "file path or a PostgreSQL/MySQL URL as --storage")
        raise UserError(f"{run_dir} holds its study in SQLite ({_FILES['sqlite']}), where several workers hit "
                        "'database is locked': resume it with one worker, or run a new study with "
                        "--workers (another --study or --out)")
    refuse_other_study(run_dir, storage)
    return storage


def same_storage(first: str, second: str) -> bool:
    """Whether two specs name one storage (a relative and an absolute path to one file do)."""
    return _identity(first) == _identity(second)


def other_study(run_dir: Path, storage: str, *, own_files: bool = False) -> tuple[str | None, str] | None:
    """(study name, storage as shown) of the study a folder serves when that study is not in
    ``storage``; None when the folder serves ``storage``, serves nothing, or served a local
    storage that is gone (the folder is free again, module docstring).

    The folder's study is the one its ``study.json`` records. ``own_files``: a folder without one
    (from before study.json) serves the ``study.db`` or ``journal.log`` in it. The search leaves
    that out (it claims such a folder for the storage it resumes); a report by URL needs it, or it
    would write its rows over those of the folder's own study.
    """
    run_dir = Path(run_dir)
    marker = _read_marker(run_dir)
    if marker is None:
        own = storage_in_folder(run_dir) if own_files else None
        if own is None or same_storage(own, storage):
            return None
        return None, display_storage(own)
    if marker["identity"] == _identity(storage):
        return None
    old = _local_file(marker["identity"][len("file:"):]) if marker["identity"].startswith("file:") else None
    if old is not None and not old.exists():
        return None  # that study's storage is gone: the folder is free again
    return marker.get("study"), marker.get("storage") or marker["identity"]


def refuse_other_study(run_dir: Path, storage: str) -> None:
    """Refuse a storage whose study would write into a folder that serves another (module docstring)."""
    other = other_study(run_dir, storage)
    if other is None:
        return
    study, shown = other
    raise UserError(f"{run_dir} holds the trials of study {study!r} in {shown}; resume it with "
                    f"--storage {shown}, or give this one another --out or --study")


def run_id(study: optuna.Study) -> str:
    """The study's run id, set on first use (see the module docstring)."""
    value = study.user_attrs.get("run_id")
    if not isinstance(value, str):
        study.set_user_attr("run_id", uuid.uuid4().hex)
        value = study.user_attrs["run_id"]  # read back: a process that set it at the same time may win
    return value


def claim_run_dir(run_dir: Path, storage: str, study: optuna.Study) -> str:
    """Record in the folder the study it serves; returns the study's run id."""
    from snnprune.engine import atomic_write_bytes

    run_dir = Path(run_dir)
    rid = run_id(study)
    marker = {"study": study.study_name, "storage": display_storage(storage), "identity": _identity(storage),
              "run_id": rid}
    if _read_marker(run_dir) != marker:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_dir / MARKER, json.dumps(marker, indent=2).encode())
    return rid
