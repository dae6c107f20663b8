"""Pseudolabels of the pool from the final model, and the final model's loss on each text.

SELECT's closed-form gradients need a label per classification text; the pool is unlabelled, so
the final model's own argmax over the label tokens stands in for it. The same pass yields the
loss the P-Min / P-Max baselines rank by.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import UserError
from ..formats import batches
from ..losses import make_loss
from ..models.lm import ModelLike, ModelRef, as_lm
from ..progress import tqdm
from ..specs import FinetuneSpec
from .closed_form import head_inputs
from .models_io import as_tokenizer

TASK_TYPES = ("classification", "sft")


@torch.no_grad()
def pseudolabel(
    final_model: ModelLike,
    tokenizer,
    texts: Sequence[str],
    *,
    task_type: str = "classification",
    num_classes: int | None = None,
    max_length: int = 32,
    truncate: str = "left",
    batch_size: int = 32,
    loss: str = "label_masked",
    progress: bool = False,
    base: ModelLike | None = None,
) -> pd.DataFrame:
    """Label every text with the final model and score it against its own label.

    Columns: ``pseudolabel`` (argmax over the label tokens; −1 for sft) and ``loss`` (the final
    model's loss against that label under ``loss`` — label_masked or full_vocab — or, for sft,
    the mean next-token cross-entropy of the text; NaN for a text with no scorable token).
    P-Min / P-Max rank by this loss. ``base`` is what a PEFT adapter ``final_model`` is merged
    over (default: the adapter's own ``base_model_name_or_path``).
    """
    if task_type not in TASK_TYPES:
        raise UserError(f"unknown task_type {task_type!r}; choose one of {', '.join(TASK_TYPES)}.")
    if batch_size < 1:
        raise UserError("batch_size must be at least 1.")
    if task_type == "classification" and loss not in ("label_masked", "full_vocab"):
        raise UserError(f"classification loss must be label_masked or full_vocab, not {loss!r}.")
    tokenizer = as_tokenizer(tokenizer, final_model)
    lm = as_lm(final_model, base)
    name = "lm" if task_type == "sft" else loss
    task_loss = make_loss(name, tokenizer, num_classes, max_length, truncate)
    labels, losses = [], []
    steps = batches(len(texts), batch_size)
    for sel in tqdm(
        steps, total=-(-len(texts) // batch_size), disable=not progress, desc="pseudolabel"
    ):
        positions = head_inputs(lm, tokenizer, [texts[i] for i in sel], None, task_loss)
        lab, los = task_loss.pseudolabel(lm, positions)
        labels.append(lab)
        losses.append(los)
    return pd.DataFrame(
        {
            "pseudolabel": np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, int),
            "loss": np.concatenate(losses).astype(np.float64) if losses else np.zeros(0),
        }
    )


def label_pool(
    final: ModelLike,
    pool: pd.DataFrame,
    finetune: FinetuneSpec,
    *,
    task_type: str,
    num_classes: int | None,
    batch_size: int = 64,
    base_dir: Path | None = None,
    tokenizer=None,
) -> pd.DataFrame:
    """The pool with the final model's pseudolabel of every text and its loss on that label
    (``base_dir``: the base a PEFT adapter final is merged over, when its config names none;
    ``tokenizer``: default, the final's own)."""
    if isinstance(final, str | os.PathLike):
        final = ModelRef(Path(final), base=None if base_dir is None else Path(base_dir))
    labels = pseudolabel(
        final,
        tokenizer,
        pool["text"].tolist(),
        task_type=task_type,
        num_classes=num_classes,
        max_length=finetune.max_length,
        truncate=finetune.truncate,
        batch_size=batch_size,
        loss=finetune.loss if task_type == "classification" else "lm",
        progress=True,
        base=base_dir,
    )
    return pd.concat([pool.reset_index(drop=True), labels], axis=1)
