"""The ablations' figures: a metric against a swept number (one line per strategy, fixed
strategies as dashed lines with their CI band), and heat maps of a metric over a grid of runs.

Both read a summary frame (one row per series × x or grid cell: mean, ci, n); colours, markers
and names of strategies come from :mod:`weights2data.strategies`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..strategies import display_name, shown, sort_strategies
from . import style
from .cells import MISSING, Metric, format_cell


def number_text(value) -> str:
    """A swept number as ticks and column titles show it: 64, 0.5."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def series_name(strategy: str, label: str | None) -> str:
    """A strategy's name, with the series label in brackets when it has one."""
    name = display_name(strategy)
    return f"{name} ({label})" if label else name


# --------------------------------------------------------------------------- line figures


def _draw_series(ax, xs, means, cis, strategy, label, linestyle="-"):
    errs = [c if math.isfinite(c) else 0.0 for c in cis]
    ax.errorbar(
        xs,
        means,
        yerr=errs,
        color=shown(strategy).color,
        marker=shown(strategy).marker,
        markersize=4,
        linewidth=1.2,
        linestyle=linestyle,
        capsize=2,
        elinewidth=0.8,
        label=label,
    )


def _draw_reference(ax, mean, ci, strategy, label):
    color = shown(strategy).color
    ax.axhline(mean, color=color, linestyle="--", linewidth=1.0, label=label)
    if math.isfinite(ci):
        ax.axhspan(mean - ci, mean + ci, color=color, alpha=0.15, linewidth=0)


def _line_panel(ax, summary: pd.DataFrame, metric: Metric, *, log_x: bool, x_label: str) -> None:
    """Lines over x for swept series, dashed horizontal lines (± CI band) for fixed ones."""
    sub = summary[summary["metric"] == metric.key]
    for (strategy, label), series in sub.groupby(["strategy", "label"], sort=False):
        name = series_name(strategy, label or None)
        swept = series[series["x"].notna()].sort_values("x")
        fixed = series[series["x"].isna()]
        if len(swept):
            _draw_series(ax, swept["x"], swept["mean"], swept["ci"], strategy, name)
        for _, ref in fixed.iterrows():
            _draw_reference(ax, ref["mean"], ref["ci"], strategy, name)
    if sub["x"].notna().any():
        ticks = sorted(sub["x"].dropna().unique())
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [number_text(t) for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric.label)


def line_figure(
    summary: pd.DataFrame,
    metrics: Sequence[Metric],
    out_stem: str | os.PathLike,
    *,
    log_x: bool,
    x_label: str,
) -> dict[str, Path]:
    """One panel per metric (two columns), one shared legend; ``{out_stem}.pdf/.png``."""
    ncols = min(2, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    with style.style():
        size = (3.6, 2.6) if ncols == 1 else (style.DOUBLE_COLUMN[0], 2.3 * nrows + 0.4)
        fig, axes = style.new_figure(size, ncols=ncols, nrows=nrows)
        for ax, metric in zip(axes.flat, metrics, strict=False):
            _line_panel(ax, summary, metric, log_x=log_x, x_label=x_label)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)))
        return style.save_figure(fig, out_stem)


# --------------------------------------------------------------------------- heat maps


def _heatmap_panel(ax, sub, rows, cols, row_keys, col_keys, vmin, vmax, reverse):
    """One strategy's annotated grid; returns the image for the shared colour bar."""
    grid = np.full((len(row_keys), len(col_keys)), np.nan)
    text = [[MISSING] * len(col_keys) for _ in row_keys]
    for _, r in sub.iterrows():
        i, j = row_keys.index(r[rows]), col_keys.index(r[cols])
        grid[i, j] = r["mean"]
        text[i][j] = format_cell(r["mean"], r["ci"], int(r["n"]), 1)
    cmap = "viridis_r" if reverse else "viridis"
    image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(len(row_keys)):
        for j in range(len(col_keys)):
            shade = (grid[i, j] - vmin) / (vmax - vmin) if np.isfinite(grid[i, j]) else 1
            light = shade > 0.5 if not reverse else shade < 0.5
            ax.text(
                j,
                i,
                text[i][j],
                ha="center",
                va="center",
                fontsize=style.LEGEND_SIZE - 1,
                color="black" if light else "white",
            )
    return image


def heatmaps(
    summary: pd.DataFrame,
    rows: str,
    cols: str,
    *,
    row_label: str,
    col_label: str,
    value_label: str,
    out_stem: str | os.PathLike,
    reverse: bool = False,
) -> dict[str, Path]:
    """One annotated heat map per strategy (rows × columns); colour = mean value."""
    row_keys = list(dict.fromkeys(summary[rows]))
    col_keys = list(dict.fromkeys(summary[cols]))
    strategies = sort_strategies(summary["strategy"])
    vmin, vmax = float(summary["mean"].min()), float(summary["mean"].max())
    if vmin == vmax:
        vmin, vmax = vmin - 1.0, vmax + 1.0
    width = 1.4 + (0.9 * len(col_keys) + 0.6) * len(strategies)
    with style.style():
        fig, axes = style.new_figure(
            (max(3.0, width), 1.3 + 0.45 * len(row_keys)), ncols=len(strategies)
        )
        image = None
        for ax, strategy in zip(axes[0], strategies, strict=True):
            sub = summary[summary["strategy"] == strategy]
            image = _heatmap_panel(ax, sub, rows, cols, row_keys, col_keys, vmin, vmax, reverse)
            ax.set_xticks(range(len(col_keys)), [str(c) for c in col_keys], rotation=30)
            ax.set_yticks(range(len(row_keys)), [str(r) for r in row_keys])
            ax.set_xlabel(col_label)
            ax.set_ylabel(row_label)
            ax.set_title(display_name(strategy), color=shown(strategy).color)
            ax.grid(False)
        if image is not None:
            fig.colorbar(image, ax=list(axes[0]), label=value_label, shrink=0.9)
        return style.save_figure(fig, out_stem)
