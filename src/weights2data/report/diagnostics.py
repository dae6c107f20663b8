"""The diagnostics table: Table 1's (or 2's) companion that says whether SELECT's premise held.

A ``spec`` names every file (the rule builds it; nothing here parses paths)::

    {"group": "task",
     "experts": [{"group": g, "seed": s, "regime": ".../regime.json"}, ...],
     "runs": [{"group": g, "strategy": s, "seed": s, "selection": p, "store": dir,
               "truth_sum": ".npy", "retrain": ".json", "regime": ".json"}, ...]}

Per seed it writes one CSV row per expert (strategy "expert") and per run; the Markdown holds
four small tables: the premise per group, each strategy's alignment beside its accuracy, the
SELECT-vs-Random ordering check, and the paired differences.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..alignment import class_counts, load_sum, selection_alignment
from ..atomic import write_text
from ..gradients.store import load_gradient_store
from ..readers import read_record, read_table
from ..stats import CI_LEVEL
from ..strategies import display_name, sort_strategies
from .cells import MISSING, Metric, cell_of, format_number
from .paired import ACC_POINTS, BACC_POINTS, PPL, interval_text, metric_rows, verdict
from .writers import markdown_table, suffixed, write_csv

# cos(S_true, Δ) at or above this: Δ is a usable gradient direction (the premise holds).
PREMISE_THRESHOLD = 0.6
HEAD_BODY = (
    Metric("final_head_final_body", "W_f·h_f", 1, scale=100.0),
    Metric("base_head_final_body", "W_b·h_f", 1, scale=100.0),
    Metric("final_head_base_body", "W_f·h_b", 1, scale=100.0),
    Metric("head_change_base_body", "ΔW·h_b", 1, scale=100.0),
    Metric("probe_base", "Probe h_b", 1, scale=100.0),
)
BODY_DRIFT = Metric("body_drift", "Body drift", 3)
STATE_COS = Metric("state_cos", "cos(h_b, h_f)", 3)
COS_SEL_TRUTH = Metric("cos_sel_truth", "cos(S_sel, S_true)", 3)
COS_SEL_DELTA = Metric("cos_sel_delta", "cos(S_sel, Δ)", 3)
ACC = Metric("acc", "Acc (%)", 1, scale=100.0)
BACC = Metric("bacc", "BAcc (%)", 1, scale=100.0)
PPL_CELL = Metric("ppl", "PPL", 2)


def expert_rows(experts: list[Mapping]) -> pd.DataFrame:
    """One row per expert: cos(S_true, Δ), drift and the head / body split."""
    rows = []
    for item in experts:
        record = read_record(item["regime"], "regime diagnostics")
        split = record.get("head_body", {})
        rows.append(
            {
                "group": item["group"],
                "strategy": "expert",
                "seed": int(item["seed"]),
                "cos_truth_delta": record["cos_truth_delta"],
                # records from before the Adam-aware space have no such key
                "cos_truth_delta_rms": record.get("cos_truth_delta_rms", math.nan),
                "body_drift": record["body_drift"],
                "state_cos": split.get("state_cos", math.nan),
                **{m.key: split.get(m.key, math.nan) for m in HEAD_BODY},
            }
        )
    return pd.DataFrame(rows)


def run_rows(runs: list[Mapping]) -> pd.DataFrame:
    """One row per selection: alignment with S_true and Δ, class counts, retrained accuracy."""
    stores: dict[str, tuple] = {}
    rows = []
    for run in runs:
        if run["store"] not in stores:
            grads, target, _ = load_gradient_store(run["store"])
            stores[run["store"]] = (grads, target)
        grads, target = stores[run["store"]]
        selection = read_table(run["selection"], "selection", ("index", "pseudolabel"))
        result = read_record(run["retrain"], "retraining result")
        row = {
            "group": run["group"],
            "strategy": run["strategy"],
            "seed": int(run["seed"]),
            **selection_alignment(grads, target, load_sum(run["truth_sum"]), selection),
            "acc": result.get("test_acc", math.nan),
            "bacc": result.get("test_balanced_acc", math.nan),
            "ppl": result.get("test_ppl", math.nan),
        }
        classes = read_record(run["regime"], "regime diagnostics").get("num_classes")
        if classes:
            row["class_counts"] = "/".join(map(str, class_counts(selection, classes)))
        rows.append(row)
    return pd.DataFrame(rows)


def _premise(values: pd.Series) -> list[str]:
    """The cosine's cell and whether it clears the premise threshold."""
    cos = cell_of(values.dropna())
    if not cos.n:
        return [MISSING, MISSING]
    return [cos.text(3), "holds" if cos.mean >= PREMISE_THRESHOLD else "fails"]


def _premise_table(experts: pd.DataFrame, group: str) -> str:
    header = [group.capitalize(), "cos(S_true, Δ)", "Premise", "cos(S_true ⊘ D, Δ)", "Premise ⊘ D"]
    header += [m.label for m in HEAD_BODY] + [BODY_DRIFT.label, STATE_COS.label]
    body = []
    for g, sub in experts.groupby("group", sort=True):
        cells = [str(g), *_premise(sub["cos_truth_delta"]), *_premise(sub["cos_truth_delta_rms"])]
        cells += [m.text(sub[m.key].dropna()) for m in HEAD_BODY]
        cells += [BODY_DRIFT.text(sub["body_drift"]), STATE_COS.text(sub["state_cos"].dropna())]
        body.append(cells)
    return markdown_table(header, body, "l" + "r" * (len(header) - 1))


