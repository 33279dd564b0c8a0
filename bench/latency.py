"""Compact-model inference latency against its MACs: does cutting channels out buy the time the
MAC count promises?

Structured pruning only pays on a plain dense runtime once the masked channels are cut out
(`snnprune.compact`). This bench asks how much of the MAC saving turns into wall time. For each
pruned share p of channels (default 30 %, 50 %, 70 %), the registered ``l1-filter`` pruner
(one-shot, ``scope=layer`` by default: every prunable conv channel group loses round(p C) of its
C channels, those of smallest mean |W|; ``--scope global`` ranks all groups together) masks a
copy of the network, `snnprune.compact` cuts the masked channels out, and the bench checks that
the compact network's outputs equal the masked network's (max abs difference on a random batch).

It then times eval-mode inference (torch.no_grad, every neuron's state reset after each call
as `snnprune.evaluate` does) of the dense network and of every compact one, side by side, at
batch 1 and batch 64: after a warm-up, ``--rounds`` rounds in rotating model order, each round a
block of calls per model (as many calls as fill ``--block`` seconds of the dense model). Per
(p, batch) it prints

    latency ratio   compact / dense time per call: the median over rounds of the ratio of the
                    two blocks of the same round (the ratio of the median times is in the JSON)
    MACs ratio      compact / dense MACs per sample per time step (`count_layers`' dense_macs:
                    what a dense runtime computes)
    quotient        latency ratio / MACs ratio (1.0: time falls exactly as the MACs do;
                    > 1: the compact model is slower than its MACs promise)

The input is seeded random data of the data set's shape (values do not change dense CPU
kernels' time) and the weights are the seeded initialisation, with the BatchNorm statistics set
from one random batch so the neurons fire (4-7 %) and the output check compares real outputs:
no data set is read. The first conv runs once per forward, not T times (direct encoding), so
the "per forward" MACs ratio (first layer once, the rest T times) is printed beside the
per-step one as context. ``--profile`` adds torch.profiler tables of the dense and the most
pruned model. On a busy machine, ``--threads 1`` gives far steadier ratios than torch's
default of one thread per core (the script warns when the load exceeds the cores).

    python bench/latency.py [--model cnn] [--dataset fashion-mnist] [--width 1.0] [--T 4]
                            [--ratios 0.3 0.5 0.7] [--batches 1 64] [--scope layer|global]
                            [--rounds 15] [--block 0.25] [--threads N] [--profile] [--quick]
    python bench/latency.py --model vgg11 --dataset cifar10
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from _common import finish, machine
from snnprune.compaction import compact, compaction_report
from snnprune.data import dataset_info
from snnprune.engine import reset_states
from snnprune.metrics import count_layers
from snnprune.models import SpikingNet, build_model, seeded
from snnprune.pruners import default_config_list, get_pruner

PRUNER = "l1-filter"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--dataset", default="fashion-mnist",
                        help="only its shape is used (channels, image size, classes): no data is read")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7],
                        help="shares of channels removed")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 64 (--quick: 1 16)")
    parser.add_argument("--scope", choices=("layer", "global"), default="layer",
                        help="l1-filter scope: the share from every layer, or ranked over all layers")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (median over them)")
    parser.add_argument("--block", type=float, default=0.25,
                        help="seconds of dense-model calls per round and batch (sets the calls per block)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per model and batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--profile", action="store_true",
                        help="print torch.profiler tables of the dense and the most pruned model")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 3 rounds of short blocks")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.block, args.warmup = 3, 0.03, 1
    if args.batches is None:
        args.batches = [1, 16] if args.quick else [1, 64]
    if any(not 0.0 < r < 1.0 for r in args.ratios):
        parser.error("--ratios must lie in (0, 1)")
    if any(b < 1 for b in args.batches) or args.rounds < 1 or args.block <= 0:
        parser.error("--batches, --rounds and --block must be positive")
    return args


def l1_masks(model: SpikingNet, ratio: float, scope: str) -> dict[str, dict[str, torch.Tensor]]:
    """Masks of the registered l1-filter pruner at ``ratio`` of channels; ``model`` ends masked.

    One-shot and data-free, so ``compress()`` needs no evaluator: the same masks `snnprune prune
    --pruner l1-filter` would start its prune phase with.
    """
    spec = get_pruner(PRUNER)
    pruner = spec.factory(model, default_config_list(ratio, structured=True), scope=scope)
    pruner.compress()
    masks = {name: {k: v.detach().clone() for k, v in targets.items()}
             for name, targets in pruner.get_masks().items()}
    pruner.unwrap_model()  # bakes the masks into the weights: ``model`` is now the masked network
    return masks


def widths(model: nn.Module) -> dict[str, int]:
    """Output channels of every channel group's conv."""
    modules = dict(model.named_modules())
    return {g.conv: int(modules[g.conv].weight.shape[0]) for g in model.channel_groups()}


