"""bench/search.py part 2's accounting: equal compute, and the oracle floor of its figure."""

from __future__ import annotations

import pytest

DIRS = ["maximize", "minimize"]


@pytest.fixture
def search(bench_module):
    """The accounting helpers of bench/search.py (they live in bench/_hv.py)."""
    return bench_module("_hv")


def rec(values, state="COMPLETE", stopped=None):
    return {"values": values if state == "COMPLETE" else None, "state": state, "stopped_at": stopped,
            "seconds": 1.0}


def test_equal_compute_cuts_where_the_budget_runs_out(search):
    recs = [rec([0.9, 10]), rec(None, "PRUNED", 1), rec(None, "PRUNED", 3), rec([0.8, 5]), rec([0.7, 1])]
    # epochs: 9, 1, 3, 9, 9 -> cumulative 9, 10, 13, 22, 31
    assert len(search.equal_compute(recs, 9, 22)) == 4
    assert len(search.equal_compute(recs, 9, 21)) == 3
    assert len(search.equal_compute(recs, 9, 100)) == 5
    assert search.finetune_epochs(rec(None, "FAIL"), 9) == 9  # a failed trial is counted in full


def test_a_promotions_trial_counts_only_the_epochs_after_its_rung(search):
    """Promote mode: trial 0 paused at epoch 1, trial 2 resumed it there and ran to the end (8 more
    epochs, no pruning again), trial 3 resumed a pause at epoch 3 and paused again at 4."""
    paused, resumed = rec(None, "PRUNED", 1), {**rec([0.9, 10]), "resume_rung": 1}
    again = {**rec(None, "PRUNED", 4), "resume_rung": 3}
    assert [search.finetune_epochs(r, 9) for r in (paused, resumed, again)] == [1, 8, 1]
    assert [search.trial_epochs(r, 9, 2) for r in (paused, resumed, again)] == [3, 8, 1]
    # the line of trials 0 and 2 costs what one trial run straight through does
    assert search.finetune_epochs(paused, 9) + search.finetune_epochs(resumed, 9) == 9


def test_smallest_reaching_subset(search):
    frame = ([0.0, 100.0], [1.0, 0.0])  # reference, ideal
    front = [[0.9, 50.0], [0.5, 10.0], [0.95, 90.0]]
    whole = search.hv(front, frame, DIRS)
    assert search.smallest_reaching(front, whole, frame, DIRS) == 3
    # one point alone reaches its own hypervolume
    one = search.hv([[0.9, 50.0]], frame, DIRS)
    assert search.smallest_reaching(front, one, frame, DIRS) == 1
    assert search.smallest_reaching(front, whole + 0.01, frame, DIRS) is None
    # the greedy path (past max_subsets) never answers fewer points than the exact search
    assert search.smallest_reaching(front, whole, frame, DIRS, max_subsets=1) == 3


def test_oracle_runs_only_the_needed_trials_in_full(search):
    frame = ([0.0, 100.0], [1.0, 0.0])
    recs = [rec([0.5, 60.0]), rec([0.4, 80.0]), rec([0.9, 20.0]), rec([0.3, 90.0])]
    target = search.hv([[0.9, 20.0]], frame, DIRS)
    # the third trial alone reaches it: 2 trials stopped at epoch 1, 1 run in full (9 epochs)
    assert search.oracle_to_reach(recs, target, frame, DIRS, full=9, rung=1) == 1 + 1 + 9
    # a rule that never stops spends 27 epochs to get there: the floor is below it
    curve = search.hv_curve(recs, frame, DIRS)
    assert search.to_reach(curve, [9, 9, 9, 9], target) == 27
    assert search.oracle_to_reach(recs, 2.0, frame, DIRS, full=9, rung=1) is None


def test_mf_space_keeps_digits_and_swaps_only_data_and_model_for_fashion_mnist(bench_module):
    bench = bench_module("search")
    raw = bench.base_space(quick=False)
    assert bench.mf_space(raw, "digits", quick=False) is raw
    fm = bench.mf_space(raw, "fashion-mnist", quick=False)
    assert fm["data"] == {"name": "fashion-mnist", "root": None, "subset": 2000, "val_fraction": 0.2}
    assert (fm["model"]["width"], fm["model"]["T"], fm["model"]["name"]) == (0.5, 2, raw["model"]["name"])
    # everything the two arms compare stays the demo's: budget, pruners, objectives, rungs off
    for key in ("budget", "pruners", "objectives", "rungs", "sampler"):
        assert fm[key] == raw[key]
    assert raw["data"]["name"] == "digits"  # the base space is not mutated
    bench.make_space(fm)  # a valid space
    assert bench.mf_space(raw, "fashion-mnist", quick=True)["data"]["subset"] == 400


