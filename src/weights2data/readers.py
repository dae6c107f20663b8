"""Read the pipeline's files (parquet tables, .npy arrays, JSON records) with one error for
every kind of damage: which file, what is wrong with it, and how to remake it. A truncated copy,
an empty file or the wrong file given to a flag then never ends in a pyarrow or numpy traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import UserError

REMAKE = "delete it and rerun the step that makes it (Snakemake remakes a missing file)"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:160] if text else type(exc).__name__) or type(exc).__name__


def _existing(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{what} {path} does not exist; check the path, or run the step that makes it."
        )
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty (an interrupted write or copy?); {REMAKE}.")
    return path


def read_table(path: str | os.PathLike, what: str, columns: Sequence[str] = ()) -> pd.DataFrame:
    """A parquet table with at least ``columns``."""
    path = _existing(path, what)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged or foreign file
        raise UserError(
            f"{what} {path} is not a readable parquet file ({_short(exc)}); {REMAKE}."
        ) from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"{what} {path} lacks the column(s) {', '.join(missing)} (it has "
            f"{', '.join(map(str, frame.columns)) or 'none'}); is it the right file? {REMAKE}."
        )
    return frame


def read_array(path: str | os.PathLike, what: str, ndim: int | None = 2) -> np.ndarray:
    """A numeric .npy array (never a pickle) with ``ndim`` dimensions."""
    path = _existing(path, what)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(
            f"{what} {path} is not a readable .npy array ({_short(exc)}); {REMAKE}."
        ) from exc
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise UserError(f"{what} {path} holds no numeric array; is it the right file? {REMAKE}.")
    if ndim is not None and array.ndim != ndim:
        raise UserError(
            f"{what} {path} has shape {array.shape}, not {ndim}-D; is it the right file? {REMAKE}."
        )
    return array


def read_record(path: str | os.PathLike, what: str, keys: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON object with at least ``keys``."""
    path = _existing(path, what)
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} {path} is not readable JSON ({_short(exc)}); {REMAKE}.") from exc
    if not isinstance(record, dict):
        raise UserError(
            f"{what} {path} holds a JSON {type(record).__name__}, not an object; {REMAKE}."
        )
    missing = [k for k in keys if k not in record]
    if missing:
        raise UserError(
            f"{what} {path} lacks the field(s) {', '.join(missing)}; is it the right file? "
            f"{REMAKE}."
        )
    return record
