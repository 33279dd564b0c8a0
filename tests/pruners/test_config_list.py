"""NNI config_list forms through every registered pruner: translated, checked, honoured.

Found by using the pruners exactly as NNI's: each case here was a bare KeyError, an assert, a
silent wrong mask, or a wrong message before `pruners._config.prepare_config_list`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import snnprune
from snnprune.errors import UserError
from snnprune.pruners import (GMPPruner, L1FilterPruner, NNIL1NormPruner, NNILevelPruner, RandomStructuredPruner,
                              RandomUnstructuredPruner, SCAPruner, list_pruners, make_evaluator)


def _net() -> torch.nn.Module:
    with snnprune.models.seeded(0):
        return snnprune.build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=2, width=0.25)


def _ratios(masks) -> dict[str, float]:
    return {name: round(1 - float(m["weight"].float().mean()), 3) for name, m in masks.items() if "weight" in m}


def test_a_legacy_exclude_entry_is_honoured_by_our_structured_pruners():
    """Was KeyError: 'features.0' in compress(): the excluded conv became a channel group."""
    config = [{"op_types": ["Conv2d"], "sparsity_per_layer": 0.5}, {"exclude": True, "op_names": ["features.0"]}]
    pruner = L1FilterPruner(_net(), config)
    _, masks = pruner.compress()
    assert "features.0" not in masks and {"features.3", "features.7"} <= set(masks)


@pytest.mark.parametrize("config", [
    [{"op_types": ["Conv2d"], "target_names": ["weight"], "target_settings": {"weight": {"sparse_ratio": 0.5}}}],
    [{"op_types": ["Conv2d"], "sparsity_per_layer": 0.5}],
    [{"op_types": ["Conv2d"], "sparsity": 0.5}],
], ids=["target-settings", "sparsity-per-layer", "sparsity"])
def test_nni_l1norm_takes_the_ratio_wherever_nni_puts_it(config):
    """Was "the config_list selects no layer": the ratio in target_settings was dropped."""
    _, masks = NNIL1NormPruner(_net(), config).compress()
    assert _ratios({k: v for k, v in masks.items() if k in ("features.0", "features.3", "features.7")}) == \
        {"features.0": 0.5, "features.3": 0.5, "features.7": 0.5}


def test_total_sparsity_becomes_one_global_group():
    """NNI's own translation wrote a group_id its schema refuses ("Wrong key 'group_id'")."""
    _, masks = NNILevelPruner(_net(), [{"op_types": ["Conv2d", "Linear"], "total_sparsity": 0.5}]).compress()
    kept = sum(float(m["weight"].sum()) for m in masks.values())
    total = sum(m["weight"].numel() for m in masks.values())
    assert abs(1 - kept / total - 0.5) < 0.01


@pytest.mark.parametrize("pruner", [L1FilterPruner, GMPPruner, SCAPruner])
def test_different_ratios_per_layer_are_refused_where_one_would_be_used(pruner):
    """Was silent: every layer got the first entry's 0.75 (l1-filter gave 0.75 and 0.75)."""
    config = [{"op_names": ["features.3"], "sparse_ratio": 0.75}, {"op_names": ["features.7"], "sparse_ratio": 0.25}]
    with pytest.raises(UserError, match="prunes every selected layer to one sparse_ratio.*0.25, 0.75"):
        pruner(_net(), config)


def test_a_pruner_that_honours_ratios_per_layer_keeps_them():
    config = [{"op_names": ["features.3"], "sparse_ratio": 0.75}, {"op_names": ["features.7"], "sparse_ratio": 0.25}]
    _, masks = RandomUnstructuredPruner(_net(), config, scope="layer").compress()
    assert _ratios(masks) == {"features.3": 0.75, "features.7": 0.25}


@pytest.mark.parametrize("value", [1.5, -0.2, float("nan"), "0.5", True], ids=str)
@pytest.mark.parametrize("pruner", [RandomStructuredPruner, NNILevelPruner, GMPPruner])
def test_a_ratio_out_of_range_or_not_a_number_is_one_line_at_construction(pruner, value):
    """1.5 pruned everything and -0.2 nothing, silently; nan and '0.5' failed deep inside."""
    with pytest.raises(UserError, match=r"config_list\[0\]\.sparse_ratio must be a number in \[0, 1\]"):
        pruner(_net(), [{"op_types": ["Conv2d"], "sparse_ratio": value}])


def test_integer_and_numpy_ratios_are_taken_as_floats():
    """NNI's schema refused 1 and 0 with a multi-line SchemaError ("should be instance of 'float'")."""
    for value in (0, 1, np.float32(0.5)):
        GMPPruner(_net(), [{"op_types": ["Conv2d"], "sparse_ratio": value}])


@pytest.mark.parametrize("spec", list_pruners(), ids=lambda s: s.name)
def test_every_pruner_names_a_missing_op_name_in_one_line(spec):
    """Ours raised a bare KeyError from NNI's config code; only the nni:* wrappers checked."""
    with pytest.raises(UserError, match="names 'feature.7', which the model does not have"):
        spec.factory(_net(), [{"op_names": ["features.3", "feature.7"], "sparse_ratio": 0.5}])


@pytest.mark.parametrize("pruner", [GMPPruner, NNILevelPruner])
def test_an_op_type_nni_cannot_prune_is_one_line(pruner):
    """Was an AssertionError from NNI's setting registry."""
    with pytest.raises(UserError, match="invalid config_list: LIFNode is not registered"):
        pruner(_net(), [{"op_types": ["LIFNode"], "sparse_ratio": 0.5}])


def test_a_refused_compress_leaves_the_model_unpruned():
    """compress(max_steps=0) raised, but only after its schedule had started and pruned."""
    data = snnprune.load_dataset("digits", subset=100, seed=0)
    net = _net()
    pruner = GMPPruner(net, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], make_evaluator(net, data.train))
    with pytest.raises(UserError, match="max_steps must be an integer >= 1"):
        pruner.compress(max_steps=0)
    assert all(float(m["weight"].float().mean()) == 1.0 for m in pruner.get_masks().values())
    pruner.unwrap_model()
    with pytest.raises(UserError, match="the model was unwrapped"):
        pruner.compress(max_steps=1)


@pytest.mark.parametrize("value", ["abc", None, float("nan"), True])
def test_run_pruning_refuses_a_sparsity_that_is_not_a_number(value):
    from snnprune.pruners import run_pruning

    data = snnprune.load_dataset("digits", subset=100, seed=0)
    with pytest.raises(UserError, match="sparsity must be a number in"):
        run_pruning("gmp", _net(), data, sparsity=value)


@pytest.mark.parametrize("entry, key", [
    ({"max_sparse_ratio": 0.85, "global_group_id": 1}, "max_sparse_ratio"),
    ({"min_sparse_ratio": 0.1}, "min_sparse_ratio"),
    ({"granularity": "in_channel"}, "granularity"),
])
@pytest.mark.parametrize("pruner", [SCAPruner, GMPPruner])
def test_settings_our_schedules_would_ignore_are_refused(pruner, entry, key):
    """They were ignored without a word: sca reached 0.969 on a layer capped at 0.85, and
    in_channel still pruned out-channels."""
    with pytest.raises(UserError, match=f"{key}.* is not (honoured by|what) this pruner"):
        pruner(_net(), [{"op_types": ["Conv2d"], "sparse_ratio": 0.8, **entry}])


def test_nni_pruners_keep_honouring_a_cap():
    NNILevelPruner(_net(), [{"op_types": ["Conv2d"], "sparse_ratio": 0.8, "max_sparse_ratio": 0.85,
                             "global_group_id": 1}])
