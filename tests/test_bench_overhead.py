"""bench/overhead.py: the paired ratio it reports, and a tiny end-to-end run ending in one JSON line."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_paired_ratio_cancels_drift_that_the_ratio_of_medians_does_not(bench_module):
    overhead = bench_module("overhead")
    # the machine slows down round by round; hooks cost exactly 2 % in every round
    off = [50.0, 50.0, 60.0, 70.0, 70.0]
    on = [x * 1.02 for x in off]
    assert overhead.paired_ratio(on, off) == pytest.approx(1.02)
    # a run where the slow rounds fell on the hooked side only
    skewed_on = [51.0, 51.0, 71.4, 71.4, 71.4]
    assert overhead.paired_ratio(skewed_on, off) == pytest.approx(1.02)
    assert statistics.median(skewed_on) / statistics.median(off) > 1.15  # what a ratio of medians says
    with pytest.raises(ValueError):
        overhead.paired_ratio([1.0], [1.0, 2.0])


@pytest.mark.timeout(180)
def test_overhead_bench_runs_and_reports_every_ratio():
    proc = subprocess.run([sys.executable, str(BENCH / "overhead.py"), "--width", "0.25", "--steps", "2",
                           "--rounds", "2", "--threads", "1"], check=False, capture_output=True, text=True,
                          timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "overhead" and figures["threads"] == 1
    for key in ("ratio_activity", "ratio_criticality", "ratio_activity_every4", "ratio_criticality_every4"):
        assert figures[key] > 0
    assert set(figures["ratio_of_medians"]) == {"activity", "criticality", "activity/4", "criticality/4"}
    assert all(len(v) == 2 for v in figures["rounds_ms_per_step"].values())
