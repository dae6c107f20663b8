"""The figures beside Tables 1 and 2: grouped bars of one metric (one group per task or model,
one bar per strategy, 95% CI whiskers), and the class balance of each strategy's selections.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from ..strategies import display_name, shown, sort_strategies
from . import style
from .cells import EMPTY, Cell, Metric
from .frames import require_columns
from .writers import suffixed, write_csv


def grouped_bars(
    summary: Mapping[tuple, Cell],
    groups: list[str],
    group_names: Mapping[str, str],
    rows: list[str],
    metric: Metric,
    ylabel: str,
    out_stem: str | os.PathLike,
) -> dict[str, Path]:
    """One group of bars per task/model, one bar per strategy, error bars = 95% CI."""
    drawn = [s for s in rows if any(summary.get((g, s, metric.key), EMPTY).n for g in groups)]
    width = min(style.DOUBLE_COLUMN[0], 2.0 + 1.3 * max(1, len(groups)))
    with style.style():
        fig, axes = style.new_figure((width, style.SINGLE_COLUMN[1] + 0.6))
        ax = axes[0, 0]
        bar_w = 0.8 / max(1, len(drawn))
        heights = []
        for j, s in enumerate(drawn):
            xs, ys, errs = [], [], []
            for i, g in enumerate(groups):
                cell = summary.get((g, s, metric.key), EMPTY)
                if cell.n and math.isfinite(cell.mean):
                    xs.append(i - 0.4 + bar_w * (j + 0.5))
                    ys.append(cell.mean)
                    errs.append(cell.ci if math.isfinite(cell.ci) else 0.0)
            heights += ys
            ax.bar(
                xs,
                ys,
                bar_w,
                yerr=errs,
                capsize=2,
                color=shown(s).color,
                label=display_name(s),
                error_kw={"elinewidth": 0.8},
            )
        positive = [h for h in heights if h > 0]
        if positive and max(positive) / min(positive) > 20:
            ax.set_yscale("log")  # e.g. P-Max perplexity dwarfs the rest
        elif heights:
            ax.set_ylim(bottom=0)  # every shown metric is positive; clip whiskers below 0
        if not heights:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
        ax.set_xticks(range(len(groups)), [group_names.get(g, g) for g in groups])
        ax.set_ylabel(ylabel)
        if drawn:
            fig.legend(loc="outside lower center", ncols=min(4, len(drawn)))
        return style.save_figure(fig, out_stem)


# --------------------------------------------------------------------------- class balance


def _class_names(
    class_names: Sequence[str] | Mapping[str, Sequence[str]], tasks: list[str], has_task: bool
) -> dict[str, list[str]]:
    """Each task's class names, from one list for all tasks or a mapping task → list."""
    if isinstance(class_names, Mapping):
        if not has_task:
            raise UserError(
                "class_names is a per-task mapping but selections have no task column;"
                " add the task column or pass one list of class names."
            )
        missing = [t for t in tasks if t not in class_names]
        if missing:
            raise UserError(f"class_names has no entry for task(s) {', '.join(missing)}; add them.")
        return {t: [str(c) for c in class_names[t]] for t in tasks}
    if isinstance(class_names, str):
        raise UserError("class_names is one string; pass a list of class names.")
    return {t: [str(c) for c in class_names] for t in tasks}


def _class_labels(frame: pd.DataFrame, tasks: list[str], names: Mapping[str, list[str]]):
    """The pseudolabels as ints; each must index its task's class names."""
    labels = pd.to_numeric(frame["pseudolabel"], errors="coerce")
    for t in tasks:
        sub = labels[frame["task"] == t]
        bad = sub[sub.isna() | (sub % 1 != 0) | (sub < 0) | (sub >= len(names[t]))]
        if len(bad) or not names[t]:
            raise UserError(
                f"pseudolabels of task {t or '(all)'} must be class indices 0…{len(names[t]) - 1}; "
                f"found {frame.loc[bad.index[:1], 'pseudolabel'].tolist()}. Check class_names "
                "against the task's labels."
            )
    return labels.astype(int)


