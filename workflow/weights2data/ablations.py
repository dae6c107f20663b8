"""The paper's ablations (Figures 2–5: F2–F5, Tables 4–5: T4, T5) and the checkpoint sweep.

Two kinds of code live here:

- pure pieces the Snakemake rules rely on: names of gradient-store variants, leaked pools
  (the expert's true training texts mixed into the seed pool), the exact and deterministic
  replacement draws of the OT-metric check, and 95% confidence intervals over seeds;
- reports that turn per-run records (retrain / similarity JSON, selections) into tidy CSV,
  Markdown tables and figures drawn with :mod:`weights2data.figstyle`.

A report receives a ``spec``: ``{"runs": [...], ...options}``; each run is a small dict naming
its files (``retrain``, ``similarity``, ``selection``, ``pool_file``) and its coordinates (``x``,
``strategy``, ``seed``, ...). The rules build that list, so a report never parses paths.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import figstyle
from .atomic import atomic_path, write_json, write_parquet, write_text
from .errors import UserError
from .readers import read_array, read_record, read_table
from .report import format_number, markdown_table, suffixed, write_csv
from .stats import CI_LEVEL, confidence_interval

# How each metric is shown: (axis / column label, scale for display, decimals).
METRICS: dict[str, tuple[str, float, int]] = {
    "acc": ("Test accuracy (%)", 100.0, 1),
    "loss": ("Test loss (nats)", 1.0, 3),
    "ppl": ("Test perplexity", 1.0, 2),
    "vocab": ("Vocab containment (%)", 1.0, 1),
    "otd": ("OT distance (sq. Euclidean)", 1.0, 3),
    "precision": ("Recovery precision (%)", 100.0, 1),
    "recall": ("Recovery recall (%)", 100.0, 1),
    "cos_truth_delta": ("cos(S_true, Δ)", 1.0, 3),
}

# Short tokens of gradient-spec keys in variant names ("main" is the config's own spec).
_VARIANT_TOKENS = {
    "model": lambda v: f"model-{v}",
    "loss": lambda v: {"full_vocab": "fullvocab", "label_masked": "labelmasked"}.get(v, str(v)),
    "projection": lambda v: "exact" if v == "none" else str(v),
    "k": lambda v: f"k{v}",
    "checkpoints": lambda v: f"C{v}",
    "batch_size": lambda v: f"bs{v}",
}


# --------------------------------------------------------------------------- statistics


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
            scale = METRICS[metric][1]
            stats_ = confidence_interval(sub[metric].to_numpy(dtype=float) * scale, level)
            if stats_["n"] == 0:
                continue
            rows.append(dict(zip(keys, group, strict=True), metric=metric, **stats_))
    return pd.DataFrame(rows, columns=keys + ["metric", "mean", "std", "ci", "n"])


def format_ci(mean: float, ci: float, n: int, decimals: int) -> str:
    """ "mean ± ci"; the mean alone with one seed; "—" with none."""
    if n == 0 or not math.isfinite(mean):
        return "—"
    if n < 2 or not math.isfinite(ci):
        return format_number(mean, decimals)
    return f"{format_number(mean, decimals)} ± {format_number(ci, decimals)}"


# --------------------------------------------------------------------------- store variants


def variant_name(main: Mapping, spec: Mapping) -> str:
    """A short, path-safe name of a gradient spec by how it differs from the main one.

    ``main`` itself is ``"main"``; otherwise the differing keys in a fixed order, e.g.
    ``fullvocab-tensorsketch-k64`` or ``C4``. The sketch size is left out of an exact
    (``projection: none``) store, where it has no effect.
    """
    parts = []
    exact = spec.get("projection") == "none"
    for key, token in _VARIANT_TOKENS.items():
        if key == "k" and exact:
            continue
        if spec.get(key) != main.get(key):
            parts.append(token(spec.get(key)))
    unknown = sorted(set(spec) - set(_VARIANT_TOKENS))
    if unknown:
        raise UserError(f"gradient spec keys {', '.join(unknown)} are not known to the ablations.")
    return "-".join(parts) or "main"


# --------------------------------------------------------------------------- leakage (F3)


def leak_extra_count(n_true: int, fraction: float) -> int:
    """How many other pool texts join ``n_true`` true texts so that they make ``fraction``.

    fraction = n_true / (n_true + n_extra), rounded to the nearest whole text.
    """
    if isinstance(n_true, bool) or not isinstance(n_true, int | np.integer) or n_true < 1:
        raise UserError(f"the true training set must hold at least one text, got {n_true!r}.")
    if not 0 < fraction <= 1:
        raise UserError(f"a leaked fraction must lie in (0, 1], got {fraction!r}.")
    return int(math.floor(n_true * (1.0 - fraction) / fraction + 0.5))


def leaked_pool(truth: pd.DataFrame, extra: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The true texts and the extra texts in one shuffled pool with an ``is_true`` column.

    ``truth`` and ``extra`` have ``text`` and ``group``; ``source_row`` keeps each text's row in
    its source (the true training set, or the seed's pool permutation) so embeddings can be
    reused. An extra text equal to a true text is dropped (the true copy stays).
    """
    for name, frame in (("truth", truth), ("extra", extra)):
        missing = {"text", "group"} - set(frame.columns)
        if missing:
            raise UserError(f"{name} lacks column(s) {', '.join(sorted(missing))}.")
    true_part = truth[["text", "group"]].reset_index(drop=True)
    true_part = true_part.assign(is_true=True, source_row=np.arange(len(true_part)))
    extra_part = extra[["text", "group"]].reset_index(drop=True)
    extra_part = extra_part.assign(is_true=False, source_row=np.arange(len(extra_part)))
    extra_part = extra_part[~extra_part["text"].isin(set(true_part["text"]))]
    both = pd.concat([true_part, extra_part], ignore_index=True)
    both["group"] = both["group"].astype(str)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1EA4]))
    shuffled = both.iloc[rng.permutation(len(both))].reset_index(drop=True)
    shuffled["source_row"] = shuffled["source_row"].astype(np.int64)
    return shuffled


