"""The search itself: sampler quality, multi-fidelity, the dense cache and parallel workers.

Four parts, each a ratio of two arms measured side by side in one run (absolute times are
context only):

1. Hypervolume, ours (TPE, `make_sampler`) against random search, at equal trials: the same
   space (the built-in ``demo`` space: digits, accuracy/MACs, criticality-unstructured + SCA +
   GMP, rungs off so that every trial counts), one study per sampler and seed. Every study's
   COMPLETE trials are scored against ONE reference point and ONE ideal point, both taken from
   the union of all the part's points (`default_reference`), normalised to the unit box.
   Figure: mean HV of TPE / mean HV of random (target >= 1.10), and per seed.
2. Multi-fidelity compute saving: the same TPE search with rungs (default: fine-tune epochs 1 and
   3 of 9, once 3 trials have reached the rung) against none, on ``--mf-seeds`` seeds (default
   2), in both rung modes side by side, each with its mode's default dominated fraction
   (`DEFAULT_FRACTIONS`): ``stop`` (arm "rungs": decide once, at the rung; stop when dominated
   by a quarter of the trials seen there, ``--rung-fraction``) and ``promote`` (arm "promote":
   pause, go on when the rule allows, ASHA's promotions; a tenth, ``--promote-fraction``).
   Both arms judge with ``--margin`` (``rungs.margin``; default the space's, 0: plain dominance;
   ``auto``: another trial must be better by the rung accuracy's standard error).
   Equal compute, not equal trials: the stop arm may run ``--mf-extra`` (1.5) times the trials,
   the promote arm ``--mf-extra-promote`` (2.5: its trials cost less), and each is cut where
   its fine-tune epochs reach the no-stop arm's total, so the epochs it saves buy it more
   trials, as they would a user. A
   promotion's trial counts only the epochs it runs after the rung it resumes from.
   Compute = fine-tune epochs actually run (a stopped trial ran its rung's epochs; the rungs
   act on nothing else); the same with every trial's pruning epochs added, and trial seconds, as
   context. Figure: compute to reach 95 % of the NO-STOPPING run's final hypervolume (common
   reference and ideal from both runs' points), stopping / none (target <= 0.5). Beside it an
   oracle on the no-stop run's own trials: the least compute with which ANY rule stopping at the
   first rung could have reached that hypervolume (it runs in full only a smallest subset of the
   front that reaches it, every other trial to the rung), the floor of this figure; and the
   fine-tune epochs a trial cost on average, stopping / none. ``--mf-data fashion-mnist`` runs
   this part on Fashion-MNIST instead of digits, whose validation accuracy is saturated (see
   `MF_DATA`); ``--mf-space compare`` on the every-method space instead of the demo's three
   methods (see `MF_SPACES`).
3. Dense-cache saving: the same configs through `run_trial` with a fresh `DenseCache` against
   `cache=None` (every trial pre-trains), alternating config by config, 1 torch thread. Its own
   cache folder, untouched by the other parts. The cache is filled once first (the miss, shown
   apart); figure: mean trial seconds on cache hits / without the cache (target <= 0.5), and
   the mean over the configs with that miss counted in.
4. 2 workers against 1: trials per hour of `optimize(workers=2, storage=<journal file>)` (each
   worker process 1 torch thread, as `optimize` sets on 2 cores) against `optimize(workers=1)`
   with 2 torch threads, same space, same trial count, both journal storage. The ceiling on 2
   cores is 2.0 (target >= 1.6). Worker start-up (spawn, imports) is inside the 2-worker wall;
   the ratio of median trial times (1 worker against 2 in parallel) is shown as context. Note
   that the single worker's 2 intra-op threads already speed one trial up (about 1.6x here), so
   on 2 cores this ratio is bounded near 2 / 1.6. A third arm, 1 worker with 1 thread, gives the
   scaling of the worker machinery at equal resources per worker (each worker on its own cores,
   as on a cluster): 2 workers / that arm.

Parts 1, 2 and 4 share one dense cache, warmed before they start, so they measure the search
and not pre-training. Parts 1 and 2 run their studies two at a time in 1-thread processes
(their figures do not depend on time); parts 3 and 4 run alone, after them.

Defaults: about 25 minutes for parts 1-2 and 7 for parts 3-4 on 2 free cores.

    python bench/search.py [--trials 16] [--seeds 2] [--mf-seeds 2] [--mf-first-seed 0] [--finetune-epochs 9] [--rungs 1,3]
                           [--rung-fraction 0.25] [--promote-fraction 0.1] [--margin auto]
                           [--mf-data digits|fashion-mnist]
                           [--mf-space demo|compare] [--mf-extra 1.5] [--mf-extra-promote 2.5]
                           [--arms stop,promote] [--parts 1,2,3,4]
                           [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import math
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from _hv import (
    complete_points,
    equal_compute,
    finetune_epochs,
    frame_of,
    hv,
    hv_curve,
    off_front,
    oracle_to_reach,
    to_reach,
    trial_epochs,
)
from _spaces import MF_DATA, MF_SPACES, base_space, make_space, mf_space

from _common import finish, machine
from snnprune.errors import UserError
from snnprune.search import DenseCache, TrialRuntime, make_runtime, open_storage, optimize, run_trial
from snnprune.search._optuna import quiet_optuna, trial_config
from snnprune.spaces import DEFAULT_FRACTIONS, Rungs
from snnprune.spaces._parse import read_margin

PRUNER_CONFIGS = [  # part 3: fixed configs, one per pruner of the space, cycled
    ("gmp", 0.8, {}),
    ("sca", 0.3, {"update_ratio": 0.1}),
    ("criticality-unstructured", 0.8, {"regen_ratio": 0.3, "aggregation": "max"}),
]


# --------------------------------------------------------------------------- study jobs

def _records(storage: str, study: str) -> list[dict[str, Any]]:
    """Every trial of a study as plain data, in trial-number order."""
    loaded = optuna.load_study(study_name=study, storage=open_storage(storage, heartbeat=False))
    out = []
    for t in sorted(loaded.get_trials(deepcopy=False), key=lambda t: t.number):
        metrics = t.user_attrs.get("metrics", {})
        duration = ((t.datetime_complete - t.datetime_start).total_seconds()
                    if t.datetime_complete and t.datetime_start else None)
        out.append({"number": t.number, "state": t.state.name,
                    "values": list(t.values) if t.state.name == "COMPLETE" else None,
                    "stopped_at": t.user_attrs.get("stopped_at_rung"),
                    "resume_rung": t.user_attrs.get("resume_rung"),
                    "seconds": metrics.get("seconds", duration), "duration": duration,
                    "pruner": t.user_attrs.get("config", {}).get("pruner"),
                    "cache_hit": t.user_attrs.get("cache_hit")})
    return out


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One job in a pool process (1 torch thread): warm the cache, or run one whole study."""
    torch.set_num_threads(job.get("threads", 1))
    space = make_space(job["space"])
    run_dir = Path(job["run_dir"])
    start = time.perf_counter()
    if job["kind"] == "warm":
        with quiet_optuna():
            runtime = make_runtime(space, run_dir, device="cpu")
            pruner, sparsity, hp = PRUNER_CONFIGS[0]
            result = run_trial(trial_config(space, pruner, sparsity, hp, 0, "warm"), runtime)
        return {"job": job["name"], "wall": time.perf_counter() - start, "cache_hit": result.cache_hit}
    storage = job["storage"]
    # "run_trials" runs more trials than the space's budget, which sets the sampler (TPE's start-up)
    optimize(space, run_dir=run_dir, storage=storage, trials=job.get("run_trials", space.trials),
             workers=job.get("workers", 1),
             device="cpu", quiet=True)
    return {"job": job["name"], "wall": time.perf_counter() - start, "trials": _records(storage, space.study)}


