"""One look for every figure: fonts, sizes, and a fixed colour per strategy.

A strategy keeps its colour in every figure, so a reader can compare figures at a glance.
Colours follow the Okabe–Ito colour-blind-safe palette (plus grey and black).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from .atomic import atomic_path
from .errors import UserError

# Headless everywhere (cluster nodes have no display); figures are built with the
# object-oriented Figure API, so no pyplot state is shared between figures.
matplotlib.use("Agg")

# Every strategy the pipeline knows, in the order figures and tables list them.
STRATEGY_ORDER: tuple[str, ...] = (
    "random",
    "topk_balanced",
    "topk",
    "bottomk",
    "pmin",
    "pmax",
    "select_batch",
    "select",
    "expert",
)

DISPLAY_NAMES: dict[str, str] = {
    "random": "Random",
    "topk_balanced": "Top-K (Balanced)",
    "topk": "Top-K",
    "bottomk": "Bottom-K",
    "pmin": "P-Min",
    "pmax": "P-Max",
    "select_batch": "SELECT (Batch)",
    "select": "SELECT",
    "expert": "Expert",
}

STRATEGY_COLORS: dict[str, str] = {
    "random": "#7F7F7F",  # grey: the reference everything is measured against
    "topk_balanced": "#56B4E9",  # sky blue
    "topk": "#0072B2",  # blue
    "bottomk": "#CC79A7",  # reddish purple
    "pmin": "#E69F00",  # orange
    "pmax": "#8C6D31",  # brown
    "select_batch": "#009E73",  # bluish green
    "select": "#D55E00",  # vermilion: the method
    "expert": "#000000",  # black: the upper reference
}

STRATEGY_MARKERS: dict[str, str] = {
    "random": "o",
    "topk_balanced": "v",
    "topk": "^",
    "bottomk": "<",
    "pmin": "s",
    "pmax": "D",
    "select_batch": "P",
    "select": "*",
    "expert": "X",
}

FONT_SIZE = 9
TITLE_SIZE = 10
LEGEND_SIZE = 8
SINGLE_COLUMN = (3.4, 2.4)  # inches: one column of a two-column paper
DOUBLE_COLUMN = (7.0, 2.8)
DPI = 200

RC_PARAMS: dict[str, object] = {
    "font.size": FONT_SIZE,
    "axes.titlesize": TITLE_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "legend.fontsize": LEGEND_SIZE,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.alpha": 0.3,
    "savefig.bbox": "tight",
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,  # embed TrueType so the PDF text stays editable/searchable
}

# Colours for classes in class-balance plots (by class index; tab10 then tab20 beyond 10).
CLASS_COLORS: tuple[str, ...] = tuple(
    matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab10"].colors
) + tuple(matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab20"].colors[1::2])


def _check(strategy: str) -> str:
    if strategy not in DISPLAY_NAMES:
        raise UserError(
            f"unknown strategy {strategy!r}; known strategies are {', '.join(STRATEGY_ORDER)}. "
            "Fix the name in the records (or add it to weights2data.figstyle)."
        )
    return strategy


def display_name(strategy: str) -> str:
    """The paper's name for a strategy key (``select_batch`` → ``SELECT (Batch)``)."""
    return DISPLAY_NAMES[_check(strategy)]


def strategy_color(strategy: str) -> str:
    return STRATEGY_COLORS[_check(strategy)]


def strategy_marker(strategy: str) -> str:
    return STRATEGY_MARKERS[_check(strategy)]


def sort_strategies(strategies) -> list[str]:
    """Unique strategy keys in the canonical order (unknown keys are an error)."""
    return sorted({_check(s) for s in strategies}, key=STRATEGY_ORDER.index)


def class_color(index: int) -> str:
    return CLASS_COLORS[index % len(CLASS_COLORS)]


def style() -> contextlib.AbstractContextManager:
    """A context manager applying the shared rcParams without touching global state."""
    return matplotlib.rc_context(RC_PARAMS)


def new_figure(
    size: tuple[float, float] = SINGLE_COLUMN, ncols: int = 1, nrows: int = 1
) -> tuple[Figure, object]:
    """A pyplot-free figure and its 2-d array of axes; build it inside :func:`style`."""
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows=nrows, ncols=ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, stem: str | os.PathLike) -> dict[str, Path]:
    """Write ``{stem}.pdf`` and ``{stem}.png`` atomically, then release the figure.

    Metadata dates are dropped so the same data gives byte-identical files.
    """
    stem = Path(stem)
    paths = {}
    try:
        with matplotlib.rc_context(RC_PARAMS):
            for fmt, meta in (("pdf", {"CreationDate": None}), ("png", {"Software": None})):
                target = stem.with_name(stem.name + "." + fmt)
                with atomic_path(target) as tmp:
                    fig.savefig(tmp, format=fmt, metadata=meta)
                paths[fmt] = target
    finally:
        # A figure made with pyplot stays registered until closed; ours are not registered.
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(fig)
    return paths
