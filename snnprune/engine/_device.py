"""Device choice and mixed precision."""

from __future__ import annotations

import contextlib

import torch

from snnprune.errors import UserError

__all__ = ["autocast", "model_device", "resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' is CUDA when present, else CPU; an explicit CUDA request without that GPU, or a
    device type this tool does not run on, is a user error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UserError(f"unknown device {device!r}: {exc}") from None
    if dev.type not in ("cpu", "cuda"):  # mps, meta, xla...: parsed by torch, failing deep inside a run
        raise UserError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but this machine has no CUDA GPU")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"device {device!r} asked for, but this machine has {torch.cuda.device_count()} "
                        f"CUDA GPU(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return dev


def model_device(model: torch.nn.Module) -> torch.device | None:
    """Where a model's parameters live (None without any), so code that runs it on another
    device (`evaluate`, `measure`) can give it back there."""
    ref = next(model.parameters(), None)
    return None if ref is None else ref.device


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA (no loss scaling needed); a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