def run_pool(warm: list[dict[str, Any]], jobs: list[dict[str, Any]], processes: int,
             ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The warm-up jobs (filling the dense cache), then the studies, in one pool of processes."""
    if not warm and not jobs:
        return {}, {}
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
        warmed = {r["job"]: r for r in pool.map(run_job, warm)}
        return warmed, {r["job"]: r for r in pool.map(run_job, jobs)}


def study_job(name: str, space: dict[str, Any], root: Path, **extra: Any) -> dict[str, Any]:
    run_dir = root / name  # every run dir is a child of root: make_runtime's cache is root/.cache
    return {"kind": "study", "name": name, "space": {**space, "study": name}, "run_dir": str(run_dir),
            "storage": f"sqlite:///{(run_dir / 'study.db').as_posix()}", **extra}


# --------------------------------------------------------------------------- part 1

def part1_jobs(raw: dict[str, Any], root: Path, seeds: list[int], trials: int) -> list[dict[str, Any]]:
    return [study_job(f"p1-{sampler}-s{seed}", {**raw, "sampler": sampler, "seed": seed, "trials": trials}, root)
            for seed in seeds for sampler in ("tpe", "random")]


def part1(results: dict[str, dict[str, Any]], directions: list[str], seeds: list[int]) -> dict[str, Any]:
    recs = {(s, sm): results[f"p1-{sm}-s{s}"]["trials"] for s in seeds for sm in ("tpe", "random")}
    union = [p for r in recs.values() for p in complete_points(r)]
    frame = frame_of(union, directions)
    per_seed = []
    for s in seeds:
        t, r = hv(complete_points(recs[s, "tpe"]), frame, directions), hv(complete_points(recs[s, "random"]), frame,
                                                                               directions)
        per_seed.append({"seed": s, "hv_tpe": t, "hv_random": r, "ratio": t / r if r else None,
                         "complete_tpe": len(complete_points(recs[s, "tpe"])),
                         "complete_random": len(complete_points(recs[s, "random"]))})
    mt = statistics.mean(p["hv_tpe"] for p in per_seed)
    mr = statistics.mean(p["hv_random"] for p in per_seed)
    return {"reference": frame[0], "ideal": frame[1], "per_seed": per_seed, "mean_hv_tpe": mt, "mean_hv_random": mr,
            "ratio": mt / mr if mr else None}


# --------------------------------------------------------------------------- part 2

#: Part 2's arms with rungs, each measured against the no-stop arm "none" (see the docstring).
RUNG_ARMS = ("rungs", "promote")
#: ``--arms`` names -> part 2's arm names (the stop arm kept its first name, "rungs").
ARM_NAMES = {"stop": "rungs", "promote": "promote"}


def part2_jobs(raw: dict[str, Any], root: Path, seeds: list[int], trials: int, finetune: int,
               rungs: dict[str, Any], extra: float, promote_rungs: dict[str, Any] | None = None,
               promote_extra: float | None = None, rung_arms: tuple[str, ...] = RUNG_ARMS) -> list[dict[str, Any]]:
    """Part 2's studies: per seed the stop arm ("rungs", ``rungs``), the promote arm (``promote_rungs``:
    the same rungs with their own fraction) and the no-stop arm; each rung arm may run ``extra``
    (promote: ``promote_extra``) times the trials, cut at equal compute afterwards. ``rung_arms``:
    the rung arms to run (default both); the no-stop arm always runs."""
    budget = {**raw["budget"], "finetune_epochs": finetune}
    promote_rungs = promote_rungs or rungs
    promote_extra = promote_extra or extra
    jobs = []
    for seed in seeds:
        for arm, block, count in (("rungs", {**rungs, "mode": "stop"}, math.ceil(extra * trials)),
                                  ("promote", {**promote_rungs, "mode": "promote"}, math.ceil(promote_extra * trials)),
                                  ("none", {"epochs": []}, trials)):
            if arm != "none" and arm not in rung_arms:
                continue
            # the same space (trials included: it sets TPE's start-up) for both arms; only the count run differs
            jobs.append(study_job(f"p2-{arm}-s{seed}", {**raw, "budget": budget, "rungs": block, "sampler": "tpe",
                                                        "seed": seed, "trials": trials}, root, run_trials=count))
    return jobs


RATIO_KEYS = ("epochs_to_95_of_none_final", "trial_epochs_to_95_of_none_final", "seconds_to_95_of_none_final",
              "epochs_to_95_of_own_final", "seconds_to_95_of_own_final")


def part2(results: dict[str, dict[str, Any]], directions: list[str], seeds: list[int],
          finetune: int, rung: int, prune_epochs: int, rung_arms: tuple[str, ...] = RUNG_ARMS) -> dict[str, Any]:
    """Per seed, every arm scored in ONE frame; pooled ratios of each rung arm against "none"
    (the stop arm's at the top level, as before the promote arm existed; the promote arm's under
    "promote")."""
    per_seed = []
    for s in seeds:
        none = results[f"p2-none-s{s}"]["trials"]
        spent_none = sum(finetune_epochs(r, finetune) for r in none)
        ran = {arm: results[f"p2-{arm}-s{s}"]["trials"] for arm in rung_arms}
        arms = {**{arm: equal_compute(ran[arm], finetune, spent_none) for arm in rung_arms}, "none": none}
        frame = frame_of([p for r in arms.values() for p in complete_points(r)], directions)
        row: dict[str, Any] = {"seed": s, **{f"{arm}_trials_run": len(ran[arm]) for arm in rung_arms}}
        curves = {arm: hv_curve(r, frame, directions) for arm, r in arms.items()}
        target_common = 0.95 * curves["none"][-1]
        for arm, recs in arms.items():
            epochs = [finetune_epochs(r, finetune) for r in recs]
            with_prune = [trial_epochs(r, finetune, prune_epochs) for r in recs]
            secs = [float(r["seconds"] or 0.0) for r in recs]
            own = 0.95 * curves[arm][-1]
            row[arm] = {"final_hv": curves[arm][-1], "trials": len(recs),
                        "configurations": sum(not r.get("resume_rung") for r in recs),
                        "pruned": sum(r["state"] == "PRUNED" for r in recs),
                        "resumed": sum(bool(r.get("resume_rung")) for r in recs),
                        "failed": sum(r["state"] == "FAIL" for r in recs),
                        "finetune_epochs_total": sum(epochs), "trial_seconds_total": sum(secs),
                        "epochs_to_95_of_none_final": to_reach(curves[arm], epochs, target_common),
                        "trial_epochs_to_95_of_none_final": to_reach(curves[arm], with_prune, target_common),
                        "seconds_to_95_of_none_final": to_reach(curves[arm], secs, target_common),
                        "epochs_to_95_of_own_final": to_reach(curves[arm], epochs, own),
                        "seconds_to_95_of_own_final": to_reach(curves[arm], secs, own)}
        for arm in rung_arms:
            prefix = "" if arm == "rungs" else f"{arm}_"
            for key in RATIO_KEYS:
                a, b = row[arm][key], row["none"][key]
                row[f"{prefix}ratio_{key}"] = a / b if a is not None and b else None
            row[f"{prefix}ratio_total_epochs"] = (row[arm]["finetune_epochs_total"]
                                                  / row["none"]["finetune_epochs_total"])
        row["none"]["dominated_at_end"] = off_front(complete_points(none), directions)
        row["oracle_epochs_to_95"] = oracle_to_reach(none, target_common, frame, directions, finetune, rung)
        per_seed.append(row)

    oracle = [p["oracle_epochs_to_95"] for p in per_seed]
    reach_none = [p["none"]["epochs_to_95_of_none_final"] for p in per_seed]
    out: dict[str, Any] = {"per_seed": per_seed}
    for arm in rung_arms:
        figures = _pooled(per_seed, arm)
        if arm == "rungs":
            out.update(figures)
        else:
            out[arm] = figures
    out.update({
        "oracle_ratio": sum(oracle) / sum(reach_none) if None not in oracle and None not in reach_none
        and sum(reach_none) else None,
        "dominated_at_end": sum(p["none"]["dominated_at_end"] for p in per_seed),
        "trials_none": sum(p["none"]["trials"] for p in per_seed)})
    return out


def _pooled(per_seed: list[dict[str, Any]], arm: str) -> dict[str, Any]:
    """One rung arm's ratios to "none", pooled over the seeds (sums of compute, not mean ratios)."""
    def pooled(key: str) -> float | None:
        a = [p[arm][key] for p in per_seed]
        b = [p["none"][key] for p in per_seed]
        return sum(a) / sum(b) if None not in a and None not in b and sum(b) else None

    def total(who: str) -> int:
        return sum(p[who]["finetune_epochs_total"] for p in per_seed)

    def trials(who: str) -> int:
        return sum(p[who]["trials"] for p in per_seed)

    return {"ratio": pooled("epochs_to_95_of_none_final"),
            "ratio_trial_epochs": pooled("trial_epochs_to_95_of_none_final"),
            "ratio_seconds": pooled("seconds_to_95_of_none_final"),
            "ratio_own_final": pooled("epochs_to_95_of_own_final"),
            "ratio_total_epochs": total(arm) / total("none"),
            # what a trial costs on average once the rule acts (context: it ignores what was found)
            "ratio_epochs_per_trial": (total(arm) / trials(arm)) / (total("none") / trials("none")),
            "ratio_final_hv": statistics.mean(p[arm]["final_hv"] / p["none"]["final_hv"] for p in per_seed
                                              if p["none"]["final_hv"])}