def build_leaked_pool(
    task_dataset: Path,
    task: dict,
    pool_dataset: Path,
    fraction: float,
    seed: int,
    split_seed: int,
    out: Path,
) -> pd.DataFrame:
    """Write the leaked pool of one seed: the expert's training texts + other pool texts.

    The extra texts are the first ones of the seed's pool permutation, so for a pool no larger
    than the regular one they are exactly the regular pool's first rows.
    """
    from .data.files import read_dataset
    from .data.splits import sample_split, task_splits

    truth = task_splits(read_dataset(task_dataset), task, seed, split_seed)["train"]
    n_extra = leak_extra_count(len(truth), fraction)
    table = read_dataset(pool_dataset)
    extra = sample_split(table, "train", n_extra, seed, name=Path(pool_dataset).stem)
    pool = leaked_pool(truth, extra, seed)
    write_parquet(out, pool)
    n_true = int(pool["is_true"].sum())
    write_json(
        Path(str(out) + ".json"),
        {
            "fraction_asked": float(fraction),
            "fraction": n_true / len(pool),
            "n_true": n_true,
            "n_extra": len(pool) - n_true,
            "seed": int(seed),
        },
    )
    return pool


def leaked_embeddings(
    leak_pool_path: Path,
    regular_pool_path: Path,
    regular_embeddings: Path,
    truth_embeddings: Path,
    out: Path,
) -> np.ndarray:
    """Sentence embeddings of a leaked pool, reusing those already computed.

    True texts take their row of the true-set embeddings, extra texts their row of the regular
    pool's embeddings (checked by text); only texts found in neither are embedded anew.
    """
    pool = read_table(leak_pool_path, "leakage pool", ("text", "is_true"))
    regular = read_table(regular_pool_path, "pool", ("text",))["text"].tolist()
    regular_emb = read_array(regular_embeddings, "pool embeddings")
    truth_emb = read_array(truth_embeddings, "truth embeddings")
    out_emb = np.zeros((len(pool), regular_emb.shape[1]), dtype=np.float32)
    fresh = []
    for row, (text, is_true, src) in enumerate(
        zip(pool["text"], pool["is_true"], pool["source_row"], strict=True)
    ):
        if is_true:
            out_emb[row] = truth_emb[src]
        elif src < len(regular) and regular[src] == text:
            out_emb[row] = regular_emb[src]
        else:
            fresh.append(row)
    if fresh:
        from .metrics import embed_texts

        out_emb[fresh] = embed_texts(pool["text"].iloc[fresh].tolist())
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.save(fh, out_emb)
    print(f"leaked-pool embeddings: {len(pool) - len(fresh)} reused, {len(fresh)} embedded")
    return out_emb


