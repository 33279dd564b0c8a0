"""The seeds' claims at CPU scale: a fidelity suite on Fashion-MNIST.

Every row is a comparison of methods trained side by side in this one run, on the same data,
network, budget and seeds, through the same trial runner the search uses (`run_trial`, with one
dense pre-trained network per seed taken from a shared `DenseCache`):

    dense        dense test accuracy (one pre-trained network per seed)
    gmp          criticality-unstructured vs GMP at 90, 95 and 98 % sparsity, every seed
    regen        regeneration by criticality vs gradient vs random, r in {0.1, 0.3, 0.6}, at 95 %
    aggregation  criticality aggregated by max vs mean over a channel's map, at 95 %, every seed
    sca          SCA accuracy and MACs for p in {0.3, 0.5, 0.7}
    pq           PQ rewiring neuron-wise vs layer-wise (sparse from scratch): accuracy against
                 connectivity, from two initial densities
    imp          epochs used against iterative magnitude pruning (the lottery ticket: prune 20 %
                 of the remaining weights per round, rewind to the initial weights, retrain) at 90 %

Settings (defaults, chosen so the whole suite runs within an hour on 2 cores): the spiking CNN at
width 0.5, T = 4, on a 4000-image subset (3600 train, 400 validation, and 1000 test images, the
same for every run), batch 64; pre-train 4 epochs, prune 2, fine-tune 2 (PQ trains sparse from scratch for 6 + 2,
the same 8 epochs); 3 seeds for `gmp` and `aggregation`, seed 0 elsewhere. Jobs run two at a time
in 1-thread processes; identical configs shared by two rows are run once.

Accuracy is test accuracy. "Spread" is (max - min) / 2 over seeds. Verdicts against the seeds'
claims are computed from the figures, never written by hand.

    python bench/fidelity.py [--sections dense,gmp,regen,aggregation,sca,pq,imp] [--seeds 3]
                             [--subset 4000] [--jobs 2] [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from _common import finish, machine
from snnprune.data import load_dataset
from snnprune.engine import MaskHold, evaluate, fit
from snnprune.models import build_model, seeded
from snnprune.pruners._select import select_top
from snnprune.search import DenseCache, TrialConfig, TrialRuntime, run_trial

SECTIONS = ("dense", "gmp", "regen", "aggregation", "sca", "pq", "imp")
FASHION_ROOT = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class Settings:
    """The suite's scale: one place, printed with the figures."""

    subset: int = 4000
    width: float = 0.5
    T: int = 4
    batch_size: int = 64
    pretrain: int = 4
    prune: int = 2
    finetune: int = 2
    lr: float = 0.1
    finetune_lr: float = 0.02
    seeds: int = 3
    imp_rate: float = 0.2
    imp_target: float = 0.9
    root: str = FASHION_ROOT
    sparsities: tuple[float, ...] = (0.9, 0.95, 0.98)
    regen_ratios: tuple[float, ...] = (0.1, 0.3, 0.6)
    sca_ratios: tuple[float, ...] = (0.3, 0.5, 0.7)
    pq_init: tuple[float, ...] = (0.5, 0.8)

    def budget(self, *, scratch: bool = False) -> dict[str, Any]:
        prune = self.pretrain + self.prune if scratch else self.prune
        return {"pretrain_epochs": 0 if scratch else self.pretrain, "prune_epochs": prune,
                "finetune_epochs": self.finetune, "batch_size": self.batch_size, "lr": self.lr,
                "finetune_lr": self.finetune_lr, "optimizer": "sgd"}

    def epochs_per_trial(self) -> int:
        return self.pretrain + self.prune + self.finetune


QUICK = dict(subset=600, width=0.25, T=2, pretrain=1, prune=1, finetune=1, seeds=2, imp_rate=0.5,
             imp_target=0.75, sparsities=(0.9, 0.95), regen_ratios=(0.3,), sca_ratios=(0.5,), pq_init=(0.5,))


@dataclass(frozen=True)
class Job:
    """One pruning run: the config and the rows it serves."""

    pruner: str
    sparsity: float
    hp: tuple[tuple[str, Any], ...]
    seed: int
    scratch: bool = False

    def config(self, s: Settings) -> TrialConfig:
        return TrialConfig(pruner=self.pruner, sparsity=self.sparsity, hyperparameters=dict(self.hp),
                           model={"name": "cnn", "width": s.width, "T": s.T},
                           data={"name": "fashion-mnist", "root": s.root, "subset": s.subset, "val_fraction": 0.1},
                           budget=s.budget(scratch=self.scratch), seed=self.seed,
                           objectives=("accuracy", "macs"), study="fidelity", trial=0)


