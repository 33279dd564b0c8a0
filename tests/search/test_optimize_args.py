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
