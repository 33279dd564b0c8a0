"""Readers for raw YAML values that fail with one line naming the file and the dotted key.

Every check in this package goes through `fail`, so every message has the same shape,
``<file>: <dotted.key>: <what is wrong and what is allowed>``, and a user can find the line to
fix without reading a traceback. The readers also paper over PyYAML's YAML 1.1 quirks: ``1e-4``
(no dot) loads as a string, so numeric strings are accepted where a number is expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from snnprune.errors import UserError

__all__ = ["check_keys", "fail", "interval", "join", "one_line", "read_bool", "read_choice", "read_float", "read_int",
           "read_mapping", "read_optional_str", "read_str"]

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def one_line(text: object) -> str:
    """Collapse whitespace so an embedded message cannot break the one-line rule."""
    return " ".join(str(text).split())


def fail(source: str, key: str, what: str) -> NoReturn:
    """Raise the package's single error shape: ``source: key: what``."""
    where = f"{source}: {key}: " if key else f"{source}: "
    raise UserError(one_line(where + what))


def read_mapping(raw: Any, source: str, key: str) -> Mapping[str, Any]:
    """``raw`` as a mapping (``None`` = empty), or a one-line error."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        fail(source, key, f"must be a mapping, got {type(raw).__name__} {raw!r}")
    for name in raw:
        if not isinstance(name, str):
            hint = " (YAML reads an unquoted yes/no/on/off/true/false as a boolean: quote it)" \
                if isinstance(name, bool) else ""
            fail(source, key, f"keys must be strings, got {name!r}{hint}")
    return raw


def check_keys(raw: Mapping[str, Any], allowed: Iterable[str], source: str, key: str) -> None:
    """Reject keys outside ``allowed`` and list what is allowed (no silent dropping)."""
    allowed = list(allowed)
    for name in raw:
        if name not in allowed:
            fail(source, join(key, name), f"unknown key; allowed here: {', '.join(allowed) or 'none'}")


def join(key: str, name: str) -> str:
    """The dotted path of ``name`` under ``key``."""
    return f"{key}.{name}" if key else name


def read_float(raw: Any, source: str, key: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite number within the given bounds (numeric strings like ``1e-4`` accepted)."""
    if isinstance(raw, str) and _NUMBER.match(raw.strip()):
        raw = float(raw)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        fail(source, key, f"must be a number, got {raw!r}")
    try:
        value = float(raw)
    except OverflowError:  # an integer of hundreds of digits
        fail(source, key, f"must be finite, got an integer of {len(str(raw))} digits")
    if not math.isfinite(value):
        fail(source, key, f"must be finite, got {raw!r}")
    if (low is not None and (value < low or (low_open and value == low))) or \
            (high is not None and (value > high or (high_open and value == high))):
        fail(source, key, f"{raw!r} is out of range {interval(low, high, low_open, high_open)}")
    return value


def read_int(raw: Any, source: str, key: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (an integral float like ``2.0``, or a numeric string like ``1e3`` that PyYAML
    left a string, is accepted, as `read_float` accepts one) within the given bounds."""
    if isinstance(raw, str) and _NUMBER.match(raw.strip()):
        raw = float(raw)
    if isinstance(raw, float) and math.isfinite(raw) and raw == int(raw):
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        fail(source, key, f"must be an integer, got {raw!r}")
    if (low is not None and raw < low) or (high is not None and raw > high):
        fail(source, key, f"{raw!r} is out of range {interval(low, high)}")
    return raw


def read_bool(raw: Any, source: str, key: str) -> bool:
    """A YAML boolean."""
    if not isinstance(raw, bool):
        fail(source, key, f"must be true or false, got {raw!r}")
    return raw


def read_str(raw: Any, source: str, key: str) -> str:
    """A non-empty string."""
    if not isinstance(raw, str) or not raw.strip():
        fail(source, key, f"must be a non-empty string, got {raw!r}")
    return raw


def read_optional_str(raw: Any, source: str, key: str) -> str | None:
    """A non-empty string or null."""
    return None if raw is None else read_str(raw, source, key)


def read_choice(raw: Any, choices: Iterable[str], source: str, key: str, what: str = "value") -> str:
    """One of ``choices``; the message lists them."""
    choices = list(choices)
    if raw not in choices or not isinstance(raw, str):
        fail(source, key, f"unknown {what} {raw!r}; choose one of {', '.join(choices)}")
    return raw


def interval(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """``[a, b)``-style text of a range; a missing bound shows as infinity."""
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
