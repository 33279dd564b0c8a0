"""Errors a user can cause and fix.

The CLI prints a `UserError` as one line and exits with code 2; library callers catch it as a
`ValueError`. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["Interrupted", "TrainingDiverged", "UserError", "first_line", "make_folder"]


class UserError(ValueError):
    """Bad input from the user (a name, a path, a value out of range), explained in one line."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial fails with this reason, the study goes on."""


class Interrupted(Exception):
    """Ctrl-C, handled: the CLI prints the message as one line and exits with code 130."""


def first_line(exc: BaseException) -> str:
    """What a one-line message quotes of an exception: its first line, or its type's name when it
    says nothing (sqlalchemy, torch and pickle errors often span many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def make_folder(path: str | os.PathLike, what: str) -> Path:
    """Create a folder the user named (``what`` says where: ``--out x``, ``storage y``).

    A path that cannot hold one (under a regular file, on a read-only or pseudo file system) is
    the user's to fix: one line, not a traceback from the first write at the end of a run.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what}: {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what}: cannot create the folder {folder} ({exc.strerror or type(exc).__name__})") from None
    return folder
