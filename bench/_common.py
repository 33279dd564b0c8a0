"""Helpers every bench script shares: machine description and the JSON last line."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

import torch

__all__ = ["finish", "machine", "training_parser"]


def machine() -> dict[str, Any]:
    """Cores, CPU model, torch version and threads: the context of every figure."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def finish(figures: dict[str, Any]) -> None:
    """Print the figures as the last line: one JSON object (the bench convention)."""
    sys.stdout.write(json.dumps(figures, default=float) + "\n")


def training_parser(description: str, *, steps: int, rounds: int) -> argparse.ArgumentParser:
    """The options every training-speed bench shares (data, network, steps, rounds)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--subset", type=int, default=4000)
    return parser
