"""`TrialConfig` and `TrialResult`: one trial's input and output, frozen and JSON-serialisable.

The runner is a pure function of the config: the same config on the same hardware gives the
same masks, so an exported config reproduces its trial.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from snnprune.engine import TRAINING_REVISION

__all__ = ["TrialConfig", "TrialResult"]


@dataclass(frozen=True)
class TrialConfig:
    """Everything that decides a trial's outcome."""

    pruner: str
    sparsity: float
    hyperparameters: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    budget: dict[str, Any]
    seed: int = 0
    objectives: tuple[str, ...] = ("accuracy", "macs")
    study: str = ""
    trial: int = -1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["objectives"] = list(self.objectives)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=float)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TrialConfig:
        payload = dict(payload)
        payload["objectives"] = tuple(payload.get("objectives", ("accuracy", "macs")))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in payload.items() if k in known})

    def cache_key(self) -> dict[str, Any]:
        """What the dense pre-trained network depends on (not the pruner), the training code's
        revision included: a checkpoint trained by an older loop is trained again, not reused."""
        pretrain = {k: self.budget.get(k) for k in ("pretrain_epochs", "batch_size", "lr", "optimizer")}
        return {"model": self.model, "data": self.data, "budget": pretrain, "seed": self.seed,
                "training": TRAINING_REVISION}


@dataclass(frozen=True)
class TrialResult:
    """Every figure of a finished (or stopped) trial, with its config and artifact paths."""

    config: TrialConfig
    metrics: dict[str, Any]
    dense: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    stopped_at: int | None = None  # the rung (fine-tune epoch) where multi-fidelity stopped it
    cache_hit: bool = False
    #: promote mode: the checkpoint a promotion resumes it from, when it paused at ``stopped_at``
    paused_checkpoint: str | None = None
    #: ... and whether it paused because too few trials had reached the rung to judge it
    paused_unjudged: bool = False

    def objective_values(self) -> list[float]:
        return [float(self.metrics[name]) for name in self.config.objectives]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "metrics": self.metrics, "dense": self.dense,
                "history": self.history, "artifacts": self.artifacts, "stopped_at": self.stopped_at,
                "cache_hit": self.cache_hit, "paused_checkpoint": self.paused_checkpoint,
                "paused_unjudged": self.paused_unjudged}
