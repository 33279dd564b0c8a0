"""`optimize` from Python: counts, a space given as a file, and no deprecation noise."""

from __future__ import annotations

import pytest

from snnprune.errors import UserError
from snnprune.search import optimize


@pytest.mark.parametrize("kw, match", [({"trials": 1.5}, "trials must be a whole number"),
                                       ({"trials": True}, "trials must be a whole number"),
                                       ({"workers": 2.0}, "workers must be a whole number"),
                                       ({"trials": 0}, "trials must be >= 1")])
def test_optimize_refuses_counts_that_are_not_whole(tmp_path, tiny_space, kw, match):
    """The bug: `optimize(space, trials=1.5)` was accepted (and ran 2 trials)."""
    with pytest.raises(UserError, match=match):
        optimize(tiny_space(), run_dir=tmp_path, quiet=True, **kw)
    assert not (tmp_path / "study.db").exists()


def test_optimize_takes_a_space_file_as_the_cli_does(tmp_path, space_dict):
    """The bug: `optimize("space.yaml", ...)` failed with AttributeError: 'str' object has no attribute 'study'."""
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**space_dict(), "data": {"name": "cifar10", "root": str(tmp_path / "none")}}))
    with pytest.raises(UserError, match="cifar10: data root"):  # loaded, then checked: no AttributeError
        optimize(str(path), run_dir=tmp_path / "run", trials=1, quiet=True)


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_a_space_with_constraints_prints_no_optuna_deprecation_warning(space_dict, sampler):
    """The bug: every search with constraints printed Optuna 5's constraints_func FutureWarning twice."""
    import warnings

    from snnprune.search import make_sampler
    from snnprune.spaces import parse_space

    space = parse_space({**space_dict(), "constraints": ["accuracy >= 0.5"], "sampler": sampler}, source="<t>")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_sampler(space)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_trials_that_break_a_constraint_are_off_the_front_with_every_sampler(tmp_path, space_dict, sampler,
                                                                              monkeypatch):
    """The bug: random search had no constraints function, so Optuna never saw the constraint
    values and its front kept trials that broke them (`runs`, `report`, `export --pareto` too)."""
    import optuna

    from snnprune.search import _optuna as backend
    from snnprune.search import make_objective, make_runtime, open_study
    from snnprune.search._trial import TrialResult
    from snnprune.spaces import parse_space

    space = parse_space({**space_dict(), "constraints": ["macs <= 1000"], "sampler": sampler}, source="<t>")
    figures = iter([(0.95, 5000.0), (0.8, 500.0), (0.99, 8000.0)])  # unconstrained, all three on the front
    monkeypatch.setattr(backend, "run_trial", lambda config, runtime, **kw: TrialResult(
        config=config, metrics=dict(zip(("accuracy", "macs"), next(figures)))))
    study = open_study(space, f"sqlite:///{tmp_path / 's.db'}")
    study.optimize(make_objective(space, make_runtime(space, tmp_path), space.study), n_trials=3)
    assert [t.number for t in study.best_trials] == [1]
    broken = study.trials[0]
    assert broken.constraints == {"macs <= 1000": pytest.approx(4000.0)}
    assert broken.user_attrs["constraint_violation"] == [pytest.approx(4000.0)]
    assert optuna.load_study(study_name=space.study, storage=f"sqlite:///{tmp_path / 's.db'}").best_trials[0].number == 1


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), -5, 0])
@pytest.mark.parametrize("backend", ["optuna", "ray"])
def test_a_timeout_that_is_not_a_finite_positive_number_is_refused(tmp_path, tiny_space, backend, timeout):
    """`--timeout inf` was accepted (a space file's `timeout: .inf` is refused), and Ray took any value:
    a negative one started no trial at all."""
    from snnprune.search import ray_optimize

    run = optimize if backend == "optuna" else ray_optimize
    with pytest.raises(UserError, match="--timeout must be a finite number of seconds > 0"):
        run(tiny_space(), run_dir=tmp_path, trials=1, timeout=timeout, quiet=True)
    assert not (tmp_path / "study.db").exists()
