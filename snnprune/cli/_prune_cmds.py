"""`snnprune pruners` and `snnprune prune`: the registry, and one pruning run end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from snnprune.errors import UserError

from ._app import cli, emit
from ._options import SEED, json_option, model_options, out_folder, subset_value, time_steps

__all__ = ["parse_assignments"]


def parse_assignments(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("regen_ratio=0.3", "scope=layer")`` -> {"regen_ratio": 0.3, "scope": "layer"}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {pair!r}")
        value: Any = raw.strip()
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        if key.strip() in out:  # the last one won, silently
            raise UserError(f"--set {key.strip()} is given twice")
        out[key.strip()] = value
    return out


@cli.command("pruners")
@json_option
def pruners_cmd(as_json: bool) -> None:
    """List the registered pruners and their hyperparameters with ranges and defaults."""
    from snnprune.pruners import list_pruners

    specs = list_pruners()
    lines = []
    for spec in specs:
        flags = [spec.kind] + (["from scratch"] if spec.from_scratch else []) + (
            [] if spec.training_aware else ["one shot"])
        lines.append(f"{spec.name}  ({', '.join(flags)})\n    {spec.description}")
        for hp in spec.hyperparams:
            lines.append(f"    {hp.name:<18} {hp.type:<7} default {hp.default!s:<12} {hp.range_text()}")
    emit({"pruners": [spec.to_dict() for spec in specs]}, as_json, "\n".join(lines))


@cli.command("prune")
@click.option("--pruner", "-p", "pruner_name", required=True, help="A name from `snnprune pruners`.")
@model_options
@click.option("--sparsity", "-s", type=float, required=True,
              help="Target: fraction of weights (unstructured) or channels (structured) removed.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="A pruner hyperparameter.")
@click.option("--from", "from_ckpt", type=click.Path(), default=None,
              help="Start from this dense checkpoint instead of pre-training.")
@click.option("--data-root", type=click.Path(), default=None)
@click.option("--subset", type=float, default=None)
@click.option("--epochs", type=int, default=5, show_default=True, help="Dense pre-training epochs.")
@click.option("--prune-epochs", type=int, default=3, show_default=True)
@click.option("--finetune-epochs", type=int, default=2, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=0.1, show_default=True)
@click.option("--finetune-lr", type=float, default=0.02, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True)
@click.option("--out", type=click.Path(), default=None, help="Run folder (default runs/prune-PRUNER-MODEL-DATASET-sSEED).")
@json_option
def prune_cmd(pruner_name: str, model: str, dataset: str, width: float, T: int | None, neuron: str,
              sparsity: float, assignments: tuple[str, ...], from_ckpt: str | None, data_root: str | None,
              subset: float | None, epochs: int, prune_epochs: int, finetune_epochs: int, batch_size: int,
              lr: float, finetune_lr: float, seed: int, device: str, quiet: bool, out: str | None,
              as_json: bool) -> None:
    """Pre-train (or load), prune, fine-tune, compact; print the figures and save the results."""
    import snnprune
    from snnprune.compaction import save_compact, save_sparse
    from snnprune.engine import atomic_torch_save, atomic_write_bytes, load_checkpoint
    from snnprune.models import build_model, seeded
    from snnprune.pruners import Budget, default_config_list, get_pruner, run_pruning, validate_hyperparameters

    spec = get_pruner(pruner_name)
    hp = validate_hyperparameters(spec, parse_assignments(assignments))
    if not 0.0 <= sparsity < 1.0:
        raise UserError(f"--sparsity must be in [0, 1), got {sparsity}")
    budget = Budget(pretrain_epochs=epochs, prune_epochs=prune_epochs, finetune_epochs=finetune_epochs,
                    batch_size=batch_size, lr=lr, finetune_lr=finetune_lr)
    budget.check()
    info = snnprune.dataset_info(dataset)
    T = time_steps(T, info)
    with seeded(seed):
        net = build_model(model, num_classes=info.num_classes, in_channels=info.in_channels,
                          image_size=info.image_size, T=T, width=width, neuron=neuron)
    if from_ckpt:
        load_checkpoint(from_ckpt, net)
    data = snnprune.load_dataset(dataset, data_root, subset=subset_value(subset), seed=seed)
    run = out_folder(out if out else Path("runs") / f"prune-{pruner_name.replace(':', '-')}-{model}-{dataset}-s{seed}")
    outcome = run_pruning(pruner_name, net, data, sparsity=sparsity, hyperparameters=hp, budget=budget,
                          seed=seed, device=device, quiet=quiet or as_json, pretrained=bool(from_ckpt))
    atomic_torch_save(outcome.masks, run / "masks.pt")
    if outcome.structured:
        model_path = save_compact(run / "model_compact.pt", outcome.model)
    else:
        model_path = save_sparse(run / "model_sparse.pt", outcome.model, outcome.masks)
    for other in ("model_compact.pt", "model_sparse.pt"):  # a reused --out keeps one run's model only
        if run / other != model_path:
            (run / other).unlink(missing_ok=True)
    config_list = default_config_list(sparsity, structured=outcome.structured)
    atomic_write_bytes(run / "nni_config_list.json", json.dumps(config_list, indent=2).encode())
    m, d = outcome.metrics, outcome.dense
    payload = {"pruner": pruner_name, "hyperparameters": hp, "model": model, "dataset": dataset,
               "target_sparsity": sparsity, "seed": seed, "dense": d, **m,
               "masks": str(run / "masks.pt"), "model_path": str(model_path), "notes": outcome.notes,
               "events": outcome.events}
    atomic_write_bytes(run / "metrics.json", json.dumps(payload, indent=2, default=float).encode())
    target = f"channel sparsity {sparsity}" if outcome.structured else f"sparsity {sparsity}"
    reached = (f"  weight sparsity {m['sparsity']:.4f} (masked {m['mask_sparsity']:.4f}; a removed channel "
               f"takes the next layer's weights on it too)" if outcome.structured else
               f"  weight sparsity {m['sparsity']:.4f} (masks {m['mask_sparsity']:.4f})")
    human = (f"{pruner_name} on {model}/{dataset} at {target}:\n"
             f"  accuracy {m['accuracy']:.4f} (dense {d['accuracy']:.4f})\n"
             f"{reached}; parameters {m['params']:,}\n"
             f"  MACs/step {m['macs']:,} ({m['macs_ratio']:.3f} of dense); SOPs/sample {m['sops']:,.0f}; "
             f"energy {m['energy_uj']:.3f} uJ\n"
             f"  time {m['seconds']:.1f} s (pruning {m['prune_seconds']:.1f} s); saved in {run}"
             + "".join(f"\n  note: {n}" for n in outcome.notes))
    emit(payload, as_json, human)