def _selections_table(runs: pd.DataFrame, group: str) -> str:
    is_cls = runs["acc"].notna().any()
    header = [group.capitalize(), "Strategy", COS_SEL_TRUTH.label, COS_SEL_DELTA.label]
    header += [ACC.label, BACC.label, "Classes (seed 0…)"] if is_cls else [PPL_CELL.label]
    body = []
    rank = {s: i for i, s in enumerate(sort_strategies(runs["strategy"]))}
    ordered = runs.assign(order=runs["strategy"].map(rank))
    for (g, _, strategy), sub in ordered.groupby(["group", "order", "strategy"], sort=True):
        cells = [str(g), display_name(strategy)]
        cells += [
            COS_SEL_TRUTH.text(sub["cos_sel_truth"]),
            COS_SEL_DELTA.text(sub["cos_sel_delta"]),
        ]
        if is_cls:
            counts = sub.sort_values("seed")["class_counts"].fillna(MISSING)
            cells += [ACC.text(sub["acc"]), BACC.text(sub["bacc"].dropna())]
            cells.append("; ".join(counts))
        else:
            cells.append(PPL_CELL.text(sub["ppl"]))
        body.append(cells)
    return markdown_table(header, body, "ll" + "r" * (len(header) - 2))


def ordering_check(runs: pd.DataFrame, metric: str, higher_is_better: bool = True) -> pd.DataFrame:
    """Per group: seeds where cos(S_sel, S_true) ordered SELECT vs Random as ``metric`` did."""
    rows = []
    for g, sub in runs.groupby("group", sort=True):
        pivot = sub.pivot_table(index="seed", columns="strategy", values=["cos_sel_truth", metric])
        if ("cos_sel_truth", "select") not in pivot or ("cos_sel_truth", "random") not in pivot:
            continue
        d_cos = pivot[("cos_sel_truth", "select")] - pivot[("cos_sel_truth", "random")]
        d_metric = pivot[(metric, "select")] - pivot[(metric, "random")]
        if not higher_is_better:
            d_metric = -d_metric
        valid = d_cos.notna() & d_metric.notna()
        agree = int(((d_cos > 0) == (d_metric > 0))[valid].sum())
        rows.append({"group": g, "agree": agree, "seeds": int(valid.sum())})
    return pd.DataFrame(rows, columns=["group", "agree", "seeds"])


def _paired_table(runs: pd.DataFrame, group: str) -> str:
    frame = runs.rename(columns={"group": group})
    is_cls = runs["acc"].notna().any()
    metrics = [COS_SEL_TRUTH] + ([ACC_POINTS, BACC_POINTS] if is_cls else [PPL])
    body = []
    for metric in metrics:
        rows = metric_rows(frame, group, metric)
        for row in rows[rows["strategy"] == "select"].to_dict("records"):
            mean = format_number(row["mean_diff"], metric.decimals)
            interval = interval_text(row, metric.decimals)
            body.append([str(row[group]), metric.label, mean, interval, verdict(row)])
    header = [
        group.capitalize(),
        "SELECT − Random",
        "Mean Δ",
        f"{int(CI_LEVEL * 100)}% CI",
        "Verdict",
    ]
    return markdown_table(header, body, "llrrl")


_PREMISE_NOTE = (
    "\ncos(S_true, Δ) = cosine of the base-model gradient sum of the expert's true training "
    "texts with Δ = θ0 − θf, in the store's space (mean over checkpoints); the premise "
    f"holds at ≥ {PREMISE_THRESHOLD}. Head / body split on the test split (%): W_f·h_f the "
    "expert itself, W_b·h_f the base label rows on the final body, W_f·h_b the final rows on "
    "the base body, ΔW·h_b the head change alone on base features, Probe h_b a linear "
    "probe on base features fitted on the true training texts. Body drift = ‖θf − θ0‖ / "
    "‖θ0‖ outside the output matrix; cos(h_b, h_f) = mean cosine of base and final "
    "label-position states.\n"
)


def write_diagnostics(spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    """``{out_stem}.csv`` (one row per expert and run and seed) and ``{out_stem}.md``."""
    group = spec.get("group", "task")
    experts = expert_rows(spec["experts"])
    runs = run_rows(spec["runs"])
    tidy = pd.concat([experts, runs], ignore_index=True).rename(columns={"group": group})
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), tidy)}
    is_cls = runs["acc"].notna().any() if len(runs) else True
    order = ordering_check(runs, "acc" if is_cls else "ppl", higher_is_better=is_cls)
    agree = "; ".join(
        f"{r['group']}: {r['agree']} of {r['seeds']}" for r in order.to_dict("records")
    )
    md = [
        "### Premise: is Δ a gradient direction?\n",
        _premise_table(experts, group),
        _PREMISE_NOTE,
        "### Selections: alignment beside accuracy\n",
        _selections_table(runs, group) if len(runs) else "No runs.\n",
        "\nClasses = selected texts per pseudolabel, one list per seed.\n",
        "### SELECT − Random, paired by seed\n",
        _paired_table(runs, group) if len(runs) else "No runs.\n",
        f"\nOrdering check: seeds where cos(S_sel, S_true) ordered SELECT vs Random as the "
        f"retrained {'accuracy' if is_cls else 'perplexity'} did: {agree or MISSING}. Cells are "
        f"mean ± half-width of the {int(CI_LEVEL * 100)}% Student-t interval over seeds.\n",
    ]
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], "\n".join(md))
    return paths