def test_mf_space_compare_is_the_every_method_space_with_rungs_off(bench_module):
    bench = bench_module("search")
    raw = bench.base_space(quick=False)
    cmp = bench.mf_space(raw, "digits", quick=False, space="compare")
    assert set(cmp["pruners"]) > set(raw["pruners"])  # every method, the demo's three among them
    assert cmp["rungs"] == {"epochs": []}  # part 2 sets each arm's rungs itself
    assert cmp["budget"]["prune_epochs"] == 6 and cmp["objectives"] == raw["objectives"]
    bench.make_space(cmp)
    tiny = bench.mf_space(raw, "digits", quick=True, space="compare")
    assert (tiny["data"]["subset"], tiny["model"]["width"], tiny["budget"]["pretrain_epochs"]) == (400, 0.25, 1)
    # the compare space on Fashion-MNIST: its data and model swapped, its pruners kept
    fm = bench.mf_space(raw, "fashion-mnist", quick=False, space="compare")
    assert fm["data"]["name"] == "fashion-mnist" and fm["pruners"] == cmp["pruners"]


def test_part2_runs_only_the_rung_arms_asked_for(bench_module, tmp_path):
    """``--arms promote``: the promote arm (its own fraction and trial allowance) and the no-stop arm,
    scored as in a full run, with no stop-arm figures made up."""
    bench = bench_module("search")
    raw = bench.base_space(quick=True)
    stop_rungs = {"epochs": [1], "min_trials": 3, "dominated_fraction": 0.25}
    promote_rungs = {**stop_rungs, "dominated_fraction": 0.1}
    jobs = bench.part2_jobs(raw, tmp_path, [0], 4, 3, stop_rungs, 1.5, promote_rungs, 2.5, ("promote",))
    assert [j["name"] for j in jobs] == ["p2-promote-s0", "p2-none-s0"]
    promote, none = jobs
    assert promote["space"]["rungs"] == {**promote_rungs, "mode": "promote"} and promote["run_trials"] == 10
    assert none["space"]["rungs"] == {"epochs": []} and none["run_trials"] == 4
    both = bench.part2_jobs(raw, tmp_path, [0], 4, 3, stop_rungs, 1.5, promote_rungs, 2.5)
    assert [j["name"] for j in both] == ["p2-rungs-s0", "p2-promote-s0", "p2-none-s0"]
    assert both[0]["space"]["rungs"]["dominated_fraction"] == 0.25 and both[0]["run_trials"] == 6

    def rec(values, state="COMPLETE", stopped=None, resume=None):
        return {"values": values, "state": state, "stopped_at": stopped, "resume_rung": resume, "seconds": 1.0}

    results = {"p2-none-s0": {"trials": [rec([0.5, 50.0]), rec([0.9, 40.0]), rec([0.6, 90.0])]},
               "p2-promote-s0": {"trials": [rec(None, "PRUNED", 1), rec([0.9, 40.0]), rec([0.95, 45.0], resume=1)]}}
    p2 = bench.part2(results, ["maximize", "minimize"], [0], 3, 1, 1, ("promote",))
    assert "ratio" not in p2 and "rungs" not in p2["per_seed"][0]
    row = p2["per_seed"][0]
    # none reaches 95 % of its final hypervolume with its second trial (6 epochs); promote with 1 + 3
    assert row["none"]["epochs_to_95_of_none_final"] == 6 and row["promote"]["epochs_to_95_of_none_final"] == 4
    assert p2["promote"]["ratio"] == pytest.approx(4 / 6)


def test_the_page_names_each_promote_rows_fraction_margin_and_its_cost_with_pruning(bench_module):
    """A promote row says the fraction and the accuracy margin it ran at (results of the old
    default say 0.25; results from before margins, plain dominance: 0), and the row under it gives
    the same ratio with pruning epochs counted in and in trial seconds."""
    doc = bench_module("_doc")
    machine = {"cores": 2, "cpu": "x", "torch": "2.13.0+cpu", "python": "3.11", "gpu": None}

    def record(name, settings, promote):
        result = {"bench": "search", "machine": machine, "settings": settings,
                  "ratios": {"mf_epochs_to_95": 0.87, "mf_epochs_to_95_promote": promote["ratio"]},
                  "part2_multifidelity": {"promote": promote}}
        return {"name": name, "command": "python bench/search.py", "date": "2026-12-07T04:00", "seconds": 1.0,
                "result": result, "output": ""}

    new = record("search-mf-compare", {"trials": 32, "rungs_part2": {"dominated_fraction": 0.25},
                                       "promote_rungs_part2": {"dominated_fraction": 0.1, "margin": "auto"}},
                 {"ratio": 0.492, "ratio_trial_epochs": 0.695, "ratio_seconds": 0.898})
    old = record("search-mf-fashion", {"rungs_part2": {"dominated_fraction": 0.25}},
                 {"ratio": 0.802, "ratio_trial_epochs": 0.877, "ratio_seconds": 0.932})
    page = doc.render({"search-mf-compare": new, "search-mf-fashion": old})
    assert "| the same on the every-method space (`compare`, 32 trials), `promote`, fraction 0.1, margin auto | 0.492 | ≤ 0.5 | met |" in page
    assert "| the same on Fashion-MNIST, `promote`, fraction 0.25, margin 0 | 0.802 | ≤ 0.5 | **missed** |" in page
    assert "| the same, `promote`, with pruning epochs counted in / in trial seconds | 0.695 / 0.898 | context" in page


