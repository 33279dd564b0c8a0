"""Cost of the pruners' statistics hooks: training-step time with the hooks on against off.

SCA scores channels by the activity of their pre-reset membrane potential and the criticality
pruners by its surrogate derivative; both read H through `snnprune.models.PotentialRecorder`
(forward hooks on the neurons that read H where the neuron's own forward left it for autograd)
and add one per-channel sum per batch (`snnprune.pruners.activity_stat` / `criticality_stat`),
exactly as the pruners do. This bench trains the same network on the same batches three ways,
in alternating rounds so machine noise hits all alike (per-round times go to stderr):

    off          plain `snnprune.fit`
    activity     fit with a recorder on every channel group's neuron feeding `activity_stat()`
    criticality  the same feeding `criticality_stat()`
    .../4        the same with ``stat_every=4`` (one training batch in four recorded)

and prints the median time per step of each and the ratio hooks-on / hooks-off (target:
<= 1.05). The ratio is the median over rounds of the within-round ratio: both sides of a pair
run seconds apart, so drifts in machine speed (other processes, frequency) cancel, which a ratio
of the two overall medians does not; that ratio is printed beside it for comparison.
``--profile`` adds a torch.profiler table of one hooked run.

    python bench/overhead.py [--model cnn] [--width 1.0] [--T 4] [--steps 40] [--rounds 9]
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from collections.abc import Callable

import torch

import snnprune
from _common import finish, machine, training_parser
from snnprune.models import PotentialRecorder, build_model, seeded
from snnprune.pruners import ChannelStat, activity_stat, criticality_stat

MODES: dict[str, Callable[[], ChannelStat] | None] = {
    "off": None,
    "activity": activity_stat,
    "criticality": criticality_stat,
    "activity/4": activity_stat,      # stat_every=4: one training batch in four recorded
    "criticality/4": criticality_stat,
}


def every_of(mode: str) -> int:
    return int(mode.split("/")[1]) if "/" in mode else 1


def paired_ratio(on: list[float], off: list[float]) -> float:
    """Median over rounds of on[r] / off[r]: each pair ran back to back in the same round."""
    if len(on) != len(off) or not on:
        raise ValueError("paired_ratio needs the same, non-zero number of rounds on both sides")
    return statistics.median(a / b for a, b in zip(on, off))


def step_time(net: torch.nn.Module, split: snnprune.data.Split, stat: ChannelStat | None, *, steps: int,
              batch_size: int, seed: int, every: int = 1) -> float:
    """Seconds per training step of `fit`, with the recorder feeding ``stat`` when given."""
    neurons = [g.neuron for g in net.channel_groups()]
    recorder = PotentialRecorder(net, neurons, stat, every=every, steps=True) if stat is not None else None
    try:
        start = time.perf_counter()
        result = snnprune.fit(net, split, epochs=10**6, max_steps=steps, batch_size=batch_size, lr=0.05,
                              schedule="constant", seed=seed, quiet=True, device="cpu")
        elapsed = time.perf_counter() - start
    finally:
        if recorder is not None:
            recorder.remove()
    if stat is not None and not stat.counts:
        raise RuntimeError("the hooks saw no potential: the bench measures nothing")
    return elapsed / result.steps


def profile(net: torch.nn.Module, split: snnprune.data.Split, mode: str, *, steps: int,
            batch_size: int) -> str:
    """torch.profiler table (by self CPU time) of a hooked run."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    factory = MODES[mode]
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        step_time(net, split, factory() if factory else None, steps=steps, batch_size=batch_size, seed=0,
                  every=every_of(mode))
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)


def main() -> None:
    parser = training_parser(__doc__.splitlines()[0], steps=40, rounds=9)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--profile", action="store_true", help="print a profiler table per hooked mode")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = snnprune.load_dataset(args.dataset, args.data_root, subset=args.subset, seed=0)
    info = data.info
    with seeded(0):
        base = build_model(args.model, num_classes=info.num_classes, in_channels=info.in_channels,
                           image_size=info.image_size, T=args.T, width=args.width)
    steps = args.steps
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for mode, factory in MODES.items():  # warm-up: first calls allocate and dispatch
        step_time(copy.deepcopy(base), data.train, factory() if factory else None, steps=3,
                  batch_size=args.batch_size, seed=0, every=every_of(mode))
    order = list(MODES)
    for r in range(args.rounds):
        for mode in order[r % len(order):] + order[: r % len(order)]:
            factory = MODES[mode]
            times[mode].append(step_time(copy.deepcopy(base), data.train, factory() if factory else None,
                                         steps=steps, batch_size=args.batch_size, seed=r, every=every_of(mode)))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{m} {times[m][-1] * 1e3:.1f}" for m in MODES)
              + " ms/step", file=sys.stderr, flush=True)
    median = {mode: statistics.median(values) for mode, values in times.items()}
    ratios = {mode: paired_ratio(times[mode], times["off"]) for mode in MODES if mode != "off"}
    ratio_of_medians = {mode: median[mode] / median["off"] for mode in ratios}
    print(f"{args.model} x{args.width} on {args.dataset}, T={args.T}, batch {args.batch_size}, "
          f"{steps} steps x {args.rounds} rounds ({machine()['cores']} cores, "
          f"{torch.get_num_threads()} threads)")
    for mode in MODES:
        extra = (f"   ratio {ratios[mode]:.3f} (ratio of medians {ratio_of_medians[mode]:.3f})"
                 if mode in ratios else "")
        print(f"  {mode:<12}: {median[mode] * 1e3:8.2f} ms/step{extra}")
    if args.profile:
        for mode in ("off", *ratios):
            print(f"\n--- profile: {mode} ---")
            print(profile(copy.deepcopy(base), data.train, mode, steps=steps, batch_size=args.batch_size))
    finish({"bench": "overhead", "model": args.model, "dataset": args.dataset, "width": args.width,
            "T": args.T, "batch_size": args.batch_size, "steps": steps, "rounds": args.rounds,
            "ms_per_step": {mode: value * 1e3 for mode, value in median.items()},
            "rounds_ms_per_step": {mode: [v * 1e3 for v in values] for mode, values in times.items()},
            "ratio_of_medians": ratio_of_medians, "threads": torch.get_num_threads(),
            "ratio_activity": ratios["activity"], "ratio_criticality": ratios["criticality"],
            "ratio_activity_every4": ratios["activity/4"], "ratio_criticality_every4": ratios["criticality/4"],
            "target": 1.05, "machine": machine()})


if __name__ == "__main__":
    main()
