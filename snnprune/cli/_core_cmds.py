"""`snnprune inspect` and `snnprune train`: the dense network, before any pruning."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from snnprune.errors import UserError

from ._app import cli, emit
from ._options import json_option, model_options, out_folder, subset_value, time_steps, training_options

__all__: list[str] = []


@cli.command()
@model_options
@json_option
def inspect(model: str, dataset: str, width: float, T: int | None, neuron: str, as_json: bool) -> None:
    """Layers, parameters and MACs per time step of a network (no data needed)."""
    from snnprune.data import dataset_info
    from snnprune.metrics import count_layers
    from snnprune.models import build_model

    info = dataset_info(dataset)
    T = time_steps(T, info)
    net = build_model(model, num_classes=info.num_classes, in_channels=info.in_channels,
                      image_size=info.image_size, T=T, width=width, neuron=neuron)
    layers = count_layers(net)
    payload = {
        "model": model, "dataset": dataset, "width": width, "T": T,
        "input_shape": [info.in_channels, info.image_size, info.image_size],
        "num_classes": info.num_classes,
        "params": sum(p.numel() for p in net.parameters()),
        "weights": sum(layer.weights for layer in layers),
        "macs": sum(layer.dense_macs for layer in layers),
        "conv_macs": sum(layer.dense_macs for layer in layers if layer.kind == "Conv2d"),
        "linear_macs": sum(layer.dense_macs for layer in layers if layer.kind == "Linear"),
        "layers": [{"name": layer.name, "kind": layer.kind, "weights": layer.weights,
                    "macs": layer.dense_macs} for layer in layers],
        "prunable_channel_groups": len(net.channel_groups()),
    }
    rows = "\n".join(f"  {layer.name:<28} {layer.kind:<8} {layer.weights:>12,} {layer.dense_macs:>15,}"
                     for layer in layers)
    human = (f"{model} on {dataset} {tuple(payload['input_shape'])}, T={T}, width={width}\n"
             f"  {'layer':<28} {'kind':<8} {'weights':>12} {'MACs/step':>15}\n{rows}\n"
             f"  parameters {payload['params']:,}; MACs per time step {payload['macs']:,} "
             f"(conv {payload['conv_macs']:,}, linear {payload['linear_macs']:,})")
    emit(payload, as_json, human)


@cli.command()
@model_options
@training_options
@click.option("--out", type=click.Path(), default=None,
              help="Run folder (default runs/train-MODEL-DATASET-sSEED).")
@json_option
def train(model: str, dataset: str, width: float, T: int | None, neuron: str, data_root: str | None,
          subset: float | None, epochs: int, batch_size: int, lr: float, optimizer: str, seed: int,
          device: str, quiet: bool, out: str | None, as_json: bool) -> None:
    """Train the dense network, report test accuracy and metrics, save a checkpoint."""
    import snnprune
    from snnprune.engine import atomic_write_bytes, save_checkpoint
    from snnprune.models import build_model, seeded

    if epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    info = snnprune.dataset_info(dataset)
    T = time_steps(T, info)
    with seeded(seed):
        net = build_model(model, num_classes=info.num_classes, in_channels=info.in_channels,
                          image_size=info.image_size, T=T, width=width, neuron=neuron)
    data = snnprune.load_dataset(dataset, data_root, subset=subset_value(subset), seed=seed)
    run = out_folder(out if out else Path("runs") / f"train-{model}-{dataset}-s{seed}")
    start = time.perf_counter()
    result = snnprune.fit(net, data.train, val=data.val, epochs=epochs, batch_size=batch_size, lr=lr,
                          optimizer=optimizer, seed=seed, device=device, quiet=quiet or as_json)
    train_seconds = time.perf_counter() - start
    test = snnprune.evaluate(net, data.test, device=device)
    metrics = snnprune.measure(net, data.test, device=device)
    ckpt = save_checkpoint(run / "model.pt", net, dataset=dataset, seed=seed, epochs=epochs,
                           test_accuracy=test["accuracy"])
    payload = {
        "model": model, "dataset": dataset, "seed": seed, "epochs": epochs,
        "test_accuracy": test["accuracy"], "val_accuracy": result.final.get("val_accuracy"),
        "train_seconds": train_seconds, "checkpoint": str(ckpt),
        **metrics.to_dict(layers=False), "history": result.history,
    }
    atomic_write_bytes(run / "metrics.json", json.dumps(payload, indent=2, default=float).encode())
    human = (f"{model} on {dataset}: test accuracy {test['accuracy']:.4f} after {epochs} epoch{'' if epochs == 1 else 's'} "
             f"({train_seconds:.1f} s)\n"
             f"  parameters {metrics.params:,}; MACs/step {metrics.macs:,}; "
             f"SOPs/sample {metrics.sops:,.0f}; energy {metrics.energy_uj:.3f} uJ/sample\n"
             f"  checkpoint {ckpt}")
    emit(payload, as_json, human)