def _class_counts(
    frame: pd.DataFrame, tasks: list[str], names: Mapping[str, list[str]]
) -> pd.DataFrame:
    """Counts and proportions per task × strategy × class, every class listed."""
    rows = []
    for t in tasks:
        for s in sort_strategies(frame.loc[frame["task"] == t, "strategy"]):
            sub = frame[(frame["task"] == t) & (frame["strategy"] == s)]
            counts = np.bincount(sub["pseudolabel"], minlength=len(names[t]))
            total = int(counts.sum())
            for c, count in enumerate(counts):
                rows.append(
                    {
                        "task": t,
                        "strategy": s,
                        "strategy_name": display_name(s),
                        "label": c,
                        "class_name": names[t][c],
                        "count": int(count),
                        "proportion": count / total,
                    }
                )
    return pd.DataFrame(
        rows,
        columns=["task", "strategy", "strategy_name", "label", "class_name", "count", "proportion"],
    )


def _class_panel(ax, sub: pd.DataFrame, names: list[str], title: str | None) -> None:
    """Stacked bars of one task: one bar per strategy, one segment per class."""
    strategies = list(dict.fromkeys(sub["strategy"]))
    ys = np.arange(len(strategies))[::-1]
    left = np.zeros(len(strategies))
    for c, cname in enumerate(names):
        props = np.array(
            [
                sub[(sub["strategy"] == s) & (sub["label"] == c)]["proportion"].iloc[0]
                for s in strategies
            ]
        )
        ax.barh(
            ys,
            props,
            left=left,
            color=style.class_color(c),
            label=cname,
            edgecolor="white",
            linewidth=0.3,
        )
        left += props
    for c in range(1, len(names)):
        ax.axvline(c / len(names), color="0.3", linestyle=":", linewidth=0.7)
    ax.set_yticks(ys, [display_name(s) for s in strategies])
    ax.set_xlim(0, 1)
    ax.set_xlabel("Share of selected texts")
    ax.grid(False)
    if title is not None:
        ax.set_title(title)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.42),
        ncols=min(4, len(names)),
        fontsize=style.LEGEND_SIZE - 1,
    )


def class_balance_figure(
    selections: pd.DataFrame,
    out_stem: str | os.PathLike,
    class_names: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    task_names: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Pseudolabel distribution of each strategy's selection (does SELECT balance classes?).

    ``selections``: one row per selected text with strategy and pseudolabel (class index),
    optionally task (one panel per task) and seed (pooled). ``class_names``: one list for all
    tasks, or a mapping task → list. Writes ``{out_stem}.csv`` (counts and proportions, every
    class listed, zero counts included) and stacked bars as ``.pdf/.png``; dotted lines mark
    where the segment borders of a perfectly balanced selection would fall.
    """
    frame = require_columns(selections, ["strategy", "pseudolabel"], "class-balance selections")
    has_task = "task" in frame.columns
    if not has_task:
        frame["task"] = ""
    for c in ("task", "strategy"):
        if frame[c].isna().any():
            raise UserError(f"class-balance selections column {c!r} has missing values.")
    sort_strategies(frame["strategy"])  # unknown names are an error
    frame["task"] = frame["task"].astype(str)
    tasks = sorted(frame["task"].unique())
    names = _class_names(class_names, tasks, has_task)
    frame["pseudolabel"] = _class_labels(frame, tasks, names)

    table = _class_counts(frame, tasks, names)
    if not has_task:
        table = table.drop(columns="task")
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), table)}
    if not has_task:
        table = table.assign(task="")

    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    n_strat = max(len(sort_strategies(frame.loc[frame["task"] == t, "strategy"])) for t in tasks)
    size = (min(style.DOUBLE_COLUMN[0], 3.4 * ncols), nrows * (1.4 + 0.28 * n_strat))
    with style.style():
        fig, axes = style.new_figure(size, ncols=ncols, nrows=nrows)
        for k, ax in enumerate(axes.flat):
            if k >= len(tasks):
                ax.set_visible(False)
                continue
            t = tasks[k]
            title = (task_names or {}).get(t, t) if t else None
            _class_panel(ax, table[table["task"] == t], names[t], title)
        paths.update(style.save_figure(fig, out_stem))
    return paths
