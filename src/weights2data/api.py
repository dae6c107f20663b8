"""The public Python API: ``weights2data.select`` — two checkpoints and a pool in, K texts out.

What ``weights2data select`` runs, for users outside the pipeline: pseudolabel the pool with
the final model, build the gradient store under the base (in a temporary folder), pick K texts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .atomic import write_parquet
from .data.build import build_dataset
from .errors import UserError
from .gradients.pipeline import store_for_labels
from .gradients.pseudolabels import label_pool
from .models.arch import check_same_architecture
from .models.folders import load_tokenizer
from .models.lm import ModelRef, open_lm
from .readers import read_record
from .specs import FinetuneSpec, GradientSpec
from .strategies import NEEDS_STORE, choose, selectable


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
    """The class count from the argument, else from the expert's own record (``w2d.json``)."""
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


def select(
    base: str | os.PathLike,
    final: str | os.PathLike,
    pool: str | os.PathLike,
    k: int,
    *,
    strategy: str = "select",
    task_type: str = "classification",
    num_classes: int | None = None,
    loss: str = "label_masked",
    projection: str = "auto",
    sketch_dim: int = 1024,
    checkpoints: int = 1,
    layers: str | Sequence[str] = "head",
    precondition: str = "auto",
    optimizer: str = "adam",
    max_length: int = 32,
    truncate: str = "left",
    text_column: str = "text",
    seed: int = 0,
    batch_size: int = 100,
    out: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The K texts of ``pool`` that ``strategy`` picks for the pair (base, final), in pick
    order, with their pool index, pseudolabel, final-model loss and score; also written to
    ``out`` (parquet) when given. ``pool`` is a CSV / JSONL / parquet file or a packaged name.
    ``final`` may be a PEFT adapter folder over ``base``; ``layers`` picks the gradient space
    (``"head"``, module names, ``"blocks.-1"``; an adapter leaves the head unchanged).
    ``select_pre`` / ``select_batch_pre`` select in the Adam-aware space g ⊘ D; ``precondition``
    says how D is formed (``auto``: the pool's RMS for an Adam / AdamW ``optimizer``, none
    for SGD)."""
    base, final = Path(base), Path(final)
    selectable(strategy)
    base_lm, final_lm = open_lm(base), open_lm(ModelRef(final, base=base))
    check_same_architecture(base_lm.module, final_lm.module)
    if task_type == "classification":
        num_classes = infer_num_classes(final, num_classes)
    pool_frame = load_pool_texts(str(pool), text_column)
    if k > len(pool_frame):
        raise UserError(f"K={k} is larger than the pool ({len(pool_frame)} texts); lower -k.")
    finetune = FinetuneSpec(
        max_length=max_length, truncate=truncate, loss=loss, optimizer=optimizer
    )
    tokenizer = load_tokenizer(base)
    labels = label_pool(
        final_lm,
        pool_frame,
        finetune,
        task_type=task_type,
        num_classes=num_classes,
        base_dir=base,
        tokenizer=load_tokenizer(final, base=base),
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = None
        if strategy in NEEDS_STORE:
            store = Path(tmp) / "store"
            spec = GradientSpec(
                k=sketch_dim,
                projection=projection,
                checkpoints=checkpoints,
                layers=[layers] if isinstance(layers, str) else list(layers),
                precondition=precondition,
            )
            store_for_labels(
                base_lm,
                final_lm,
                labels,
                store,
                spec,
                finetune,
                task_type=task_type,
                num_classes=num_classes,
                seed=seed,
                tokenizer=tokenizer,
            )
        picked = choose(labels, store, strategy, k, seed, batch_size)
    if out is not None:
        write_parquet(out, picked)
    return picked
