"""Checks of the record frames a table is built from, each failing with what to fix: columns
present, metrics numeric (fractions in [0, 1]), one row per run, known strategy names, and the
order of the groups (tasks, models) a table lays out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pandas as pd

from ..errors import UserError
from ..strategies import sort_strategies
from .cells import Metric


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    """A copy of ``frame``, which must be a DataFrame with ``columns``."""
    if not isinstance(frame, pd.DataFrame):
        raise UserError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"{what} lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, frame.columns))}. Add them (one row per run with columns "
            f"{', '.join(columns)})."
        )
    return frame.copy()


def numeric_metrics(frame: pd.DataFrame, metrics: Sequence[Metric], what: str) -> pd.DataFrame:
    """Each metric's column as float, in place; fractions must lie in [0, 1]."""
    for m in metrics:
        try:
            col = pd.to_numeric(frame[m.key], errors="raise").astype(float)
        except (TypeError, ValueError) as exc:
            raise UserError(
                f"{what} column {m.key!r} has non-numeric values ({exc}); leave missing values "
                "empty (NaN) instead of text."
            ) from exc
        if m.fraction:
            bad = col[(col < 0) | (col > 1)]
            if len(bad):
                raise UserError(
                    f"{what} column {m.key!r} must be a fraction in [0, 1] but has "
                    f"{bad.iloc[0]!r}; pass fractions (0.883), not percentages (88.3)."
                )
        frame[m.key] = col
    return frame


def check_keys(frame: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    """Every run has all key ``columns``, appears once, and names a known strategy."""
    for c in columns:
        if frame[c].isna().any():
            raise UserError(f"{what} column {c!r} has missing values; every run needs a {c}.")
    dup = frame.duplicated(subset=list(columns), keep=False)
    if dup.any():
        first = frame.loc[dup, list(columns)].iloc[0].to_dict()
        raise UserError(
            f"{what} has more than one row for {first}; each run must appear once "
            "(drop the duplicate or give it its own seed)."
        )
    if "strategy" in columns:
        sort_strategies(frame["strategy"])  # unknown names are an error
    return frame


def size_key(label: str) -> tuple[float, str]:
    """Order model labels by parameter count when they name one ("135M" < "1B")."""
    units = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
    found = re.findall(r"(\d+(?:\.\d+)?)\s*([kmbt])(?![a-z])", label.lower())
    if not found:
        return (math.inf, label)
    number, unit = found[-1]
    return (float(number) * units[unit], label)


def group_order(values, given: Sequence[str] | None, what: str, key=None) -> list[str]:
    """The groups (tasks, models) in ``given`` order, else sorted; a group left out: error."""
    present = sorted({str(v) for v in values}, key=key)
    if given is None:
        return present
    given = [str(g) for g in given]
    unknown = sorted(set(present) - set(given))
    if unknown:
        raise UserError(
            f"records have {what} {', '.join(unknown)} that the given order omits; "
            f"add them to the order or drop those rows."
        )
    return given
