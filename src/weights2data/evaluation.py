"""Evaluate a selection by retraining the base on it (the comparison with the true training
set lives in `comparison`, so that an embedding change reruns no retraining)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import write_json
from .data.files import read_dataset
from .data.splits import num_classes_of, task_splits
from .errors import UserError
from .readers import read_table
from .specs import FinetuneSpec, RetrainSpec, TaskSpec

if TYPE_CHECKING:
    from .models.lm import ModelRef


def retrain(
    base: ModelRef | Path,
    selection_path: Path,
    dataset_path: Path,
    specs: tuple[TaskSpec, FinetuneSpec, RetrainSpec],
    seeds: tuple[int, int],
    out: Path,
    keys: dict,
) -> dict:
    """Finetune a fresh base on the selection (+ pseudolabels), best-by-val, report test.
    ``base``: a folder, or a reference with the trunk caches to read; ``seeds`` = (the
    retraining's seed, the val/test split seed)."""
    from .experts import as_ref, train_config  # torch only where a model is trained
    from .models.folders import load_tokenizer
    from .models.lm import open_lm
    from .train import evaluate, finetune

    task, finetune_spec, retrain_spec = specs
    seed, split_seed = seeds
    table = read_dataset(dataset_path)
    splits = task_splits(table, task, seed, split_seed)
    spec = dataclasses.replace(
        finetune_spec, epochs=retrain_spec.max_epochs, patience=retrain_spec.patience
    )
    cfg = train_config(task, spec, num_classes_of(table))
    chosen = read_table(selection_path, "selection", ("index", "text", "pseudolabel"))
    if len(chosen) == 0:
        raise UserError(f"the selection {str(selection_path)!r} is empty.")
    is_cls = cfg.task_type == "classification"
    labels = chosen["pseudolabel"].to_numpy() if is_cls else None
    val = (splits["val"]["text"].tolist(), splits["val"]["label"].to_numpy() if is_cls else None)
    test = (splits["test"]["text"].tolist(), splits["test"]["label"].to_numpy() if is_cls else None)
    base = as_ref(base)
    lm, tokenizer = open_lm(base), load_tokenizer(base.path)
    lm, info = finetune(lm, tokenizer, (chosen["text"].tolist(), labels), val, cfg, seed)
    scores = evaluate(lm, tokenizer, *test, cfg)
    result = dict(
        keys,
        n_selected=len(chosen),
        best_epoch=info["best_epoch"],
        history=info["history"],
        **{f"test_{k}": v for k, v in scores.items()},
    )
    write_json(out, result)
    return result
