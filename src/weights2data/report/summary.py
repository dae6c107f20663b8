"""Table 1 in brief, for the README: every strategy that ran, accuracy with its CI beside the
paper's, balanced accuracy, the share of the Random → Expert gap closed, and one sentence per
task on SELECT against Random.

Read from the table's own CSVs (``table1.csv`` and ``table1_paired.csv``), so every number in
it is a number of those tables; the paper's come from :mod:`.paper`.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from ..atomic import write_text
from ..strategies import DISPLAY_ORDER, PRECONDITIONED, display_name
from .cells import MISSING, PLUS_MINUS, format_number
from .headline import read_table_csv
from .paper import PAPER_TABLE1
from .writers import markdown_table

TASK_LABELS = MappingProxyType({"ag_news": "AG News", "dbpedia": "DBpedia", "imdb": "IMDB"})
SELECTS = ("select", "select_batch", "select_pre", "select_batch_pre")


def gap(value: float, random: float, expert: float) -> float:
    """(value − Random) / (Expert − Random); NaN where the Expert does not beat Random."""
    return (value - random) / (expert - random) if expert > random else math.nan


def _percent(share: float) -> str:
    return MISSING if not math.isfinite(share) else f"{format_number(100 * share, 0)}%"


def _cells(rows: pd.DataFrame, task: str, strategy: str) -> list[str]:
    """Acc ± CI [paper] and BAcc of one strategy on one task."""
    at = rows.set_index("metric")
    if "acc" not in at.index:
        return [MISSING, MISSING]
    acc = at.loc["acc"]
    text = f"{format_number(acc['mean'], 1)}{PLUS_MINUS}{format_number(acc['ci95'], 1)}"
    paper = PAPER_TABLE1.get(task, {}).get(strategy)
    text += f" [{paper:.1f}]" if paper is not None else ""
    bacc = format_number(at.loc["bacc", "mean"], 1) if "bacc" in at.index else MISSING
    return [text, bacc]


def _means(table: pd.DataFrame, task: str) -> dict[str, float]:
    acc = table[(table.task == task) & (table.metric == "acc")]
    return dict(zip(acc.strategy, acc["mean"].astype(float), strict=True))


def signed_points(value: float) -> str:
    """A mean difference as the CSV holds it (+8.35, +14.7): a mean over seeds of 400-row test
    sets often ends in 5, where one decimal would round away from the paired table's."""
    text = f"{value:+.2f}"
    return text[:-1] if text.endswith("0") else text


def _clause(row: pd.Series, name: str, share: str) -> str:
    """ "SELECT beats Random by +8.3 points [2.3, 14.4] (36% of the gap" (left open)."""
    interval = f"{signed_points(row.mean_diff)} points [{row.low:.1f}, {row.high:.1f}]"
    if not bool(row.significant):
        return f"{name} does not differ significantly from Random: {interval} ({share} of the gap"
    verb = "beats" if row.mean_diff > 0 else "falls short of"
    return f"{name} {verb} Random by {interval} ({share} of the gap"


def task_sentence(task: str, paired: pd.DataFrame, means: dict[str, float]) -> str:
    """SELECT against Random on one task, and the best SELECT variant where it is another."""
    label = TASK_LABELS.get(task, task)
    rows = paired[(paired.task == task) & (paired.metric == "acc")]
    rows = rows[rows.reference == "random"].set_index("strategy")
    ran = [s for s in SELECTS if s in rows.index and s in means]
    if not ran:
        return f"- **{label}**: no SELECT ran."
    random, expert = means.get("random", math.nan), means.get("expert", math.nan)

    def share(strategy: str) -> str:
        return _percent(gap(means[strategy], random, expert))

    first = "select" if "select" in ran else ran[0]
    text = _clause(rows.loc[first], display_name(first), share(first))
    paper = PAPER_TABLE1.get(task, {})
    if first == "select" and {"random", "select", "expert"} <= set(paper):
        text += f"; the paper's: {_percent(gap(paper['select'], paper['random'], paper['expert']))}"
    text += ")"
    best = max(ran, key=lambda s: means[s])
    if best != first:
        name = f"the best variant, {display_name(best)},"
        text += "; " + _clause(rows.loc[best], name, share(best)) + ")"
    return f"- **{label}**: {text}."


def summary_markdown(table_csv: Path, paired_csv: Path) -> str:
    """The brief Table 1 and one sentence a task, as Markdown."""
    table = read_table_csv(Path(table_csv), ("task", "strategy", "metric", "mean", "ci95", "n"))
    paired = read_table_csv(
        Path(paired_csv),
        ("task", "strategy", "reference", "metric", "mean_diff", "low", "high", "significant"),
    )
    tasks = list(dict.fromkeys(table.task.astype(str)))
    strategies = [s for s in DISPLAY_ORDER if s in set(table.strategy)]
    header, body = ["Strategy"], []
    for task in tasks:
        label = TASK_LABELS.get(task, task)
        header += [f"{label}: Acc [paper]", "BAcc", "gap"]
    means_of = {task: _means(table, task) for task in tasks}
    for strategy in strategies:
        row = [display_name(strategy)]
        for task in tasks:
            rows = table[(table.task == task) & (table.strategy == strategy)]
            means = means_of[task]
            share = math.nan
            if strategy not in ("random", "expert") and strategy in means:
                share = gap(means[strategy], means.get("random", math.nan), means["expert"])
            row += [*_cells(rows, task, strategy), _percent(share)]
        body.append(row)
    seeds = int(table[table.metric == "acc"]["n"].max())
    intro = (
        f"Test accuracy (%, mean{PLUS_MINUS}95% CI over {seeds} seeds; in brackets the paper's, "
        "GPT-2 124M, K = 1,000), balanced accuracy (%), and the share of the Random → Expert "
        "gap closed, (strategy − Random) / (Expert − Random)"
    )
    if any(s in PRECONDITIONED for s in strategies):
        intro += "; the Adam-aware rows are this project's addition, not the paper's"
    intro += ":\n\n"
    sentences = [task_sentence(t, paired, means_of[t]) for t in tasks]
    table_md = markdown_table(header, body, "l" + "rrr" * len(tasks))
    return intro + table_md + "\n" + "\n".join(sentences) + "\n"


def write_summary(table_csv: Path, paired_csv: Path, out: Path) -> Path:
    write_text(Path(out), summary_markdown(table_csv, paired_csv))
    return Path(out)
