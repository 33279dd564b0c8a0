"""What the sampler learns from in a search with rungs: a stopped or paused trial by its partial
vector (it was a valueless PRUNED trial, ranked last whatever it measured), each configuration
once."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from snnprune.search._partial import PartialVectors, _PartialView, partial_vector, sampler_trials

DIST = {"x": optuna.distributions.FloatDistribution(0, 1)}


@pytest.fixture
def study():
    return optuna.create_study(directions=["maximize", "minimize"])


def add(study, state, x, values=None, **attrs):
    study.add_trial(optuna.trial.create_trial(state=state, params={"x": x}, distributions=DIST, values=values,
                                              user_attrs=attrs))


def test_a_stopped_or_paused_trial_is_shown_complete_with_the_vector_of_the_rung_it_stopped_at(study):
    add(study, TrialState.PRUNED, 0.1, stopped_at_rung=1, rung_1=[0.5, 10.0])  # stop mode
    add(study, TrialState.PRUNED, 0.2, stopped_at_rung=1, paused_checkpoint="a", paused_unjudged=True,
        rung_1=[0.6, 20.0], rung_3=[0.9, 20.0])  # rung 3's record is not what it stopped at
    add(study, TrialState.PRUNED, 0.3, rung_1=[0.4, 5.0], rung_3=[0.45, 5.0])  # no stopped_at_rung: the last
    add(study, TrialState.PRUNED, 0.5, stopped_at_rung=1, partial_values=[0.55, 7.0], rung_1=[0.5, 7.0])  # stored
    add(study, TrialState.COMPLETE, 0.4, [0.95, 30.0], rung_1=[0.8, 30.0])  # complete: its own values
    shown = sampler_trials(study.trials, 2)
    assert [t.state for t in shown] == [TrialState.COMPLETE] * 5
    assert [t.values for t in shown] == [[0.5, 10.0], [0.6, 20.0], [0.45, 5.0], [0.55, 7.0], [0.95, 30.0]]
    assert [t.state for t in study.trials][:4] == [TrialState.PRUNED] * 4  # the study is untouched
    assert study.trials[0].values is None
    view = _PartialView(study)  # what the sampler is handed: the states it asks for, as shown
    assert len(view.get_trials(states=(TrialState.COMPLETE,))) == 5
    assert view.get_trials(states=(TrialState.PRUNED,)) == [] and view.directions == study.directions


def test_a_pruned_trial_without_a_usable_rung_record_stays_pruned(study):
    add(study, TrialState.PRUNED, 0.1)  # no record (another origin)
    add(study, TrialState.PRUNED, 0.2, stopped_at_rung=1, rung_1=[0.5])  # one value for two objectives
    add(study, TrialState.PRUNED, 0.3, stopped_at_rung=1, rung_1=["a", 1.0], partial_values=None)
    assert [partial_vector(t, 2) for t in study.trials] == [None, None, None]
    assert [t.state for t in sampler_trials(study.trials, 2)] == [TrialState.PRUNED] * 3
    assert sampler_trials([], 2) == []


def test_a_pause_that_went_on_is_left_out_once_its_resuming_trial_has_finished(study):
    add(study, TrialState.PRUNED, 0.1, stopped_at_rung=1, paused_checkpoint="a", rung_1=[0.5, 10.0])  # 0
    add(study, TrialState.PRUNED, 0.2, stopped_at_rung=1, paused_checkpoint="b", rung_1=[0.6, 20.0])  # 1
    add(study, TrialState.COMPLETE, 0.1, [0.9, 10.0], resumes=0, resume_rung=1, resume_checkpoint="a")  # 2
    add(study, TrialState.WAITING, 0.2, resumes=1, resume_rung=1, resume_checkpoint="b")  # 3: queued, not run
    shown = sampler_trials(study.trials, 2)
    assert [t.number for t in shown] == [1, 2, 3]  # 0 is trial 2 now; 1 still stands for itself
    assert shown[0].values == [0.6, 20.0]


def test_tpe_models_the_front_on_the_partial_vectors(study):
    """Three complete trials near x = 0.1, three paused near x = 0.9 whose rung vectors dominate
    them, and fourteen paused near x = 0.5 that everything dominates. Through `PartialVectors`
    TPE proposes near 0.9; on the stored states (every pause valueless, ranked alike, below the
    complete trials) it proposed near 0.1, the only results it had."""
    for i in range(3):
        add(study, TrialState.COMPLETE, 0.1 + 0.01 * i, [0.5, 100.0], rung_1=[0.45, 100.0])
    for i in range(3):
        add(study, TrialState.PRUNED, 0.9 + 0.01 * i, stopped_at_rung=1, rung_1=[0.95, 5.0])
    for i in range(14):
        add(study, TrialState.PRUNED, 0.43 + 0.01 * i, stopped_at_rung=1, rung_1=[0.3, 200.0])

    def proposals(sampler) -> list[float]:
        out = []
        for _ in range(8):
            trial = study.ask()
            frozen = study.trials[trial.number]
            out.append(sampler.sample_relative(study, frozen, {"x": DIST["x"]})["x"])
            study.tell(trial, state=TrialState.FAIL)  # not a result: the next ask sees the same trials
        return out

    plain = proposals(optuna.samplers.TPESampler(multivariate=True, n_startup_trials=4, seed=0))
    wrapped = proposals(PartialVectors(optuna.samplers.TPESampler(multivariate=True, n_startup_trials=4, seed=0)))
    assert sum(plain) / len(plain) < 0.3
    assert sum(wrapped) / len(wrapped) > 0.7


def test_make_sampler_wraps_whenever_the_space_has_rungs(tiny_space):
    from snnprune.search import make_sampler

    assert isinstance(make_sampler(tiny_space(rungs={"epochs": [1], "mode": "promote"})), PartialVectors)
    assert isinstance(make_sampler(tiny_space(rungs={"epochs": [1], "mode": "stop"})), PartialVectors)
    assert not isinstance(make_sampler(tiny_space()), PartialVectors)  # no rungs: nothing is partial
