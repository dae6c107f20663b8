"""The pipeline's gradient store: a pseudolabelled pool and the config's specs in, a store out.

What the ``gradient-store`` step, the regime diagnostics (S_true of the true texts) and the
one-shot ``select`` share, so that all three build their stores in exactly the same space.
(Pseudolabelling the pool is ``pseudolabels.label_pool``: its step does not run store code.)
"""

from __future__ import annotations

import dataclasses
import os

import pandas as pd

from ..errors import UserError
from ..models.lm import ModelLike
from ..specs import FinetuneSpec, GradientSpec
from .models_io import as_tokenizer
from .shards import shard_bounds
from .store import build_gradient_store

# what a labels table (the autolabel step's output) must hold; P-Min / P-Max also read its loss
LABEL_COLUMNS = ("text", "pseudolabel")


def gradient_loss(task_type: str, finetune_loss: str) -> str:
    """The loss whose gradients SELECT matches: the expert's own training loss."""
    return "lm" if task_type == "sft" else finetune_loss


def store_for_labels(
    base: ModelLike,
    final: ModelLike,
    labels: pd.DataFrame,
    out: str | os.PathLike,
    spec: GradientSpec,
    finetune: FinetuneSpec,
    *,
    task_type: str,
    num_classes: int | None,
    seed: int,
    shard: tuple[int, int] | None = None,
    tokenizer=None,
) -> dict:
    """Per-example gradients of the labelled pool under the spec's model, and Δ; the meta.

    ``shard = (i, S)`` writes shard i of S (``shards.shard_bounds``); gather them with
    ``shards.gather_gradient_stores``. ``base`` / ``final``: folders, references (with
    their trunk caches) or opened models; ``tokenizer``: default, the base's.
    """
    rows = None
    if shard is not None:
        index, count = shard
        if not 0 <= index < count:
            raise UserError(f"shard index {index} is outside 0 … {count - 1}.")
        rows = shard_bounds(len(labels), count, spec.batch_size)[index]
    loss = gradient_loss(task_type, spec.loss or finetune.loss)
    return build_gradient_store(
        base,
        final,
        labels["text"].tolist(),
        None if loss == "lm" else labels["pseudolabel"].to_numpy(),
        out,
        dataclasses.replace(spec, loss=loss),
        tokenizer=as_tokenizer(tokenizer, base),
        num_classes=num_classes,
        seed=seed,
        max_length=finetune.max_length,
        truncate=finetune.truncate,
        rows=rows,
        optimizer=finetune.optimizer,
    )
