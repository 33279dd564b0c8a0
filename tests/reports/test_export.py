"""`select_trials` on tiny recorded studies (conftest.py): which trials an export takes."""

from __future__ import annotations

import optuna
import pytest

from snnprune.errors import UserError
from snnprune.reports import select_trials
from snnprune.search._storage import default_storage, open_storage


def _study(folder) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=open_storage(default_storage(folder), heartbeat=False))


@pytest.mark.parametrize("best", ["accuracy>=.", "accuracy>=1.2.3", "accuracy>=e", "accuracy>=-", "accuracy>=+.e"])
def test_best_with_a_value_that_is_not_a_number_is_a_user_error(run_folder, best):
    # bug: float() on the pattern's group raised ValueError (a traceback, exit 1)
    with pytest.raises(UserError, match=r"^--best expects 'metric>=value' with a number as value, got "):
        select_trials(_study(run_folder), best=best)


def test_minimize_a_metric_that_is_not_a_number_is_a_user_error(run_folder):
    # bug: min() over float(dict) raised TypeError
    with pytest.raises(UserError, match=r"^--minimize firing_rates: not a number per trial; known: accuracy, macs"):
        select_trials(_study(run_folder), best="accuracy>=0.5", minimize="firing_rates")
    with pytest.raises(UserError, match=r"^--minimize foo: trials have no such metric"):
        select_trials(_study(run_folder), best="accuracy>=0.5", minimize="foo")


def test_best_takes_the_cheapest_trial_meeting_the_condition(run_folder):
    chosen = select_trials(_study(run_folder), best="accuracy<0.9", minimize="sops")
    assert [t.number for t in chosen] == [1]


def test_pareto_when_no_trial_meets_the_constraints_says_so(make_run, tmp_path):
    # bug: "study tiny has no complete trial to export" though 4 trials are complete
    folder = tmp_path / "runs" / "tiny"
    make_run(folder, constraints=[("accuracy", ">", 2.0), ("macs", "<=", 1e9)])
    with pytest.raises(UserError) as info:
        select_trials(_study(folder), pareto=True)
    assert str(info.value) == ("study tiny has no feasible trial to export: 4 complete trial(s) break the space's "
                               "constraints (accuracy > 2; macs <= 1e+09) and none meets them; export one anyway "
                               "with --trial N")


def test_pareto_of_a_study_with_nothing_complete(make_run, tmp_path):
    folder = tmp_path / "runs" / "tiny"
    make_run(folder, points=())
    with pytest.raises(UserError, match="^study tiny has no complete trial to export$"):
        select_trials(_study(folder), pareto=True)


def test_pareto_is_the_feasible_front(run_folder):
    assert [t.number for t in select_trials(_study(run_folder), pareto=True)] == [1, 2]


def test_best_picks_among_trials_that_meet_the_constraints(run_folder):
    """The bug: --best ignored the space's constraints and exported trial 0, which breaks
    macs >= 50000 and is therefore on no front."""
    chosen = select_trials(_study(run_folder), best="accuracy>=0.85", minimize="macs")
    assert [t.number for t in chosen] == [2]
    with pytest.raises(UserError, match="breaks the space's constraints .*--trial N"):
        select_trials(_study(run_folder), best="accuracy>=0.9", minimize="macs")


@pytest.mark.parametrize("number, says", [(4, "failed"), (99, "does not exist")])
def test_export_of_a_trial_that_is_not_complete_says_what_it_is(run_folder, number, says):
    """It said "not a complete trial" whatever the trial was (stopped early, failed, absent)."""
    with pytest.raises(UserError, match=f"trial {number} of study tiny {says}; only a complete trial"):
        select_trials(_study(run_folder), trial=number)