def crit(sparsity: float, seed: int, **hp: Any) -> Job:
    base = {"regen_ratio": 0.5, "regen": "criticality", "aggregation": "max"}
    base.update(hp)
    return Job("criticality-unstructured", sparsity, tuple(sorted(base.items())), seed)


def plan(s: Settings, sections: list[str]) -> dict[str, list[tuple[dict[str, Any], Job]]]:
    """Rows per section: (labels, job). Jobs are deduplicated by the caller."""
    seeds = list(range(s.seeds))
    rows: dict[str, list[tuple[dict[str, Any], Job]]] = {name: [] for name in sections}
    high = s.sparsities[len(s.sparsities) // 2] if len(s.sparsities) > 1 else s.sparsities[0]
    if "gmp" in rows:
        for sp in s.sparsities:
            for seed in seeds:
                rows["gmp"].append(({"method": "criticality", "sparsity": sp, "seed": seed}, crit(sp, seed)))
                rows["gmp"].append(({"method": "gmp", "sparsity": sp, "seed": seed}, Job("gmp", sp, (), seed)))
    if "regen" in rows:
        for r in s.regen_ratios:
            for how in ("criticality", "gradient", "random"):
                rows["regen"].append(({"regen": how, "r": r, "sparsity": high},
                                      crit(high, 0, regen=how, regen_ratio=r)))
    if "aggregation" in rows:
        for agg in ("max", "mean"):
            for seed in seeds:
                rows["aggregation"].append(({"aggregation": agg, "sparsity": high, "seed": seed},
                                            crit(high, seed, aggregation=agg)))
    if "sca" in rows:
        for p in s.sca_ratios:
            rows["sca"].append(({"p": p}, Job("sca", p, (("update_ratio", 0.1),), 0)))
    if "pq" in rows:
        for scope in ("neuron", "layer"):
            for init in s.pq_init:
                hp = (("scope", scope), ("update_every", 20))
                rows["pq"].append(({"scope": scope, "initial_sparsity": init},
                                   Job("pq-rewiring", init, hp, 0, scratch=True)))
    if "imp" in rows:  # the criticality run it is compared with
        rows["imp"].append(({"method": "criticality", "sparsity": s.imp_target}, crit(s.imp_target, 0)))
    if "dense" in rows:  # dense figures come with any pruning run of the seed
        for seed in seeds:
            rows["dense"].append(({"seed": seed}, Job("gmp", s.sparsities[0], (), seed)))
    return rows


# --------------------------------------------------------------------------- workers

_RUNTIME: dict[str, Any] = {}


def _init_worker(cache_dir: str, run_dir: str) -> None:
    torch.set_num_threads(1)
    _RUNTIME["runtime"] = TrialRuntime(run_dir=Path(run_dir), cache=DenseCache(cache_dir), save_artifacts=False,
                                       device="cpu")


def run_job(job: Job, s: Settings) -> dict[str, Any]:
    """One pruning run in a worker: the figures a row needs."""
    result = run_trial(job.config(s), _RUNTIME["runtime"])
    m = result.metrics
    history = result.history
    epochs = sum(len(history.get(phase, [])) for phase in ("prune", "finetune"))
    epochs += 0 if job.scratch else s.pretrain
    return {"accuracy": m["test_accuracy"], "val_accuracy": m["accuracy"], "sparsity": m["sparsity"],
            "macs_ratio": m.get("macs_ratio"),
            "connectivity": 1.0 - m["mask_sparsity"], "dense_accuracy": result.dense["accuracy"],
            "seconds": m["seconds"], "epochs": epochs, "cache_hit": result.cache_hit}


def run_imp(s: Settings, seed: int = 0) -> dict[str, Any]:
    """Iterative magnitude pruning with rewinding to the initial weights (Frankle & Carbin).

    Round 0 is the dense pre-training (the same network as the cache's, so it is read from there
    but its epochs are counted). Each later round removes ``imp_rate`` of the remaining weights
    of every conv and linear layer by global magnitude, rewinds the survivors to their initial
    values, and retrains for ``pretrain`` epochs with the mask held; rounds stop at the target.
    """
    job = crit(s.imp_target, seed)
    config = job.config(s)
    data = load_dataset("fashion-mnist", s.root, subset=s.subset, val_fraction=0.1, seed=seed)
    info = data.info

    def fresh() -> torch.nn.Module:
        with seeded(seed):
            return build_model("cnn", num_classes=info.num_classes, in_channels=info.in_channels,
                               image_size=info.image_size, T=s.T, width=s.width)

    init = {k: v.clone() for k, v in fresh().state_dict().items()}
    def missing() -> torch.nn.Module:
        raise RuntimeError(f"the dense network of seed {seed} must be cached before the IMP run")

    state, _hit = _RUNTIME["runtime"].cache.get_or_train(config.cache_key(), missing)
    model = fresh()
    model.load_state_dict(state)
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    keep = {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in layers.items()}
    total = sum(k.numel() for k in keep.values())
    epochs, rounds, curve = s.pretrain, 0, []
    start = time.perf_counter()
    sparsity = 0.0
    while sparsity < s.imp_target - 1e-9:
        rounds += 1
        sparsity = min(s.imp_target, 1.0 - (1.0 - s.imp_rate) ** rounds)
        scores = {n: m.weight.detach().abs().masked_fill(~keep[n], -1.0) for n, m in layers.items()}
        keep = select_top(scores, sparsity, scope="global", min_keep=1)
        model.load_state_dict(init)  # rewind
        masks = {n: {"weight": k.float()} for n, k in keep.items()}
        history = fit(model, data.train, val=data.val, epochs=s.pretrain, batch_size=s.batch_size, lr=s.lr,
                      seed=seed + rounds, device="cpu", quiet=True, callbacks=[MaskHold(model, masks)],
                      desc=f"imp round {rounds}").history
        for record in history:
            epochs += 1
            curve.append({"round": rounds, "epoch": epochs, "sparsity": sparsity,
                          "val_accuracy": record.get("val_accuracy")})
    achieved = 1.0 - sum(int(k.sum()) for k in keep.values()) / total
    return {"accuracy": evaluate(model, data.test, device="cpu")["accuracy"], "sparsity": achieved,
            "rounds": rounds, "epochs": epochs, "curve": curve, "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------- summaries

def _mean_spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "spread": (max(values) - min(values)) / 2, "n": len(values)}


def summarise(s: Settings, rows: dict[str, list[tuple[dict[str, Any], Job]]],
              results: dict[Job, dict[str, Any]], imp: dict[str, Any] | None) -> dict[str, Any]:
    """Figures and verdicts per section, from the raw results."""
    out: dict[str, Any] = {}

    def group(section: str, by: tuple[str, ...], metric: str = "accuracy") -> dict[str, Any]:
        groups: dict[tuple, list[float]] = {}
        for labels, job in rows[section]:
            groups.setdefault(tuple(labels[k] for k in by), []).append(results[job][metric])
        return {"|".join(str(x) for x in key): _mean_spread(v) for key, v in groups.items()}

    if "dense" in rows:
        out["dense"] = _mean_spread([results[job]["dense_accuracy"] for _, job in rows["dense"]])
    if "gmp" in rows:
        table = group("gmp", ("method", "sparsity"))
        deltas, beats = {}, {}
        for sp in s.sparsities:
            c, g = table[f"criticality|{sp}"], table[f"gmp|{sp}"]
            deltas[str(sp)] = c["mean"] - g["mean"]
            beats[str(sp)] = c["mean"] - g["mean"] > max(c["spread"], g["spread"])
        sp_list = [str(sp) for sp in s.sparsities]
        verdict = ("agrees" if all(beats.values()) else
                   "partly agrees" if any(beats.values()) else "does not reproduce")
        out["gmp"] = {"table": table, "delta": deltas, "beats_beyond_spread": beats, "verdict": verdict,
                      "largest_gain_at": max(sp_list, key=lambda k: deltas[k])}
    if "regen" in rows:
        table = group("regen", ("regen", "r"))
        wins = {str(r): max(("criticality", "gradient", "random"), key=lambda h: table[f"{h}|{r}"]["mean"])
                for r in s.regen_ratios}
        n = sum(1 for w in wins.values() if w == "criticality")
        out["regen"] = {"table": table, "best": wins,
                        "verdict": "agrees" if n == len(wins) else "partly agrees" if n else "does not reproduce",
                        "note": "one seed per cell"}
    if "aggregation" in rows:
        table = group("aggregation", ("aggregation",))
        out["aggregation"] = {"table": table, "max_minus_mean": table["max"]["mean"] - table["mean"]["mean"]}
    if "sca" in rows:
        out["sca"] = {str(labels["p"]): {k: results[job][k] for k in ("accuracy", "macs_ratio", "sparsity")}
                      for labels, job in rows["sca"]}
    if "pq" in rows:
        out["pq"] = [{**labels, **{k: results[job][k] for k in ("accuracy", "connectivity", "macs_ratio")}}
                     for labels, job in rows["pq"]]
    if "imp" in rows and imp is not None:
        ref = results[rows["imp"][0][1]]
        target = ref["val_accuracy"]
        final_round = [c for c in imp["curve"] if c["sparsity"] >= s.imp_target - 1e-9]
        reached = next((c["epoch"] for c in final_round if (c["val_accuracy"] or 0) >= target), None)
        out["imp"] = {"criticality": {k: ref[k] for k in ("accuracy", "val_accuracy", "sparsity", "epochs")},
                      "imp": {k: imp[k] for k in ("accuracy", "sparsity", "rounds", "epochs")},
                      "imp_epochs_to_equal_val_accuracy": reached,
                      "epoch_ratio_imp_over_criticality": (reached or imp["epochs"]) / ref["epochs"],
                      "equal_accuracy_reached": reached is not None,
                      "claim": "11-15x fewer epochs than lottery-ticket pruning"}
    return out


# --------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--data-root", default=FASHION_ROOT)
    parser.add_argument("--jobs", type=int, default=2, help="processes run at once (1 torch thread each)")
    parser.add_argument("--out", default=None, help="folder for the dense cache (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="a tiny version for the smoke test")
    args = parser.parse_args()
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if not Path(args.data_root).is_dir():
        parser.exit(2, f"fidelity: no Fashion-MNIST under {args.data_root} "
                       "(apt-get install dataset-fashion-mnist, or --data-root DIR)\n")
    over: dict[str, Any] = dict(QUICK) if args.quick else {}
    over.update({k: v for k, v in (("seeds", args.seeds), ("subset", args.subset)) if v is not None})
    s = Settings(root=args.data_root, **over)
    rows = plan(s, sections)
    jobs = list(dict.fromkeys(job for section in rows.values() for _, job in section))
    first = list(dict.fromkeys(Job("gmp", s.sparsities[0], (), seed) for seed in range(s.seeds)))
    first = [j for j in first if j in jobs] or [crit(s.imp_target, 0)]
    print(f"fidelity suite: {len(jobs)} pruning runs{' + IMP' if 'imp' in rows else ''}, "
          f"cnn x{s.width} T={s.T}, fashion-mnist subset {s.subset}, epochs {s.pretrain}+{s.prune}+{s.finetune}, "
          f"{s.seeds} seeds, {args.jobs} processes", flush=True)

    start, load_start = time.perf_counter(), os.getloadavg()[0]
    results: dict[Job, dict[str, Any]] = {}
    imp: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="snnprune-fidelity-") as tmp:
        cache_dir = Path(args.out or tmp) / "cache"
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(args.jobs, mp_context=context, initializer=_init_worker,
                                    initargs=(str(cache_dir), str(Path(tmp) / "run"))) as pool:
            # the first run of each seed pre-trains its dense network; everything else reads it
            for job, fut in [(j, pool.submit(run_job, j, s)) for j in first]:
                results[job] = fut.result()
                _progress(len(results), len(jobs), job, results[job], start)
            pending: dict[cf.Future, Job | None] = {}
            if "imp" in rows:
                pending[pool.submit(run_imp, s)] = None
            for job in jobs:
                if job not in results:
                    pending[pool.submit(run_job, job, s)] = job
            for fut in cf.as_completed(pending):
                job = pending[fut]
                if job is None:
                    imp = fut.result()
                    print(f"  IMP: {imp['rounds']} rounds, {imp['epochs']} epochs, accuracy {imp['accuracy']:.4f} "
                          f"at {imp['sparsity']:.3f} ({imp['seconds']:.0f} s)", flush=True)
                else:
                    results[job] = fut.result()
                    _progress(len(results), len(jobs), job, results[job], start)
    wall = time.perf_counter() - start
    summary = summarise(s, rows, results, imp)
    _print_summary(summary)
    print(f"suite wall time {wall / 60:.1f} min")
    raw = [{"pruner": j.pruner, "sparsity": j.sparsity, "hp": dict(j.hp), "seed": j.seed, **results[j]}
           for j in jobs]
    finish({"bench": "fidelity", "settings": {**s.__dict__, "sections": sections, "jobs": args.jobs,
                                              "quick": args.quick},
            "summary": summary, "runs": raw, "imp_curve": imp["curve"] if imp else None,
            "wall_minutes": wall / 60, "loadavg": [load_start, os.getloadavg()[0]], "machine": machine()})


def _progress(done: int, total: int, job: Job, r: dict[str, Any], start: float) -> None:
    hp = ",".join(f"{k}={v}" for k, v in job.hp if k in ("regen", "regen_ratio", "aggregation", "scope"))
    print(f"  [{done:>2}/{total}] {job.pruner:<25} s={job.sparsity:<5} seed={job.seed} {hp:<40} "
          f"acc {r['accuracy']:.4f}  sparsity {r['sparsity']:.3f}  {r['seconds']:5.0f} s  "
          f"({(time.perf_counter() - start) / 60:.1f} min)", flush=True)


def _print_summary(summary: dict[str, Any]) -> None:
    print(json.dumps({k: v for k, v in summary.items()}, indent=1, default=float)[:4000])


if __name__ == "__main__":
    main()
