"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors and JSON-like values (``state_dict``, ``build_args`` to
rebuild the network, free-form ``meta``), so loading it never unpickles arbitrary objects.
Writes go to a temporary file in the same folder and are renamed into place: a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprune.errors import UserError, first_line

__all__ = ["atomic_write_bytes", "atomic_torch_save", "load_checkpoint", "read_checkpoint",
           "save_checkpoint"]


def _atomic(path: Path, write: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    return _atomic(Path(path), lambda fh: fh.write(data))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` through a temporary file and a rename."""
    return _atomic(Path(path), lambda fh: torch.save(obj, fh))


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **meta: Any) -> Path:
    """Save weights, the arguments that rebuild the network, and ``meta`` (JSON-like values)."""
    payload = {
        "format": "snnprune-checkpoint/1",
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "build_args": dict(getattr(model, "build_args", {}) or {}),
        "meta": meta,
    }
    return atomic_torch_save(payload, path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's dict; a missing, corrupt or foreign file is a one-line `UserError`."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"checkpoint {p} does not exist")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        reason = first_line(exc)
        reason = reason if len(reason) <= 160 else reason[:157].rsplit(" ", 1)[0] + "..."
        raise UserError(f"checkpoint {p} is corrupt or not a torch checkpoint ({reason})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise UserError(f"checkpoint {p} is not a snnprune checkpoint (no state_dict)")
    return payload


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load into ``model``, or rebuild the network from the saved build arguments when None.

    Returns (model, meta).
    """
    payload = read_checkpoint(path)
    if model is None:
        args = dict(payload.get("build_args") or {})
        if "name" not in args:
            raise UserError(f"checkpoint {path} does not say which model it holds; pass the model")
        from snnprune.models import build_model

        model = build_model(args.pop("name"), **args)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"checkpoint {path} does not fit this model: {first[:160]}") from None
    return model, dict(payload.get("meta") or {})