def test_a_promote_only_run_gets_its_row_and_note_with_each_seeds_ratio(bench_module):
    """``--arms promote`` (the compare bench's command): no stop-arm row or sentence is made up,
    the row says how many seeds it pooled, the note gives each seed's ratio, and a bench not
    measured yet is named by the command `run.py` runs."""
    doc = bench_module("_doc")
    machine = {"cores": 2, "cpu": "x", "torch": "2.13.0+cpu", "python": "3.11", "gpu": None}
    promote = {"ratio": 0.45, "ratio_trial_epochs": 0.66, "ratio_seconds": 0.88, "ratio_final_hv": 1.01,
               "ratio_epochs_per_trial": 0.47}

    def seed(s, ratio):
        return {"seed": s, "promote_ratio_epochs_to_95_of_none_final": ratio,
                "none": {"epochs_to_95_of_none_final": 72, "trials": 32, "finetune_epochs_total": 288},
                "promote": {"trials": 68, "resumed": 14, "configurations": 54, "finetune_epochs_total": 288}}

    settings = {"trials": 32, "finetune_epochs_part2": 9, "mf_space": {"budget": {"prune_epochs": 6}},
                "rungs_part2": {"epochs": [1, 3], "min_trials": 3, "dominated_fraction": 0.25},
                "promote_rungs_part2": {"epochs": [1, 3], "min_trials": 3, "dominated_fraction": 0.1,
                                        "margin": 0.01}}
    result = {"bench": "search", "machine": machine, "settings": settings,
              "ratios": {"mf_epochs_to_95": None, "mf_epochs_to_95_promote": 0.45},
              "part2_multifidelity": {"promote": promote, "oracle_ratio": 0.24,
                                      "per_seed": [seed(0, 0.58), seed(1, 0.37), seed(2, 0.5), seed(3, 0.41)]}}
    record = {"name": "search-mf-compare", "command": "x", "date": "2026-12-07T07:00", "seconds": 1.0,
              "result": result, "output": ""}
    page = doc.render({"search-mf-compare": record})
    assert "every-method space (`compare`, 32 trials) on 4 seeds, `promote`, fraction 0.1, margin 0.01 | 0.450 | ≤ 0.5 | met |" in page
    assert "the rule with a fraction of 0.1 and an accuracy margin of 0.01)" in page
    assert "multi-fidelity / none" not in page and "stopping arm" not in page
    assert "per seed 0.58, 0.37, 0.50, 0.41" in page
    assert "still costs (6 + 1) / (6 + 9) = 0.47 of a full trial's epochs" in page
    assert "python bench/search.py --parts 2 --mf-data fashion-mnist" in page  # not measured: its command
    run = bench_module("run")
    assert f"`{run._command('search-mf-compare')}`" not in page  # measured: no "not measured" line


def _long_record(name, data, ratio):
    """A stored part-2 result of the 27-epoch ladder (rungs 1, 3, 9) on one seed, as bench/run.py
    keeps it: promote arm only, ``ratio`` its fine-tune epochs to 95 %, oracle 0.2."""
    machine = {"cores": 2, "cpu": "x", "torch": "2.13.0+cpu", "python": "3.11", "gpu": None}
    promote = {"ratio": ratio, "ratio_trial_epochs": 0.52, "ratio_seconds": 0.61, "ratio_final_hv": 1.0,
               "ratio_epochs_per_trial": 0.3}
    seed = {"seed": 0, "promote_ratio_epochs_to_95_of_none_final": ratio,
            "none": {"epochs_to_95_of_none_final": 108, "trials": 16, "finetune_epochs_total": 432},
            "promote": {"trials": 60, "resumed": 20, "configurations": 40, "finetune_epochs_total": 432}}
    settings = {"trials": 16, "finetune_epochs_part2": 27, "mf_data": data,
                "mf_space": {"budget": {"prune_epochs": 2}},
                "rungs_part2": {"epochs": [1, 3, 9], "min_trials": 3, "dominated_fraction": 0.25},
                "promote_rungs_part2": {"epochs": [1, 3, 9], "min_trials": 3, "dominated_fraction": 0.1}}
    result = {"bench": "search", "machine": machine, "settings": settings,
              "ratios": {"mf_epochs_to_95": None, "mf_epochs_to_95_promote": ratio},
              "part2_multifidelity": {"promote": promote, "oracle_ratio": 0.2, "per_seed": [seed]}}
    return {"name": name, "command": "x", "date": "2026-12-07T12:00", "seconds": 1.0, "result": result,
            "output": ""}


