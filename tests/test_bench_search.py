"""Smoke test of bench/search.py: --quick runs every part and ends with one JSON line of figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "search.py"


@pytest.mark.timeout(180)
def test_search_bench_quick_prints_every_figure(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--trials", "3", "--out", str(tmp_path)],
                          check=False, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "search"
    assert set(figures["ratios"]) == {"hv_tpe_over_random", "mf_epochs_to_95", "mf_epochs_to_95_promote",
                                      "cache_hit_over_nocache", "workers_2_over_1", "workers_2_over_1_equal_threads",
                                      "workers_2_over_1_median_trial"}
    p1 = figures["part1_hv_tpe_vs_random"]
    assert len(p1["per_seed"]) == 1 and len(p1["reference"]) == 2
    p2 = figures["part2_multifidelity"]
    assert p2["per_seed"][0]["none"]["finetune_epochs_total"] == 3 * 3
    # the stopping arm ran more trials than it keeps, and is cut at the no-stop arm's fine-tune epochs
    assert p2["per_seed"][0]["rungs_trials_run"] == 5
    assert p2["per_seed"][0]["rungs"]["finetune_epochs_total"] <= 3 * 3
    # the promote arm too: its trials that resume a paused one count only their own epochs
    promote = p2["per_seed"][0]["promote"]
    assert p2["per_seed"][0]["promote_trials_run"] >= 5 and promote["finetune_epochs_total"] <= 3 * 3
    assert promote["configurations"] + promote["resumed"] == promote["trials"]
    assert 0 < p2["promote"]["ratio_epochs_per_trial"] <= 1
    assert p2["oracle_ratio"] is not None and 0 < p2["oracle_ratio"] <= 1
    assert 0 < p2["ratio_epochs_per_trial"] <= 1  # a stopped trial costs fewer epochs, never more
    assert figures["settings"]["rungs_part2"]["dominated_fraction"] == 0.25
    assert figures["settings"]["promote_rungs_part2"]["dominated_fraction"] == 0.1  # each arm its mode's default
    p3 = figures["part3_cache"]
    assert p3["mean_hit"] > 0 and p3["mean_nocache"] > 0
    assert p3["epoch_bound"] == pytest.approx(3 / (1 + 3))  # quick budget: pre-train 1, prune 1 + fine-tune 2
    p4 = figures["part4_workers"]
    assert p4["w1"]["finished"] >= 3 and p4["w1t1"]["finished"] >= 3 and p4["w2"]["finished"] >= 3
    assert p4["w1t1"]["threads_per_worker"] == 1 and p4["w1"]["threads_per_worker"] == 2
    assert p4["w2"]["threads_per_worker"] >= 1
    assert figures["machine"]["cores"] >= 1 and figures["settings"]["quick"] is True