def macs_per_forward(model: SpikingNet, T: int) -> int:
    """MACs per sample of one forward: the static prefix (input conv) once, the rest T times."""
    static = {name for name, module in model.features[: model.static_prefix].named_modules(prefix="features")
              if isinstance(module, (nn.Conv2d, nn.Linear))}
    return sum(c.dense_macs * (1 if c.name in static else T) for c in count_layers(model))


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics from one train-mode forward of ``x``.

    Freshly initialised BNs (mean 0, var 1) leave the spiking layers nearly silent (about 1 %
    firing in the first layer, none after), so the compact-vs-masked check would compare
    constant outputs. Standardised pre-activations give 4-7 % firing, like a trained SNN's.
    Timing is unaffected: dense CPU kernels take as long on zeros as on spikes.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    model(x)
    reset_states(model)
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


@torch.no_grad()
def firing_rates(model: SpikingNet, x: torch.Tensor) -> list[float]:
    """Mean spike rate of each channel group's neuron on ``x`` (eval mode)."""
    rates: list[float] = []
    modules = dict(model.named_modules())
    handles = [modules[g.neuron].register_forward_hook(lambda _m, _i, out: rates.append(float(out.float().mean())))
               for g in model.channel_groups()]
    try:
        outputs(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return rates


@torch.no_grad()
def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    reset_states(model)
    return out


@torch.no_grad()
def time_block(model: nn.Module, x: torch.Tensor, calls: int) -> float:
    """Seconds per call over ``calls`` eval-mode calls, each followed by a state reset."""
    start = time.perf_counter()
    for _ in range(calls):
        model(x)
        reset_states(model)
    return (time.perf_counter() - start) / calls


def measure_batch(models: dict[str, nn.Module], x: torch.Tensor, *, rounds: int, block: float,
                  warmup: int) -> tuple[dict[str, float], dict[str, float], int]:
    """Median seconds per call of each model on ``x`` ({name: s}), the median over rounds of
    each model's time over the dense model's in the same round ({name: ratio}), and the calls
    per block.

    Rounds rotate the model order so drift and other users' load hit every model alike; the
    per-round (paired) ratio compares blocks run seconds apart, which keeps slow swings of a
    shared machine's load out of the ratio better than a ratio of two medians does.
    """
    warm = {name: [time_block(model, x, 1) for _ in range(max(1, warmup))] for name, model in models.items()}
    single = min(warm["dense"])  # the fastest warm-up call: a stalled one would shrink the blocks
    calls = max(1, math.ceil(block / max(single, 1e-6)))
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(time_block(models[name], x, calls))
    paired = {name: statistics.median(t / d for t, d in zip(values, times["dense"], strict=True))
              for name, values in times.items()}
    return {name: statistics.median(values) for name, values in times.items()}, paired, calls


def profile_table(model: nn.Module, x: torch.Tensor, calls: int) -> str:
    """torch.profiler table (by self CPU time) of ``calls`` timed calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        time_block(model, x, calls)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14)


def key(ratio: float) -> str:
    return f"{ratio:g}"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    info = dataset_info(args.dataset)
    shape = (info.in_channels, info.image_size, info.image_size)
    with seeded(args.seed):
        dense = build_model(args.model, num_classes=info.num_classes, in_channels=info.in_channels,
                            image_size=info.image_size, T=args.T, width=args.width)
    generator = torch.Generator().manual_seed(args.seed)
    calibrate(dense, torch.randn(64, *shape, generator=generator))
    check_x = torch.randn(64, *shape, generator=generator)
    rates = firing_rates(dense, check_x)
    dense_forward_macs = macs_per_forward(dense, args.T)

    models: dict[str, nn.Module] = {"dense": dense}
    pruned: dict[str, dict[str, Any]] = {}
    for ratio in args.ratios:
        masked = copy.deepcopy(dense)
        masks = l1_masks(masked, ratio, args.scope)
        masked.eval()
        small = compact(masked, masks).eval()
        report = compaction_report(masked, small)
        diff = float((outputs(masked, check_x) - outputs(small, check_x)).abs().max())
        models[key(ratio)] = small
        pruned[key(ratio)] = {
            "macs_ratio": report["dense_macs_ratio"],
            "macs_per_forward_ratio": macs_per_forward(small, args.T) / dense_forward_macs,
            "params_ratio": report["params_ratio"],
            "masked_macs_over_compact": report["macs_ratio"],  # 1.0 when the compaction is exact
            "max_abs_diff": diff,
            "widths": widths(small),
        }
    print(f"{args.model} x{args.width} on {args.dataset} shape {shape}, T={args.T}, {PRUNER} "
          f"scope={args.scope}; {args.rounds} rounds, median; {machine()['cores']} cores, "
          f"{torch.get_num_threads()} threads (seeded random weights and inputs, BN calibrated)")
    print(f"  dense widths {widths(dense)}; firing rates {', '.join(f'{r:.3f}' for r in rates)}")
    for k, p in pruned.items():
        print(f"  pruned {float(k):.0%}: widths {p['widths']}; compact vs masked outputs max |diff| "
              f"{p['max_abs_diff']:.2e}; params ratio {p['params_ratio']:.3f}")

    rows: list[dict[str, Any]] = []
    dense_ms: dict[str, float] = {}
    calls_of: dict[str, int] = {}
    for batch in args.batches:
        x = torch.randn(batch, *shape, generator=generator)
        median, paired, calls = measure_batch(models, x, rounds=args.rounds, block=args.block, warmup=args.warmup)
        dense_ms[str(batch)] = median["dense"] * 1e3
        calls_of[str(batch)] = calls
        print(f"\n  batch {batch}: dense {median['dense'] * 1e3:.3f} ms/call ({calls} calls per block)")
        print(f"    {'pruned':>7} {'ms/call':>9} {'latency':>8} {'MACs':>7} {'quotient':>9} {'MACs/fwd':>9}")
        for k, p in pruned.items():
            latency = paired[k]
            row = {"pruned": float(k), "batch": batch, "latency_ratio": latency, "macs_ratio": p["macs_ratio"],
                   "quotient": latency / p["macs_ratio"], "macs_per_forward_ratio": p["macs_per_forward_ratio"],
                   "compact_ms": median[k] * 1e3, "dense_ms": median["dense"] * 1e3,
                   "latency_ratio_of_medians": median[k] / median["dense"]}
            rows.append(row)
            print(f"    {float(k):>7.0%} {row['compact_ms']:>9.3f} {latency:>8.3f} {p['macs_ratio']:>7.3f} "
                  f"{row['quotient']:>9.2f} {p['macs_per_forward_ratio']:>9.3f}")

    load_after = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    print(f"\n  1-minute load average {load_before:.2f} before, {load_after:.2f} after "
          f"(other processes share the {cores} cores: ratios are side by side, times are not)")
    if torch.get_num_threads() > 1 and max(load_before, load_after) > cores:
        print(f"  warning: {torch.get_num_threads()} torch threads on {cores} cores already loaded "
              f"({max(load_before, load_after):.1f}): OpenMP threads stall waiting for each other and the "
              "times swing by several x; --threads 1 gives steadier ratios on a busy machine")
    if args.profile:
        most = key(max(args.ratios))
        for batch in args.batches:
            x = torch.randn(batch, *shape, generator=generator)
            calls = calls_of[str(batch)]
            for name in ("dense", most):
                print(f"\n--- profile: {name}, batch {batch}, {calls} calls ---")
                print(profile_table(models[name], x, calls))

    finish({"bench": "latency", "model": args.model, "dataset": args.dataset, "input_shape": list(shape),
            "width": args.width, "T": args.T, "pruner": PRUNER, "scope": args.scope,
            "ratios": list(args.ratios), "batches": list(args.batches), "rounds": args.rounds,
            "block_s": args.block, "warmup": args.warmup, "seed": args.seed, "quick": args.quick,
            "dense_firing_rates": rates,
            "threads": torch.get_num_threads(), "loadavg_1min": [load_before, load_after],
            "calls_per_block": calls_of, "dense_ms": dense_ms, "rows": rows,
            "latency_ratio": {k: {str(r["batch"]): r["latency_ratio"] for r in rows if key(r["pruned"]) == k}
                              for k in pruned},
            "macs_ratio": {k: p["macs_ratio"] for k, p in pruned.items()},
            "macs_per_forward_ratio": {k: p["macs_per_forward_ratio"] for k, p in pruned.items()},
            "quotient": {k: {str(r["batch"]): r["quotient"] for r in rows if key(r["pruned"]) == k}
                         for k in pruned},
            "max_abs_diff": {k: p["max_abs_diff"] for k, p in pruned.items()},
            "masked_macs_over_compact": {k: p["masked_macs_over_compact"] for k, p in pruned.items()},
            "widths": {"dense": widths(dense), **{k: p["widths"] for k, p in pruned.items()}},
            "machine": machine()})


if __name__ == "__main__":
    main()
