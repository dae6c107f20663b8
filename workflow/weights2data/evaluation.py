"""Evaluate a selection: retrain the base on it, and compare it with the true training set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_json
from .data.files import read_dataset
from .data.splits import num_classes_of, task_splits
from .errors import UserError
from .metrics import embed_texts, ot_distance, vocab_containment
from .readers import read_array, read_table


def true_training_texts(dataset_path: Path, task: dict, seed: int, split_seed: int) -> list[str]:
    """The expert's actual training texts for this seed (known to the evaluation only)."""
    return task_splits(read_dataset(dataset_path), task, seed, split_seed)["train"]["text"].tolist()


def retrain(
    base_dir: Path,
    selection_path: Path,
    dataset_path: Path,
    task: dict,
    finetune_spec: dict,
    retrain_spec: dict,
    seed: int,
    split_seed: int,
    out: Path,
    keys: dict,
    keep_model: Path | None = None,
) -> dict:
    """Finetune a fresh base on the selection (+ pseudolabels), best-by-val, report test."""
    from .experts import train_config  # torch only where a model is trained
    from .models import load_model, load_tokenizer, save_model
    from .train import evaluate, finetune

    table = read_dataset(dataset_path)
    splits = task_splits(table, task, seed, split_seed)
    spec = dict(finetune_spec, epochs=retrain_spec["max_epochs"], patience=retrain_spec["patience"])
    cfg = train_config(task, spec, num_classes_of(table))
    chosen = read_table(selection_path, "selection", ("index", "text", "pseudolabel"))
    if len(chosen) == 0:
        raise UserError(f"the selection {str(selection_path)!r} is empty.")
    is_cls = cfg.task_type == "classification"
    labels = chosen["pseudolabel"].to_numpy() if is_cls else None
    val = (splits["val"]["text"].tolist(), splits["val"]["label"].to_numpy() if is_cls else None)
    test = (splits["test"]["text"].tolist(), splits["test"]["label"].to_numpy() if is_cls else None)
    model, tokenizer = load_model(base_dir), load_tokenizer(base_dir)
    model, info = finetune(model, tokenizer, (chosen["text"].tolist(), labels), val, cfg, seed)
    scores = evaluate(model, tokenizer, *test, cfg)
    result = dict(
        keys,
        n_selected=len(chosen),
        best_epoch=info["best_epoch"],
        history=info["history"],
        **{f"test_{k}": v for k, v in scores.items()},
    )
    if keep_model is not None:
        save_model(model, tokenizer, keep_model)
    write_json(out, result)
    return result


def embed_to_file(texts_path: Path, out: Path, *, dataset: dict | None = None) -> np.ndarray:
    """Sentence embeddings of a text table (pool subset or true training set), saved as .npy."""
    if dataset is not None:
        texts = true_training_texts(
            texts_path, dataset["task"], dataset["seed"], dataset["split_seed"]
        )
    else:
        texts = read_table(texts_path, "pool", ("text",))["text"].tolist()
    emb = embed_texts(texts)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, emb)
    return emb


def similarity(
    selection_path: Path,
    pool_embeddings: Path,
    truth_embeddings: Path,
    dataset_path: Path,
    task: dict,
    seed: int,
    split_seed: int,
    out: Path,
    keys: dict,
    *,
    ot_method: str = "emd",
    max_tokens: int = 32,
) -> dict:
    """Vocabulary containment and OT distance between a selection and the true training set."""
    chosen = read_table(selection_path, "selection", ("index", "text"))
    truth = true_training_texts(dataset_path, task, seed, split_seed)
    pool_emb = read_array(pool_embeddings, "pool embeddings")
    truth_emb = read_array(truth_embeddings, "truth embeddings")
    if chosen["index"].max() >= len(pool_emb):
        raise UserError("the selection indexes past the pool embeddings; rebuild both.")
    result = dict(
        keys,
        vocab=vocab_containment(chosen["text"].tolist(), truth, max_tokens=max_tokens),
        otd=ot_distance(pool_emb[chosen["index"].to_numpy()], truth_emb, method=ot_method),
        ot_method=ot_method,
    )
    write_json(out, result)
    return result
