"""Hyperparameter and budget checks that every entry point (CLI, spaces, Python) shares."""

from __future__ import annotations

import pytest

from snnprune.errors import UserError
from snnprune.pruners import Budget, get_pruner, validate_hyperparameters


@pytest.mark.parametrize("value, expected", [(1, True), (0, False), ("1", True), ("false", False), (True, True)])
def test_a_bool_hyperparameter_takes_one_and_zero(value, expected):
    """`--set normalize=1` arrives as the int 1 and was refused, though the string "1" was taken."""
    assert validate_hyperparameters(get_pruner("sca"), {"normalize": value})["normalize"] is expected


def test_a_bool_hyperparameter_refuses_other_numbers():
    with pytest.raises(UserError, match="normalize=2 must be true or false"):
        validate_hyperparameters(get_pruner("sca"), {"normalize": 2})


@pytest.mark.parametrize("field, value", [("finetune_epochs", 1.5), ("finetune_epochs", float("nan")),
                                          ("batch_size", 0), ("lr", 1e39), ("finetune_lr", float("nan"))])
def test_a_budget_a_run_could_not_use_is_one_line(field, value):
    """finetune_epochs=1.0 passed and 1.5 reached range() after pruning had run; 1e39 was fine
    here but not in fit."""
    with pytest.raises(UserError):
        Budget(**{field: value}).check()


def test_a_budget_of_integral_floats_is_accepted():
    Budget(pretrain_epochs=1.0, prune_epochs=0.0, finetune_epochs=2.0, batch_size=32.0).check()
