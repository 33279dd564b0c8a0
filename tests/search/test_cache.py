from __future__ import annotations

import threading

import torch

from snnprune.search import DenseCache
from snnprune.search._cache import cache_digest


def _model():
    return torch.nn.Linear(3, 2)


def test_trains_once_and_then_hits(tmp_path):
    cache = DenseCache(tmp_path)
    calls = []

    def train():
        calls.append(1)
        return _model()

    key = {"model": "cnn", "seed": 0}
    s1, hit1 = cache.get_or_train(key, train)
    s2, hit2 = cache.get_or_train(dict(reversed(list(key.items()))), train)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_concurrent_requests_train_once(tmp_path):
    cache = DenseCache(tmp_path)
    calls, results = [], []

    def train():
        calls.append(1)
        return _model()

    threads = [threading.Thread(target=lambda: results.append(cache.get_or_train({"k": 1}, train)[1]))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(results) == [False, True, True, True]


def test_corrupt_entry_is_retrained(tmp_path):
    cache = DenseCache(tmp_path)
    key = {"k": 2}
    cache.path_for(key).write_bytes(b"garbage")
    _, hit = cache.get_or_train(key, _model)
    assert hit is False
    _, hit = cache.get_or_train(key, _model)
    assert hit is True


def test_digest_is_order_independent():
    assert cache_digest({"a": 1, "b": [1, 2]}) == cache_digest({"b": [1, 2], "a": 1})
    assert cache_digest({"a": 1}) != cache_digest({"a": 2})


def test_figures_sit_beside_the_checkpoint_and_go_when_it_is_retrained(tmp_path):
    cache = DenseCache(tmp_path)
    key = {"k": 3}
    assert cache.figures(key) == {}
    cache.get_or_train(key, _model)
    cache.save_figures(key, {"test_accuracy": 0.75})
    assert cache.figures(key) == {"test_accuracy": 0.75}
    assert cache.figures({"k": 4}) == {}
    cache.path_for(key).write_bytes(b"garbage")  # corrupt checkpoint: retrained, its figures dropped
    _, hit = cache.get_or_train(key, _model)
    assert hit is False and cache.figures(key) == {}
    cache._figures_path(key).write_text("{not json")
    assert cache.figures(key) == {}


def test_a_cache_hit_does_not_evaluate_the_dense_network_again(tmp_path, monkeypatch, tiny_space):
    import snnprune.pruners._pipeline as pipeline
    from snnprune.search import TrialRuntime, run_trial
    from snnprune.search._optuna import trial_config

    space = tiny_space()
    runtime = TrialRuntime(run_dir=tmp_path, cache=DenseCache(tmp_path / "dense"), directions=space.directions,
                           device="cpu", save_artifacts=False)
    calls = []
    real = pipeline.evaluate
    monkeypatch.setattr(pipeline, "evaluate", lambda model, split, **kw: calls.append(1) or real(model, split, **kw))
    first = run_trial(trial_config(space, "gmp", 0.5, {}, 0, "t"), runtime)
    assert (first.cache_hit, len(calls)) == (False, 2)  # dense and pruned network
    second = run_trial(trial_config(space, "gmp", 0.7, {}, 1, "t"), runtime)
    assert (second.cache_hit, len(calls)) == (True, 3)  # the pruned network only
    assert second.dense["accuracy"] == first.dense["accuracy"]
    uncached = run_trial(trial_config(space, "gmp", 0.7, {}, 2, "t"),
                         TrialRuntime(run_dir=tmp_path / "plain", cache=None, directions=space.directions,
                                      device="cpu", save_artifacts=False))
    assert uncached.dense["accuracy"] == first.dense["accuracy"]  # the same number, measured


def test_a_network_trained_by_an_older_training_loop_is_not_served(monkeypatch):
    """The key names the training revision: a dense network cached before `fit` changed what a
    seed trains (revision 2 unbiased BN statistics) is trained again, not reused."""
    import snnprune.search._trial as trial_module
    from snnprune.engine import TRAINING_REVISION
    from snnprune.search import TrialConfig

    config = TrialConfig.from_dict({"pruner": "gmp", "sparsity": 0.5, "hyperparameters": {}, "model": {"name": "cnn"},
                                    "data": {"name": "digits"}, "budget": {"pretrain_epochs": 1}})
    current = config.cache_key()
    assert current["training"] == TRAINING_REVISION
    monkeypatch.setattr(trial_module, "TRAINING_REVISION", TRAINING_REVISION - 1)
    assert cache_digest(config.cache_key()) != cache_digest(current)
