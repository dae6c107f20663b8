"""The ablations' own steps (docs/ablations.md: F2–F5, T4, T5, checkpoints): the pure pieces
the Snakemake rules rely on and the computations behind them.

- names of gradient-store variants (``variant_name``, read by ``workflow/rules/common.smk``);
- leaked pools (F3: the expert's true training texts mixed into the seed pool), their
  embeddings and the recovery of the true texts;
- the exact and deterministic replacement draws of the OT-metric check (F4) and its metrics.

Their tables and figures are drawn by :mod:`weights2data.report.ablations`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .atomic import write_json, write_npy, write_parquet
from .errors import UserError
from .readers import read_array, read_table

if TYPE_CHECKING:
    from .comparison import Comparison
    from .specs import TaskSpec

# Short tokens of gradient-spec keys in variant names ("main" is the config's own spec).
_VARIANT_TOKENS = {
    "model": lambda v: f"model-{v}",
    "loss": lambda v: {"full_vocab": "fullvocab", "label_masked": "labelmasked"}.get(v, str(v)),
    "projection": lambda v: "exact" if v == "none" else str(v),
    "k": lambda v: f"k{v}",
    "checkpoints": lambda v: f"C{v}",
    "batch_size": lambda v: f"bs{v}",
    "layers": lambda v: "layers-" + "+".join([v] if isinstance(v, str) else v),
    "precondition": lambda v: f"pre-{v}",
}


# --------------------------------------------------------------------------- store variants


def variant_name(main: Mapping, spec: Mapping) -> str:
    """A short, path-safe name of a gradient spec by how it differs from the main one.

    ``main`` itself is ``"main"``; otherwise the differing keys in a fixed order, e.g.
    ``fullvocab-tensorsketch-k64`` or ``C4``. The sketch size is left out of an exact
    (``projection: none``) store, where it has no effect.
    """
    parts = []
    exact = spec.get("projection") == "none"
    for key, token in _VARIANT_TOKENS.items():
        if key == "k" and exact:
            continue
        if spec.get(key) != main.get(key):
            parts.append(token(spec.get(key)))
    unknown = sorted(set(spec) - set(_VARIANT_TOKENS))
    if unknown:
        raise UserError(f"gradient spec keys {', '.join(unknown)} are not known to the ablations.")
    return "-".join(parts) or "main"


# --------------------------------------------------------------------------- leakage (F3)


def leak_extra_count(n_true: int, fraction: float) -> int:
    """How many other pool texts join ``n_true`` true texts so that they make ``fraction``.

    fraction = n_true / (n_true + n_extra), rounded to the nearest whole text.
    """
    if isinstance(n_true, bool) or not isinstance(n_true, int | np.integer) or n_true < 1:
        raise UserError(f"the true training set must hold at least one text, got {n_true!r}.")
    if not 0 < fraction <= 1:
        raise UserError(f"a leaked fraction must lie in (0, 1], got {fraction!r}.")
    return int(math.floor(n_true * (1.0 - fraction) / fraction + 0.5))


def leaked_pool(truth: pd.DataFrame, extra: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The true texts and the extra texts in one shuffled pool with an ``is_true`` column.

    ``truth`` and ``extra`` have ``text`` and ``group``; ``source_row`` keeps each text's row in
    its source (the true training set, or the seed's pool permutation) so embeddings can be
    reused. An extra text equal to a true text is dropped (the true copy stays).
    """
    for name, frame in (("truth", truth), ("extra", extra)):
        missing = {"text", "group"} - set(frame.columns)
        if missing:
            raise UserError(f"{name} lacks column(s) {', '.join(sorted(missing))}.")
    true_part = truth[["text", "group"]].reset_index(drop=True)
    true_part = true_part.assign(is_true=True, source_row=np.arange(len(true_part)))
    extra_part = extra[["text", "group"]].reset_index(drop=True)
    extra_part = extra_part.assign(is_true=False, source_row=np.arange(len(extra_part)))
    extra_part = extra_part[~extra_part["text"].isin(set(true_part["text"]))]
    both = pd.concat([true_part, extra_part], ignore_index=True)
    both["group"] = both["group"].astype(str)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1EA4]))
    shuffled = both.iloc[rng.permutation(len(both))].reset_index(drop=True)
    shuffled["source_row"] = shuffled["source_row"].astype(np.int64)
    return shuffled


def build_leaked_pool(
    task_dataset: Path,
    task: TaskSpec | dict,
    pool_dataset: Path,
    fraction: float,
    seed: int,
    split_seed: int,
    out: Path,
) -> pd.DataFrame:
    """Write the leaked pool of one seed: the expert's training texts + other pool texts.

    The extra texts are the first ones of the seed's pool permutation, so for a pool no larger
    than the regular one they are exactly the regular pool's first rows.
    """
    from .data.files import read_dataset
    from .data.splits import sample_split, task_splits

    truth = task_splits(read_dataset(task_dataset), task, seed, split_seed)["train"]
    n_extra = leak_extra_count(len(truth), fraction)
    table = read_dataset(pool_dataset)
    extra = sample_split(table, "train", n_extra, seed, name=Path(pool_dataset).stem)
    pool = leaked_pool(truth, extra, seed)
    write_parquet(out, pool)
    n_true = int(pool["is_true"].sum())
    write_json(
        Path(str(out) + ".json"),
        {
            "fraction_asked": float(fraction),
            "fraction": n_true / len(pool),
            "n_true": n_true,
            "n_extra": len(pool) - n_true,
            "seed": int(seed),
        },
    )
    return pool


