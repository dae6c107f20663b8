"""Compare a selection with the expert's true training set: sentence embeddings of both (each
distinct text embedded once), Vocab containment and OT distance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_json, write_npy, write_parquet
from .data.files import read_dataset
from .data.splits import task_splits
from .errors import UserError
from .metrics import embed_texts, ot_distance, vocab_containment
from .readers import read_array, read_table
from .specs import TaskSpec


def true_training_texts(
    dataset_path: Path, task: TaskSpec | dict, seed: int, split_seed: int
) -> list[str]:
    """The expert's actual training texts for this seed (known to the evaluation only)."""
    return task_splits(read_dataset(dataset_path), task, seed, split_seed)["train"]["text"].tolist()


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
