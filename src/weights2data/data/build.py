"""Building a dataset: every dataset name becomes one normalised table (see ``normalise``).

Names are a packaged dataset of the ``registry``, ``hf:<dataset id>`` (through
``datasets.load_dataset``; needs the hub or a filled HF cache) or ``local:<path>`` for a .csv /
.jsonl / .parquet file with a column mapping (``files``).

Processing order, the same for every source: clean texts (strip, collapse whitespace), drop
empty texts and exact duplicates (first wins), keep one ``part`` of the groups, subsample
``max_rows``, then assign splits by group. Each step is a pure function of its arguments, so the
same arguments give a byte-identical table.
"""

from __future__ import annotations

import pandas as pd

from ..errors import UserError
from .files import load_local
from .normalise import MIN_PASSAGE_WORDS, clean_table, finalize_table, normalize_hf_dataset
from .registry import DATASETS, LOADERS, external_source
from .splits import assign_splits, keep_part, limit_rows


def build_dataset(
    name: str,
    *,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    passage_words: int = 100,
    text_column: str = "text",
    label_column: str | None = "label",
    part: tuple[int, int] | None = None,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Build the normalized table for ``name`` (a packaged name, ``hf:<id>`` or ``local:<path>``).

    ``passage_words`` applies to the unlabeled corpora; ``text_column``/``label_column`` to
    ``hf:`` and ``local:`` (``"a+b"`` joins columns a and b with a space; the default label column
    may be absent, which means unlabeled; a ``group`` column, if present, gives document ids).
    ``part=(i, n)`` keeps the groups whose sha1 is i mod n, so parts are disjoint corpora;
    ``max_rows`` keeps a deterministic subset of whole groups (at most that many rows).
    """
    _check_options(val_fraction, test_fraction, passage_words, part, max_rows)
    raw = _load_raw(name, passage_words, text_column, label_column)
    table = clean_table(raw)
    if part is not None:
        table = keep_part(table, part)
    if max_rows is not None:
        table = limit_rows(table, max_rows)
    if table.empty:
        raise UserError(
            f"dataset {name!r} has no rows left after cleaning"
            + (f" and part={tuple(part)}" if part is not None else "")
            + "; check the source file or use fewer parts."
        )
    table = assign_splits(table, split_seed, val_fraction, test_fraction)
    table = finalize_table(table)
    table.attrs["dataset"] = name
    return table


def dataset_summary(
    names: list[str], tables: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """One row per dataset for "Table 3": role, source, classes, rows per split.

    Tables not given are built with the default options (packaged sets take seconds).
    """
    records = []
    for name in names:
        table = (tables or {}).get(name)
        if table is None:
            table = build_dataset(name)
        info = DATASETS.get(name)
        labeled = bool((table["label"] >= 0).any())
        counts = table["split"].value_counts()
        found = int(table.loc[table["label"] >= 0, "label"].nunique())
        records.append(
            {
                "name": name,
                "role": info.role if info else ("classification" if labeled else "corpus"),
                "classes": info.num_classes if info else found,
                "train": int(counts.get("train", 0)),
                "val": int(counts.get("val", 0)),
                "test": int(counts.get("test", 0)),
                "total": len(table),
                "source": info.source if info else external_source(name),
                "package": info.package if info else "",
                "description": info.description if info else "",
            }
        )
    return pd.DataFrame.from_records(
        records,
        columns=[
            "name",
            "role",
            "classes",
            "train",
            "val",
            "test",
            "total",
            "source",
            "package",
            "description",
        ],
    )


def _check_options(val_fraction, test_fraction, passage_words, part, max_rows) -> None:
    for label, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise UserError(f"{label} must be in [0, 1), got {value}; fix it in the config.")
    if val_fraction + test_fraction >= 1:
        raise UserError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training "
            "data; make their sum smaller than 1."
        )
    if int(passage_words) != passage_words or passage_words < MIN_PASSAGE_WORDS:
        raise UserError(
            f"passage_words must be an integer >= {MIN_PASSAGE_WORDS}, got {passage_words}."
        )
    if part is not None:
        if len(part) != 2 or not (0 <= int(part[0]) < int(part[1])):
            raise UserError(f"part must be (i, n) with 0 <= i < n, got {part}; e.g. part: [0, 2].")
    if max_rows is not None and (int(max_rows) != max_rows or max_rows < 1):
        raise UserError(f"max_rows must be a positive integer or null, got {max_rows}.")


def _load_raw(
    name: str, passage_words: int, text_column: str, label_column: str | None
) -> pd.DataFrame:
    if name.startswith("local:"):
        return load_local(name[len("local:") :], text_column, label_column)
    if name.startswith("hf:"):
        return _load_hf(name[len("hf:") :], text_column, label_column)
    loader = LOADERS.get(name)
    if loader is None:
        raise UserError(
            f"unknown dataset {name!r}; known names are {', '.join(sorted(DATASETS))}, "
            "or use 'hf:<hub dataset id>' or 'local:<path to .csv/.jsonl/.parquet>'."
        )
    return loader(DATASETS[name], passage_words)


def _load_hf(dataset_id: str, text_column: str, label_column: str | None) -> pd.DataFrame:
    """``hf:<id>`` or ``hf:<id>:<config>``, loaded with ``datasets.load_dataset``."""
    if not dataset_id:
        raise UserError("empty hub dataset id; write hf:<owner/name>, e.g. hf:fancyzhx/ag_news.")
    repo, _, config = dataset_id.partition(":")
    try:
        import datasets
    except ImportError as err:
        raise UserError("hf: datasets need the `datasets` package; pip install datasets.") from err
    try:
        loaded = datasets.load_dataset(repo, config or None)
    except Exception as err:
        raise UserError(
            f"could not load hub dataset {dataset_id!r} ({type(err).__name__}: {err}); check the "
            "id and network access, or export it to a file and use local:<path>."
        ) from err
    return normalize_hf_dataset(loaded, text_column=text_column, label_column=label_column)
