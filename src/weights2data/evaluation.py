"""Evaluate a selection: retrain the base on it, and compare it with the true training set."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .atomic import write_json, write_npy, write_parquet
from .data.files import read_dataset
from .data.splits import num_classes_of, task_splits
from .errors import UserError
from .metrics import embed_texts, ot_distance, vocab_containment
from .readers import read_array, read_table
from .specs import FinetuneSpec, RetrainSpec, TaskSpec

if TYPE_CHECKING:
    from .models.lm import ModelRef


def true_training_texts(
    dataset_path: Path, task: TaskSpec | dict, seed: int, split_seed: int
) -> list[str]:
    """The expert's actual training texts for this seed (known to the evaluation only)."""
    return task_splits(read_dataset(dataset_path), task, seed, split_seed)["train"]["text"].tolist()


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


def embed_to_file(
    texts_path: Path,
    out: Path,
    *,
    dataset: dict | None = None,
    known: tuple[tuple[Path, Path], ...] = (),
) -> np.ndarray:
    """Sentence embeddings of a text table (pool subset or true training set), saved as .npy.

    ``known``: (text table, its embeddings) pairs, e.g. every seed's pool embedded at once
    (``embed_union``); a text found there is copied from it, and only the others are embedded,
    so each seed's pool costs a lookup instead of a pass of the encoder.
    """
    if dataset is not None:
        texts = true_training_texts(
            texts_path, dataset["task"], dataset["seed"], dataset["split_seed"]
        )
    else:
        texts = read_table(texts_path, "pool", ("text",))["text"].tolist()
    emb = _embed_with(texts, known) if known else embed_texts(texts)
    write_npy(out, emb)
    return emb


def embed_union(tables: tuple[Path, ...], texts_out: Path, out: Path) -> np.ndarray:
    """The distinct texts of ``tables`` (several seeds' pools, which overlap) embedded once:
    their table to ``texts_out``, their embeddings to ``out``, row for row."""
    texts = []
    for table in tables:
        texts += read_table(table, "pool", ("text",))["text"].tolist()
    return _embed_distinct(texts, texts_out, out)


def embed_truth_union(
    dataset_path: Path, task: TaskSpec | dict, draws: dict, texts_out: Path, out: Path
) -> np.ndarray:
    """Every seed's true training texts embedded once (``draws``: seeds, split_seed): the
    seeds sample the same train split, so their sets overlap (as ``embed_union``'s pools do)."""
    texts = []
    for seed in draws["seeds"]:
        texts += true_training_texts(dataset_path, task, seed, draws["split_seed"])
    return _embed_distinct(texts, texts_out, out)


def _embed_distinct(texts: list[str], texts_out: Path, out: Path) -> np.ndarray:
    distinct = list(dict.fromkeys(texts))
    emb = embed_texts(distinct)
    write_parquet(texts_out, pd.DataFrame({"text": distinct}))
    write_npy(out, emb)
    return emb


def _embed_with(texts: list[str], known: tuple[tuple[Path, Path], ...]) -> np.ndarray:
    """``texts`` embedded, rows found in ``known`` copied (``embed_to_file``)."""
    found: dict[str, np.ndarray] = {}
    for table, vectors in known:
        known_texts = read_table(table, "text table", ("text",))["text"].tolist()
        emb = read_array(vectors, "embeddings")
        if len(emb) != len(known_texts):
            raise UserError(
                f"embeddings {vectors} have {len(emb)} rows but {table} has "
                f"{len(known_texts)} texts; they are of different versions: remake the embeddings."
            )
        for text, vector in zip(known_texts, emb, strict=True):
            found.setdefault(text, vector)
    missing = list(dict.fromkeys(t for t in texts if t not in found))
    if missing:
        found.update(zip(missing, embed_texts(missing), strict=True))
    return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)


@dataclass(frozen=True)
class Comparison:
    """A selection and what says which texts were truly trained on: the files every Vocab /
    OT comparison with the expert's training set reads."""

    selection: Path
    pool_embeddings: Path
    truth_embeddings: Path
    dataset: Path  # the task's dataset table
    task: TaskSpec
    seed: int
    split_seed: int = 0

    def read(self) -> tuple[pd.DataFrame, list[str], np.ndarray, np.ndarray]:
        """(selection rows, true training texts, pool embeddings, true-set embeddings)."""
        chosen = read_table(self.selection, "selection", ("index", "text"))
        truth = true_training_texts(self.dataset, self.task, self.seed, self.split_seed)
        pool_emb = read_array(self.pool_embeddings, "pool embeddings")
        truth_emb = read_array(self.truth_embeddings, "truth embeddings")
        return chosen, truth, pool_emb, truth_emb


def similarity(
    comparison: Comparison, out: Path, keys: dict, *, ot_method: str = "emd", max_tokens: int = 32
) -> dict:
    """Vocabulary containment and OT distance between a selection and the true training set."""
    chosen, truth, pool_emb, truth_emb = comparison.read()
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
