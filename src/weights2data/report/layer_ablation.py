"""The ``layers`` ablation's report: SELECT's accuracy and the premise cos(S_true, Δ) for each
task × gradient layers (head, the last block, both), against Random on the same task.

Does going past the head raise cos(S_true, Δ) and SELECT's accuracy where the head alone
fails? The table answers per task: SELECT − Random is paired by seed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_text
from ..stats import confidence_interval
from ..strategies import display_name, shown
from . import style
from .ablations import CI_COLUMN, METRICS, _ci_note, collect, summarize
from .cells import MISSING, format_cell
from .writers import markdown_table, suffixed, write_csv

GAP = "gap"  # SELECT − Random accuracy, paired by seed (percentage points)


def _gaps(frame: pd.DataFrame, strategy: str, reference: str) -> pd.DataFrame:
    """Per task × layers × seed: the strategy's accuracy minus the reference's (same seed)."""
    ref = frame[frame["strategy"] == reference].set_index(["task", "seed"])["acc"]
    runs = frame[frame["strategy"] == strategy]
    keys = list(zip(runs["task"], runs["seed"], strict=True))
    gap = [runs["acc"].iloc[i] - ref.get(key, math.nan) for i, key in enumerate(keys)]
    return runs.assign(**{GAP: gap})


def _summary(frame: pd.DataFrame, strategy: str, reference: str) -> pd.DataFrame:
    runs = _gaps(frame, strategy, reference)
    metrics = [m for m in ("acc", "cos_truth_delta") if m in runs.columns]
    summary = summarize(runs, ["task", "layers"], metrics)
    gap_rows = []
    for (task, layers), sub in runs.groupby(["task", "layers"], sort=False):
        stats = confidence_interval(sub[GAP].dropna().to_numpy(dtype=float) * 100.0)
        if stats["n"]:
            gap_rows.append({"task": task, "layers": layers, "metric": GAP, **stats})
    refs = summarize(frame[frame["strategy"] == reference], ["task"], ["acc"])
    refs = refs.assign(layers="(none)", metric=f"acc_{reference}")
    return pd.concat([summary, pd.DataFrame(gap_rows), refs], ignore_index=True)


def _cell(summary: pd.DataFrame, task: str, layers: str, metric: str, decimals: int) -> str:
    hit = summary[(summary["task"] == task) & (summary["metric"] == metric)]
    if layers is not None:
        hit = hit[hit["layers"] == layers]
    if hit.empty:
        return MISSING
    row = hit.iloc[0]
    return format_cell(row["mean"], row["ci"], row["n"], decimals)


def _markdown(summary, tasks, layer_sets, strategy, reference) -> str:
    name, ref_name = display_name(strategy), display_name(reference)
    header = ["Task", "Layers", f"{name} acc (%)", f"{ref_name} acc (%)"]
    header += [f"{name} − {ref_name} (pp)", "cos(S_true, Δ)"]
    body = []
    for task in tasks:
        ref = _cell(summary, task, None, f"acc_{reference}", 1)
        for layers in layer_sets:
            body.append(
                [
                    task,
                    layers,
                    _cell(summary, task, layers, "acc", 1),
                    ref,
                    _cell(summary, task, layers, GAP, 1),
                    _cell(summary, task, layers, "cos_truth_delta", 3),
                ]
            )
    return markdown_table(header, body, "llrrrr")


def _bars(ax, summary, tasks, layer_sets, metric, label, reference=None) -> None:
    width = 0.8 / max(len(layer_sets), 1)
    colors = [style.class_color(i) for i in range(len(layer_sets))]
    for j, layers in enumerate(layer_sets):
        sub = summary[(summary["metric"] == metric) & (summary["layers"] == layers)]
        by_task = sub.set_index("task")
        means = [by_task["mean"].get(t, np.nan) for t in tasks]
        cis = [by_task["ci"].get(t, 0.0) for t in tasks]
        cis = [c if math.isfinite(c) else 0.0 for c in cis]
        xs = np.arange(len(tasks)) + (j - (len(layer_sets) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=cis, color=colors[j], label=layers, capsize=2)
    if reference is not None:
        refs = summary[summary["metric"] == f"acc_{reference}"].set_index("task")["mean"]
        for i, task in enumerate(tasks):
            if task in refs:
                ax.hlines(
                    refs[task],
                    i - 0.45,
                    i + 0.45,
                    colors=shown(reference).color,
                    linestyles="--",
                    linewidth=1.0,
                    label=display_name(reference) if i == 0 else None,
                )
    ax.set_xticks(range(len(tasks)), tasks, rotation=15)
    ax.set_ylabel(label)


def layers_report(spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    """Table (CSV + Markdown) and a two-panel figure: SELECT accuracy with Random as dashes,
    and cos(S_true, Δ), for every task × layer set."""
    frame = collect(spec["runs"])
    strategy, reference = spec.get("strategy", "select"), spec.get("reference", "random")
    tasks = list(dict.fromkeys(frame["task"]))
    layer_sets = list(spec.get("layers") or dict.fromkeys(frame["layers"].dropna()))
    summary = _summary(frame, strategy, reference)
    paths = {
        "csv": write_csv(suffixed(out_stem, ".csv"), summary.rename(columns={"ci": CI_COLUMN}))
    }
    md = _markdown(summary, tasks, layer_sets, strategy, reference)
    note = (
        f"{display_name(strategy)} − {display_name(reference)} is paired by seed. "
        "cos(S_true, Δ): the true training texts' summed gradient against Δ, in each store's "
        f"own space (the premise diagnostic). {spec.get('note', '')}"
    )
    md += f"\n{note.strip()} {_ci_note(summary['n'])}\n"
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], md)
    with style.style():
        fig, axes = style.new_figure(style.DOUBLE_COLUMN, ncols=2)
        _bars(axes[0][0], summary, tasks, layer_sets, "acc", METRICS["acc"].label, reference)
        _bars(axes[0][1], summary, tasks, layer_sets, "cos_truth_delta", "cos(S_true, Δ)")
        axes[0][0].legend(loc="lower right", fontsize=style.LEGEND_SIZE)
        paths.update(style.save_figure(fig, out_stem))
    return paths