# --------------------------------------------------------------------------- part 3

def part3(raw: dict[str, Any], root: Path, configs: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    space = make_space(raw, study="p3")
    cached = TrialRuntime(run_dir=root / "p3-cache", cache=DenseCache(root / "p3-cache" / "dense"),
                          directions=space.directions, device="cpu")
    plain = TrialRuntime(run_dir=root / "p3-nocache", cache=None, directions=space.directions, device="cpu")
    for rt in (cached, plain):  # load the data outside the timings
        rt.data(space.data.to_dict(), space.seed)
    chosen = [PRUNER_CONFIGS[i % len(PRUNER_CONFIGS)] for i in range(configs)]

    def timed(rt: TrialRuntime, i: int, cfg: tuple[str, float, dict]) -> tuple[float, bool]:
        start = time.perf_counter()
        result = run_trial(trial_config(space, cfg[0], cfg[1], cfg[2], i, "p3"), rt, trial_key=str(i))
        return time.perf_counter() - start, result.cache_hit

    miss, hit0 = timed(cached, 0, chosen[0])  # fills the cache (pre-trains once, saves the checkpoint)
    if hit0:
        raise RuntimeError("part 3's cache was not empty: the miss is not measured")
    hits, nocache = [], []
    for i, cfg in enumerate(chosen, start=1):
        seconds, _ = timed(plain, i, cfg)
        nocache.append(seconds)
        seconds, hit = timed(cached, i, cfg)
        if not hit:
            raise RuntimeError("part 3: a trial after the first missed the cache")
        hits.append(seconds)
    mh, mn = statistics.mean(hits), statistics.mean(nocache)
    amortized = (miss + sum(hits)) / (len(hits) + 1)
    b = space.budget
    trial_epochs = b.prune_epochs + b.finetune_epochs
    return {"configs": [c[0] for c in chosen], "threads": 1, "miss_seconds": miss, "hit_seconds": hits,
            "nocache_seconds": nocache, "mean_hit": mh, "mean_nocache": mn, "ratio": mh / mn,
            "mean_with_miss": amortized, "ratio_with_miss": amortized / mn,
            "pretrain_epochs": b.pretrain_epochs, "trial_epochs": trial_epochs,
            # what a hit can save at most: the pre-training, counted in epochs of equal cost
            "epoch_bound": trial_epochs / (b.pretrain_epochs + trial_epochs)}


# --------------------------------------------------------------------------- part 4

def part4(raw: dict[str, Any], root: Path, seed: int, trials: int) -> dict[str, Any]:
    """Trials per hour of three arms on the same space and trial count, one after another."""
    out: dict[str, Any] = {"trials": trials}
    # (arm, workers, torch threads of the single worker; the 2 workers get cores // 2 each)
    for arm, workers, threads in (("w1", 1, 2), ("w1t1", 1, 1), ("w2", 2, None)):
        name = f"p4-{arm}"
        space = make_space(raw, study=name, seed=seed, trials=trials, sampler="tpe")
        run_dir = root / name
        storage = str(run_dir / "journal.log")
        if threads:
            torch.set_num_threads(threads)
        start = time.perf_counter()
        optimize(space, run_dir=run_dir, storage=storage, trials=trials, workers=workers, device="cpu", quiet=True)
        wall = time.perf_counter() - start
        recs = _records(storage, name)
        finished = sum(r["state"] in ("COMPLETE", "PRUNED", "FAIL") for r in recs)
        secs = [r["seconds"] for r in recs if r["seconds"] is not None]
        out[arm] = {"wall": wall, "finished": finished, "trials_per_hour": finished / wall * 3600,
                    "workers": workers,
                    "threads_per_worker": threads or max(1, (os.cpu_count() or 1) // workers),
                    "mean_trial_seconds": statistics.mean(secs) if secs else None,
                    "median_trial_seconds": statistics.median(secs) if secs else None,
                    "failed": sum(r["state"] == "FAIL" for r in recs),
                    "cache_hits": sum(bool(r["cache_hit"]) for r in recs)}
    out["ratio"] = out["w2"]["trials_per_hour"] / out["w1"]["trials_per_hour"]
    # the scaling of the worker machinery itself: each worker with the same threads (1)
    out["ratio_equal_threads"] = out["w2"]["trials_per_hour"] / out["w1t1"]["trials_per_hour"]
    # context, robust to one trial slowed by a neighbour: median trial time, 1 worker vs 2 in parallel
    out["ratio_median_trial"] = out["w1"]["median_trial_seconds"] / (out["w2"]["median_trial_seconds"] / 2)
    return out


# --------------------------------------------------------------------------- main

def _fmt(v: Any, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def _margin_arg(raw: str) -> str | float:
    """``--margin``: read by the space key ``rungs.margin``'s own reader (auto or a number in [0, 1))."""
    try:
        return read_margin(raw, "--margin")
    except UserError:
        raise argparse.ArgumentTypeError(f"must be auto or a number in [0, 1), got {raw!r}") from None


def part2_seeds(first: int, count: int | None, *, quick: bool = False) -> list[int]:
    """Part 2's seeds: ``count`` of them (2; 1 with --quick) from ``first``, so that a stored
    run's seeds can be added to without running them again."""
    return list(range(first, first + (count or (1 if quick else 2))))


def _seed_arg(text: str) -> int:
    """A seed: a whole number >= 0 (argparse's one-line error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a whole number >= 0, got {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="trials per study (default 16; --quick 4)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds of part 1 (default 2; --quick 1)")
    parser.add_argument("--parts", default="1,2,3,4")
    parser.add_argument("--mf-seeds", type=int, default=None, help="seeds of part 2 (default 2; --quick 1)")
    parser.add_argument("--mf-first-seed", type=_seed_arg, default=0,
                        help="part 2's first seed (default 0): more seeds of a stored run without re-running its own")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="part 2's fine-tune epochs (9; --quick 3)")
    parser.add_argument("--rungs", default=None, help="part 2's rung epochs, comma-separated (1,3; --quick 1)")
    parser.add_argument("--rung-min-trials", type=int, default=3)
    parser.add_argument("--rung-fraction", type=float, default=DEFAULT_FRACTIONS["stop"],
                        help="the stop arm's dominated fraction (default: the stop mode's default)")
    parser.add_argument("--promote-fraction", type=float, default=DEFAULT_FRACTIONS["promote"],
                        help="the promote arm's dominated fraction (default: the promote mode's default)")
    parser.add_argument("--margin", default=Rungs.margin, type=_margin_arg,
                        help="both rung arms' accuracy margin, as rungs.margin: a number (0, the default: plain "
                             "dominance) or auto (the rung accuracy's standard error)")
    parser.add_argument("--mf-data", choices=sorted(MF_DATA), default="digits",
                        help="part 2's data set (default digits, the demo's; see MF_DATA)")
    parser.add_argument("--mf-space", choices=MF_SPACES, default="demo",
                        help="part 2's space (default demo; compare: every method, see MF_SPACES)")
    parser.add_argument("--mf-extra", type=float, default=1.5,
                        help="part 2: trials of the stop arm, as a multiple of --trials (cut at equal compute)")
    parser.add_argument("--arms", default="stop,promote",
                        help="part 2's rung arms, comma-separated from stop, promote (the no-stop arm always runs)")
    parser.add_argument("--mf-extra-promote", type=float, default=2.5,
                        help="part 2: the same for the promote arm, whose trials cost less (cut at equal compute)")
    parser.add_argument("--cache-configs", type=int, default=3, help="part 3: configs timed each way")
    parser.add_argument("--processes", type=int, default=2, help="parts 1-2: studies run at once")
    parser.add_argument("--out", default=None, help="folder for every run (default: a new temp dir)")
    parser.add_argument("--quick", action="store_true", help="tiny space and sizes: a smoke test")
    args = parser.parse_args()
    trials = args.trials or (4 if args.quick else 16)
    seeds = list(range(args.seeds or (1 if args.quick else 2)))
    mf_seeds = part2_seeds(args.mf_first_seed, args.mf_seeds, quick=args.quick)
    configs = 2 if args.quick and args.cache_configs == 3 else args.cache_configs
    parts = {int(p) for p in args.parts.split(",") if p.strip()}
    root = Path(args.out or tempfile.mkdtemp(prefix="snnprune-bench-search-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    search_root = root / "search"  # parts 1, 2, 4: shared, warmed dense cache at search/.cache
    raw = base_space(args.quick)
    mf_raw = mf_space(raw, args.mf_data, args.quick, args.mf_space)
    directions = list(make_space(raw).directions)
    finetune = args.finetune_epochs or (3 if args.quick else 9)
    rung_epochs = [int(e) for e in (args.rungs or ("1" if args.quick else "1,3")).split(",") if e.strip()]
    rungs = {"epochs": rung_epochs, "min_trials": args.rung_min_trials, "dominated_fraction": args.rung_fraction,
             "margin": args.margin}
    promote_rungs = {**rungs, "dominated_fraction": args.promote_fraction}
    picked = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not picked or any(a not in ARM_NAMES for a in picked):
        parser.error(f"--arms takes a comma-separated choice of {', '.join(ARM_NAMES)}, got {args.arms!r}")
    rung_arms = tuple(ARM_NAMES[a] for a in ARM_NAMES if a in picked)
    load_start = os.getloadavg()
    started = time.perf_counter()
    figures: dict[str, Any] = {"bench": "search"}

    jobs = (part1_jobs(raw, search_root, seeds, trials) if 1 in parts else []) + \
        (part2_jobs(mf_raw, search_root, mf_seeds, trials, finetune, rungs, args.mf_extra, promote_rungs,
                    args.mf_extra_promote, rung_arms) if 2 in parts else [])
    warm_seeds = sorted(set(seeds if 1 in parts else []) | set(mf_seeds if 2 in parts and mf_raw is raw else [])
                        | ({seeds[0]} if 4 in parts else set()))
    warm_jobs = [{"kind": "warm", "name": f"warm-s{s}", "space": {**raw, "seed": s},
                  "run_dir": str(search_root / f"warm-s{s}")} for s in warm_seeds]
    if 2 in parts and mf_raw is not raw:
        warm_jobs += [{"kind": "warm", "name": f"warm-{args.mf_space}-{args.mf_data}-s{s}",
                       "space": {**mf_raw, "seed": s},
                       "run_dir": str(search_root / f"warm-{args.mf_space}-{args.mf_data}-s{s}")} for s in mf_seeds]
    warm, results = run_pool(warm_jobs, jobs, args.processes)
    figures["seconds_warm_and_parts_1_2"] = time.perf_counter() - started
    figures["warm_seconds"] = {k: v["wall"] for k, v in warm.items()}

    if 1 in parts:
        p1 = part1(results, directions, seeds)
        figures["part1_hv_tpe_vs_random"] = p1
        print(f"1. hypervolume at {trials} trials, TPE vs random ({len(seeds)} seeds; one reference {p1['reference']})")
        for p in p1["per_seed"]:
            print(f"   seed {p['seed']}: tpe {p['hv_tpe']:.4f} ({p['complete_tpe']} complete)  random "
                  f"{p['hv_random']:.4f} ({p['complete_random']})  ratio {_fmt(p['ratio'])}")
        print(f"   mean ratio tpe / random                     {_fmt(p1['ratio'])}   (target >= 1.10)")
    if 2 in parts:
        p2 = part2(results, directions, mf_seeds, finetune, rung_epochs[0], mf_raw["budget"]["prune_epochs"],
                   rung_arms)
        figures["part2_multifidelity"] = p2
        print(f"2. multi-fidelity, {args.mf_space} space on {args.mf_data}: rungs {rungs} (promote: fraction "
              f"{args.promote_fraction}), margin {args.margin}, fine-tune {finetune} epochs, {trials} trials "
              f"without stopping, "
              f"with stopping cut at equal fine-tune epochs, {len(mf_seeds)} seed(s)")
        for p in p2["per_seed"]:
            for arm in (*rung_arms, "none"):
                a = p[arm]
                print(f"   seed {p['seed']} {arm:7s}: {a['trials']} trials ({a['configurations']} configurations, "
                      f"{a['resumed']} resumed), stopped or paused {a['pruned']}, final HV "
                      f"{a['final_hv']:.4f}, ft epochs {a['finetune_epochs_total']}, to 95% of none's final: "
                      f"{_fmt(a['epochs_to_95_of_none_final'], '.0f')} ep / "
                      f"{_fmt(a['seconds_to_95_of_none_final'], '.0f')} s")
            print(f"   seed {p['seed']} oracle: {_fmt(p['oracle_epochs_to_95'], '.0f')} ep")
        print("   (arm / none)                                  stop (rungs)   promote")
        for label, key in (("fine-tune epochs to 95% of no-stop final HV", "ratio"),
                           ("the same, pruning epochs counted in", "ratio_trial_epochs"),
                           ("the same in trial seconds", "ratio_seconds"),
                           ("the same, each run's own final HV", "ratio_own_final"),
                           ("fine-tune epochs per trial", "ratio_epochs_per_trial"),
                           ("final HV at equal compute", "ratio_final_hv")):
            print(f"   {label:45s} {_fmt(p2.get(key)):>11s}   {_fmt((p2.get('promote') or {}).get(key)):>7s}"
                  + ("   (target <= 0.5)" if key == "ratio" else ""))
        print(f"   oracle floor (any rule stopping at epoch {rung_epochs[0]}) / none       {_fmt(p2['oracle_ratio'])}")
    if 3 in parts:
        p3 = part3(raw, root, configs)
        figures["part3_cache"] = p3
        print(f"3. dense cache, {configs} configs, 1 thread: miss {p3['miss_seconds']:.1f} s, hit mean "
              f"{p3['mean_hit']:.1f} s, no cache mean {p3['mean_nocache']:.1f} s")
        print(f"   ratio hit / no cache                        {p3['ratio']:.3f}   (target <= 0.5)")
        print(f"   ratio with the miss counted in              {p3['ratio_with_miss']:.3f}")
        print(f"   epochs bound: trial / (pre-training + trial) = {p3['trial_epochs']} / "
              f"({p3['pretrain_epochs']} + {p3['trial_epochs']}) = {p3['epoch_bound']:.3f}")
    if 4 in parts:
        p4 = part4(raw, search_root, seeds[0], trials)
        figures["part4_workers"] = p4
        for w in ("w1", "w1t1", "w2"):
            a = p4[w]
            print(f"4. {w:4s}: {a['finished']} trials in {a['wall']:.1f} s = {a['trials_per_hour']:.0f}/h "
                  f"({a['threads_per_worker']} threads/worker, trial mean {_fmt(a['mean_trial_seconds'], '.1f')} s, "
                  f"median {_fmt(a['median_trial_seconds'], '.1f')} s)")
        print(f"   ratio 2 workers / 1                         {p4['ratio']:.3f}   (target >= 1.6, ceiling 2.0)")
        print(f"   ratio 2 workers / 1, 1 thread per worker     {p4['ratio_equal_threads']:.3f}")
        print(f"   same from median trial seconds (no start-up) {p4['ratio_median_trial']:.3f}")

    figures["settings"] = {"trials": trials, "seeds": seeds, "mf_seeds": mf_seeds, "parts": sorted(parts),
                           "quick": args.quick,
                           "space": "tiny digits (quick)" if args.quick else "demo", "rungs_part2": rungs,
                           "promote_rungs_part2": promote_rungs, "arms_part2": list(rung_arms),
                           "mf_data": args.mf_data,
                           "mf_space_name": args.mf_space,
                           "mf_space": {k: mf_raw[k] for k in ("data", "model", "budget")},
                           "finetune_epochs_part2": finetune, "mf_extra": args.mf_extra,
                           "mf_extra_promote": args.mf_extra_promote, "cache_configs": configs,
                           "processes": args.processes, "out": str(root)}
    figures["seconds_total"] = time.perf_counter() - started
    figures["loadavg_start"], figures["loadavg_end"] = list(load_start), list(os.getloadavg())
    figures["machine"] = machine()
    print(f"total {figures['seconds_total']:.0f} s, load average {load_start[0]:.2f} -> {os.getloadavg()[0]:.2f}, "
          f"runs in {root}")
    figures["ratios"] = {"hv_tpe_over_random": figures.get("part1_hv_tpe_vs_random", {}).get("ratio"),
                         "mf_epochs_to_95": figures.get("part2_multifidelity", {}).get("ratio"),
                         "mf_epochs_to_95_promote": (figures.get("part2_multifidelity", {}).get("promote")
                                                     or {}).get("ratio"),
                         "cache_hit_over_nocache": figures.get("part3_cache", {}).get("ratio"),
                         "workers_2_over_1": figures.get("part4_workers", {}).get("ratio"),
                         "workers_2_over_1_equal_threads": figures.get("part4_workers", {}).get("ratio_equal_threads"),
                         "workers_2_over_1_median_trial": figures.get("part4_workers", {}).get("ratio_median_trial")}
    finish(figures)


if __name__ == "__main__":
    main()
