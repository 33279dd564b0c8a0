"""Spiking networks: the model zoo, its factory, and the neuron helpers pruners use."""

from __future__ import annotations

from ._base import ChannelGroup, SpikingNet
from ._factory import MAX_WIDTH, MODELS, build_model, check_width, count_parameters, list_models, seeded
from ._neurons import (
    NEURONS,
    SURROGATES,
    PotentialRecorder,
    PotentialSteps,
    is_spiking,
    make_neuron,
    pre_reset_potential,
)
from ._probe import input_shape_of, probe_forward
from ._resnet import BasicBlock

__all__ = [
    "BasicBlock",
    "ChannelGroup",
    "MAX_WIDTH",
    "MODELS",
    "NEURONS",
    "PotentialRecorder",
    "PotentialSteps",
    "SURROGATES",
    "SpikingNet",
    "build_model",
    "check_width",
    "count_parameters",
    "input_shape_of",
    "is_spiking",
    "list_models",
    "make_neuron",
    "pre_reset_potential",
    "probe_forward",
    "seeded",
]
