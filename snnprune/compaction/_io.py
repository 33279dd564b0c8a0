"""Files for pruned networks: compact models, and unstructured-sparse models with their masks.

Both are plain dicts of tensors and JSON-like values written atomically and read with
``weights_only=True`` (`snnprune.engine.read_checkpoint`), so loading never runs pickled code.
Both rebuild the network from ``build_args`` and the saved group widths alone: a compact model
loads without the dense original it came from.

Sparse files store each masked tensor as a 1-D sparse COO tensor over the flattened parameter,
built from the mask's positions (not from the non-zero values, so a kept weight that happens to
be 0.0 keeps its mask bit). The mask is then the COO indices and is not stored again. Each
entry costs 12 bytes (int64 index + float32 value), so COO is used only where it is smaller
than the dense tensor plus its bool mask (density below ~40 % for float32); others are stored
dense with a bool mask. torch 2.13 loads sparse COO tensors with ``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprune.engine import atomic_torch_save, load_state, read_checkpoint
from snnprune.errors import UserError
from snnprune.models import SpikingNet, build_model, seeded

from ._channels import Masks, check_masks, groups_of
from ._surgery import shrink

__all__ = ["COMPACT_FORMAT", "SPARSE_FORMAT", "load_compact", "load_sparse", "save_compact",
           "save_sparse"]

COMPACT_FORMAT = "snnprune-compact/1"
SPARSE_FORMAT = "snnprune-sparse/1"
_INDEX_BYTES = 8  # torch COO indices are int64


def _build_args(model: nn.Module) -> dict[str, Any]:
    args = getattr(model, "build_args", None)
    if not args or "name" not in args:
        raise UserError("model has no build_args; only models made by build_model can be saved this way")
    return dict(args)


def _widths(model: nn.Module) -> dict[str, int]:
    """Each group's current width, read from the modules themselves (the truth, whatever
    ``compact_widths`` says)."""
    modules = dict(model.named_modules())
    return {g.conv: int(modules[g.conv].weight.shape[0]) for g in groups_of(model)}


def _rebuild(payload: dict[str, Any], path: Path) -> SpikingNet:
    """The saved architecture, freshly built and shrunk to the saved widths (first k channels)."""
    args = payload.get("build_args")
    if not isinstance(args, dict) or "name" not in args:
        raise UserError(f"{path} does not say which model it holds (no build_args)")
    args = dict(args)
    try:
        with seeded(0):  # the weights are overwritten; leave the caller's RNG alone
            model = build_model(args.pop("name"), **args)
    except TypeError as exc:  # arguments missing or unknown: another version's file, or edited
        raise UserError(f"{path} holds build_args that build_model does not take ({exc})") from None
    widths = payload.get("compact_widths") or {}
    if not isinstance(widths, dict):
        raise UserError(f"{path} is corrupt (compact_widths is not a dict)")
    built = _widths(model)
    keep: dict[str, torch.Tensor] = {}
    for conv, width in widths.items():
        if conv not in built or not isinstance(width, int) or not 1 <= width <= built[conv]:
            raise UserError(f"{path} does not fit its model: group {conv!r} width {width!r}")
        if width < built[conv]:
            keep[conv] = torch.arange(width)
    if keep:
        shrink(model, keep)
    model.compact_widths = {conv: int(w) for conv, w in widths.items()}
    model.build_args = dict(payload["build_args"])
    return model


def _read(path: str | os.PathLike, fmt: str) -> dict[str, Any]:
    p = Path(path)
    payload = read_checkpoint(p)
    if payload.get("format") != fmt:
        raise UserError(f"{p} is not a {fmt} file (format {payload.get('format')!r})")
    return payload


def save_compact(path: str | os.PathLike, model: SpikingNet) -> Path:
    """Save a compact model (weights, ``build_args``, group widths) atomically; returns the path.

    The widths are read from the modules, so a model saved here always reloads at its real size.
    """
    payload = {
        "format": COMPACT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "build_args": _build_args(model),
        "compact_widths": _widths(model),
    }
    return atomic_torch_save(payload, path)


def load_compact(path: str | os.PathLike) -> SpikingNet:
    """Rebuild a model saved by `save_compact`, on the CPU, without the original network.

    A missing, corrupt or foreign file is a one-line `UserError`.
    """
    p = Path(path)
    payload = _read(p, COMPACT_FORMAT)
    model = _rebuild(payload, p)
    load_state(model, payload["state_dict"], p, target="its model")
    return model


def _sparse_is_smaller(t: torch.Tensor, nnz: int) -> bool:
    return nnz * (_INDEX_BYTES + t.element_size()) < t.numel() * (t.element_size() + 1)


@torch.no_grad()
def save_sparse(path: str | os.PathLike, model: SpikingNet, masks: Masks) -> Path:
    """Save an unstructured-pruned model with its masks, the masked weights as sparse tensors.

    Every masked parameter is saved as ``param * mask``; where that is smaller, as a 1-D COO
    tensor over the mask's kept positions (the mask is then implied), else dense with a bool
    mask. Everything unmasked is saved dense. A compacted model's widths are kept too.
    """
    check_masks(model, masks)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    sparse: dict[str, torch.Tensor] = {}
    shapes: dict[str, list[int]] = {}
    bool_masks: dict[str, torch.Tensor] = {}
    mask_keys: dict[str, list[str]] = {}
    for module, entry in masks.items():
        for pname, mask in entry.items():
            key = f"{module}.{pname}" if module else pname
            keep = (mask.detach() != 0).cpu()
            value = state[key] * keep.to(state[key].dtype)
            mask_keys[key] = [module, pname]
            flat = keep.reshape(-1).nonzero().reshape(-1)
            if _sparse_is_smaller(value, len(flat)):
                del state[key]
                sparse[key] = torch.sparse_coo_tensor(flat.unsqueeze(0), value.reshape(-1)[flat],
                                                      (value.numel(),), is_coalesced=True,
                                                      check_invariants=True)
                shapes[key] = list(value.shape)
            else:
                state[key] = value
                bool_masks[key] = keep
    payload = {
        "format": SPARSE_FORMAT,
        "state_dict": state,
        "sparse": sparse,
        "shapes": shapes,
        "masks": bool_masks,
        "mask_keys": mask_keys,
        "build_args": _build_args(model),
        "compact_widths": _widths(model),
    }
    return atomic_torch_save(payload, path)


def load_sparse(path: str | os.PathLike) -> tuple[SpikingNet, dict[str, dict[str, torch.Tensor]]]:
    """Rebuild a model saved by `save_sparse`: dense, zeros in place, and its bool masks.

    Returns (model, masks) with masks as ``{module: {param: bool tensor}}``. A missing, corrupt or
    foreign file is a one-line `UserError`.
    """
    p = Path(path)
    payload = _read(p, SPARSE_FORMAT)
    model = _rebuild(payload, p)
    state = dict(payload["state_dict"])
    masks: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for key, (module, pname) in payload["mask_keys"].items():
            if key in payload["sparse"]:
                coo = payload["sparse"][key].coalesce()
                shape = tuple(int(s) for s in payload["shapes"][key])
                index = coo.indices()[0]
                keep = torch.zeros(coo.shape[0], dtype=torch.bool)
                keep[index] = True
                value = torch.zeros(coo.shape[0], dtype=coo.dtype)
                value[index] = coo.values()
                state[key] = value.reshape(shape)
                keep = keep.reshape(shape)
            else:
                keep = payload["masks"][key].bool()
            masks.setdefault(module, {})[pname] = keep
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise UserError(f"{p} is a corrupt sparse file ({type(exc).__name__}: {str(exc)[:80]})") from None
    load_state(model, state, p, target="its model")
    return model, masks
