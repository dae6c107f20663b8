"""The ablations' reports (docs/ablations.md: F2–F5, T4, T5, the checkpoint sweep): per-run records
(retrain / similarity JSON, selections) in, a tidy CSV, a Markdown table and a figure out.

A report receives a ``spec``: ``{"runs": [...], ...options}``; each run is a small dict naming
its files (``retrain``, ``similarity``, ``selection``, ``pool_file``) and its coordinates (``x``,
``strategy``, ``seed``, ...). The rules build that list, so a report never parses paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..ablation_steps import recovery_of
from ..alignment import load_sum, selection_alignment
from ..atomic import write_text
from ..errors import UserError
from ..gradients.store import load_gradient_store
from ..readers import read_record, read_table
from ..stats import CI_LEVEL, confidence_interval
from ..strategies import DISPLAY_ORDER, display_name, sort_strategies
from .ablation_figures import heatmaps, line_figure, number_text, series_name
from .cells import CI_PHRASE, MISSING, Metric, format_cell, n_span
from .writers import markdown_table, suffixed, write_csv

# How each metric is shown: axis / column label, scale for display, decimals.
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("acc", "Test accuracy (%)", 1, scale=100.0),
        Metric("loss", "Test loss (nats)", 3, higher_is_better=False),
        Metric("ppl", "Test perplexity", 2, higher_is_better=False),
        Metric("vocab", "Vocab containment (%)", 1),
        Metric("otd", "OT distance (sq. Euclidean)", 3, higher_is_better=False),
        Metric("precision", "Recovery precision (%)", 1, scale=100.0),
        Metric("recall", "Recovery recall (%)", 1, scale=100.0),
        Metric("cos_truth_delta", "cos(S_true, Δ)", 3),
        Metric("cos_sel_truth", "cos(S_sel, S_true)", 3),
        Metric("cos_sel_delta", "cos(S_sel, Δ)", 3),
    )
}
CI_COLUMN = f"ci{int(CI_LEVEL * 100)}"


# --------------------------------------------------------------------------- collecting runs


def summarize(
    frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], level: float = CI_LEVEL
) -> pd.DataFrame:
    """One row per group × metric: mean, std, ci (half-width) and n, in display units."""
    rows = []
    keys = list(by)
    for group, sub in frame.groupby(keys, sort=False, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        for metric in metrics:
            if metric not in sub.columns:
                continue
            scale = METRICS[metric].scale
            stats_ = confidence_interval(sub[metric].to_numpy(dtype=float) * scale, level)
            if stats_["n"] == 0:
                continue
            rows.append(dict(zip(keys, group, strict=True), metric=metric, **stats_))
    return pd.DataFrame(rows, columns=keys + ["metric", "mean", "std", "ci", "n"])


def _retrain_metrics(path: str) -> dict[str, float]:
    record = read_record(path, "retraining result")
    out = {}
    for key in ("acc", "loss", "ppl"):
        if f"test_{key}" in record:
            out[key] = float(record[f"test_{key}"])
    return out


def _alignment(run: Mapping, stores: dict[str, tuple]) -> dict[str, float]:
    """cos(S_sel, S_true) and cos(S_sel, Δ) of one selection, in the space of the store it read
    (``stores``: the stores opened so far, by path; strategies of one seed share one)."""
    if run["store"] not in stores:
        stores[run["store"]] = load_gradient_store(run["store"])[:2]
    grads, target = stores[run["store"]]
    selection = read_table(run["selection"], "selection", ("index",))
    return selection_alignment(grads, target, load_sum(run["truth_sum"]), selection)


def collect(runs: Sequence[Mapping]) -> pd.DataFrame:
    """One row per run: its coordinates plus the metrics its files hold.

    ``retrain`` → acc / loss / ppl; ``similarity`` → vocab, otd; ``selection`` + ``pool_file`` →
    recovery precision and recall; ``regime`` → cos_truth_delta (the premise diagnostic);
    ``store`` + ``truth_sum`` + ``selection`` → cos_sel_truth, cos_sel_delta (in the run's store).
    """
    if not runs:
        raise UserError("no runs to report; the ablation's sweep lists are empty.")
    files = ("retrain", "similarity", "selection", "pool_file", "regime", "store", "truth_sum")
    rows, stores = [], {}
    for run in runs:
        row = {k: v for k, v in run.items() if k not in files}
        if run.get("retrain"):
            row.update(_retrain_metrics(run["retrain"]))
        if run.get("similarity"):
            sim = read_record(run["similarity"], "similarity result")
            row.update(vocab=float(sim["vocab"]), otd=float(sim["otd"]))
        if run.get("regime"):
            regime = read_record(run["regime"], "regime diagnostics", ("cos_truth_delta",))
            row["cos_truth_delta"] = float(regime["cos_truth_delta"])
        if run.get("store") and run.get("truth_sum") and run.get("selection"):
            row.update(_alignment(run, stores))
        if run.get("selection") and run.get("pool_file"):
            row.update(
                recovery_of(
                    read_table(run["selection"], "selection", ("index",)),
                    read_table(run["pool_file"], "leakage pool", ("is_true",)),
                )
            )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "strategy" in frame.columns:
        sort_strategies(frame["strategy"])  # unknown names are an error
    return frame


def _ci_note(n_values: Iterable[int], over: str = "seeds") -> str:
    span = n_span(n_values)
    if span is None:
        return "No runs recorded; — = no value."
    return f"Cells are {CI_PHRASE} over {over} (n = {span}; one value: mean only)."


def _first_cell(rows: pd.DataFrame, decimals: int) -> str:
    """The cell of the first summary row; "—" when there is none."""
    if rows.empty:
        return MISSING
    return format_cell(rows["mean"].iloc[0], rows["ci"].iloc[0], rows["n"].iloc[0], decimals)


# --------------------------------------------------------------------------- sweeps


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    order = {s: i for i, s in enumerate(DISPLAY_ORDER)}
    out = summary.copy()
    out["_o"] = out["strategy"].map(order)
    return out.sort_values(["_o", "label", "x"], na_position="last").drop(columns="_o")


def _sweep_markdown(summary: pd.DataFrame, metrics: Sequence[str], x_name: str) -> str:
    xs = sorted(summary["x"].dropna().unique())
    has_fixed = summary["x"].isna().any()
    header = ["Strategy", "Metric"] + [f"{x_name} = {number_text(x)}" for x in xs]
    header += ["fixed"] if has_fixed else []
    body = []
    for key in metrics:
        metric = METRICS[key]
        sub = summary[summary["metric"] == key]
        for (strategy, label), series in sub.groupby(["strategy", "label"], sort=False):
            cells = [series_name(strategy, label or None), metric.label]
            by_x = {r["x"]: r for _, r in series.iterrows() if pd.notna(r["x"])}
            for x in xs:
                r = by_x.get(x)
                cells.append(
                    MISSING
                    if r is None
                    else format_cell(r["mean"], r["ci"], r["n"], metric.decimals)
                )
            if has_fixed:
                cells.append(_first_cell(series[series["x"].isna()], metric.decimals))
            body.append(cells)
    return markdown_table(header, body, "ll" + "r" * (len(header) - 2))


def _sweep_outputs(
    frame: pd.DataFrame,
    out_stem: str | os.PathLike,
    metrics: Sequence[str],
    *,
    x_name: str,
    x_label: str,
    log_x: bool,
    note: str,
    over: str = "seeds",
) -> dict[str, Path]:
    frame = frame.copy()
    if "label" not in frame.columns:
        frame["label"] = ""
    frame["label"] = frame["label"].fillna("").astype(str)
    frame["x"] = pd.to_numeric(frame["x"], errors="coerce")
    metrics = [m for m in metrics if m in frame.columns]
    summary = _ordered(summarize(frame, ["strategy", "label", "x"], metrics))
    tidy = summary.assign(
        strategy_name=[display_name(s) for s in summary["strategy"]],
        metric_name=[METRICS[m].label for m in summary["metric"]],
    )
    tidy = tidy.rename(columns={"x": x_name, "ci": CI_COLUMN})
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), tidy)}
    md = _sweep_markdown(summary, metrics, x_name)
    md += f"\n{note} {_ci_note(summary['n'], over)}\n"
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], md)
    drawn = [METRICS[m] for m in metrics]
    paths.update(line_figure(summary, drawn, out_stem, log_x=log_x, x_label=x_label))
    return paths


def sweep_report(spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    """F2 / F5 / checkpoints: a metric against one swept number, one line per strategy.

    Runs with ``x: null`` do not depend on the swept number (e.g. Random in the projection
    sweep) and are drawn as dashed horizontal lines with their CI band.
    """
    frame = collect(spec["runs"])
    metric = spec.get("metric") or ("acc" if "acc" in frame.columns else "ppl")
    return _sweep_outputs(
        frame,
        out_stem,
        spec.get("metrics") or [metric],
        x_name=spec.get("x_name", "x"),
        x_label=spec.get("x_label", "x"),
        log_x=bool(spec.get("log_x", False)),
        note=spec.get("note", ""),
    )


def leakage_report(spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    """F3: accuracy, OT and recovery precision / recall against the leaked fraction."""
    frame = collect(spec["runs"])
    frame["x"] = pd.to_numeric(frame["x"]) * 100.0
    return _sweep_outputs(
        frame,
        out_stem,
        ["acc", "otd", "precision", "recall"],
        x_name="leaked %",
        x_label="True texts in the pool (%)",
        log_x=False,
        note=spec.get("note", ""),
    )


def replacement_report(spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    """F4: Vocab and OT of the selection as a growing share is swapped for true texts."""
    rows = []
    for run in spec["runs"]:
        for record in read_record(run["path"], "replacement result", ("records",))["records"]:
            rows.append(
                {
                    "strategy": run["strategy"],
                    "seed": run["seed"],
                    "x": 100.0 * record["fraction"],
                    "trial": record["trial"],
                    "vocab": record["vocab"],
                    "otd": record["otd"],
                }
            )
    if not rows:
        raise UserError("no replacement records to report.")
    return _sweep_outputs(
        pd.DataFrame(rows),
        out_stem,
        ["vocab", "otd"],
        x_name="replaced %",
        x_label="Selection replaced by true texts (%)",
        log_x=False,
        note=spec.get("note", ""),
        over="seeds × trials",
    )


# --------------------------------------------------------------------------- matrices


def _matrix_markdown(
    summary: pd.DataFrame, rows: str, cols: str, row_title: str, decimals: int
) -> str:
    row_keys = list(dict.fromkeys(summary[rows]))
    col_keys = list(dict.fromkeys(summary[cols]))
    strategies = sort_strategies(summary["strategy"])
    multi = len(strategies) > 1
    header = [row_title] + [
        (f"{display_name(s)} · {c}" if multi else str(c)) for s in strategies for c in col_keys
    ]
    body = []
    for r in row_keys:
        cells = [str(r)]
        for s in strategies:
            for c in col_keys:
                hit = summary[(summary[rows] == r) & (summary[cols] == c) & (summary.strategy == s)]
                cells.append(_first_cell(hit, decimals))
        body.append(cells)
    return markdown_table(header, body, "l" + "r" * (len(header) - 1))


def _matrix_report(
    spec: Mapping,
    out_stem: str | os.PathLike,
    axes: tuple[str, str],
    labels: tuple[str, str],
    metrics: tuple[str, str],
    caption: str,
) -> dict[str, Path]:
    """A metric over a rows × columns grid of runs: CSV, Markdown matrix and heat map.

    ``metrics`` is (preferred, fallback): the first one the runs report is shown.
    """
    frame = collect(spec["runs"])
    key = metrics[0] if metrics[0] in frame.columns else metrics[1]
    metric = METRICS[key]
    row, col = axes
    summary = summarize(frame, [row, col, "strategy"], [key])
    tidy = summary.rename(columns={"ci": CI_COLUMN})
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), tidy)}
    title = f"{labels[0]} / {labels[1].lower()}"
    md = _matrix_markdown(summary, row, col, title, metric.decimals)
    parts = [caption, f"{metric.label}.", spec.get("note", ""), _ci_note(summary["n"])]
    md += "\n" + " ".join(part for part in parts if part)
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], md + "\n")
    paths.update(
        heatmaps(
            summary,
            row,
            col,
            row_label=labels[0],
            col_label=labels[1],
            value_label=metric.label,
            out_stem=out_stem,
            reverse=not metric.higher_is_better,
        )
    )
    return paths


def pool_matrix_report(spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    """T4: test accuracy of SELECT for every task × seed-pool pair (table + heat map)."""
    return _matrix_report(
        spec,
        out_stem,
        ("task", "pool"),
        ("Expert task", "Seed pool"),
        ("acc", "ppl"),
        "Rows: expert task; columns: seed pool.",
    )


def optimizer_report(spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    """T5: perplexity for each retraining optimizer (rows) × expert optimizer (columns)."""
    return _matrix_report(
        spec,
        out_stem,
        ("retrain_optimizer", "expert_optimizer"),
        ("Retraining optimizer", "Expert optimizer"),
        ("ppl", "acc"),
        "Rows: optimizer of the retraining on the selection; columns: optimizer that trained "
        "the expert.",
    )
