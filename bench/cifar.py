"""The GPU path: the seeds' CIFAR-10 VGG-16 unstructured row, criticality-unstructured at 90 %.

Chen et al. ("Brain-Inspired Efficient Pruning: Exploiting Criticality in Spiking Neural
Networks", arXiv 2311.16141) report a spiking VGG-16 on CIFAR-10 at about 93 % accuracy with
90 % of its weights pruned. This bench runs that row through the search's own trial runner
(`snnprune.search.run_trial`, with a `DenseCache` under ``--out``): dense pre-training of VGG-16
(T = 4), gradual pruning with criticality-based regeneration to 90 % sparsity, fine-tuning, then
test accuracy, sparsity and MACs. It prints the dense against the pruned accuracy measured in
the same run, the reported figure beside them, the sparsity reached, the MACs ratio
pruned/dense, the time per phase and the device. The defaults are the seeds' budget
(`spaces/cifar10-vgg16.yaml`: 100 + 60 + 40 epochs, batch 128, SGD lr 0.1, fine-tune lr 0.01):
hours on a GPU, so without a GPU it stops at once (exit 2) unless ``--device cpu`` is given.

``--dataset fashion-mnist --pad 32`` is the shortened run for a lent GPU: Fashion-MNIST (IDX
files, /usr/share/datasets/fashion-mnist by default) zero-padded to 32x32, one channel, with a
short budget (6 + 4 + 2 epochs by default). The padding is done here, on the loaded splits (a
`TrialRuntime` whose ``data()`` pads; ``pad`` is part of the data spec, so the dense cache keys
on it): a border of raw-zero pixels, i.e. the normalised value of black, which is Fashion-MNIST's
background. ``--quick`` runs a tiny CPU version of the whole path (VGG-16 at width 0.125, T = 2,
256 training images, one epoch per phase) for the smoke test.

    python bench/cifar.py --data-root ~/data/cifar-10-batches-py [--device auto|cuda|cpu] [--out DIR]
    python bench/cifar.py --dataset fashion-mnist --pad 32 [--epochs-pretrain 6 --epochs-prune 4
                          --epochs-finetune 2] [--batch-size 128] [--lr 0.1] [--T 4]
    python bench/cifar.py --dataset fashion-mnist --pad 32 --device cpu --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from _common import finish, machine
from snnprune.data import DataSplits, Split
from snnprune.errors import UserError
from snnprune.search import DenseCache, TrialConfig, TrialRuntime, run_trial

PRUNER = "criticality-unstructured"
#: What the paper reports for this row (VGG-16, CIFAR-10, 90 % sparsity): context, not measured.
REPORTED = {"dataset": "cifar10", "model": "vgg16", "sparsity": 0.9, "accuracy": 0.93,
            "source": "Chen et al. 2023, arXiv 2311.16141 (reported, about 93 %)"}
#: Epochs (pre-train, prune, fine-tune) by data set: the seeds' CIFAR-10 budget; a short one on Fashion-MNIST.
EPOCHS = {"cifar10": (100, 60, 40), "fashion-mnist": (6, 4, 2)}


@dataclass
class PaddedRuntime(TrialRuntime):
    """A `TrialRuntime` whose data spec may carry ``pad``: images zero-padded to pad x pad.

    The runner builds the network from ``data.info.image_size``, so the padded size reaches the
    model through the splits' info; the base class caches the splits per spec, so each spec is
    loaded and padded once.
    """

    def data(self, spec: dict[str, Any], seed: int) -> DataSplits:
        splits = super().data(spec, seed)
        if spec.get("pad"):
            pad_splits(splits, int(spec["pad"]))
        return splits


def pad_splits(splits: DataSplits, size: int) -> DataSplits:
    """Pad every split's images (centred) to size x size with raw-zero pixels, in place.

    The images are normalised, so raw 0 is -mean/std per channel: the border looks like the
    black background of the digits and clothes, not like a grey frame. Idempotent: splits
    already at ``size`` are left alone.
    """
    info = splits.info
    if info.image_size == size:
        return splits
    if size < info.image_size:
        raise UserError(f"--pad {size} is smaller than {info.name}'s {info.image_size}x{info.image_size} images")
    before = (size - info.image_size) // 2
    after = size - info.image_size - before
    if splits.mean and splits.std:
        fill = torch.tensor([-m / s for m, s in zip(splits.mean, splits.std, strict=True)])
    else:
        fill = torch.zeros(info.in_channels)
    for split in (splits.train, splits.val, splits.test):
        if not isinstance(split, Split):
            raise UserError(f"--pad works on image data sets, not {info.name}")
        # pad with 0, then put raw zero's normalised value in the border
        inner = torch.zeros(1, 1, size, size, dtype=torch.bool)
        inner[..., before:before + info.image_size, before:before + info.image_size] = True
        padded = F.pad(split.x, (before, after, before, after))
        split.x = torch.where(inner, padded, fill.to(padded).view(1, -1, 1, 1))
    splits.info = replace(info, image_size=size)
    return splits


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10", choices=("cifar10", "fashion-mnist"))
    parser.add_argument("--data-root", default=None,
                        help="cifar-10-batches-py folder (needed for cifar10); fashion-mnist IDX folder")
    parser.add_argument("--pad", type=int, default=None, help="zero-pad images to PAD x PAD (fashion-mnist: 32)")
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--width", type=float, default=None, help="width multiplier (default 1.0; --quick 0.125)")
    parser.add_argument("--T", type=int, default=None, help="time steps (default 4; --quick 2)")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help=f"a {PRUNER} hyperparameter (default prune_steps=20, as the seeds' space)")
    parser.add_argument("--epochs-pretrain", type=int, default=None)
    parser.add_argument("--epochs-prune", type=int, default=None)
    parser.add_argument("--epochs-finetune", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (--quick 64)")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--subset", type=int, default=None, help="training images kept (default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--out", default=None, help="run folder (default runs/bench-cifar-DATASET)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--verbose", action="store_true", help="print the engine's per-epoch lines")
    parser.add_argument("--quick", action="store_true",
                        help="tiny CPU run of the whole path: width 0.125, T=2, 256 images, 1 epoch per phase")
    args = parser.parse_args(argv)
    epochs = EPOCHS[args.dataset]
    if args.quick:
        epochs = (1, 1, 1)
        args.subset = args.subset or 256
    args.epochs_pretrain = epochs[0] if args.epochs_pretrain is None else args.epochs_pretrain
    args.epochs_prune = epochs[1] if args.epochs_prune is None else args.epochs_prune
    args.epochs_finetune = epochs[2] if args.epochs_finetune is None else args.epochs_finetune
    args.width = args.width if args.width is not None else (0.125 if args.quick else 1.0)
    args.batch_size = args.batch_size or (64 if args.quick else 128)
    args.T = args.T or (2 if args.quick else 4)
    args.out = Path(args.out or f"runs/bench-cifar-{args.dataset}")
    return args


def hyperparameters(sets: Sequence[str], quick: bool) -> dict[str, Any]:
    """The pruner's hyperparameters: prune_steps=20 (the seeds' space) and ``--set`` values."""
    hp: dict[str, Any] = {"prune_steps": 4 if quick else 20}
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set wants KEY=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                hp[name.strip()] = cast(value)
                break
            except ValueError:
                continue
        else:
            hp[name.strip()] = value.strip()
    return hp


def pick_device(device: str, quick: bool) -> str:
    """The device to run on; no GPU and no ``--device cpu`` is a one-line refusal.

    Hours of VGG-16 on a GPU are weeks on two CPU cores: starting that silently would be worse
    than saying so. ``--quick`` is minutes on a CPU, so it falls back like `snnprune.fit` does.
    """
    has_gpu = torch.cuda.is_available()
    if device == "cpu" or has_gpu:
        return "cuda" if device == "auto" else device
    if device == "auto" and quick:
        return "cpu"
    raise UserError("bench/cifar.py needs a CUDA GPU (VGG-16 for 200 epochs is weeks on a CPU); "
                    "pass --device cpu to run on the CPU anyway, or --quick for the smoke version")


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = pick_device(args.device, args.quick)
    data_spec: dict[str, Any] = {"name": args.dataset, "root": args.data_root, "val_fraction": 0.1,
                                 "subset": args.subset}
    if args.pad:
        data_spec["pad"] = int(args.pad)
    config = TrialConfig(
        pruner=PRUNER, sparsity=float(args.sparsity), hyperparameters=hyperparameters(args.sets, args.quick),
        model={"name": args.model, "width": args.width, "T": args.T},
        data=data_spec,
        budget={"pretrain_epochs": args.epochs_pretrain, "prune_epochs": args.epochs_prune,
                "finetune_epochs": args.epochs_finetune, "batch_size": args.batch_size, "lr": args.lr,
                "finetune_lr": args.finetune_lr, "optimizer": "sgd"},
        seed=args.seed, study="bench-cifar", trial=0)
    runtime = PaddedRuntime(run_dir=args.out, cache=DenseCache(args.out / ".cache"), device=device,
                            quiet=not args.verbose)
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else machine()["cpu"]
    print(f"{args.model} x{args.width} (T={args.T}) on {args.dataset}"
          f"{f' padded to {args.pad}x{args.pad}' if args.pad else ''}, {PRUNER} to {args.sparsity:.0%}; "
          f"epochs {args.epochs_pretrain} + {args.epochs_prune} + {args.epochs_finetune}, batch {args.batch_size}, "
          f"lr {args.lr}/{args.finetune_lr}; device {device} ({device_name})", flush=True)
    start = time.perf_counter()
    phases: dict[str, float] = {}

    def on_phase(name: str) -> None:
        phases[name] = time.perf_counter() - start
        print(f"  [{phases[name]:8.1f} s] {name}", flush=True)

    result = run_trial(config, runtime, on_phase=on_phase)
    wall = time.perf_counter() - start
    m, dense = result.metrics, result.dense
    marks = sorted(phases.items(), key=lambda kv: kv[1]) + [("end", wall)]
    phase_seconds = {name: marks[i + 1][1] - at for i, (name, at) in enumerate(marks[:-1])}
    dense_acc, pruned_acc = float(dense["accuracy"]), float(m["test_accuracy"])
    figures = {
        "dense_accuracy": dense_acc, "pruned_accuracy": pruned_acc, "pruned_val_accuracy": m.get("val_accuracy"),
        "accuracy_delta": pruned_acc - dense_acc, "accuracy_ratio": pruned_acc / dense_acc if dense_acc else None,
        "sparsity": m["sparsity"], "mask_sparsity": m["mask_sparsity"], "macs_ratio": m["macs_ratio"],
        "macs": m["macs"], "dense_macs": dense["macs"], "sops": m.get("sops"),
        "seconds": wall, "phase_seconds": phase_seconds, "cache_hit": result.cache_hit,
    }
    reported = REPORTED if (args.dataset, args.model) == (REPORTED["dataset"], REPORTED["model"]) else None
    print(f"  dense accuracy  {dense_acc:.4f}   pruned accuracy {pruned_acc:.4f}  "
          f"(delta {figures['accuracy_delta']:+.4f}; validation {m.get('val_accuracy') or float('nan'):.4f})")
    if reported:
        print(f"  reported        {reported['accuracy']:.2f} at {reported['sparsity']:.0%} sparsity "
              f"({reported['source']})")
    else:
        print("  reported        none for this setting (the paper's row is VGG-16 on CIFAR-10)")
    print(f"  sparsity {m['sparsity']:.4f} (masks {m['mask_sparsity']:.4f}); MACs ratio pruned/dense "
          f"{m['macs_ratio']:.4f} ({m['macs']:,} of {dense['macs']:,} per step)")
    print("  time " + ", ".join(f"{k} {v:.1f} s" for k, v in phase_seconds.items())
          + f"; total {wall:.1f} s (dense {'from the cache' if result.cache_hit else 'trained here'})")
    return {"bench": "cifar", **figures, "reported": reported,
            "settings": {"dataset": args.dataset, "data_root": args.data_root, "pad": args.pad,
                         "model": args.model, "width": args.width, "T": args.T, "pruner": PRUNER,
                         "sparsity_target": args.sparsity, "hyperparameters": config.hyperparameters,
                         "budget": config.budget, "subset": args.subset, "seed": args.seed,
                         "quick": args.quick, "out": str(args.out), "threads": torch.get_num_threads()},
            "device": device, "device_name": device_name, "machine": machine()}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        figures = run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finish(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
