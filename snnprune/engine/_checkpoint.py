"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors and JSON-like values (``state_dict``, ``build_args`` to
rebuild the network, free-form ``meta``), so loading it never unpickles arbitrary objects.
Writes go to a temporary file in the same folder and are renamed into place: a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprune.errors import UserError, first_line

__all__ = ["atomic_torch_save", "atomic_write_bytes", "load_checkpoint", "load_state", "read_checkpoint",
           "save_checkpoint", "state_mismatch"]

#: Build arguments a mismatch message shows when the model to load into has none to compare.
_MAIN_ARGS = ("width", "in_channels", "image_size", "num_classes", "T")
#: Files of our other formats that hold a whole model, and the function that loads each (their
#: format strings are defined in snnprune.compaction, which imports this module).
_OTHER_FORMATS = {"snnprune-compact/": ("a compact model", "snnprune.load_compact"),
                  "snnprune-sparse/": ("a sparse model", "snnprune.load_sparse")}


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
    """Save weights, the arguments that rebuild the network, and ``meta`` (JSON-like values).

    ``meta`` goes through JSON (numpy numbers and paths become plain values): checkpoints load
    with ``weights_only=True``, which refuses other objects, so a numpy float saved fine and the
    load then called the file corrupt. A value JSON cannot hold is refused here, in one line.
    """
    try:
        plain = json.loads(json.dumps(meta, default=_plain))
    except (TypeError, ValueError) as exc:
        raise UserError(f"save_checkpoint: metadata must be JSON-like (numbers, strings, lists, dicts): "
                        f"{first_line(exc)}") from None
    payload = {
        "format": "snnprune-checkpoint/1",
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "build_args": dict(getattr(model, "build_args", {}) or {}),
        "meta": plain,
    }
    return atomic_torch_save(payload, path)


def _plain(value: Any) -> Any:
    """A numpy or torch scalar as its Python value, a path as its text; anything else refused."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy and torch: a 0-d one gives its Python number
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-like")


def _load_failure(exc: Exception) -> str:
    """Why torch.load failed, in a few words: the exception's type and its first telling line.

    torch's weights-only errors open with advice to re-run with ``weights_only=False`` (which
    would unpickle arbitrary code: we refuse on purpose), so that part is dropped and the
    unpickler's own reason after "WeightsUnpickler error:" is kept.
    """
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and "weights_only" not in line and "torch.load" not in line]
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return reason if len(reason) <= 160 else reason[:157].rsplit(" ", 1)[0] + "..."


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's dict; a missing, corrupt or foreign file is a one-line `UserError`."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"checkpoint {p} is a folder, not a checkpoint file")
    if not p.is_file():
        raise UserError(f"checkpoint {p} does not exist")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise on a foreign file
            warnings.simplefilter("ignore")
            payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  text, YAML, pickles: each fails in its own way
        raise UserError(f"checkpoint {p} is corrupt or not a torch checkpoint ({_load_failure(exc)})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise UserError(f"checkpoint {p} is not a snnprune checkpoint (no state_dict)")
    return payload


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return "x".join(str(int(n)) for n in shape) if shape is not None else type(value).__name__


def state_mismatch(model: nn.Module, state: dict[str, Any]) -> str | None:
    """The first difference between ``model``'s state dict and ``state``, in words (a key
    missing from the file, one the model lacks, or two shapes), or None when they fit.

    torch's own message lists every key over many lines; a one-line error quotes this instead.
    """
    own = model.state_dict()
    for key, value in own.items():
        if key not in state:
            return f"{key} is missing from the file (model: {_shape(value)})"
        if getattr(state[key], "shape", None) != value.shape:
            return f"{key} is {_shape(state[key])} in the file but {_shape(value)} in the model"
    extra = next((key for key in state if key not in own), None)
    return f"{extra} is in the file but not in the model" if extra is not None else None


def _describe(args: dict[str, Any], keys: Any) -> str:
    """"cnn (width=0.5, image_size=8)": a model's name and the build arguments ``keys``."""
    shown = ", ".join(f"{k}={args[k]}" for k in keys if k in args)
    return f"{args.get('name', '?')} ({shown})" if shown else str(args.get("name", "?"))


def _built_for(payload: dict[str, Any], model: nn.Module) -> str:
    """What the file was built for, beside what ``model`` was, naming the build arguments that
    differ ("; the file was built for cnn (width=0.5), this model is cnn (width=1.0)"); "" when
    the file does not store them."""
    saved = payload.get("build_args")
    if not isinstance(saved, dict) or "name" not in saved:
        return ""
    own = dict(getattr(model, "build_args", None) or {})
    if not own:
        return f"; the file was built for {_describe(saved, _MAIN_ARGS)}"
    keys = [k for k in saved if k != "name" and k in own and own[k] != saved[k]]
    if not keys and own.get("name") == saved["name"]:
        return f"; the file was built for {saved['name']} with the same arguments"
    return f"; the file was built for {_describe(saved, keys)}, this model is {_describe(own, keys)}"


def load_state(model: nn.Module, state: Any, where: str, *, target: str = "this model",
               detail: Callable[[], str] | None = None) -> None:
    """``state`` into ``model``, or one `UserError` line: ``where does not fit <target>: <reason>``,
    the reason naming the first differing key and its two shapes; ``detail`` (called only then)
    adds what the file was built for. Dense checkpoints and compact models both load through it."""
    if not isinstance(state, dict):
        raise UserError(f"{where} is corrupt (state_dict is a {type(state).__name__})")
    reason = state_mismatch(model, state)
    if reason is None:
        try:
            model.load_state_dict(state)
            return
        except (RuntimeError, TypeError, AttributeError) as exc:
            reason = first_line(exc)[:160]
    raise UserError(f"{where} does not fit {target}: {reason}{detail() if detail else ''}")


def _load_into(model: nn.Module, payload: dict[str, Any], where: str) -> None:
    """``payload["state_dict"]`` into ``model``, a mismatch saying what the file was built for."""
    load_state(model, payload["state_dict"], where, detail=lambda: _built_for(payload, model))


def _check_format(payload: dict[str, Any], p: Path) -> None:
    fmt = str(payload.get("format") or "")
    for prefix, (what, loader) in _OTHER_FORMATS.items():
        if fmt.startswith(prefix):
            raise UserError(f"checkpoint {p} is {what} ({fmt}), not a dense checkpoint; load it with {loader}")


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load into ``model``, or rebuild the network from the saved build arguments when None.

    Returns (model, meta).
    """
    payload = read_checkpoint(path)
    _check_format(payload, Path(path))
    if model is None:
        args = dict(payload.get("build_args") or {})
        if "name" not in args:
            raise UserError(f"checkpoint {path} does not say which model it holds; pass the model")
        from snnprune.models import build_model

        model = build_model(args.pop("name"), **args)
    _load_into(model, payload, f"checkpoint {path}")
    return model, dict(payload.get("meta") or {})
