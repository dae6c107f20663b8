"""Pipeline steps around the SELECT engine: pool subsets, pseudolabels, stores, selections.

Each step reads and writes files so that Snakemake can cache it; ``select_end_to_end`` chains
them in memory for the one-shot CLI (two checkpoints and a corpus, nothing else).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_json, write_parquet
from .data.build import build_dataset
from .data.files import read_dataset
from .data.splits import sample_split
from .errors import UserError
from .gradients.pseudolabels import pseudolabel
from .gradients.store import build_gradient_store, load_gradient_store, shard_bounds
from .models import check_same_architecture, load_model, load_tokenizer
from .projection import DEFAULT_PROJECTION
from .readers import read_record, read_table
from .strategies import NEEDS_STORE, run_strategy, selectable

# what a labels file (the autolabel step's output) must hold; P-Min / P-Max also read its loss
LABEL_COLUMNS = ("text", "pseudolabel")


def sample_pool(pool_path: Path, size: int | None, seed: int, out: Path) -> pd.DataFrame:
    """The seed pool of one seed: ``size`` texts of the pool dataset's train split."""
    table = read_dataset(pool_path)
    subset = sample_split(table, "train", size, seed, name=Path(pool_path).stem)
    frame = subset[["text", "group"]].reset_index(drop=True)
    write_parquet(out, frame)
    return frame


def gradient_loss(task_type: str, finetune_loss: str) -> str:
    """The loss whose gradients SELECT matches: the expert's own training loss."""
    return "lm" if task_type == "sft" else finetune_loss


def resolve_projection(loss: str, projection: str) -> str:
    """``auto``: exact C×d for label_masked, the default sketch for full-vocab and LM loss."""
    if projection != "auto":
        return projection
    return "none" if loss == "label_masked" else DEFAULT_PROJECTION


