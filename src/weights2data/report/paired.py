"""Paired comparisons of strategies over seeds: does SELECT beat Random, and by how much?

Per seed, both strategies share the expert, the seed pool and the test split, so the fair test
is on the per-seed difference: its mean and 95% Student-t interval (``stats.paired_difference``).
A gap is called significant when that interval excludes zero. Against Random, the share of
the Random → Expert gap a strategy closes is the paper's headline: mean(strategy − Random) /
mean(Expert − Random) over the seeds all three ran.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_text
from ..stats import CI_LEVEL, paired_difference
from ..strategies import display_name
from .cells import MISSING, Metric, format_number
from .writers import markdown_table, suffixed, write_csv

# (strategy, reference) pairs compared in every table that has both: each SELECT against
# Random, and the Adam-aware SELECT against the paper's.
PAIRS: tuple[tuple[str, str], ...] = (
    ("select", "random"),
    ("select_batch", "random"),
    ("select_pre", "random"),
    ("select_batch_pre", "random"),
    ("select_pre", "select"),
)

# Differences as the paired tables show them: accuracy in points, perplexity as it is.
ACC_POINTS = Metric("acc", "Acc (points)", 1, scale=100.0)
BACC_POINTS = Metric("bacc", "BAcc (points)", 1, scale=100.0)
PPL = Metric("ppl", "PPL", 2, higher_is_better=False)


def paired_rows(
    records: pd.DataFrame,
    group: str,
    metric: str,
    *,
    scale: float = 1.0,
    higher_is_better: bool = True,
    pairs: Sequence[tuple[str, str]] = PAIRS,
) -> pd.DataFrame:
    """One row per group × pair: mean of (a − b) over shared seeds, CI, and the verdict."""
    rows = []
    for g, sub in records.groupby(group, sort=True):
        by_strategy = {
            s: dict(zip(part["seed"].astype(int), part[metric].astype(float) * scale, strict=True))
            for s, part in sub.groupby("strategy")
        }
        for a, b in pairs:
            if a not in by_strategy or b not in by_strategy:
                continue
            diff = paired_difference(by_strategy[a], by_strategy[b])
            better = diff["mean"] > 0 if higher_is_better else diff["mean"] < 0
            rows.append(
                {
                    group: str(g),
                    "strategy": a,
                    "reference": b,
                    "metric": metric,
                    "mean_diff": diff["mean"],
                    "ci95": diff["ci"],
                    "low": diff["low"],
                    "high": diff["high"],
                    "seeds": diff["seeds"],
                    "better": bool(better) if diff["seeds"] else None,
                    "significant": diff["significant"],
                    "gap_closed": gap_closed(by_strategy, a, b),
                }
            )
    columns = [group, "strategy", "reference", "metric", "mean_diff", "ci95", "low", "high"]
    return pd.DataFrame(rows, columns=columns + ["seeds", "better", "significant", "gap_closed"])


def gap_closed(by_strategy: dict[str, dict[int, float]], strategy: str, reference: str) -> float:
    """(strategy − Random) / (Expert − Random), means over the seeds all three ran; NaN unless
    the reference is Random and the Expert ran (or the Expert does not beat Random)."""
    expert = by_strategy.get("expert")
    if reference != "random" or not expert:
        return math.nan
    seeds = sorted(set(by_strategy[strategy]) & set(by_strategy[reference]) & set(expert))
    if not seeds:
        return math.nan
    ref = np.array([by_strategy[reference][s] for s in seeds])
    gap = float(np.mean([expert[s] for s in seeds]) - ref.mean())
    if gap == 0:
        return math.nan
    return float(np.mean([by_strategy[strategy][s] for s in seeds]) - ref.mean()) / gap


def metric_rows(records: pd.DataFrame, group: str, metric: Metric) -> pd.DataFrame:
    """:func:`paired_rows` of one metric, with its display scale and direction."""
    return paired_rows(
        records, group, metric.key, scale=metric.scale, higher_is_better=metric.higher_is_better
    )


def verdict(row: dict) -> str:
    """ "better, significant", "worse, not significant", …; "—" when no seed was shared."""
    if not row["seeds"]:
        return MISSING
    side = "better" if row["better"] else "worse"
    return f"{side}, significant" if row["significant"] else f"{side}, not significant"


def interval_text(row: dict, decimals: int) -> str:
    """ "[low, high]" of a paired row; "—" with fewer than two seeds (no interval)."""
    if row["seeds"] < 2:
        return MISSING
    return f"[{format_number(row['low'], decimals)}, {format_number(row['high'], decimals)}]"


def write_paired_table(
    rows: pd.DataFrame, group: str, metrics: Sequence[Metric], out_stem: str | os.PathLike
) -> dict[str, Path]:
    """``{out_stem}.csv`` (tidy) and ``{out_stem}.md``: one line per group × pair × metric.

    ``metrics`` give each metric key its label and decimals (others: the key, 3 decimals).
    """
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), rows)}
    by_key = {m.key: m for m in metrics}
    body = []
    for row in rows.to_dict("records"):
        metric = by_key.get(row["metric"], Metric(row["metric"], row["metric"], 3))
        interval = interval_text(row, metric.decimals)
        pair = f"{display_name(row['strategy'])} − {display_name(row['reference'])}"
        mean = format_number(row["mean_diff"], metric.decimals)
        gap = row.get("gap_closed", math.nan)
        gap = MISSING if gap is None or math.isnan(gap) else f"{100 * gap:.0f}%"
        body.append(
            [
                str(row[group]),
                pair,
                metric.label,
                mean,
                interval,
                str(row["seeds"]),
                verdict(row),
                gap,
            ]
        )
    level = f"{int(CI_LEVEL * 100)}%"
    header = [
        group.capitalize(),
        "Comparison",
        "Metric",
        "Mean Δ",
        f"{level} CI",
        "Seeds",
        "Verdict",
        "Gap closed",
    ]
    md = markdown_table(header, body, "lllrrrlr")
    md += (
        "\nΔ = per-seed difference (strategy − reference), averaged over the seeds both ran; "
        f"the interval is the {level} Student-t interval of that mean (n − 1 degrees of "
        "freedom). Significant = the interval excludes 0. Gap closed = (strategy − Random) / "
        "(Expert − Random), means over the seeds all three ran.\n"
    )
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], md)
    return paths