def recovery_of(selection: pd.DataFrame, pool: pd.DataFrame) -> dict[str, float]:
    """Recovery precision and recall of the true texts (``is_true``) among the selected rows."""
    from .metrics import recovery

    if "is_true" not in pool.columns:
        raise UserError("the pool has no is_true column; recovery needs a leaked pool.")
    true_ids = np.flatnonzero(pool["is_true"].to_numpy(dtype=bool))
    return recovery(selection["index"].to_numpy(), true_ids)


# --------------------------------------------------------------------------- replacement (F4)


def replacement_count(n_selected: int, fraction: float) -> int:
    """How many selected texts a replacement fraction swaps (nearest whole text)."""
    if not 0 <= fraction <= 1:
        raise UserError(f"a replacement fraction must lie in [0, 1], got {fraction!r}.")
    return int(math.floor(fraction * n_selected + 0.5))


def replacement_plan(
    n_selected: int, n_true: int, fraction: float, trial: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which selected positions stay and which true texts come in, for one trial.

    Exactly ``m = replacement_count(n_selected, fraction)`` selected positions are dropped and
    ``m`` distinct true texts added; the same arguments always give the same draw.
    Returns (kept selected positions, sorted; added true-set rows).
    """
    m = replacement_count(n_selected, fraction)
    if m > n_true:
        raise UserError(
            f"replacing {m} of {n_selected} selected texts needs {m} true texts but the true "
            f"training set has {n_true}; lower the fraction or the selection size."
        )
    key = int(round(fraction * 1_000_000))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(trial), key, 0xF4]))
    dropped = rng.choice(n_selected, size=m, replace=False)
    kept = np.setdiff1d(np.arange(n_selected), dropped)
    added = rng.choice(n_true, size=m, replace=False)
    return kept, added


def replacement_metrics(
    selection_path: Path,
    pool_embeddings: Path,
    truth_embeddings: Path,
    task_dataset: Path,
    task: dict,
    seed: int,
    split_seed: int,
    fractions: Sequence[float],
    trials: int,
    out: Path,
    *,
    ot_method: str = "emd",
    max_tokens: int = 32,
) -> list[dict]:
    """Vocab and OT of a selection whose texts are partly replaced by true training texts.

    No retraining: each (fraction, trial) only recomputes the two similarity metrics.
    """
    from .evaluation import true_training_texts
    from .metrics import metric_tokenizer, ot_distance, vocab_containment

    chosen = read_table(selection_path, "selection", ("index", "text"))
    truth = true_training_texts(task_dataset, task, seed, split_seed)
    pool_emb = read_array(pool_embeddings, "pool embeddings")
    truth_emb = read_array(truth_embeddings, "truth embeddings")
    if len(truth_emb) != len(truth):
        raise UserError("the true-set embeddings do not match the true training set; rebuild.")
    sel_texts = chosen["text"].tolist()
    sel_emb = pool_emb[chosen["index"].to_numpy()]
    tokenizer = metric_tokenizer()
    cache: dict[str, list[str]] = {}

    def tokenize(text: str) -> list[str]:
        if text not in cache:
            cache[text] = tokenizer.tokenize(text)
        return cache[text]

    records = []
    for fraction in fractions:
        for trial in range(trials):
            kept, added = replacement_plan(len(chosen), len(truth), fraction, trial, seed)
            texts = [sel_texts[i] for i in kept] + [truth[j] for j in added]
            emb = np.concatenate([sel_emb[kept], truth_emb[added]])
            records.append(
                {
                    "fraction": float(fraction),
                    "trial": trial,
                    "n_replaced": int(len(added)),
                    "vocab": vocab_containment(texts, truth, tokenize, max_tokens=max_tokens),
                    "otd": ot_distance(emb, truth_emb, method=ot_method),
                }
            )
    write_json(out, {"seed": int(seed), "ot_method": ot_method, "records": records})
    return records


# --------------------------------------------------------------------------- collecting runs


def _retrain_metrics(path: str) -> dict[str, float]:
    record = read_record(path, "retraining result")
    out = {}
    for key in ("acc", "loss", "ppl"):
        if f"test_{key}" in record:
            out[key] = float(record[f"test_{key}"])
    return out


def collect(runs: Sequence[Mapping]) -> pd.DataFrame:
    """One row per run: its coordinates plus the metrics its files hold.

    ``retrain`` → acc / loss / ppl; ``similarity`` → vocab, otd; ``selection`` + ``pool_file`` →
    recovery precision and recall; ``regime`` → cos_truth_delta (the premise diagnostic).
    """
    if not runs:
        raise UserError("no runs to report; the ablation's sweep lists are empty.")
    files = ("retrain", "similarity", "selection", "pool_file", "regime")
    rows = []
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
        figstyle.sort_strategies(frame["strategy"])  # unknown names are an error
    return frame


def _number(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _series_name(strategy: str, label: str | None) -> str:
    name = figstyle.display_name(strategy)
    return f"{name} ({label})" if label else name


def _ci_note(n_values: Iterable[int], over: str = "seeds") -> str:
    ns = sorted({int(n) for n in n_values if n > 0})
    if not ns:
        return "No runs recorded; — = no value."
    span = str(ns[0]) if ns[0] == ns[-1] else f"{ns[0]}–{ns[-1]}"
    return (
        f"Cells are mean ± half-width of the {int(CI_LEVEL * 100)}% Student-t confidence "
        f"interval over {over} (n = {span}; one value: mean only)."
    )


# --------------------------------------------------------------------------- line figures


def _draw_series(ax, xs, means, cis, strategy, label, linestyle="-"):
    errs = [c if math.isfinite(c) else 0.0 for c in cis]
    ax.errorbar(
        xs,
        means,
        yerr=errs,
        color=figstyle.strategy_color(strategy),
        marker=figstyle.strategy_marker(strategy),
        markersize=4,
        linewidth=1.2,
        linestyle=linestyle,
        capsize=2,
        elinewidth=0.8,
        label=label,
    )


def _draw_reference(ax, mean, ci, strategy, label):
    color = figstyle.strategy_color(strategy)
    ax.axhline(mean, color=color, linestyle="--", linewidth=1.0, label=label)
    if math.isfinite(ci):
        ax.axhspan(mean - ci, mean + ci, color=color, alpha=0.15, linewidth=0)


def _line_panel(ax, summary: pd.DataFrame, metric: str, *, log_x: bool, x_label: str) -> None:
    """Lines over x for swept series, dashed horizontal lines (± CI band) for fixed ones."""
    sub = summary[summary["metric"] == metric]
    for (strategy, label), series in sub.groupby(["strategy", "label"], sort=False):
        name = _series_name(strategy, label or None)
        swept = series[series["x"].notna()].sort_values("x")
        fixed = series[series["x"].isna()]
        if len(swept):
            _draw_series(ax, swept["x"], swept["mean"], swept["ci"], strategy, name)
        for _, ref in fixed.iterrows():
            _draw_reference(ax, ref["mean"], ref["ci"], strategy, name)
    if sub["x"].notna().any():
        ticks = sorted(sub["x"].dropna().unique())
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [_number(t) for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel(x_label)
    ax.set_ylabel(METRICS[metric][0])


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    order = {s: i for i, s in enumerate(figstyle.STRATEGY_ORDER)}
    out = summary.copy()
    out["_o"] = out["strategy"].map(order)
    return out.sort_values(["_o", "label", "x"], na_position="last").drop(columns="_o")


def _sweep_markdown(summary: pd.DataFrame, metrics: Sequence[str], x_name: str) -> str:
    xs = sorted(summary["x"].dropna().unique())
    has_fixed = summary["x"].isna().any()
    header = ["Strategy", "Metric"] + [f"{x_name} = {_number(x)}" for x in xs]
    header += ["fixed"] if has_fixed else []
    body = []
    for metric in metrics:
        sub = summary[summary["metric"] == metric]
        for (strategy, label), series in sub.groupby(["strategy", "label"], sort=False):
            cells = [_series_name(strategy, label or None), METRICS[metric][0]]
            by_x = {r["x"]: r for _, r in series.iterrows() if pd.notna(r["x"])}
            decimals = METRICS[metric][2]
            for x in xs:
                r = by_x.get(x)
                cells.append("—" if r is None else format_ci(r["mean"], r["ci"], r["n"], decimals))
            if has_fixed:
                fixed = series[series["x"].isna()]
                cells.append(
                    "—"
                    if fixed.empty
                    else format_ci(
                        fixed["mean"].iloc[0], fixed["ci"].iloc[0], fixed["n"].iloc[0], decimals
                    )
                )
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
        strategy_name=[figstyle.display_name(s) for s in summary["strategy"]],
        metric_name=[METRICS[m][0] for m in summary["metric"]],
    )
    tidy = tidy.rename(columns={"x": x_name, "ci": f"ci{int(CI_LEVEL * 100)}"})
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), tidy)}
    md = _sweep_markdown(summary, metrics, x_name)
    md += f"\n{note} {_ci_note(summary['n'], over)}\n"
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], md)

    ncols = min(2, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    with figstyle.style():
        size = (3.6, 2.6) if ncols == 1 else (figstyle.DOUBLE_COLUMN[0], 2.3 * nrows + 0.4)
        fig, axes = figstyle.new_figure(size, ncols=ncols, nrows=nrows)
        for ax, metric in zip(axes.flat, metrics, strict=False):
            _line_panel(ax, summary, metric, log_x=log_x, x_label=x_label)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)))
        paths.update(figstyle.save_figure(fig, out_stem))
    return paths


# --------------------------------------------------------------------------- reports


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


def _matrix_markdown(
    summary: pd.DataFrame, rows: str, cols: str, row_title: str, decimals: int
) -> str:
    row_keys = list(dict.fromkeys(summary[rows]))
    col_keys = list(dict.fromkeys(summary[cols]))
    strategies = figstyle.sort_strategies(summary["strategy"])
    multi = len(strategies) > 1
    header = [row_title] + [
        (f"{figstyle.display_name(s)} · {c}" if multi else str(c))
        for s in strategies
        for c in col_keys
    ]
    body = []
    for r in row_keys:
        cells = [str(r)]
        for s in strategies:
            for c in col_keys:
                hit = summary[(summary[rows] == r) & (summary[cols] == c) & (summary.strategy == s)]
                cells.append(
                    "—"
                    if hit.empty
                    else format_ci(
                        hit["mean"].iloc[0], hit["ci"].iloc[0], hit["n"].iloc[0], decimals
                    )
                )
        body.append(cells)
    return markdown_table(header, body, "l" + "r" * (len(header) - 1))


def _heatmaps(
    summary: pd.DataFrame,
    rows: str,
    cols: str,
    *,
    row_label: str,
    col_label: str,
    value_label: str,
    out_stem: str | os.PathLike,
    reverse: bool = False,
) -> dict[str, Path]:
    """One annotated heat map per strategy (rows × columns); colour = mean value."""
    row_keys = list(dict.fromkeys(summary[rows]))
    col_keys = list(dict.fromkeys(summary[cols]))
    strategies = figstyle.sort_strategies(summary["strategy"])
    vmin, vmax = float(summary["mean"].min()), float(summary["mean"].max())
    if vmin == vmax:
        vmin, vmax = vmin - 1.0, vmax + 1.0
    cmap = "viridis_r" if reverse else "viridis"
    width = 1.4 + (0.9 * len(col_keys) + 0.6) * len(strategies)
    with figstyle.style():
        fig, axes = figstyle.new_figure(
            (max(3.0, width), 1.3 + 0.45 * len(row_keys)), ncols=len(strategies)
        )
        image = None
        for ax, strategy in zip(axes[0], strategies, strict=True):
            grid = np.full((len(row_keys), len(col_keys)), np.nan)
            text = [["—"] * len(col_keys) for _ in row_keys]
            sub = summary[summary["strategy"] == strategy]
            for _, r in sub.iterrows():
                i, j = row_keys.index(r[rows]), col_keys.index(r[cols])
                grid[i, j] = r["mean"]
                text[i][j] = format_ci(r["mean"], r["ci"], int(r["n"]), 1)
            image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            for i in range(len(row_keys)):
                for j in range(len(col_keys)):
                    shade = (grid[i, j] - vmin) / (vmax - vmin) if np.isfinite(grid[i, j]) else 1
                    light = shade > 0.5 if not reverse else shade < 0.5
                    ax.text(
                        j,
                        i,
                        text[i][j],
                        ha="center",
                        va="center",
                        fontsize=figstyle.LEGEND_SIZE - 1,
                        color="black" if light else "white",
                    )
            ax.set_xticks(range(len(col_keys)), [str(c) for c in col_keys], rotation=30)
            ax.set_yticks(range(len(row_keys)), [str(r) for r in row_keys])
            ax.set_xlabel(col_label)
            ax.set_ylabel(row_label)
            ax.set_title(figstyle.display_name(strategy), color=figstyle.strategy_color(strategy))
            ax.grid(False)
        if image is not None:
            fig.colorbar(image, ax=list(axes[0]), label=value_label, shrink=0.9)
        return figstyle.save_figure(fig, out_stem)


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
    metric = metrics[0] if metrics[0] in frame.columns else metrics[1]
    row, col = axes
    summary = summarize(frame, [row, col, "strategy"], [metric])
    tidy = summary.rename(columns={"ci": f"ci{int(CI_LEVEL * 100)}"})
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), tidy)}
    md = _matrix_markdown(
        summary, row, col, f"{labels[0]} / {labels[1].lower()}", METRICS[metric][2]
    )
    parts = [caption, f"{METRICS[metric][0]}.", spec.get("note", ""), _ci_note(summary["n"])]
    md += "\n" + " ".join(part for part in parts if part)
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], md + "\n")
    paths.update(
        _heatmaps(
            summary,
            row,
            col,
            row_label=labels[0],
            col_label=labels[1],
            value_label=METRICS[metric][0],
            out_stem=out_stem,
            reverse=metric == "ppl",
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


REPORTS = {
    "sweep": sweep_report,
    "leakage": leakage_report,
    "replacement": replacement_report,
    "pools": pool_matrix_report,
    "optimizer": optimizer_report,
}


def write_report(kind: str, spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    if kind not in REPORTS:
        raise UserError(f"unknown ablation report {kind!r}; choose one of {', '.join(REPORTS)}.")
    if not isinstance(spec.get("runs"), list):
        raise UserError("the report spec needs a 'runs' list.")
    return REPORTS[kind](spec, out_stem)
