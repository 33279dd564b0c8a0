"""Several processes opening one brand-new SQLite study at once all succeed (bug: the loser of
Optuna's table-creation race exited with 'cannot open storage ... already exists')."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from snnprune.search import _storage  # imported before forking: the children start at once


def _open(url: str, retries: int, barrier) -> str:
    _storage._CREATE_RACE_RETRIES = retries
    barrier.wait()
    try:
        _storage.open_storage(url, heartbeat=False)
        return "ok"
    except Exception as exc:  # the UserError line is what a user would have seen
        return str(exc)


def race(tmp_path, retries: int, rounds: int = 3, processes: int = 4) -> list[str]:
    ctx = multiprocessing.get_context("fork")
    failures = []
    with ctx.Manager() as manager:
        for i in range(rounds):
            url = f"sqlite:///{tmp_path / f'race-{i}.db'}"
            barrier = manager.Barrier(processes)
            with ctx.Pool(processes) as pool:
                outcomes = pool.starmap(_open, [(url, retries, barrier)] * processes)
            failures += [o for o in outcomes if o != "ok"]
    return failures


@pytest.mark.skipif(os.name != "posix", reason="uses fork")
def test_concurrent_first_opens_of_a_sqlite_study_all_succeed(tmp_path):
    assert race(tmp_path, retries=3) == []
