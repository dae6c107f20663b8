"""The expert (final) models θf: the base finetuned on a task's training subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_json
from .data.files import read_dataset
from .data.splits import num_classes_of, task_splits
from .models.folders import load_tokenizer, save_model
from .models.lm import ModelRef, open_lm
from .models.regime import parse_trainable, trained_state
from .models.tops import save_top
from .specs import FinetuneSpec, TaskSpec, as_dict, parse_spec
from .train import TrainConfig, evaluate, finetune


def train_config(
    task: TaskSpec | dict, finetune: FinetuneSpec | dict, num_classes: int
) -> TrainConfig:
    """The training run's settings: the task's type and classes, the finetune spec."""
    task = parse_spec(TaskSpec, task, "task")
    finetune = parse_spec(FinetuneSpec, finetune, "finetune")
    return TrainConfig(task_type=task.type, num_classes=num_classes, **as_dict(finetune))


def _xy(frame: pd.DataFrame, task_type: str):
    texts = frame["text"].tolist()
    return texts, (frame["label"].to_numpy() if task_type == "classification" else None)


def as_ref(model: ModelRef | Path) -> ModelRef:
    """A folder as a reference with no caches; a reference as it is."""
    return model if isinstance(model, ModelRef) else ModelRef(Path(model))


def train_expert(
    base: ModelRef | Path,
    dataset_path: Path,
    task: TaskSpec,
    finetune_spec: FinetuneSpec,
    seeds: tuple[int, int],
    out_model: Path,
    out_metrics: Path,
) -> dict:
    """Finetune the base on the task's training subset; save the best-by-val model and metrics.
    ``base``: a folder, or a reference with the trunk caches to read; ``seeds`` = (the
    expert's seed, the val/test split seed)."""
    seed, split_seed = seeds
    base = as_ref(base)
    lm = open_lm(base)  # first: a cache that does not fit the model stops the step here
    table = read_dataset(dataset_path)
    splits = task_splits(table, task, seed, split_seed)
    cfg = train_config(task, finetune_spec, num_classes_of(table))
    tokenizer = load_tokenizer(base.path)
    regime = parse_trainable(cfg.trainable)
    before = trained_state(lm.module, regime) if regime.freezes else None
    lm, info = finetune(
        lm,
        tokenizer,
        _xy(splits["train"], cfg.task_type),
        _xy(splits["val"], cfg.task_type),
        cfg,
        seed,
    )
    test = evaluate(lm, tokenizer, *_xy(splits["test"], cfg.task_type), cfg)
    metrics = {"test_" + k: v for k, v in test.items()}
    metrics.update(
        info,
        seed=seed,
        n_train=len(splits["train"]),
        task_type=cfg.task_type,
        num_classes=cfg.num_classes or None,
    )
    if cfg.task_type == "classification":
        majority = int(np.bincount(splits["train"]["label"]).argmax())
        metrics["majority_rate"] = float((splits["test"]["label"] == majority).mean())
    if before is not None:  # the base plus what the finetune changed
        save_top(lm.module, before, tokenizer, out_model, base.path, {"metrics": metrics})
    else:
        save_model(lm.module, tokenizer, out_model, extra={"metrics": metrics})
    write_json(out_metrics, metrics)
    return metrics
