"""Gather per-run JSON records into the paper's Tables 1–3 and the class-balance figure."""

from __future__ import annotations

import pandas as pd

from ..data.build import dataset_summary
from ..data.files import read_dataset
from ..readers import read_record, read_table
from .figures import class_balance_figure
from .paired import ACC_POINTS, BACC_POINTS, PPL, metric_rows, write_paired_table
from .power import write_power
from .summary import write_summary
from .tables import table1, table2, table3
from .writers import suffixed

RUN_KEYS = ["base", "task", "strategy", "seed"]


def _runs(retrain_paths: list[str], similarity_paths: list[str]) -> pd.DataFrame:
    retrain = pd.DataFrame([read_record(p, "retraining result", RUN_KEYS) for p in retrain_paths])
    similar = pd.DataFrame(
        [read_record(p, "similarity result", [*RUN_KEYS, "vocab", "otd"]) for p in similarity_paths]
    )
    frame = retrain.merge(similar[RUN_KEYS + ["vocab", "otd"]], on=RUN_KEYS, how="left")
    frame["seed"] = frame["seed"].astype(int)
    return frame


def _experts(experts: dict[str, dict]) -> pd.DataFrame:
    """Expert metrics; ``experts`` maps each metrics file to its base and task."""
    rows = []
    for path, at in experts.items():
        m = read_record(path, "expert metrics", ("seed", "test_loss"))
        rows.append(dict(m, base=at["base"], task=at["task"], strategy="expert"))
    return pd.DataFrame(rows)


def write_results_table(
    kind: str,
    retrain_paths: list[str],
    similarity_paths: list[str],
    experts: dict[str, dict],
    out_stem: str,
) -> pd.DataFrame:
    """Table 1 (kind classification) or Table 2 (kind sft) with the Expert reference row;
    ``experts`` maps each expert's metrics file to its coordinates (base, task)."""
    runs = _runs(retrain_paths, similarity_paths)
    frame = pd.concat([runs, _experts(experts)], ignore_index=True)
    if kind == "classification":
        records = frame.rename(
            columns={"test_acc": "acc", "test_loss": "loss", "test_balanced_acc": "bacc"}
        )
        # reindex: runs recorded before balanced accuracy existed get an empty bacc
        records = records.reindex(
            columns=["task", "strategy", "seed", "vocab", "otd", "acc", "bacc", "loss"]
        )
        table1(records, out_stem)
        metrics = (ACC_POINTS, BACC_POINTS)
        paired = pd.concat([metric_rows(records, "task", m) for m in metrics], ignore_index=True)
        paired_paths = write_paired_table(paired, "task", metrics, suffixed(out_stem, "_paired"))
        write_summary(
            suffixed(out_stem, ".csv"), paired_paths["csv"], suffixed(out_stem, "_summary.md")
        )
        write_power(paired_paths["csv"], suffixed(out_stem, "_power.md"))
    else:
        records = frame.rename(columns={"base": "model", "test_ppl": "ppl", "otd": "ot"})
        records = records[["model", "strategy", "seed", "ppl", "ot", "vocab"]]
        table2(records, out_stem, models=list(dict.fromkeys(records["model"])))
        paired = metric_rows(records, "model", PPL)
        write_paired_table(paired, "model", (PPL,), suffixed(out_stem, "_paired"))
    return records


def write_datasets_table(roles: dict[str, dict], out_stem: str) -> pd.DataFrame:
    """Table 3 from the dataset tables this config built: role, source, classes, sizes.

    ``roles`` maps each config dataset name to ``{"source": registry name, "role": text,
    "path": its table}``.
    """
    rows = []
    for name, at in roles.items():
        source = at["source"]
        row = dataset_summary([source], {source: read_dataset(at["path"])})
        row["name"], row["role"] = f"{name} ({source})", at["role"]
        rows.append(row)
    summary = pd.concat(rows, ignore_index=True)
    table3(summary, out_stem)
    return summary


def write_class_balance(
    selections: dict[str, dict], task_datasets: dict[str, str], out_stem: str
) -> pd.DataFrame:
    """Pseudolabel distribution of every strategy's selections, one panel per task;
    ``selections`` maps each selection file to its coordinates (task, strategy, seed)."""
    parts = []
    for path, at in selections.items():
        frame = read_table(path, "selection", ("pseudolabel",))
        frame["task"], frame["strategy"] = at["task"], at["strategy"]
        frame["seed"] = int(at["seed"])
        parts.append(frame)
    selections = pd.concat(parts, ignore_index=True)
    names = {}
    for task, path in task_datasets.items():
        table = read_dataset(path)
        named = table[table["label"] >= 0].drop_duplicates("label").sort_values("label")
        names[task] = named["label_name"].tolist()
    class_balance_figure(selections, out_stem, names)
    return selections