def test_the_longer_fine_tune_run_names_its_fine_tune_and_rungs_from_its_settings(bench_module):
    """``search-mf-long`` (27 fine-tune epochs, rungs 1, 3, 9): its rows and note say the fine-tune
    length and the rung ladder it ran with, read from the stored settings, and the pruning floor
    uses its own fine-tune length."""
    doc = bench_module("_doc")
    record = _long_record("search-mf-long", "digits", 0.41)
    page = doc.render({"search-mf-long": record})
    assert ("| the same on digits with a 27-epoch fine-tune (rungs at 1, 3, 9) on 1 seed, `promote`, "
            "fraction 0.1, margin 0 | 0.410 | ≤ 0.5 | met |") in page
    assert "| the same for the oracle, 27-epoch fine-tune | 0.200 | context |" in page
    assert "Multi-fidelity on digits with a 27-epoch fine-tune: rungs at fine-tune epochs 1, 3, 9 of 27" in page
    assert "still costs (2 + 1) / (2 + 27) = 0.10 of a full trial's epochs" in page
    assert "seeds ran in" not in page
    record["result"]["merged_from"] = ["first command (seeds 0, 1)", "the same with --mf-first-seed 2 (seeds 2, 3)"]
    assert ("The seeds ran in 2 runs (first command (seeds 0, 1); the same with --mf-first-seed 2 (seeds 2, 3)); "
            "each seed's arms ran side by side") in doc.render({"search-mf-long": record})
    run = bench_module("run")
    assert "--finetune-epochs 27 --rungs 1,3,9" in run._command("search-mf-long")


def test_the_longer_fine_tune_on_fashion_mnist_is_its_own_rows_and_note(bench_module):
    """``search-mf-long-fashion`` (the same ladder on Fashion-MNIST) sits beside ``search-mf-long``:
    each has its rows and its note, named by its data set from the stored settings."""
    doc = bench_module("_doc")
    page = doc.render({"search-mf-long": _long_record("search-mf-long", "digits", 0.41),
                       "search-mf-long-fashion": _long_record("search-mf-long-fashion", "fashion-mnist", 0.62)})
    assert ("| the same on digits with a 27-epoch fine-tune (rungs at 1, 3, 9) on 1 seed, `promote`, "
            "fraction 0.1, margin 0 | 0.410 | ≤ 0.5 | met |") in page
    assert ("| the same on Fashion-MNIST with a 27-epoch fine-tune (rungs at 1, 3, 9) on 1 seed, `promote`, "
            "fraction 0.1, margin 0 | 0.620 | ≤ 0.5 | **missed** |") in page
    assert "Multi-fidelity on digits with a 27-epoch fine-tune: rungs at" in page
    assert "Multi-fidelity on Fashion-MNIST with a 27-epoch fine-tune: rungs at" in page
    assert "| the same for the oracle, 27-epoch fine-tune | 0.200 |" in page
    assert "| the same for the oracle, 27-epoch fine-tune, Fashion-MNIST | 0.200 |" in page
    run = bench_module("run")
    command = run._command("search-mf-long-fashion")
    assert "--mf-data fashion-mnist --finetune-epochs 27 --rungs 1,3,9" in command
    assert "--mf-seeds 4" in command  # four seeds, as search-mf-long: two left one seed at 1.16, one at 0.35


def test_the_margin_flag_reads_as_the_space_key_and_refuses_the_rest(bench_module):
    """``--margin`` takes what ``rungs.margin`` takes (auto or a number in [0, 1)); anything else
    is argparse's one-line error, not a traceback from inside a search."""
    import argparse

    search = bench_module("search")
    assert search._margin_arg("auto") == "auto"
    assert search._margin_arg("0.001") == 0.001 and search._margin_arg("0") == 0.0
    for bad in ("ties", "-0.1", "1", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="auto or a number in"):
            search._margin_arg(bad)


def test_part2_seeds_start_where_asked_so_a_stored_run_can_be_extended(bench_module):
    """``--mf-first-seed 2 --mf-seeds 2`` runs seeds 2 and 3 (a stored run had 0 and 1); a seed
    that is not a whole number >= 0 is argparse's one-line error."""
    import argparse

    search = bench_module("search")
    assert search.part2_seeds(0, None) == [0, 1] and search.part2_seeds(0, None, quick=True) == [0]
    assert search.part2_seeds(2, 2) == [2, 3] and search.part2_seeds(5, 1) == [5]
    assert search._seed_arg("3") == 3
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="whole number >= 0"):
            search._seed_arg(bad)
