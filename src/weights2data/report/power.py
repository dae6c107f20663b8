"""How many seeds Table 1 needs: from each paired difference's interval, the per-seed spread
and the fewest seeds at which a true difference of the paper's size would be told from zero.

A paired interval over n seeds has half-width h = t(0.975, n − 1) · SD / √n, so the committed
``table1_paired.csv`` gives SD = h · √n / t; a margin m is resolved at the smallest n with
t(0.975, n − 1) · SD / √n < m (the interval expected to exclude zero when the difference is m).
"""

from __future__ import annotations

import math
from pathlib import Path

from ..atomic import write_text
from ..stats import CI_LEVEL, t_quantile
from ..strategies import display_name
from .cells import format_number
from .headline import read_table_csv
from .paper import PAPER_TABLE1
from .summary import SELECTS, TASK_LABELS, signed_points
from .writers import markdown_table

MOST_SEEDS = 50


def paper_margin(task: str) -> float:
    """The paper's SELECT − Random on a task (points; a variant such as ``imdb_128_left`` counts
    as its task), NaN where the paper has no such row."""
    key = next((k for k in PAPER_TABLE1 if task == k or task.startswith(k + "_")), "")
    paper = PAPER_TABLE1.get(key, {})
    return paper["select"] - paper["random"] if {"select", "random"} <= set(paper) else math.nan


def spread(half_width: float, seeds: int) -> float:
    """The per-seed standard deviation behind a paired interval's half-width."""
    if seeds < 2 or not math.isfinite(half_width):
        return math.nan
    return half_width * math.sqrt(seeds) / t_quantile(CI_LEVEL, seeds - 1)


def seeds_needed(sd: float, margin: float) -> str:
    """The fewest seeds (≥ 2) whose interval half-width falls below ``margin``."""
    if not (math.isfinite(sd) and math.isfinite(margin)) or margin <= 0:
        return "—"
    for n in range(2, MOST_SEEDS + 1):
        if t_quantile(CI_LEVEL, n - 1) * sd / math.sqrt(n) < margin:
            return str(n)
    return f"> {MOST_SEEDS}"


def power_markdown(paired_csv: Path, margin_task: str = "imdb") -> str:
    """Per task and SELECT variant: the difference, its per-seed SD and the seeds it needs."""
    paired = read_table_csv(
        Path(paired_csv), ("task", "strategy", "reference", "metric", "mean_diff", "ci95", "seeds")
    )
    rows = paired[(paired.metric == "acc") & (paired.reference == "random")]
    rows = rows[rows.strategy.isin(SELECTS)]
    fixed = paper_margin(margin_task)
    label = TASK_LABELS.get(margin_task, margin_task)
    header = [
        "Task",
        "SELECT variant − Random",
        "seeds",
        "Acc (points)",
        "per-seed SD",
        f"seeds for +{format_number(fixed, 1)} (the paper's {label})",
        "seeds for the paper's margin on this task",
    ]
    body = []
    for row in rows.itertuples():
        sd = spread(float(row.ci95), int(row.seeds))
        own = paper_margin(row.task)
        body.append(
            [
                TASK_LABELS.get(row.task, row.task),
                display_name(row.strategy),
                str(int(row.seeds)),
                signed_points(row.mean_diff),
                format_number(sd, 1),
                seeds_needed(sd, fixed),
                f"{seeds_needed(sd, own)} (+{format_number(own, 1)})" if own > 0 else "—",
            ]
        )
    intro = (
        "Seeds and power: each SELECT variant − Random (test accuracy, paired by seed), the "
        "per-seed standard deviation behind its 95% interval, and the fewest seeds at which a "
        "true difference of the paper's size would have an interval that excludes zero "
        "(t(0.975, n − 1) · SD / √n below the margin).\n\n"
    )
    return intro + markdown_table(header, body, "llrrrrr") + "\n"


def write_power(paired_csv: Path, out: Path) -> Path:
    write_text(Path(out), power_markdown(paired_csv))
    return Path(out)
