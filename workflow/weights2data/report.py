"""Tables and figures of the paper, regenerated from per-run records (Tables 1-3).

Every table is written three ways from one summary: a tidy CSV (one row per task/model ×
strategy × metric, with mean, std, the 95% CI half-width and n), a GitHub-Markdown table and a
booktabs LaTeX tabular. Cells read "mean ± half-width of the 95% Student-t confidence interval"
over seeds (``stats.confidence_interval``); a cell with one seed shows the mean alone, a cell
with none shows "—". Output is deterministic: fixed row and column
orders, fixed decimals, and figures without timestamps.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from . import figstyle
from .atomic import atomic_path, write_text
from .errors import UserError
from .stats import CI_LEVEL, confidence_interval

MISSING = "—"
PLUS_MINUS = " ± "

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


@dataclass(frozen=True)
class Metric:
    """How a record column is shown: scale (e.g. ×100 for %), decimals and column label."""

    key: str
    label: str
    decimals: int
    scale: float = 1.0
    unit: str = ""
    fraction: bool = False  # the raw value must lie in [0, 1]


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


# --------------------------------------------------------------------------- formatting


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


def _md_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """A GitHub-Markdown table; ``align`` has one letter per column: l, r or c."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    if len(align) != len(header) or any(len(r) != len(header) for r in rows):
        raise ValueError("every row and the alignment must have one entry per header column")
    lines = [
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "| " + " | ".join(marks[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX specials; "±" and "—" become $\\pm$ and ---."""
    out = "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))
    return out.replace(PLUS_MINUS, r" $\pm$ ").replace(MISSING, "---")


# --------------------------------------------------------------------------- validation


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
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


def _numeric(frame: pd.DataFrame, metrics: Sequence[Metric], what: str) -> pd.DataFrame:
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


def _keys(frame: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
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
        figstyle.sort_strategies(frame["strategy"])  # unknown names are an error
    return frame


def _summary(frame: pd.DataFrame, group: str, metrics: Sequence[Metric]) -> dict[tuple, Cell]:
    """{(group value, strategy, metric key): Cell} over seeds, scaled for display."""
    out: dict[tuple, Cell] = {}
    for (g, strategy), sub in frame.groupby([group, "strategy"], sort=True):
        for m in metrics:
            out[(str(g), str(strategy), m.key)] = cell_of(sub[m.key].dropna(), m.scale)
    return out


def _row_order(paper_rows: Sequence[str], present: Sequence[str]) -> list[str]:
    extras = [s for s in figstyle.sort_strategies(present) if s not in paper_rows]
    rows = [s for s in paper_rows if s != "expert"] + extras
    return rows + (["expert"] if "expert" in paper_rows else [])


def _size_key(label: str) -> tuple[float, str]:
    """Order model labels by parameter count when they name one ("135M" < "1B")."""
    units = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
    found = re.findall(r"(\d+(?:\.\d+)?)\s*([kmbt])(?![a-z])", label.lower())
    if not found:
        return (math.inf, label)
    number, unit = found[-1]
    return (float(number) * units[unit], label)


def _order(values, given: Sequence[str] | None, what: str, key=None) -> list[str]:
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


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """A table as CSV, atomically, with numbers short enough to diff."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
    return path


def suffixed(stem: str | os.PathLike, suffix: str) -> Path:
    """``stem`` + ``suffix`` (``figures/table1`` + ``.csv``), keeping dots inside the stem."""
    stem = Path(stem)
    return stem.with_name(stem.name + suffix)


def _seed_note(summary: Mapping[tuple, Cell]) -> str:
    """One sentence saying what a cell holds, with the seed count(s) actually found."""
    ns = sorted({cell.n for cell in summary.values() if cell.n > 0})
    if not ns:
        return "No runs recorded yet; — = no value."
    span = str(ns[0]) if ns[0] == ns[-1] else f"{ns[0]}–{ns[-1]}"
    return (
        f"Cells are mean ± half-width of the {int(CI_LEVEL * 100)}% Student-t confidence "
        f"interval over seeds (n = {span}; one seed: mean only); — = no value."
    )


# --------------------------------------------------------------------------- grouped tables


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
                            "strategy_name": figstyle.display_name(s),
                            "metric": m.key,
                            "unit": m.unit,
                            "mean": cell.mean,
                            "std": cell.std,
                            "ci95": cell.ci,
                            "n": cell.n,
                        }
                    )
    columns = [group, "strategy", "strategy_name", "metric", "unit", "mean", "std", "ci95", "n"]
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), pd.DataFrame(tidy, columns=columns))}

    body = []
    for s in rows:
        cells = [figstyle.display_name(s)]
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
        _grouped_bars(summary, groups, group_names, rows, fig_metric, figure_label, out_stem)
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
        if cells[0] == figstyle.display_name("expert"):
            lines.append(r"\midrule")
        lines.append(" & ".join(tex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _grouped_bars(
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
    width = min(figstyle.DOUBLE_COLUMN[0], 2.0 + 1.3 * max(1, len(groups)))
    with figstyle.style():
        fig, axes = figstyle.new_figure((width, figstyle.SINGLE_COLUMN[1] + 0.6))
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
                color=figstyle.strategy_color(s),
                label=figstyle.display_name(s),
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
        return figstyle.save_figure(fig, out_stem)


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
    frame = _require(records, columns, "table1 records")
    frame = _keys(
        _numeric(frame, TABLE1_METRICS, "table1 records"),
        ["task", "strategy", "seed"],
        "table1 records",
    )
    frame["task"] = frame["task"].astype(str)
    return _grouped_table(
        frame,
        out_stem,
        group="task",
        groups=_order(frame["task"], tasks, "tasks"),
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
    frame = _require(records, columns, "table2 records")
    frame = _keys(
        _numeric(frame, TABLE2_METRICS, "table2 records"),
        ["model", "strategy", "seed"],
        "table2 records",
    )
    frame["model"] = frame["model"].astype(str)
    return _grouped_table(
        frame,
        out_stem,
        group="model",
        groups=_order(frame["model"], models, "models", key=_size_key),
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
    frame = _require(summary, ["name", "role", "source", "classes"], "table3 summary")
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


# --------------------------------------------------------------------------- class balance


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
    frame = _require(selections, ["strategy", "pseudolabel"], "class-balance selections")
    has_task = "task" in frame.columns
    if not has_task:
        frame["task"] = ""
    for c in ("task", "strategy"):
        if frame[c].isna().any():
            raise UserError(f"class-balance selections column {c!r} has missing values.")
    figstyle.sort_strategies(frame["strategy"])  # unknown names are an error
    frame["task"] = frame["task"].astype(str)
    tasks = sorted(frame["task"].unique())
    if isinstance(class_names, Mapping):
        if not has_task:
            raise UserError(
                "class_names is a per-task mapping but selections have no task column;"
                " add the task column or pass one list of class names."
            )
        missing = [t for t in tasks if t not in class_names]
        if missing:
            raise UserError(f"class_names has no entry for task(s) {', '.join(missing)}; add them.")
        names = {t: [str(c) for c in class_names[t]] for t in tasks}
    else:
        if isinstance(class_names, str):
            raise UserError("class_names is one string; pass a list of class names.")
        names = {t: [str(c) for c in class_names] for t in tasks}
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
    frame["pseudolabel"] = labels.astype(int)

    rows = []
    for t in tasks:
        for s in figstyle.sort_strategies(frame.loc[frame["task"] == t, "strategy"]):
            sub = frame[(frame["task"] == t) & (frame["strategy"] == s)]
            counts = np.bincount(sub["pseudolabel"], minlength=len(names[t]))
            total = int(counts.sum())
            for c, count in enumerate(counts):
                rows.append(
                    {
                        "task": t,
                        "strategy": s,
                        "strategy_name": figstyle.display_name(s),
                        "label": c,
                        "class_name": names[t][c],
                        "count": int(count),
                        "proportion": count / total,
                    }
                )
    table = pd.DataFrame(
        rows,
        columns=["task", "strategy", "strategy_name", "label", "class_name", "count", "proportion"],
    )
    if not has_task:
        table = table.drop(columns="task")
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), table)}
    if not has_task:
        table = table.assign(task="")

    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    n_strat = max(
        len(figstyle.sort_strategies(frame.loc[frame["task"] == t, "strategy"])) for t in tasks
    )
    size = (min(figstyle.DOUBLE_COLUMN[0], 3.4 * ncols), nrows * (1.4 + 0.28 * n_strat))
    with figstyle.style():
        fig, axes = figstyle.new_figure(size, ncols=ncols, nrows=nrows)
        for k, ax in enumerate(axes.flat):
            if k >= len(tasks):
                ax.set_visible(False)
                continue
            t = tasks[k]
            sub = table[table["task"] == t]
            strategies = list(dict.fromkeys(sub["strategy"]))
            ys = np.arange(len(strategies))[::-1]
            left = np.zeros(len(strategies))
            for c, cname in enumerate(names[t]):
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
                    color=figstyle.class_color(c),
                    label=cname,
                    edgecolor="white",
                    linewidth=0.3,
                )
                left += props
            for c in range(1, len(names[t])):
                ax.axvline(c / len(names[t]), color="0.3", linestyle=":", linewidth=0.7)
            ax.set_yticks(ys, [figstyle.display_name(s) for s in strategies])
            ax.set_xlim(0, 1)
            ax.set_xlabel("Share of selected texts")
            ax.grid(False)
            if t:
                ax.set_title((task_names or {}).get(t, t))
            ax.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, -0.42),
                ncols=min(4, len(names[t])),
                fontsize=figstyle.LEGEND_SIZE - 1,
            )
        paths.update(figstyle.save_figure(fig, out_stem))
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
    frame = _require(records, ["task", "seed", "acc", "loss", "majority"], "expert records")
    frame = _keys(
        _numeric(frame, EXPERT_METRICS, "expert records"), ["task", "seed"], "expert records"
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