def autolabel(
    final_dir: Path,
    pool_path: Path,
    task_type: str,
    num_classes: int | None,
    finetune: dict,
    out: Path,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Pseudolabel every pool text with the final model and record its loss on that label."""
    pool = read_table(pool_path, "pool", ("text",))
    labels = pseudolabel(
        final_dir,
        load_tokenizer(final_dir),
        pool["text"].tolist(),
        task_type=task_type,
        num_classes=num_classes,
        max_length=finetune["max_length"],
        truncate=finetune["truncate"],
        batch_size=batch_size,
        loss=finetune["loss"] if task_type == "classification" else "lm",
        progress=True,
    )
    frame = pd.concat([pool.reset_index(drop=True), labels], axis=1)
    write_parquet(out, frame)
    write_json(Path(str(out) + ".json"), {"num_classes": num_classes, "task_type": task_type})
    return frame


def gradient_store(
    base_dir: Path,
    final_dir: Path,
    labels_path: Path,
    spec: dict,
    task_type: str,
    num_classes: int | None,
    finetune: dict,
    seed: int,
    out: Path,
    shard: tuple[int, int] | None = None,
) -> dict:
    """Per-example last-layer gradients of the pool under the gradient model (+ Δ).

    ``shard = (i, S)`` writes shard i of S (``gradients.store.shard_bounds``); gather them with
    ``gradients.store.gather_gradient_stores``.
    """
    labels = read_table(labels_path, "labels", LABEL_COLUMNS)
    batch_size = spec.get("batch_size", 64)
    rows = None
    if shard is not None:
        index, count = shard
        if not 0 <= index < count:
            raise UserError(f"shard index {index} is outside 0 … {count - 1}.")
        rows = shard_bounds(len(labels), count, batch_size)[index]
    loss = gradient_loss(task_type, spec.get("loss") or finetune["loss"])
    base, final = Path(base_dir), Path(final_dir)
    return build_gradient_store(
        base,
        final,
        labels["text"].tolist(),
        None if loss == "lm" else labels["pseudolabel"].to_numpy(),
        out,
        tokenizer=load_tokenizer(base_dir),
        loss=loss,
        num_classes=num_classes,
        checkpoints=spec.get("checkpoints", 1),
        projection=resolve_projection(loss, spec.get("projection", "auto")),
        k=spec["k"],
        seed=seed,
        max_length=finetune["max_length"],
        truncate=finetune["truncate"],
        batch_size=batch_size,
        gradient_model=spec.get("model", "base"),
        rows=rows,
    )


def choose(
    labels: pd.DataFrame,
    store_dir: Path | None,
    strategy: str,
    k: int,
    seed: int,
    batch_size: int | None,
) -> pd.DataFrame:
    """Run one strategy over a labelled pool; the rows picked, in pick order."""
    selectable(strategy)  # an unknown name stops here, before the store is read
    grads = target = None
    if strategy in NEEDS_STORE:
        if store_dir is None:
            raise UserError(f"strategy {strategy!r} needs a gradient store.")
        grads, target, meta = load_gradient_store(store_dir)
        if meta["N"] != len(labels):
            raise UserError(
                f"the gradient store holds {meta['N']} texts but the pool has {len(labels)}; "
                "rebuild the store from this pool."
            )
    idx, scores = run_strategy(
        strategy,
        grads=grads,
        target=target,
        losses=labels["loss"].to_numpy(),
        pseudolabels=labels["pseudolabel"].to_numpy(),
        k=k,
        seed=seed,
        batch_size=batch_size,
    )
    picked = labels.iloc[idx].reset_index(drop=True)
    picked.insert(0, "index", idx.astype(np.int64))
    picked["score"] = scores
    picked["rank"] = np.arange(len(idx))
    return picked


def select_step(
    labels_path: Path,
    store_dir: Path | None,
    strategy: str,
    k: int,
    seed: int,
    batch_size: int | None,
    out: Path,
) -> pd.DataFrame:
    needed = (*LABEL_COLUMNS, "loss") if strategy in ("pmin", "pmax") else LABEL_COLUMNS
    picked = choose(
        read_table(labels_path, "labels", needed), store_dir, strategy, k, seed, batch_size
    )
    write_parquet(out, picked)
    return picked


def load_pool_texts(pool: str, text_column: str = "text") -> pd.DataFrame:
    """A pool given as a file (CSV / JSONL / parquet) or a packaged dataset name."""
    source = f"local:{pool}" if Path(pool).suffix in (".csv", ".jsonl", ".parquet") else pool
    table = build_dataset(
        source, text_column=text_column, label_column=None, val_fraction=0.01, test_fraction=0.01
    )
    if len(table) == 0:
        raise UserError(f"the pool {pool!r} has no texts.")
    return table[["text", "group"]].reset_index(drop=True)


def infer_num_classes(final_dir: Path, given: int | None) -> int | None:
    """The class count from the flag, else from the expert's own record (``w2d.json``)."""
    if given is not None:
        return given
    record = Path(final_dir) / "w2d.json"
    if record.exists():
        found = read_record(record, "model record").get("metrics", {}).get("num_classes")
        if found:
            return int(found)
    raise UserError(
        "the number of classes is unknown: pass --num-classes C (labels are ' A' … one letter "
        "per class), or --task-type sft for a language-modelling finetune."
    )


def select_end_to_end(
    base_dir: Path,
    final_dir: Path,
    pool: str,
    k: int,
    strategy: str,
    out: Path,
    *,
    task_type: str = "classification",
    num_classes: int | None = None,
    loss: str = "label_masked",
    projection: str = "auto",
    sketch_dim: int = 1024,
    checkpoints: int = 1,
    max_length: int = 32,
    truncate: str = "left",
    seed: int = 0,
    batch_size: int = 100,
    text_column: str = "text",
) -> pd.DataFrame:
    """Two checkpoints and a corpus in, K texts out (for users outside the pipeline)."""
    base, final = load_model(base_dir), load_model(final_dir)
    check_same_architecture(base, final)
    if task_type == "classification":
        num_classes = infer_num_classes(final_dir, num_classes)
    pool_frame = load_pool_texts(pool, text_column)
    if k > len(pool_frame):
        raise UserError(f"K={k} is larger than the pool ({len(pool_frame)} texts); lower -k.")
    finetune = {"max_length": max_length, "truncate": truncate, "loss": loss}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_parquet(tmp / "pool.parquet", pool_frame)
        autolabel(
            final_dir,
            tmp / "pool.parquet",
            task_type,
            num_classes,
            finetune,
            tmp / "labels.parquet",
        )
        store = None
        if strategy in NEEDS_STORE:
            spec = {"k": sketch_dim, "projection": projection, "checkpoints": checkpoints}
            gradient_store(
                base_dir,
                final_dir,
                tmp / "labels.parquet",
                spec,
                task_type,
                num_classes,
                finetune,
                seed,
                tmp / "store",
            )
            store = tmp / "store"
        return select_step(tmp / "labels.parquet", store, strategy, k, seed, batch_size, out)
