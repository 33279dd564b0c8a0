"""Training throughput: our engine against a plain spikingjelly loop, same network, same data.

The plain loop is what a spikingjelly user writes: a TensorDataset in a DataLoader, the input
repeated over T, forward, cross-entropy on the mean over T, backward, SGD step, reset_net. Our
engine trains a copy of the same weights with `snnprune.fit`. Both run the same number of
steps, alternating rounds so that machine noise hits both; samples/s of each and the ratio.

    python bench/throughput.py [--dataset digits] [--model cnn] [--steps 60] [--rounds 3]
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch.utils.data import DataLoader, TensorDataset

import snnprune
from _common import finish, machine, training_parser
from snnprune.models import build_model, seeded


def plain_loop(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, T: int, steps: int,
               batch_size: int, lr: float, seed: int) -> float:
    """The reference spikingjelly training loop; returns samples/s."""
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed), drop_last=False)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    net.train()
    done, seen = 0, 0
    start = time.perf_counter()
    while done < steps:
        for xb, yb in loader:
            x_seq = xb.unsqueeze(0).repeat(T, 1, 1, 1, 1)
            out = net.classifier(net.features(x_seq)).mean(0)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            functional.reset_net(net)
            done += 1
            seen += yb.numel()
            if done >= steps:
                break
    return seen / (time.perf_counter() - start)


def engine_loop(net: torch.nn.Module, split: snnprune.data.Split, *, steps: int, batch_size: int,
                lr: float, seed: int) -> float:
    start = time.perf_counter()
    result = snnprune.fit(net, split, epochs=10**6, max_steps=steps, batch_size=batch_size, lr=lr,
                          schedule="constant", seed=seed, quiet=True, device="cpu")
    return result.steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = training_parser(__doc__.splitlines()[0], steps=60, rounds=3)
    args = parser.parse_args()

    data = snnprune.load_dataset(args.dataset, args.data_root, subset=args.subset, seed=0)
    info = data.info
    with seeded(0):
        base = build_model(args.model, num_classes=info.num_classes, in_channels=info.in_channels,
                           image_size=info.image_size, T=args.T, width=args.width)
    # a full epoch's worth of batches so that both loops draw the same number of samples
    steps = min(args.steps, data.train.num_batches(args.batch_size))
    ours, plain = [], []
    engine_loop(copy.deepcopy(base), data.train, steps=3, batch_size=args.batch_size, lr=0.05, seed=0)
    for r in range(args.rounds):
        plain.append(plain_loop(copy.deepcopy(base), data.train.x, data.train.y, T=args.T, steps=steps,
                                batch_size=args.batch_size, lr=0.05, seed=r))
        ours.append(engine_loop(copy.deepcopy(base), data.train, steps=steps,
                                batch_size=args.batch_size, lr=0.05, seed=r))
    o, p = statistics.median(ours), statistics.median(plain)
    print(f"{args.model} x{args.width} on {args.dataset}, T={args.T}, batch {args.batch_size}, "
          f"{steps} steps x {args.rounds} rounds ({machine()['cores']} cores)")
    print(f"  plain spikingjelly loop : {p:9.1f} samples/s")
    print(f"  snnprune engine         : {o:9.1f} samples/s")
    print(f"  ratio engine / plain    : {o / p:9.3f}")
    finish({"bench": "throughput", "model": args.model, "dataset": args.dataset, "T": args.T,
            "batch_size": args.batch_size, "steps": steps, "rounds": args.rounds,
            "plain_samples_per_s": p, "engine_samples_per_s": o, "ratio": o / p, "machine": machine()})


if __name__ == "__main__":
    main()
