"""Command-line interface: `snnprune inspect | train | ...`."""

from __future__ import annotations

import sys

from ._app import cli, emit, main as _main

__all__ = ["cli", "emit", "main"]


def main() -> None:
    """Console script entry point."""
    sys.exit(_main())
