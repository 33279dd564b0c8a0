"""The `snnprune` command group and its one error rule.

Every error a user can cause (a bad flag, an unknown name, a missing file) ends the command
with one line on stderr and exit code 2: click's usage errors are folded into that line, and
`UserError` from the library prints as it is. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from snnprune._version import __version__
from snnprune.errors import Interrupted, TrainingDiverged, UserError

__all__ = ["cli", "emit", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="snnprune")
def cli() -> None:
    """Search how far a spiking neural network can be pruned, and with which method."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


#: What to lower when a command's training diverges; commands not named get the generic advice.
_DIVERGED_HINTS = {"train": "lower --lr", "prune": "lower --lr or --finetune-lr"}


def _diverged(exc: TrainingDiverged, argv: Sequence[str]) -> str:
    """The one line for a run whose loss became NaN/inf: a user's setting (usually the learning
    rate), not a bug, so no traceback; the hint names the flags of the command that ran."""
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    hint = _DIVERGED_HINTS.get(command, "lower the learning rate")
    return f"training diverged ({_one_line(str(exc))}); {hint}"


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code (0, 1 for a failed run, 2 for bad input)."""
    from . import _commands  # noqa: F401  (registers the commands)

    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="snnprune",
                        standalone_mode=False)  # returns a command's click Exit code, else None
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        return 2
    except click.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx else ""
        click.echo(f"snnprune: error: {where}{_one_line(exc.format_message())}", err=True)
        return 2
    except UserError as exc:
        click.echo(f"snnprune: error: {_one_line(str(exc))}", err=True)
        return 2
    except TrainingDiverged as exc:  # a RuntimeError: a search records it as a failed trial
        click.echo(f"snnprune: error: {_diverged(exc, sys.argv[1:] if argv is None else argv)}",
                   err=True)
        return 2
    except Interrupted as exc:
        click.echo(f"\nsnnprune: {_one_line(str(exc))}", err=True)
        return 130
    except click.exceptions.Abort:
        click.echo("snnprune: aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("snnprune: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0


def emit(payload: dict[str, Any], as_json: bool, human: str) -> None:
    """Print one JSON object (``--json``) or the human text."""
    if as_json:
        sys.stdout.write(json.dumps(payload, default=_json_default) + "\n")
    else:
        click.echo(human)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
