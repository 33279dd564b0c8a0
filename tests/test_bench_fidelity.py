"""bench/fidelity.py (smoke), and bench/run.py + bench/_doc.py writing docs/benchmarks.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _run(*args: str, timeout: int = 170) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True, timeout=timeout,
                          cwd=BENCH)


@pytest.fixture(scope="module")
def fidelity_quick(tmp_path_factory) -> dict:
    if not FASHION.is_dir():
        pytest.skip(f"Fashion-MNIST is not installed under {FASHION} (apt-get install dataset-fashion-mnist)")
    out = tmp_path_factory.mktemp("fidelity")
    proc = _run(str(BENCH / "fidelity.py"), "--quick", "--sections", "dense,gmp,sca,imp", "--seeds", "1",
                "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(200)
def test_fidelity_quick_gives_every_requested_row(fidelity_quick):
    summary = fidelity_quick["summary"]
    assert set(summary) == {"dense", "gmp", "sca", "imp"}
    gmp = summary["gmp"]
    assert set(gmp["table"]) == {"criticality|0.9", "gmp|0.9", "criticality|0.95", "gmp|0.95"}
    assert gmp["verdict"] in ("agrees", "partly agrees", "does not reproduce")
    runs = {(r["pruner"], round(r["hp"].get("regen_ratio", 0), 2)): r for r in fidelity_quick["runs"]}
    # the same config serves two rows (dense and gmp at 90 %) but ran once
    assert len(fidelity_quick["runs"]) == len({json.dumps([r["pruner"], r["hp"], r["seed"], r["sparsity"]])
                                               for r in fidelity_quick["runs"]})
    for run in fidelity_quick["runs"]:
        if run["pruner"] in ("gmp", "criticality-unstructured"):
            target = 0.75 if abs(run["connectivity"] - 0.25) < 0.01 else None
            assert target is None or abs(run["sparsity"] - target) < 0.02
    assert runs[("sca", 0)]["macs_ratio"] < 1.0
    imp = summary["imp"]
    assert imp["imp"]["rounds"] == 2 and abs(imp["imp"]["sparsity"] - 0.75) < 0.01  # 1 - 0.5^2
    assert imp["imp"]["epochs"] == 1 + 2 * 1  # dense round + two rounds of `pretrain` epochs
    assert imp["epoch_ratio_imp_over_criticality"] > 0


def test_fidelity_rejects_an_unknown_section():
    proc = _run(str(BENCH / "fidelity.py"), "--sections", "gmp,nope", timeout=60)
    assert proc.returncode == 2 and "unknown section(s) nope" in proc.stderr


def _record(name: str, result: dict) -> dict:
    return {"name": name, "command": f"python bench/{name}.py", "date": "2026-11-21T10:00:00", "seconds": 1.0,
            "result": result, "output": ""}


@pytest.mark.timeout(200)
def test_run_doc_only_writes_the_page_from_stored_results(tmp_path, fidelity_quick):
    results = tmp_path / "results"
    results.mkdir()
    machine = fidelity_quick["machine"]
    stored = {
        "throughput": {"bench": "throughput", "ratio": 1.04, "machine": machine},
        "overhead": {"bench": "overhead", "ratio_activity": 1.03, "ratio_criticality": 1.07, "machine": machine},
        "search-quality": {"bench": "search", "ratios": {"hv_tpe_over_random": 1.2, "mf_epochs_to_95": 0.7},
                           "machine": machine},
        "search-speed": {"bench": "search", "ratios": {"cache_hit_over_nocache": 0.4, "workers_2_over_1": 1.1},
                         "machine": machine},
        "fidelity": fidelity_quick,
    }
    for name, result in stored.items():
        (results / f"{name}.json").write_text(json.dumps(_record(name, result)))
    doc = tmp_path / "benchmarks.md"
    proc = _run(str(BENCH / "run.py"), "--doc-only", "--results", str(results), "--doc", str(doc), timeout=60)
    assert proc.returncode == 0, proc.stderr
    page = doc.read_text()
    assert page.startswith("# Benchmarks")
    assert f"{machine['cores']} cores" in page and machine["torch"] in page
    assert "| step time with criticality hooks / without (median of per-round paired ratios) | 1.070 | ≤ 1.05 " \
        "| **missed** |" in page
    assert "| trials per hour, 2 workers (1 thread each) / 1 worker (2 threads): the whole 2-core machine | 1.100 " \
        "| ≥ 1.6 | **missed** |" in page
    assert "1 thread per worker" not in page  # an old result without that arm gets no row for it
    assert "| per-trial wall, dense cache hit / no cache | 0.400 | ≤ 0.5 | met |" in page
    assert "Not measured yet: run `python bench/latency.py`" in page  # never an old figure
    assert "### Criticality regeneration vs plain GMP" in page and "### Epochs against iterative" in page
    assert "`python bench/fidelity.py`" in page
    assert "## GPU path" in page and "no GPU" in page
    perf = page.split("## Performance")[1].split("## Fidelity")[0]
    rows = [line for line in perf.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    assert len(rows) == 7 and all("`python bench/" in line for line in rows), rows  # each names its command


def test_run_import_stores_a_saved_log(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text('some output\n{"bench": "throughput", "ratio": 1.01, "machine": {"cores": 2}}\n')
    proc = _run(str(BENCH / "run.py"), "--import", f"throughput={log}", "--results", str(tmp_path / "r"),
                "--doc", str(tmp_path / "b.md"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "r" / "throughput.json").read_text())
    assert record["result"]["ratio"] == 1.01 and record["command"] == "python bench/throughput.py"
    assert "| engine / plain spikingjelly loop, samples per second | 1.010 |" in (tmp_path / "b.md").read_text()
