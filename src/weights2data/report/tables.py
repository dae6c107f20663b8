"""The paper's Tables 1, 2 and 3 and the experts table, from per-run records.

Tables 1 and 2 are written three ways from one summary: a tidy CSV (one row per task/model ×
strategy × metric, with mean, std, the 95% CI half-width and n), a GitHub-Markdown table and a
booktabs LaTeX tabular, plus a bar figure (:mod:`.figures`). Cells are :mod:`.cells` cells over
seeds. Output is deterministic: fixed row and column orders and fixed decimals.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_text
from ..errors import UserError
from ..strategies import display_name, sort_strategies
from .cells import CI_PHRASE, EMPTY, MISSING, Cell, Metric, n_span
from .figures import grouped_bars
from .frames import check_keys, group_order, numeric_metrics, require_columns, size_key
from .writers import markdown_table, suffixed, tex_escape, write_csv

# Row orders of the paper's tables; strategies outside them (e.g. Bottom-K) go before Expert.
TABLE1_ROWS: tuple[str, ...] = (
    "random",
    "topk_balanced",
    "topk",
    "pmin",
    "pmax",
    "select_batch",
    "select",
    "expert",
)
TABLE2_ROWS: tuple[str, ...] = (
    "pmin",
    "pmax",
    "random",
    "topk",
    "select_batch",
    "select",
    "expert",
)

TABLE1_METRICS = (
    Metric("vocab", "Vocab", 1, unit="%"),
    Metric("otd", "OTD", 3),
    Metric("acc", "Acc", 1, scale=100.0, unit="%", fraction=True),
    Metric("bacc", "BAcc", 1, scale=100.0, unit="%", fraction=True),
    Metric("loss", "Loss", 3),
)
TABLE2_METRICS = (
    Metric("ppl", "PPL", 2),
    Metric("ot", "OT", 3),
    Metric("vocab", "Vocab", 1, unit="%"),
)
EXPERT_METRICS = (
    Metric("acc", "Acc (%)", 1, scale=100.0, unit="%", fraction=True),
    Metric("loss", "Loss", 3),
    Metric("majority", "Majority class (%)", 1, scale=100.0, unit="%", fraction=True),
)
TIDY_COLUMNS = ["strategy", "strategy_name", "metric", "unit", "mean", "std", "ci95", "n"]


# --------------------------------------------------------------------------- summaries


def _summary(frame: pd.DataFrame, group: str, metrics: Sequence[Metric]) -> dict[tuple, Cell]:
    """{(group value, strategy, metric key): Cell} over seeds, scaled for display."""
    out: dict[tuple, Cell] = {}
    for (g, strategy), sub in frame.groupby([group, "strategy"], sort=True):
        for m in metrics:
            out[(str(g), str(strategy), m.key)] = m.cell(sub[m.key].dropna())
    return out


def _row_order(paper_rows: Sequence[str], present: Sequence[str]) -> list[str]:
    extras = [s for s in sort_strategies(present) if s not in paper_rows]
    rows = [s for s in paper_rows if s != "expert"] + extras
    return rows + (["expert"] if "expert" in paper_rows else [])


def _seed_note(summary: Mapping[tuple, Cell]) -> str:
    """One sentence saying what a cell holds, with the seed count(s) actually found."""
    span = n_span(cell.n for cell in summary.values())
    if span is None:
        return "No runs recorded yet; — = no value."
    return f"Cells are {CI_PHRASE} over seeds (n = {span}; one seed: mean only); — = no value."


# --------------------------------------------------------------------------- grouped tables


def _tidy(
    summary: Mapping[tuple, Cell],
    group: str,
    groups: list[str],
    rows: list[str],
    metrics: Sequence[Metric],
) -> pd.DataFrame:
    """One CSV row per group × strategy × metric that has a value."""
    tidy = []
    for g in groups:
        for s in rows:
            for m in metrics:
                cell = summary.get((g, s, m.key), EMPTY)
                if cell.n:
                    tidy.append(
                        {
                            group: g,
                            "strategy": s,
                            "strategy_name": display_name(s),
                            "metric": m.key,
                            "unit": m.unit,
                            "mean": cell.mean,
                            "std": cell.std,
                            "ci95": cell.ci,
                            "n": cell.n,
                        }
                    )
    return pd.DataFrame(tidy, columns=[group, *TIDY_COLUMNS])


def _grouped_table(
    records: pd.DataFrame,
    out_stem: str | os.PathLike,
    *,
    group: str,
    groups: list[str],
    group_names: Mapping[str, str],
    paper_rows: Sequence[str],
    metrics: Sequence[Metric],
    figure_metric: str,
    figure_label: str,
    note: str,
) -> dict[str, Path]:
    summary = _summary(records, group, metrics)
    rows = _row_order(paper_rows, records["strategy"].unique())
    tidy = _tidy(summary, group, groups, rows, metrics)
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), tidy)}

    body = []
    for s in rows:
        cells = [display_name(s)]
        for g in groups:
            for m in metrics:
                cells.append(summary.get((g, s, m.key), EMPTY).text(m.decimals))
        body.append(cells)

    header = ["Strategy"] + [f"{group_names.get(g, g)} {m.label}" for g in groups for m in metrics]
    md = markdown_table(header, body, "l" + "r" * (len(header) - 1))
    md += f"\n{note} {_seed_note(summary)}\n"
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], md)

    paths["tex"] = suffixed(out_stem, ".tex")
    write_text(paths["tex"], _grouped_tex(groups, group_names, metrics, body))

    fig_metric = next(m for m in metrics if m.key == figure_metric)
    paths.update(
        grouped_bars(summary, groups, group_names, rows, fig_metric, figure_label, out_stem)
    )
    return paths


def _grouped_tex(
    groups: list[str],
    group_names: Mapping[str, str],
    metrics: Sequence[Metric],
    body: list[list[str]],
) -> str:
    k = len(metrics)
    lines = [
        r"\begin{tabular}{l" + ("r" * k) * len(groups) + "}",
        r"\toprule",
        " & ".join(
            [""]
            + [rf"\multicolumn{{{k}}}{{c}}{{{tex_escape(group_names.get(g, g))}}}" for g in groups]
        )
        + r" \\",
        " ".join(rf"\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(groups))),
        " & ".join(["Strategy"] + [tex_escape(m.label) for _ in groups for m in metrics]) + r" \\",
        r"\midrule",
    ]
    for cells in body:
        if cells[0] == display_name("expert"):
            lines.append(r"\midrule")
        lines.append(" & ".join(tex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def table1(
    records: pd.DataFrame,
    out_stem: str | os.PathLike,
    *,
    tasks: Sequence[str] | None = None,
    task_names: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Table 1 (classification): Vocab, OTD, Acc, Loss per task × strategy, + accuracy bars.

    ``records``: one row per run with task, strategy, seed, vocab, otd, acc (fraction), loss
    and optionally bacc (balanced accuracy, fraction; empty where a run predates it).
    Writes ``{out_stem}.csv/.md/.tex/.pdf/.png``; returns those paths by suffix.
    """
    columns = ["task", "strategy", "seed", "vocab", "otd", "acc", "loss"]
    if isinstance(records, pd.DataFrame) and "bacc" not in records.columns:
        records = records.assign(bacc=math.nan)
    frame = require_columns(records, columns, "table1 records")
    frame = check_keys(
        numeric_metrics(frame, TABLE1_METRICS, "table1 records"),
        ["task", "strategy", "seed"],
        "table1 records",
    )
    frame["task"] = frame["task"].astype(str)
    return _grouped_table(
        frame,
        out_stem,
        group="task",
        groups=group_order(frame["task"], tasks, "tasks"),
        group_names=dict(task_names or {}),
        paper_rows=TABLE1_ROWS,
        metrics=TABLE1_METRICS,
        figure_metric="acc",
        figure_label="Test accuracy (%)",
        note="Vocab = vocabulary containment with the true training set (%); OTD = optimal-"
        "transport distance of sentence embeddings to it; Acc (%), BAcc (balanced accuracy: mean "
        "recall over classes, %) and Loss on the test split.",
    )


