"""Turning a raw frame into the normalised dataset table, the one shape every later step reads.

The table has the columns ``text`` (str), ``label`` (int, -1 for unlabeled corpora),
``label_name`` (str, "" for unlabeled), ``split`` ("train" | "val" | "test") and ``group`` (the
source document id: the article a passage comes from, else a row id). Loaders produce the raw
shape (all but ``split``); this module cleans texts, codes labels, cuts documents into passages,
checks columns and fixes the final column order and dtypes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..errors import UserError

COLUMNS = ("text", "label", "label_name", "split", "group")
# Corpus documents shorter than this are page furniture ("View Comments", "-1"), not prose.
MIN_PASSAGE_WORDS = 5
_DEFAULT_LABEL_COLUMN = "label"


def clean_text(text: str) -> str:
    """Strip and collapse every run of whitespace (newlines, tabs, NBSP) to one space."""
    return " ".join(str(text).split())


def clean_table(raw: pd.DataFrame) -> pd.DataFrame:
    """Clean texts, then drop empty texts and exact duplicates (first occurrence wins).

    Done before splitting so that one text can never sit in two splits or two parts.
    """
    table = raw.copy()
    table["text"] = [clean_text(t) for t in table["text"]]
    table = table[table["text"] != ""]
    table = table.drop_duplicates(subset="text", keep="first")
    return table.reset_index(drop=True)


def split_passages(text: str, passage_words: int) -> list[str]:
    """Cut a document into passages of ``passage_words`` words.

    A tail shorter than half a passage joins the previous passage (no stub passages); a
    document shorter than ``MIN_PASSAGE_WORDS`` words gives none.
    """
    words = str(text).split()
    if len(words) < MIN_PASSAGE_WORDS:
        return []
    chunks = [words[i : i + passage_words] for i in range(0, len(words), passage_words)]
    if len(chunks) > 1 and 2 * len(chunks[-1]) < passage_words:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return [" ".join(c) for c in chunks]


def normalize_frame(
    frame: pd.DataFrame,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    label_names: list[str] | None = None,
    groups: Iterable[str] | None = None,
    where: str = "the data",
) -> pd.DataFrame:
    """Map a user table (any columns) to the raw shape: text, label, label_name, group.

    String labels become 0..C-1 in sorted order of the names. Integer labels keep their values
    when they already are 0..C-1 (else they are ranked) and are named ``label_names[v]``, a
    ``label_name``/``<label>_name``/``<label>_text`` column, or ``str(v)``. A missing default
    ``label`` column means unlabeled; a missing column that was asked for by name is an error.
    """
    text = _text_from_columns(frame, text_column, where)
    if groups is None:
        groups = frame["group"].astype(str) if "group" in frame.columns else _row_ids(len(frame))
    groups = pd.Series(list(groups), dtype=object)
    if label_column is None or (
        label_column == _DEFAULT_LABEL_COLUMN and label_column not in frame.columns
    ):
        return raw_frame(text, np.full(len(frame), -1, dtype=np.int64), [""] * len(frame), groups)
    if label_column not in frame.columns:
        raise UserError(
            f"label column {label_column!r} not found in {where}; columns are "
            f"{list(map(str, frame.columns))}. Set label_column to one of them, or to null "
            "for an unlabeled corpus."
        )
    values = frame[label_column].reset_index(drop=True)
    keep = np.ones(len(values), dtype=bool)
    if label_names is not None:
        # ClassLabel-coded data: -1 marks an unlabeled row (e.g. a hidden test split).
        codes = values.to_numpy(dtype=np.int64)
        keep = codes >= 0
        if (codes >= len(label_names)).any():
            raise UserError(
                f"label column {label_column!r} in {where} has values >= {len(label_names)} "
                "but only that many label names; fix the data or its features."
            )
        names = [label_names[c] if c >= 0 else "" for c in codes]
    else:
        codes, names = _encode_labels(values, frame, label_column, where)
    raw = raw_frame(text, codes, names, groups)
    return raw[keep].reset_index(drop=True)


def normalize_hf_dataset(
    dataset, *, text_column: str = "text", label_column: str | None = "label"
) -> pd.DataFrame:
    """Turn a ``datasets.Dataset`` or ``DatasetDict`` into the raw shape (before cleaning).

    All hub splits are pooled (the registry draws its own splits by group); the group id is
    ``<hub split>-<row>``. ``ClassLabel`` features supply the label names.
    """
    if hasattr(dataset, "keys") and not hasattr(dataset, "features"):
        pieces = [(str(k), dataset[k]) for k in dataset.keys()]
    else:
        pieces = [("data", dataset)]
    if not pieces:
        raise UserError("the hub dataset has no splits; check the dataset id.")
    names = None
    feature = pieces[0][1].features.get(label_column) if label_column else None
    if feature is not None and hasattr(feature, "names") and hasattr(feature, "str2int"):
        names = list(feature.names)
    frames, groups = [], []
    for split_name, ds in pieces:
        frame = ds.to_pandas()
        frames.append(frame)
        groups.extend(f"{split_name}-{i}" for i in range(len(frame)))
    pooled = pd.concat(frames, ignore_index=True)
    return normalize_frame(
        pooled,
        text_column=text_column,
        label_column=label_column,
        label_names=names,
        groups=groups,
        where=f"hub splits {[p[0] for p in pieces]}",
    )


def _row_ids(n: int) -> list[str]:
    return [f"row-{i}" for i in range(n)]


def raw_frame(
    texts: Iterable[str], codes: Iterable[int], names: Iterable[str], groups: Iterable[str]
) -> pd.DataFrame:
    """The raw shape every loader returns: text, label (int64), label_name, group (str)."""
    return pd.DataFrame(
        {
            "text": pd.Series(list(texts), dtype=object).reset_index(drop=True),
            "label": np.asarray(codes, dtype=np.int64),
            "label_name": pd.Series(list(names), dtype=object).reset_index(drop=True),
            "group": pd.Series(list(groups), dtype=object).astype(str).reset_index(drop=True),
        }
    )


def labeled_frame(texts: list[str], names: list[str], groups: list[str]) -> pd.DataFrame:
    """The raw shape with string class names coded 0..C-1 in sorted name order."""
    code = {c: i for i, c in enumerate(sorted(set(names)))}
    return raw_frame(texts, np.array([code[n] for n in names], dtype=np.int64), names, groups)


def finalize_table(table: pd.DataFrame) -> pd.DataFrame:
    """Fixed column order and dtypes, so equal tables are equal to the byte."""
    out = pd.DataFrame(
        {
            "text": table["text"].astype(str).to_numpy(),
            "label": table["label"].astype(np.int64).to_numpy(),
            "label_name": table["label_name"].fillna("").astype(str).to_numpy(),
            "split": table["split"].astype(str).to_numpy(),
            "group": table["group"].astype(str).to_numpy(),
        }
    )
    for column in ("text", "label_name", "split", "group"):
        out[column] = out[column].astype(str)
    return out


def require_columns(table: pd.DataFrame, needed: Iterable[str], where: str) -> None:
    """Fail clearly when ``table`` (described by ``where``) lacks any of the ``needed`` columns."""
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise UserError(
            f"{where} lacks the columns {missing} (it has {list(map(str, table.columns))}); "
            "it is not a dataset table from build_dataset; rebuild it."
        )


def _text_from_columns(frame: pd.DataFrame, text_column: str, where: str) -> pd.Series:
    """The text column, or several joined by spaces when written ``"title+content"``."""
    parts = [text_column] if text_column in frame.columns else text_column.split("+")
    missing = [c for c in parts if c not in frame.columns]
    if missing:
        raise UserError(
            f"text column {text_column!r} not found in {where}; columns are "
            f"{list(map(str, frame.columns))}. Set text_column to one of them "
            "(join several with '+', e.g. 'title+content')."
        )
    cols = [frame[c].reset_index(drop=True) for c in parts]
    cols = [c.where(c.notna(), "").astype(str) for c in cols]
    text = cols[0]
    for col in cols[1:]:
        text = text + " " + col
    return text


def _encode_labels(
    values: pd.Series, frame: pd.DataFrame, label_column: str, where: str
) -> tuple[np.ndarray, list[str]]:
    missing = values.isna().to_numpy()
    if missing.any():
        raise UserError(
            f"label column {label_column!r} in {where} is empty in {int(missing.sum())} rows; "
            "fill or remove those rows, or set label_column to null for an unlabeled corpus."
        )
    if pd.api.types.is_bool_dtype(values):
        values = values.astype(np.int64)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        if not np.all(np.equal(np.floor(numbers), numbers)):
            raise UserError(
                f"label column {label_column!r} in {where} holds non-integer numbers; labels "
                "must be class names or integers (is it a score? bin it first)."
            )
        ints = numbers.astype(np.int64)
        classes = np.unique(ints)
        if np.array_equal(classes, np.arange(len(classes))):
            codes = ints
        else:
            codes = np.searchsorted(classes, ints).astype(np.int64)
        given = _given_names(frame, label_column)
        if given is not None:
            first = {}
            for v, n in zip(ints.tolist(), given, strict=True):
                first.setdefault(v, n)
            names = [first[v] for v in ints.tolist()]
        else:
            names = [str(v) for v in ints.tolist()]
        return codes, names
    strings = values.astype(str).tolist()
    classes = sorted(set(strings))
    code = {c: i for i, c in enumerate(classes)}
    return np.array([code[s] for s in strings], dtype=np.int64), strings


def _given_names(frame: pd.DataFrame, label_column: str) -> list[str] | None:
    for column in ("label_name", f"{label_column}_name", f"{label_column}_text"):
        if column in frame.columns and column != label_column:
            return frame[column].fillna("").astype(str).tolist()
    return None
