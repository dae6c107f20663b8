"""The public Python API: ``weights2data.select`` — two checkpoints and a pool in, K texts out.

What ``weights2data select`` runs, for users outside the pipeline: pseudolabel the pool with
the final model, build the gradient store under the base (in a temporary folder), pick K texts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .atomic import write_parquet
from .data.build import build_dataset
from .errors import UserError
from .gradients.pipeline import store_for_labels
from .gradients.precondition import resolve_precondition
from .gradients.pseudolabels import label_pool
from .models.arch import check_same_architecture
from .models.folders import load_tokenizer
from .models.lm import LM, ModelRef, open_lm
from .readers import read_record
from .specs import FinetuneSpec, GradientSpec
from .strategies import NEEDS_STORE, PRECONDITIONED, choose, selectable


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


@dataclass(frozen=True)
class _Task:
    task_type: str
    num_classes: int | None
    seed: int


@dataclass(frozen=True)
class Pair:
    """A base and its final, each opened once, with their tokenizers."""

    base: LM
    final: LM
    tokenizer: object
    final_tokenizer: object

    @classmethod
    def open(cls, base: Path, final: Path) -> Pair:
        pair = cls(
            open_lm(base),
            open_lm(ModelRef(final, base=base)),
            load_tokenizer(base),
            load_tokenizer(final, base=base),
        )
        check_same_architecture(pair.base.module, pair.final.module)
        return pair

    def pick(self, labels: pd.DataFrame, specs, task: _Task, choice) -> pd.DataFrame:
        """Run one strategy (``choice`` = strategy, K, batch size) over the labelled pool,
        building its gradient store (``specs`` = gradients, finetune) in a temporary folder."""
        strategy, k, batch_size = choice
        with tempfile.TemporaryDirectory() as tmp:
            store = None
            if strategy in NEEDS_STORE:
                store = Path(tmp) / "store"
                store_for_labels(
                    self.base,
                    self.final,
                    labels,
                    store,
                    *specs,
                    task_type=task.task_type,
                    num_classes=task.num_classes,
                    seed=task.seed,
                    tokenizer=self.tokenizer,
                )
            return choose(labels, store, strategy, k, task.seed, batch_size)


def select(
    base: str | os.PathLike,
    final: str | os.PathLike,
    pool: str | os.PathLike,
    k: int,
    *,
    strategy: str = "select_pre",
    task_type: str = "classification",
    num_classes: int | None = None,
    loss: str = "label_masked",
    projection: str = "auto",
    sketch_dim: int = 1024,
    checkpoints: int = 2,
    layers: str | Sequence[str] = "head",
    precondition: str = "auto",
    optimizer: str = "adam",
    max_length: int = 64,
    truncate: str = "right",
    text_column: str = "text",
    seed: int = 0,
    batch_size: int = 100,
    out: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The K texts of ``pool`` (a CSV / JSONL / parquet file or a packaged name) that
    ``strategy`` picks for the pair, in pick order, with pool index, pseudolabel, final-model
    loss and score; also written to ``out`` (parquet). ``final`` may be a PEFT adapter over
    ``base``; ``layers``: ``"head"``, module names, ``"blocks.-1"``. ``select_pre`` picks in the
    Adam-aware space g ⊘ D (``precondition`` auto: the pool's RMS for Adam / AdamW). Defaults
    are the default experiment's (:func:`describe_selection` says why); ``max_length`` and
    ``truncate`` must be how the final was trained."""
    selectable(strategy)
    pair = Pair.open(Path(base), Path(final))
    if task_type == "classification":
        num_classes = infer_num_classes(pair.final.source, num_classes)
    pool_frame = load_pool_texts(str(pool), text_column)
    if k > len(pool_frame):
        raise UserError(f"K={k} is larger than the pool ({len(pool_frame)} texts); lower -k.")
    finetune = FinetuneSpec(
        max_length=max_length, truncate=truncate, loss=loss, optimizer=optimizer
    )
    labels = label_pool(
        pair.final,
        pool_frame,
        finetune,
        task_type=task_type,
        num_classes=num_classes,
        tokenizer=pair.final_tokenizer,
    )
    spec = GradientSpec(
        k=sketch_dim,
        projection=projection,
        checkpoints=checkpoints,
        layers=[layers] if isinstance(layers, str) else list(layers),
        precondition=precondition,
    )
    task = _Task(task_type, num_classes, seed)
    picked = pair.pick(labels, (spec, finetune), task, (strategy, k, batch_size))
    if out is not None:
        write_parquet(out, picked)
    return picked


def describe_selection(
    strategy: str,
    optimizer: str,
    precondition: str,
    spec: GradientSpec | None = None,
    encoding: tuple[int, str] = (64, "right"),
) -> str:
    """What a selection will run and why, in three lines, for the CLI to print before it starts:
    the strategy and its gradient space, the gradients' layers and checkpoints, the encoding."""
    spec = spec or GradientSpec()
    if strategy not in NEEDS_STORE:
        space = "no gradients (a baseline)"
    elif strategy in PRECONDITIONED and resolve_precondition(precondition, optimizer) == "rms":
        space = (
            f"the Adam-aware space g ⊘ D, since --optimizer is {optimizer}: Adam moves each "
            "weight by its gradient over that gradient's RMS (--optimizer sgd or --strategy "
            "select for the paper's space)"
        )
    elif strategy in PRECONDITIONED:
        space = f"the paper's space g (precondition none for {optimizer})"
    else:
        space = "the paper's space g"
        if optimizer in ("adam", "adamw"):
            space += f" (for an {optimizer} finetune, select_pre did better in this project's runs)"
    layers = spec.layers if isinstance(spec.layers, str) else "+".join(spec.layers)
    lines = [f"strategy {strategy}: {space}"]
    if strategy in NEEDS_STORE:
        points = f"{spec.checkpoints} points from the base toward the final"
        points = "the base only" if spec.checkpoints == 1 else points
        lines.append(f"gradients: {layers}, at {points} (--layers, --checkpoints)")
    lines.append(
        f"texts: {encoding[0]} tokens, cut on the {encoding[1]}; they must be how the final "
        "was trained (--max-length, --truncate)"
    )
    return "\n".join(lines)
