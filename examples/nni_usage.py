"""Our pruners used exactly as an NNI 3.0 user uses NNI's own, side by side on one network.

A small spiking cnn is trained on the digits data (shipped with scikit-learn), then pruned twice
from the same weights to the same channel sparsity:

1. with NNI's `L1NormPruner`, one-shot, then fine-tuned with the masks held;
2. with our SCA pruner (`SCAPruner`, registered as "sca"), which prunes while it trains.

Both follow NNI's usage: a config_list, an evaluator (`make_evaluator`, a `TorchEvaluator` over
our training engine), ``compress(...)``, ``get_masks()``, ``unwrap_model()``. NNI's ModelSpeedup
fails on torch 2.x, so the masked networks are made smaller with `snnprune.compaction.compact`;
NNI's L1NormPruner masks only the conv filters, so its config_list also aligns each BatchNorm
with its conv (NNI's ``align`` key), which is what ModelSpeedup would have propagated.

    python examples/nni_usage.py [--epochs 3] [--prune-epochs 2] [--sparsity 0.5]

Runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

import torch
from nni.compression.pruning import L1NormPruner

import snnprune
from snnprune.compaction import compact
from snnprune.models import build_model, seeded
from snnprune.pruners._nni_bridge import make_evaluator
from snnprune.pruners._sca import SCAPruner


def l1_config(model: torch.nn.Module, sparsity: float) -> list[dict[str, Any]]:
    """NNI config_list: prune the group convs' filters, their BNs aligned to the filter mask."""
    groups = model.channel_groups()
    config: list[dict[str, Any]] = [{"op_names": [g.conv for g in groups], "sparse_ratio": sparsity}]
    for g in groups:
        align = {"module_name": g.conv, "target_name": "weight", "dims": [0]}
        config.append({"op_names": [g.bn], "target_names": ["weight", "bias"],
                       "target_settings": {"weight": {"align": align}, "bias": {"align": align}}})
    return config


def channel_sparsity(model: torch.nn.Module, masks: dict) -> float:
    """Share of the group convs' output channels whose filter is masked out."""
    total = kept = 0
    for g in model.channel_groups():
        rows = masks[g.conv]["weight"].flatten(1).sum(1) != 0
        total, kept = total + rows.numel(), kept + int(rows.sum())
    return 1.0 - kept / total


def report(name: str, dense: snnprune.metrics.ModelMetrics, masked: torch.nn.Module,
           masks: dict, data: Any) -> dict[str, Any]:
    small = compact(masked, masks)
    figures = snnprune.measure(small)
    return {"pruner": name, "accuracy": snnprune.evaluate(small, data.test, device="cpu")["accuracy"],
            "channel_sparsity": channel_sparsity(masked, masks), "params": figures.params,
            "macs_ratio": figures.macs / dense.macs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="dense training epochs")
    parser.add_argument("--prune-epochs", type=int, default=2, help="pruning + fine-tuning epochs")
    parser.add_argument("--T", type=int, default=2, help="time steps")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--width", type=float, default=0.5)
    args = parser.parse_args()

    data = snnprune.load_dataset("digits", seed=0)
    with seeded(0):
        model = build_model("cnn", num_classes=10, in_channels=1, image_size=8, T=args.T, width=args.width)
    snnprune.fit(model, data.train, epochs=args.epochs, lr=0.1, seed=0, device="cpu", quiet=True)
    dense = snnprune.measure(model)
    dense_acc = snnprune.evaluate(model, data.test, device="cpu")["accuracy"]

    # 1. NNI's L1NormPruner: one-shot masks, then fine-tuning with the masks held
    net = copy.deepcopy(model)
    pruner = L1NormPruner(net, l1_config(net, args.sparsity))
    pruner.compress()
    snnprune.fit(net, data.train, epochs=args.prune_epochs, lr=0.05, seed=0, device="cpu", quiet=True)
    masks = {k: {t: m for t, m in v.items() if m is not None} for k, v in pruner.get_masks().items()}
    pruner.unwrap_model()  # NNI's unwrap keeps the raw weights; compact applies the masks
    rows = [report("nni:L1NormPruner", dense, net, masks, data)]

    # 2. our SCA pruner, the same way: config_list, evaluator, compress(), get_masks(), unwrap_model()
    net = copy.deepcopy(model)
    evaluator = make_evaluator(net, data.train, lr=0.05, seed=0, device="cpu")
    config_list = [{"op_types": ["Conv2d"], "sparse_ratio": args.sparsity}]
    pruner = SCAPruner(net, config_list, evaluator)
    pruner.compress(max_epochs=args.prune_epochs)  # trains through the evaluator while it prunes
    masks = pruner.get_masks()
    pruner.unwrap_model()  # ours bakes the masks into the weights first
    rows.append(report("sca", dense, net, masks, data))

    print(f"dense cnn x{args.width}, T={args.T}: accuracy {dense_acc:.3f}, {dense.params} params")
    print(f"{'pruner':<18}{'accuracy':>10}{'channels cut':>14}{'params':>9}{'MACs left':>11}")
    for row in rows:
        print(f"{row['pruner']:<18}{row['accuracy']:>10.3f}{row['channel_sparsity']:>14.1%}"
              f"{row['params']:>9d}{row['macs_ratio']:>11.1%}")


if __name__ == "__main__":
    main()
