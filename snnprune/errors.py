"""Errors a user can cause and fix.

The CLI prints a `UserError` as one line and exits with code 2; library callers catch it as a
`ValueError`. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["Interrupted", "TrainingDiverged", "UserError", "first_line"]


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
