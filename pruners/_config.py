"""A user's NNI config_list, brought to NNI 3.0's form and checked before a pruner wraps anything.

Every registered pruner, ours and the ``nni:`` wrappers alike, takes its config_list through
`prepare_config_list`, so the forms NNI documents behave the same everywhere:

- legacy keys (``sparsity``, ``sparsity_per_layer``, ``total_sparsity``, ``exclude: True``) are
  translated by NNI's own `trans_legacy_config_list`. Its translation of ``total_sparsity``
  writes a ``group_id`` that NNI's schema then refuses; it becomes ``global_group_id`` here;
- every ratio (``sparse_ratio``, ``max_sparse_ratio``, ``min_sparse_ratio``, at the top of an
  entry or in its ``target_settings``) must be a number in [0, 1]: NNI checks only that it is a
  float, so 1.5 pruned everything, -0.2 nothing, and NaN failed deep inside a mask computation;
  an integer 0 or 1 (or a numpy number) is taken as the float NNI's schema insists on;
- every ``op_names`` entry must name a module of the model (NNI raises a bare KeyError).
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any

from nni.compression.base.config import trans_legacy_config_list
from torch import nn

from snnprune.errors import UserError

__all__ = ["RATIO_KEYS", "check_names", "prepare_config_list", "refuse_unhonoured", "weight_ratio_settings"]

RATIO_KEYS = ("sparse_ratio", "max_sparse_ratio", "min_sparse_ratio")


def prepare_config_list(model: nn.Module, config_list: list[dict[str, Any]] | None,
                        pruner: str) -> list[dict[str, Any]]:
    """A private, NNI 3.0-form, checked copy of ``config_list`` (module docstring)."""
    if config_list is None:
        raise UserError(f"pruner {pruner}: a config_list is needed "
                        "(e.g. snnprune.pruners.default_config_list(0.5, structured=...))")
    if not isinstance(config_list, (list, tuple)) or not all(isinstance(c, dict) for c in config_list):
        raise UserError(f"pruner {pruner}: a config_list is a list of dicts, got {config_list!r:.80}")
    configs = trans_legacy_config_list(copy.deepcopy(list(config_list)))
    for i, config in enumerate(configs):
        weight = (config.get("target_settings") or {}).get("weight")
        if isinstance(weight, dict) and "group_id" in weight:  # NNI's translation of total_sparsity
            config.setdefault("global_group_id", weight.pop("group_id"))
        _check_ratios(config, f"config_list[{i}]", pruner)
        for name, settings in (config.get("target_settings") or {}).items():
            if isinstance(settings, dict):
                _check_ratios(settings, f"config_list[{i}].target_settings.{name}", pruner)
    check_names(model, configs, pruner)
    return configs


def _check_ratios(block: dict[str, Any], where: str, pruner: str) -> None:
    for key in RATIO_KEYS:
        if key not in block or block[key] is None:
            continue
        value = block[key]
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
            and 0.0 <= value <= 1.0
        if not ok:
            raise UserError(f"pruner {pruner}: {where}.{key} must be a number in [0, 1], got {value!r}")
        block[key] = float(value)


def check_names(model: nn.Module, config_list: list[dict[str, Any]], pruner: str) -> None:
    """Every ``op_names`` entry must name a module (NNI raises a bare KeyError otherwise)."""
    names = {name for name, _ in model.named_modules()}
    for config in config_list:
        missing = [n for n in config.get("op_names", ()) if n not in names]
        if missing:
            raise UserError(f"pruner {pruner}: the config_list names {', '.join(map(repr, missing))}, "
                            "which the model does not have")


def weight_ratio_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ratio settings of an entry's weight, wherever NNI 3.0 lets a user put them: at the
    top of the entry, or in ``target_settings['weight']`` (where legacy translation puts them)."""
    weight = (config.get("target_settings") or {}).get("weight") or {}
    out = {k: weight[k] for k in (*RATIO_KEYS, "sparse_threshold") if k in weight}
    out.update({k: config[k] for k in (*RATIO_KEYS, "sparse_threshold") if k in config})
    return out


#: granularities our own pruners produce: element-wise (unstructured) or whole output channels
_OWN_GRANULARITY = {False: ("default", "element"), True: ("default", "out_channel")}


def refuse_unhonoured(config_list: list[dict[str, Any]], pruner: str, *, structured: bool) -> None:
    """Our pruners' schedules set each layer's mask themselves: a per-layer cap or floor
    (``max_sparse_ratio``, ``min_sparse_ratio``) or another ``granularity`` in the config_list
    would be ignored without a word, so each is refused; the ``nni:*`` pruners honour them."""
    for i, config in enumerate(config_list):
        settings = [("", config)] + [(f".target_settings.{name}", block) for name, block in
                                     (config.get("target_settings") or {}).items() if isinstance(block, dict)]
        for where, block in settings:
            for key in ("max_sparse_ratio", "min_sparse_ratio"):
                if block.get(key) is not None:
                    raise UserError(f"pruner {pruner}: config_list[{i}]{where}.{key} is not honoured by this "
                                    "pruner (its schedule sets every layer's sparsity); leave it out, or use "
                                    "an nni:* pruner")
            granularity = block.get("granularity")
            if granularity is not None and granularity not in _OWN_GRANULARITY[structured]:
                raise UserError(f"pruner {pruner}: config_list[{i}]{where}.granularity {granularity!r} is not "
                                f"what this pruner prunes ({_OWN_GRANULARITY[structured][1]}s); leave it out, "
                                "or use an nni:* pruner")
