"""Pseudolabels of the pool from the final model, and the final model's loss on each text.

SELECT's closed-form gradients need a label per classification text; the pool is unlabelled, so
the final model's own argmax over the label tokens stands in for it. The same pass yields the
loss the P-Min / P-Max baselines rank by.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import UserError
from ..models import load_tokenizer, output_matrix
from ..progress import tqdm
from ..specs import FinetuneSpec
from .closed_form import _chunks, _label_ids, head_inputs
from .models_io import ModelLike, _as_final, _as_tokenizer

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
    tokenizer = _as_tokenizer(tokenizer, final_model)
    model = _as_final(final_model, base)
    if task_type == "sft":
        loss, label_ids = "lm", None
    else:
        if loss not in ("label_masked", "full_vocab"):
            raise UserError(
                f"classification loss must be label_masked or full_vocab, not {loss!r}."
            )
        label_ids = _label_ids(loss, tokenizer, num_classes)
    labels, losses = [], []
    for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="pseudolabel"):
        chunk = list(texts[start : start + batch_size])
        if task_type == "sft":
            lab, los = _lm_losses(model, tokenizer, chunk, max_length)
        else:
            lab, los = _label_losses(model, tokenizer, chunk, loss, label_ids, max_length, truncate)
        labels.append(lab)
        losses.append(los)
    return pd.DataFrame(
        {
            "pseudolabel": np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, int),
            "loss": np.concatenate(losses).astype(np.float64) if losses else np.zeros(0),
        }
    )


def _label_losses(model, tokenizer, texts, loss, label_ids, max_length, truncate):
    dummy = np.zeros(len(texts), dtype=np.int64)
    inputs = head_inputs(
        model,
        tokenizer,
        texts,
        dummy,
        loss="label_masked",
        label_ids=label_ids,
        max_length=max_length,
        truncate=truncate,
    )
    W = output_matrix(model).detach()
    label_rows = torch.as_tensor(label_ids, device=W.device)
    label_logits = inputs.hidden @ W[label_rows].T
    labels = label_logits.argmax(dim=1)
    logits = label_logits if loss == "label_masked" else inputs.hidden @ W.T
    targets = labels if loss == "label_masked" else label_rows[labels]
    losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    return labels.cpu().numpy(), losses.double().cpu().numpy()


def _lm_losses(model, tokenizer, texts, max_length):
    inputs = head_inputs(
        model,
        tokenizer,
        texts,
        None,
        loss="lm",
        label_ids=None,
        max_length=max_length,
        truncate="left",
    )
    W = output_matrix(model).detach()
    total = inputs.hidden.new_zeros(inputs.n_examples)
    count = inputs.hidden.new_zeros(inputs.n_examples)
    for part in _chunks(len(inputs.targets), W.shape[0]):
        ce = torch.nn.functional.cross_entropy(
            inputs.hidden[part] @ W.T, inputs.targets[part], reduction="none"
        )
        total.index_add_(0, inputs.example[part], ce)
        count.index_add_(0, inputs.example[part], torch.ones_like(ce))
    losses = torch.where(count > 0, total / count.clamp(min=1), torch.nan)
    return np.full(len(texts), -1), losses.double().cpu().numpy()


def label_pool(
    final_dir: Path,
    pool: pd.DataFrame,
    finetune: FinetuneSpec,
    *,
    task_type: str,
    num_classes: int | None,
    batch_size: int = 64,
    base_dir: Path | None = None,
) -> pd.DataFrame:
    """The pool with the final model's pseudolabel of every text and its loss on that label
    (``base_dir``: the base a PEFT adapter final is merged over, when its config names none)."""
    labels = pseudolabel(
        final_dir,
        load_tokenizer(final_dir, base=base_dir),
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
