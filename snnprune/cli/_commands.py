"""Imports every command module so that each registers itself on the group."""

from __future__ import annotations

from . import _core_cmds, _prune_cmds, _report_cmds, _search_cmds  # noqa: F401

__all__: list[str] = []