def table2(
    records: pd.DataFrame,
    out_stem: str | os.PathLike,
    *,
    models: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Table 2 (SFT): test perplexity, OT (Sinkhorn) and Vocab per model size × strategy.

    ``records``: one row per run with model (a size label such as "1B"), strategy, seed,
    ppl, ot, vocab. Models are ordered by the size in their label unless ``models`` is given.
    """
    columns = ["model", "strategy", "seed", "ppl", "ot", "vocab"]
    frame = require_columns(records, columns, "table2 records")
    frame = check_keys(
        numeric_metrics(frame, TABLE2_METRICS, "table2 records"),
        ["model", "strategy", "seed"],
        "table2 records",
    )
    frame["model"] = frame["model"].astype(str)
    return _grouped_table(
        frame,
        out_stem,
        group="model",
        groups=group_order(frame["model"], models, "models", key=size_key),
        group_names={},
        paper_rows=TABLE2_ROWS,
        metrics=TABLE2_METRICS,
        figure_metric="ppl",
        figure_label="Test perplexity",
        note="PPL = test perplexity over all tokens; OT = Sinkhorn optimal-transport distance and "
        "Vocab = vocabulary containment (%) with the true SFT set.",
    )


# --------------------------------------------------------------------------- Table 3


_SPLIT_ALIASES = {
    "train": ("train", "train_rows"),
    "val": ("val", "val_rows"),
    "test": ("test", "test_rows"),
}


def _count(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, int | np.integer) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if pd.isna(value):
        return MISSING
    return str(value)


def table3(summary: pd.DataFrame, out_stem: str | os.PathLike) -> dict[str, Path]:
    """Table 3: the datasets used and their roles, to ``{out_stem}.csv/.md/.tex``.

    Columns: name, role, source, classes and row counts train, val, test (``*_rows`` also
    accepted); missing values show as "—". Rows are sorted by role, then name.
    """
    frame = require_columns(summary, ["name", "role", "source", "classes"], "table3 summary")
    for split, aliases in _SPLIT_ALIASES.items():
        found = [a for a in aliases if a in frame.columns]
        if not found:
            raise UserError(
                f"table3 summary lacks a {split!r} row-count column (or {aliases[1]!r}); "
                "give NaN where a dataset has no such split."
            )
        frame[split] = frame[found[0]]
    for c in ("name", "role"):
        if frame[c].isna().any():
            raise UserError(f"table3 summary column {c!r} has missing values; fill them in.")
    frame = frame[["name", "role", "source", "classes", "train", "val", "test"]]
    frame = frame.sort_values(["role", "name"], kind="stable").reset_index(drop=True)
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), frame)}

    header = ["Dataset", "Role", "Source", "Classes", "Train", "Val", "Test"]
    body = [
        [str(r["name"]), str(r["role"]), MISSING if pd.isna(r["source"]) else str(r["source"])]
        + [_count(r[c]) for c in ("classes", "train", "val", "test")]
        for r in frame.to_dict("records")
    ]
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], markdown_table(header, body, "lll" + "r" * 4))
    lines = [r"\begin{tabular}{lllrrrr}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(tex_escape(c) for c in cells) + r" \\" for cells in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    paths["tex"] = suffixed(out_stem, ".tex")
    write_text(paths["tex"], "\n".join(lines) + "\n")
    return paths


# --------------------------------------------------------------------------- experts


def experts_table(
    records: pd.DataFrame,
    out_stem: str | os.PathLike,
    *,
    task_names: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """The expert (final) models: test accuracy and loss per task, beside the majority-class rate.

    The majority-class rate (share of the test split in its largest class) is the accuracy
    a constant guess gets, so an expert is only meaningful well above it.
    ``records``: task, seed, acc, loss, majority (fractions). Writes ``{out_stem}.csv/.md``.
    """
    frame = require_columns(records, ["task", "seed", "acc", "loss", "majority"], "expert records")
    frame = check_keys(
        numeric_metrics(frame, EXPERT_METRICS, "expert records"), ["task", "seed"], "expert records"
    )
    frame["task"] = frame["task"].astype(str)
    frame["strategy"] = "expert"
    summary = _summary(frame, "task", EXPERT_METRICS)
    tasks = sorted(frame["task"].unique())
    names = dict(task_names or {})

    tidy = [
        {"task": t, "metric": m.key, "unit": m.unit, **cell._asdict()}
        for t in tasks
        for m in EXPERT_METRICS
        for cell in [summary[(t, "expert", m.key)]]
        if cell.n
    ]
    columns = ["task", "metric", "unit", "mean", "std", "ci", "n"]
    paths = {
        "csv": write_csv(
            suffixed(out_stem, ".csv"),
            pd.DataFrame(tidy, columns=columns).rename(columns={"ci": "ci95"}),
        )
    }
    header = ["Task"] + [m.label for m in EXPERT_METRICS] + ["Seeds"]
    body = []
    for t in tasks:
        cells = [names.get(t, t)]
        cells += [summary[(t, "expert", m.key)].text(m.decimals) for m in EXPERT_METRICS]
        cells.append(str(int((frame["task"] == t).sum())))
        body.append(cells)
    md = markdown_table(header, body, "l" + "r" * (len(header) - 1))
    md += f"\n{_seed_note(summary)}\n"
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], md)
    return paths
