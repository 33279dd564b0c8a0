"""Pruners for spiking networks as NNI 3.0 compression algorithms, their registry and scores.

    from snnprune.pruners import CriticalityUnstructuredPruner, default_config_list
    pruner = CriticalityUnstructuredPruner(model, default_config_list(0.9, structured=False),
                                           regen_ratio=0.5)
    snnprune.fit(model, data.train, epochs=10, callbacks=[pruner.callback()])
    masks = pruner.get_masks(); pruner.unwrap_model()
"""

from __future__ import annotations

from ._base import Masks, SNNPruner, default_config_list
from ._criticality_unstructured import CriticalityUnstructuredPruner, GMPPruner
from ._granet import GraNetPruner
from ._graph import post_synaptic_neurons
from ._nni_bridge import make_evaluator
from ._nni_pruners import NNIL1NormPruner, NNILevelPruner, NNISlimPruner, NNITaylorPruner
from ._pq import PQRewiringPruner
from ._pipeline import Budget, PausedRun, PruneOutcome, masked_sparsity, resume_pruning, run_pruning
from ._random_unstructured import RandomUnstructuredPruner
from ._registry import (HyperParam, PrunerSpec, get_pruner, list_pruners, register, registered,
                        validate_hyperparameters)
from ._sca import SCAPruner
from ._schedule import cosine_decay, gradual_sparsity, pruning_steps
from ._scores import (atan_surrogate_grad, atan_surrogate_primitive, channel_activity, channel_activity_sum,
                      criticality_scores, criticality_sum, pq_index, pq_retained_bound, pq_rewire_count)
from ._slimming import CriticalityStructuredPruner, SlimmingPruner
from ._select import keep_count, select_top, select_top_among
from ._structured import ChannelPruner, L1FilterPruner, OneShotChannelPruner, RandomStructuredPruner
from ._stats import ChannelStat, EffectiveGradient, activity_stat, criticality_stat

__all__ = [
    "ChannelPruner",
    "CriticalityStructuredPruner",
    "L1FilterPruner",
    "NNIL1NormPruner",
    "NNILevelPruner",
    "NNISlimPruner",
    "NNITaylorPruner",
    "OneShotChannelPruner",
    "RandomStructuredPruner",
    "SCAPruner",
    "SlimmingPruner",
    "make_evaluator",
    "Budget",
    "PausedRun",
    "PruneOutcome",
    "masked_sparsity",
    "resume_pruning",
    "run_pruning",
    "ChannelStat",
    "CriticalityUnstructuredPruner",
    "EffectiveGradient",
    "GMPPruner",
    "GraNetPruner",
    "HyperParam",
    "Masks",
    "PQRewiringPruner",
    "PrunerSpec",
    "RandomUnstructuredPruner",
    "SNNPruner",
    "activity_stat",
    "atan_surrogate_grad",
    "atan_surrogate_primitive",
    "channel_activity",
    "channel_activity_sum",
    "cosine_decay",
    "criticality_scores",
    "criticality_stat",
    "criticality_sum",
    "default_config_list",
    "get_pruner",
    "gradual_sparsity",
    "keep_count",
    "list_pruners",
    "post_synaptic_neurons",
    "pq_index",
    "pq_retained_bound",
    "pq_rewire_count",
    "pruning_steps",
    "register",
    "registered",
    "select_top",
    "select_top_among",
    "validate_hyperparameters",
]
