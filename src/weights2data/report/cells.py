"""One way to show a number over seeds, used by every table: "mean ± half-width of the 95%
Student-t confidence interval" (``stats.confidence_interval``); the mean alone from one value,
"—" from none. :class:`Metric` says how a record column is shown (label, scale, decimals).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..stats import CI_LEVEL, confidence_interval

MISSING = "—"
PLUS_MINUS = " ± "
# What a cell holds, as the tables' notes say it.
CI_PHRASE = f"mean ± half-width of the {int(CI_LEVEL * 100)}% Student-t confidence interval"


@dataclass(frozen=True)
class Metric:
    """How a record column is shown: scale (e.g. ×100 for %), decimals and column label."""

    key: str
    label: str
    decimals: int
    scale: float = 1.0
    unit: str = ""
    fraction: bool = False  # the raw value must lie in [0, 1]
    higher_is_better: bool = True

    def cell(self, values) -> Cell:
        """The cell of some per-seed values of this metric, in display units."""
        return cell_of(values, self.scale)

    def text(self, values) -> str:
        """That cell as a table shows it."""
        return self.cell(values).text(self.decimals)


def format_number(value: float | None, decimals: int) -> str:
    """Fixed decimals; NaN/None/inf become "—" and "-0.0" becomes "0.0"."""
    if value is None or not math.isfinite(float(value)):
        return MISSING
    text = f"{float(value):.{decimals}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


def format_cell(mean: float, spread: float, n: int, decimals: int) -> str:
    """ "mean ± spread"; the mean alone when fewer than two values; "—" when none."""
    if n == 0 or not math.isfinite(float(mean)):
        return MISSING
    if n < 2 or not math.isfinite(float(spread)):
        return format_number(mean, decimals)
    return format_number(mean, decimals) + PLUS_MINUS + format_number(spread, decimals)


class Cell(NamedTuple):
    """One table cell over seeds, in display units: the mean and its spread."""

    mean: float
    std: float
    ci: float  # half-width of the 95% Student-t interval of the mean
    n: int

    def text(self, decimals: int) -> str:
        return format_cell(self.mean, self.ci, self.n, decimals)


EMPTY = Cell(math.nan, math.nan, math.nan, 0)


def cell_of(values, scale: float = 1.0) -> Cell:
    """The cell of some per-seed values (NaN dropped), scaled for display."""
    stats = confidence_interval(np.asarray(values, dtype=float) * scale)
    return Cell(stats["mean"], stats["std"], stats["ci"], stats["n"])


def n_span(counts: Iterable[int]) -> str | None:
    """The values per cell a table holds, "3" or "2–3"; None when no cell has any."""
    ns = sorted({int(n) for n in counts if n > 0})
    if not ns:
        return None
    return str(ns[0]) if ns[0] == ns[-1] else f"{ns[0]}–{ns[-1]}"
