"""One look for every figure: fonts, sizes, class colours, and pyplot-free figures saved to the
byte. A strategy's colour, marker and label come from :mod:`weights2data.strategies`, so it
keeps them in every figure and a reader can compare figures at a glance.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from ..atomic import atomic_path

# Headless everywhere (cluster nodes have no display); figures are built with the
# object-oriented Figure API, so no pyplot state is shared between figures.
matplotlib.use("Agg")

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
