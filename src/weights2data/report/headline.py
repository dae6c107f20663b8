"""The run's headline numbers as one nested JSON, for `dvc metrics show` and `dvc exp show`.

Per Table 1 task and strategy: accuracy and balanced accuracy (%); per Table 2 base and
strategy: perplexity; per task (and base): the premise, mean cos(S_true, Delta) over experts,
and SELECT's cos(S_sel, S_true). Read from the tables' own CSVs, so the metrics are the
tables' numbers and nothing else.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..atomic import write_text
from ..errors import UserError

TABLE_METRICS = {"table1": ("task", ("acc", "bacc")), "table2": ("model", ("ppl",))}


def read_table_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A table CSV a report step reads, with a clear error when it is unreadable or short."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"{path} is not a readable table CSV ({exc}); rerun its rule.") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks the columns {missing}; rerun its rule.")
    return frame


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def table_metrics(path: Path, group: str, metrics: tuple[str, ...]) -> dict:
    frame = read_table_csv(Path(path), (group, "strategy", "metric", "mean"))
    frame = frame[frame["metric"].isin(metrics)]
    out: dict = {}
    for row in frame.itertuples():
        cell = out.setdefault(str(getattr(row, group)), {}).setdefault(row.strategy, {})
        cell[row.metric] = _number(row.mean)
    return out


def premise_metrics(path: Path) -> dict:
    """Per group (task, or base for Table 2): the mean premise over experts, and the mean
    cos(S_sel, S_true) of SELECT's selections."""
    frame = read_table_csv(Path(path), ("strategy", "cos_truth_delta", "cos_sel_truth"))
    group = "task" if "task" in frame.columns else "model"
    out = {}
    for name, rows in frame.groupby(group, sort=True):
        experts, select = rows[rows.strategy == "expert"], rows[rows.strategy == "select"]
        out[str(name)] = {
            "cos_truth_delta": _number(experts["cos_truth_delta"].mean()),
            "select_cos_sel_truth": _number(select["cos_sel_truth"].mean()),
        }
    return out


def write_headline_metrics(tables: dict[str, Path], diagnostics: list[Path], out: Path) -> dict:
    """``tables``: {"table1": csv, "table2": csv} (either may be absent)."""
    metrics: dict = {}
    for name, path in tables.items():
        group, names = TABLE_METRICS[name]
        metrics[name] = table_metrics(path, group, names)
    for path in diagnostics:
        metrics.setdefault("premise", {}).update(premise_metrics(path))
    write_text(out, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics
