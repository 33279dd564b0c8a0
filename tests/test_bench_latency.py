"""Smoke tests of bench/latency.py and bench/cifar.py: --quick runs the whole path and ends with
one JSON line of figures; cifar.py pads Fashion-MNIST correctly and refuses a CPU-only run.

The scripts run with one torch thread: the machine is shared, and two spinning OpenMP threads on
two busy cores can make a run ten times slower without changing what is checked here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def run_bench(script: str, *args: str, timeout: int = 170) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], check=False, capture_output=True,
                          text=True, timeout=timeout)


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(180)
def test_latency_bench_quick_prints_every_figure():
    figures = last_json(run_bench("latency.py", "--quick", "--threads", "1"))
    assert figures["bench"] == "latency" and figures["quick"] is True
    assert figures["model"] == "cnn" and figures["input_shape"] == [1, 28, 28] and figures["T"] == 4
    assert figures["pruner"] == "l1-filter" and figures["scope"] == "layer"
    ratios = ["0.3", "0.5", "0.7"]
    assert list(figures["macs_ratio"]) == ratios
    macs = [figures["macs_ratio"][r] for r in ratios]
    assert all(0 < m < 1 for m in macs) and macs == sorted(macs, reverse=True)
    # the compact network computes what the masked one does
    assert all(figures["max_abs_diff"][r] <= 1e-5 for r in ratios)
    assert all(figures["masked_macs_over_compact"][r] == pytest.approx(1.0) for r in ratios)
    # every layer lost its share (scope=layer): round(p C) of C channels
    dense = figures["widths"]["dense"]
    for r in ratios:
        assert figures["widths"][r] == {k: round((1 - float(r)) * c) for k, c in dense.items()}
    batches = [str(b) for b in figures["batches"]]
    assert len(figures["rows"]) == len(ratios) * len(batches)
    for r in ratios:
        for b in batches:
            latency = figures["latency_ratio"][r][b]
            assert latency > 0 and figures["quotient"][r][b] == pytest.approx(latency / figures["macs_ratio"][r])
    assert all(ms > 0 for ms in figures["dense_ms"].values())
    assert figures["machine"]["threads"] == 1 and figures["machine"]["cores"] >= 1


def test_pad_splits_adds_a_black_border_once(bench_module):
    from snnprune.data import DataSplits, Split, dataset_info

    cifar = bench_module("cifar")
    info = dataset_info("fashion-mnist")
    x = torch.randn(3, 1, 28, 28)
    splits = DataSplits(info=info, train=Split(x.clone(), torch.arange(3)), val=Split(x[:1].clone(), torch.zeros(1)),
                        test=Split(x[:2].clone(), torch.zeros(2)), mean=(0.3,), std=(0.5,))
    cifar.pad_splits(splits, 32)
    assert splits.info == replace(info, image_size=32)
    for split, n in ((splits.train, 3), (splits.val, 1), (splits.test, 2)):
        assert tuple(split.x.shape) == (n, 1, 32, 32)
        assert torch.equal(split.x[:, :, 2:30, 2:30], x[:n])  # centred, untouched
        border = split.x.clone()
        border[:, :, 2:30, 2:30] = -0.6
        assert torch.allclose(border, torch.full_like(border, -0.6))  # raw 0 = (0 - 0.3) / 0.5
    before = splits.train.x.clone()
    cifar.pad_splits(splits, 32)  # idempotent: the runtime may ask for the same splits again
    assert torch.equal(splits.train.x, before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_cifar_bench_refuses_a_cpu_run_without_asking():
    proc = run_bench("cifar.py", "--dataset", "fashion-mnist", "--pad", "32", timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "--device cpu" in lines[0]
    assert proc.stdout == ""


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"Fashion-MNIST IDX files not installed in {FASHION} "
                    "(apt-get install dataset-fashion-mnist)")
@pytest.mark.timeout(240)
def test_cifar_bench_quick_runs_the_trial_path(tmp_path):
    figures = last_json(run_bench("cifar.py", "--dataset", "fashion-mnist", "--pad", "32", "--device", "cpu",
                                  "--quick", "--threads", "1", "--out", str(tmp_path), timeout=230))
    assert figures["bench"] == "cifar" and figures["device"] == "cpu"
    settings = figures["settings"]
    assert settings["pad"] == 32 and settings["model"] == "vgg16" and settings["quick"] is True
    assert settings["pruner"] == "criticality-unstructured" and settings["sparsity_target"] == 0.9
    assert abs(figures["mask_sparsity"] - 0.9) <= 0.01
    # regenerated weights restart at zero (the reference's rule); in this 1-epoch VGG-16 at width
    # 0.125 those of the last step get no gradient before the end, so up to r (1 - s) = 0.05 of
    # the kept weights can still be zero: the non-zero sparsity lies between the two
    assert figures["mask_sparsity"] - 1e-6 <= figures["sparsity"] <= 0.9 + 0.5 * (1 - 0.9) + 0.01
    assert 0 < figures["macs_ratio"] < 1 and figures["macs"] < figures["dense_macs"]
    for name in ("dense_accuracy", "pruned_accuracy"):
        assert 0.0 <= figures[name] <= 1.0
    assert figures["accuracy_delta"] == pytest.approx(figures["pruned_accuracy"] - figures["dense_accuracy"])
    assert figures["reported"] is None  # the paper's row is CIFAR-10
    assert figures["seconds"] > 0 and figures["cache_hit"] is False
    assert set(figures["phase_seconds"]) == {"pretrain", "prune", "finetune"}
    assert list((tmp_path / ".cache").glob("dense-*.pt"))  # the runner's dense cache was used
    assert (tmp_path / "trials" / "00000" / "model_sparse.pt").is_file()
    assert figures["machine"]["cores"] >= 1