def leaked_embeddings(
    leak_pool_path: Path,
    regular_pool_path: Path,
    regular_embeddings: Path,
    truth_embeddings: Path,
    out: Path,
) -> np.ndarray:
    """Sentence embeddings of a leaked pool, reusing those already computed.

    True texts take their row of the true-set embeddings, extra texts their row of the regular
    pool's embeddings (checked by text); only texts found in neither are embedded anew.
    """
    pool = read_table(leak_pool_path, "leakage pool", ("text", "is_true"))
    regular = read_table(regular_pool_path, "pool", ("text",))["text"].tolist()
    regular_emb = read_array(regular_embeddings, "pool embeddings")
    truth_emb = read_array(truth_embeddings, "truth embeddings")
    out_emb = np.zeros((len(pool), regular_emb.shape[1]), dtype=np.float32)
    fresh = []
    for row, (text, is_true, src) in enumerate(
        zip(pool["text"], pool["is_true"], pool["source_row"], strict=True)
    ):
        if is_true:
            out_emb[row] = truth_emb[src]
        elif src < len(regular) and regular[src] == text:
            out_emb[row] = regular_emb[src]
        else:
            fresh.append(row)
    if fresh:
        from .metrics import embed_texts

        out_emb[fresh] = embed_texts(pool["text"].iloc[fresh].tolist())
    write_npy(out, out_emb)
    print(f"leaked-pool embeddings: {len(pool) - len(fresh)} reused, {len(fresh)} embedded")
    return out_emb


def recovery_of(selection: pd.DataFrame, pool: pd.DataFrame) -> dict[str, float]:
    """Recovery precision and recall of the true texts (``is_true``) among the selected rows."""
    from .metrics import recovery

    if "is_true" not in pool.columns:
        raise UserError("the pool has no is_true column; recovery needs a leaked pool.")
    true_ids = np.flatnonzero(pool["is_true"].to_numpy(dtype=bool))
    return recovery(selection["index"].to_numpy(), true_ids)


# --------------------------------------------------------------------------- replacement (F4)


def replacement_count(n_selected: int, fraction: float) -> int:
    """How many selected texts a replacement fraction swaps (nearest whole text)."""
    if not 0 <= fraction <= 1:
        raise UserError(f"a replacement fraction must lie in [0, 1], got {fraction!r}.")
    return int(math.floor(fraction * n_selected + 0.5))


def replacement_plan(
    n_selected: int, n_true: int, fraction: float, trial: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which selected positions stay and which true texts come in, for one trial.

    Exactly ``m = replacement_count(n_selected, fraction)`` selected positions are dropped and
    ``m`` distinct true texts added; the same arguments always give the same draw.
    Returns (kept selected positions, sorted; added true-set rows).
    """
    m = replacement_count(n_selected, fraction)
    if m > n_true:
        raise UserError(
            f"replacing {m} of {n_selected} selected texts needs {m} true texts but the true "
            f"training set has {n_true}; lower the fraction or the selection size."
        )
    key = int(round(fraction * 1_000_000))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(trial), key, 0xF4]))
    dropped = rng.choice(n_selected, size=m, replace=False)
    kept = np.setdiff1d(np.arange(n_selected), dropped)
    added = rng.choice(n_true, size=m, replace=False)
    return kept, added


def replacement_metrics(
    comparison: Comparison,
    fractions: Sequence[float],
    trials: int,
    out: Path,
    *,
    ot_method: str = "emd",
    max_tokens: int = 32,
) -> list[dict]:
    """Vocab and OT of a selection whose texts are partly replaced by true training texts.

    No retraining: each (fraction, trial) only recomputes the two similarity metrics.
    """
    from .metrics import metric_tokenizer, ot_distance, vocab_containment

    chosen, truth, pool_emb, truth_emb = comparison.read()
    seed = comparison.seed
    if len(truth_emb) != len(truth):
        raise UserError("the true-set embeddings do not match the true training set; rebuild.")
    sel_texts = chosen["text"].tolist()
    sel_emb = pool_emb[chosen["index"].to_numpy()]
    tokenizer = metric_tokenizer()
    cache: dict[str, list[str]] = {}

    def tokenize(text: str) -> list[str]:
        if text not in cache:
            cache[text] = tokenizer.tokenize(text)
        return cache[text]

    records = []
    for fraction in fractions:
        for trial in range(trials):
            kept, added = replacement_plan(len(chosen), len(truth), fraction, trial, seed)
            texts = [sel_texts[i] for i in kept] + [truth[j] for j in added]
            emb = np.concatenate([sel_emb[kept], truth_emb[added]])
            records.append(
                {
                    "fraction": float(fraction),
                    "trial": trial,
                    "n_replaced": int(len(added)),
                    "vocab": vocab_containment(texts, truth, tokenize, max_tokens=max_tokens),
                    "otd": ot_distance(emb, truth_emb, method=ot_method),
                }
            )
    write_json(out, {"seed": int(seed), "ot_method": ot_method, "records": records})
    return records
