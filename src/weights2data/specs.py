"""Typed config slices: what a rule passes a step as JSON, parsed once into a frozen dataclass.

Each class mirrors one section of the config schema (``schemas/config.schema.yaml``, which fills the
defaults for the pipeline; the same defaults here serve a step run by hand). Library functions
take these objects instead of loose dictionaries, so an option is added in two places: the
schema and its spec.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import UserError

S = TypeVar("S")


def parse_spec(cls: type[S], value: Any, where: str) -> S:
    """``value`` (a JSON object) as a ``cls``; unknown or missing keys name the flag to fix."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(value).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise UserError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}."
        )
    try:
        return cls(**value)
    except TypeError as exc:  # a required key is missing
        raise UserError(f"{where}: {str(exc).split(') ', 1)[-1]}.") from None


def as_dict(spec: object) -> dict:
    """The spec as the JSON object it was parsed from (for records and sidecars)."""
    return dataclasses.asdict(spec)


@dataclass(frozen=True)
class FinetuneSpec:
    """``finetune``: how an expert (and every retraining) is trained."""

    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.0
    batch_size: int = 32
    epochs: int = 3
    patience: int | None = None
    loss: str = "label_masked"
    max_length: int = 32
    truncate: str = "left"
    # all | head | top:N: what trains; the rest (the trunk) stays frozen (models.regime)
    trainable: str = "all"


@dataclass(frozen=True)
class TaskSpec:
    """``tasks.<name>``: an expert's task (its dataset, type and split sizes)."""

    type: str
    dataset: str = ""  # its key in `datasets` (a step is given the dataset's file itself)
    train_size: int = 1000
    val_size: int = 200
    test_size: int = 500
    balance: bool = False
    finetune: dict = field(default_factory=dict)  # overrides, already merged into FinetuneSpec

    @property
    def classification(self) -> bool:
        return self.type == "classification"


@dataclass(frozen=True)
class GradientSpec:
    """``selection.gradients``: what the per-example gradient store holds."""

    model: str = "base"  # the model whose gradients are taken: base or final
    loss: str | None = None  # None: the expert's own training loss
    projection: str = "auto"  # auto: exact for label_masked, a sketch otherwise
    k: int = 1024  # sketch dimension
    checkpoints: int = 1  # interpolated checkpoints C between base and final
    batch_size: int = 64
    # head (the closed form), module names, blocks.N (every linear layer of block N), or a list
    layers: str | list[str] = "head"
    # auto | none | rms: the Adam-aware space beside the raw one (gradients.precondition)
    precondition: str = "auto"


@dataclass(frozen=True)
class RetrainSpec:
    """``retrain``: early stopping of the retrainings on a selection."""

    max_epochs: int = 5
    patience: int | None = 2
