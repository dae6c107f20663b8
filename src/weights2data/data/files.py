"""Dataset tables and local files on disk: writing and reading the normalised parquet table,
and reading a user's ``local:<path>`` file (.csv / .jsonl / .parquet) into the raw shape.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..atomic import write_parquet
from ..errors import UserError
from .normalise import COLUMNS, finalize_table, normalize_frame, require_columns
from .splits import SPLITS

LOCAL_EXTENSIONS = (".csv", ".jsonl", ".parquet")


def write_dataset(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a normalized table to parquet atomically (a crash never leaves half a file)."""
    require_columns(table, COLUMNS, "the table to write")
    out = table.loc[:, list(COLUMNS)].reset_index(drop=True)
    out.attrs = {}  # pandas stores attrs in the file; keep the bytes a function of the rows
    write_parquet(path, out)


def read_dataset(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by ``write_dataset``; fail clearly when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"dataset file {path} does not exist; build it first "
            "(the pipeline's data rule, or `weights2data dataset`) or fix the path."
        )
    try:
        table = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise UserError(
            f"dataset file {path} is not a readable parquet file ({err}); delete it and rebuild."
        ) from err
    require_columns(table, COLUMNS, f"dataset file {path}")
    bad = sorted(set(table["split"].unique()) - set(SPLITS))
    if bad:
        raise UserError(
            f"dataset file {path} has unknown split values {bad}; delete it and rebuild."
        )
    table = finalize_table(table)
    table.attrs["dataset"] = path.stem
    return table


def load_local(path_text: str, text_column: str, label_column: str | None) -> pd.DataFrame:
    """The raw shape of a ``local:<path>`` file; its columns are mapped by ``normalize_frame``."""
    path = Path(path_text).expanduser()
    suffix = path.suffix.lower()
    if suffix not in LOCAL_EXTENSIONS:
        raise UserError(
            f"unsupported file type {suffix or '(none)'!r} for local:{path_text}; "
            f"convert it to one of {', '.join(LOCAL_EXTENSIONS)}."
        )
    if not path.is_file():
        raise UserError(f"local dataset file {path} does not exist; fix the path in the config.")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _read_jsonl(path)
    except UserError:
        raise
    except Exception as err:
        raise UserError(
            f"could not read {path} as {suffix} ({err}); fix or re-export the file."
        ) from err
    return normalize_frame(
        frame, text_column=text_column, label_column=label_column, where=str(path)
    )


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UserError(
                    f"{path} line {lineno} is not valid JSON ({err.msg}); fix that line."
                ) from err
    if records and not all(isinstance(r, dict) for r in records):
        raise UserError(f"{path}: every JSONL line must be an object with named fields.")
    return pd.DataFrame.from_records(records)
