"""Which rows go where: group-level parts and row limits, train/val/test splits, and the
deterministic per-seed samples of one split that experts, pools and metrics use.

Every choice is a function of its arguments alone and ranks by sha1 rather than Python's salted
``hash()``, so the same arguments give the same rows on every machine.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ..errors import UserError
from ..specs import TaskSpec, parse_spec
from .normalise import COLUMNS, require_columns

SPLITS = ("train", "val", "test")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def keep_part(table: pd.DataFrame, part: tuple[int, int]) -> pd.DataFrame:
    """Keep groups with sha1(group) mod n == i (independent of seed, order and other groups)."""
    i, n = int(part[0]), int(part[1])
    groups = pd.unique(table["group"])
    chosen = {g for g in groups if int(_digest(g)[:15], 16) % n == i}
    return table[table["group"].isin(sorted(chosen))].reset_index(drop=True)


def limit_rows(table: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """Keep whole groups, taken in sha1 order, while the row count stays <= ``max_rows``."""
    if len(table) <= max_rows:
        return table
    sizes = table.groupby("group", sort=False).size()
    order = sorted(sizes.index, key=lambda g: _digest(f"rows\x00{g}"))
    kept, total = set(), 0
    for g in order:
        if total + sizes[g] <= max_rows:
            kept.add(g)
            total += int(sizes[g])
        if total == max_rows:
            break
    return table[table["group"].isin(sorted(kept))].reset_index(drop=True)


def assign_splits(
    table: pd.DataFrame, split_seed: int, val_fraction: float, test_fraction: float
) -> pd.DataFrame:
    """Give every group one split: groups ranked by sha1(seed, group), first val, then test.

    Ranking by a per-group hash makes the split exact in size (round(fraction * groups)) and
    keeps all passages of one article together.
    """
    groups = pd.unique(table["group"])
    keys = np.array([_digest(f"split\x00{split_seed}\x00{g}") for g in groups])
    order = groups[np.argsort(keys, kind="stable")]
    n_val = int(round(val_fraction * len(groups)))
    n_test = int(round(test_fraction * len(groups)))
    n_test = min(n_test, len(groups) - n_val)
    split_of = dict.fromkeys(order[n_val + n_test :], "train")
    split_of.update(dict.fromkeys(order[:n_val], "val"))
    split_of.update(dict.fromkeys(order[n_val : n_val + n_test], "test"))
    out = table.copy()
    out["split"] = out["group"].map(split_of)
    return out


def sample_split(
    table: pd.DataFrame,
    split: str,
    n: int | None,
    seed: int,
    *,
    stratify: bool = False,
    balance: bool = False,
    name: str | None = None,
) -> pd.DataFrame:
    """A deterministic subset of ``n`` rows of one split (``n=None``: all of it, shuffled).

    Seeds choose which rows (the paper varies the expert's data subset and the pool per seed).
    ``stratify=True`` keeps the class proportions of the split (largest-remainder quotas);
    ``balance=True`` with it takes the same number of rows from every class instead.
    ``name`` only improves the error message (defaults to ``table.attrs["dataset"]``).
    """
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    require_columns(table, COLUMNS, "the table")
    rows = table[table["split"] == split].reset_index(drop=True)
    label = name or table.attrs.get("dataset", "dataset")
    if n is None:
        n = len(rows)
    if n < 0:
        raise UserError(f"cannot sample {n} rows from {label} {split}; use a size >= 0.")
    if n > len(rows):
        raise UserError(
            f"{label} {split} split has only {len(rows)} rows but {n} were asked; "
            f"use a smaller size in the config (at most {len(rows)}) or a larger dataset/fraction."
        )
    rng = np.random.default_rng(seed)
    if not stratify:
        picked = rng.permutation(len(rows))[:n]
    else:
        picked = _stratified_pick(rows["label"].to_numpy(), n, rng, balance, f"{label} {split}")
    out = rows.iloc[picked].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def _class_quotas(
    labels: np.ndarray, n: int, balance: bool, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Rows per class: proportional to the split (largest remainder) or, balanced, equal."""
    classes, counts = np.unique(labels, return_counts=True)
    if balance:
        if n % len(classes):
            raise UserError(
                f"a balanced {where} of {n} rows cannot split evenly over {len(classes)} "
                f"classes; use a size that is a multiple of {len(classes)}."
            )
        short = counts < n // len(classes)
        if short.any():
            raise UserError(
                f"a balanced {where} needs {n // len(classes)} rows of every class but class "
                f"{int(classes[short][0])} has {int(counts[short][0])}; use a smaller size."
            )
        return classes, np.full(len(classes), n // len(classes), dtype=np.int64)
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    # Hand out the remaining rows to the largest remainders (ties: lower class first).
    for idx in np.lexsort((classes, -(exact - quota)))[: n - int(quota.sum())]:
        quota[idx] += 1
    return classes, quota


def _stratified_pick(
    labels: np.ndarray,
    n: int,
    rng: np.random.Generator,
    balance: bool = False,
    where: str = "split",
) -> np.ndarray:
    """Indices of ``n`` rows with per-class counts proportional to the split, or equal."""
    classes, quota = _class_quotas(labels, n, balance, where)
    picked = []
    for cls, q in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels == cls)
        picked.append(members[rng.permutation(len(members))[:q]])
    chosen = np.concatenate(picked) if picked else np.array([], dtype=np.int64)
    return chosen[rng.permutation(len(chosen))]


def task_splits(
    table: pd.DataFrame, task: TaskSpec | dict, seed: int, split_seed: int
) -> dict[str, pd.DataFrame]:
    """The task's train subset (changes with the seed) and fixed val/test subsets."""
    task = parse_spec(TaskSpec, task, "task")
    stratify = task.classification
    balance = stratify and task.balance
    seeds = {"train": seed, "val": split_seed, "test": split_seed}
    sizes = {"train": task.train_size, "val": task.val_size, "test": task.test_size}
    return {
        split: sample_split(
            table, split, sizes[split], seeds[split], stratify=stratify, balance=balance
        )
        for split in ("train", "val", "test")
    }


def num_classes_of(table: pd.DataFrame) -> int:
    """Classes of a table: its largest label + 1 (0 when every row is unlabeled)."""
    labels = table.loc[table.label >= 0, "label"]
    return int(labels.max()) + 1 if len(labels) else 0
