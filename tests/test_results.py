"""The committed results of the last full default run: they parse, they cover every strategy of
the default's tables, they say where they came from, and the README shows them as they are."""

from __future__ import annotations

import pandas as pd
import pytest

from weights2data.config import load_config

from .project_copy import ROOT, load_script

FIGURES = ROOT / "results"  # the committed record of the last full run
CONFIG = load_config(ROOT / "config.yaml")


@pytest.mark.parametrize(
    ("name", "group", "groups", "strategies", "metric", "seeds"),
    [
        (
            "table1",
            "task",
            CONFIG["tables"]["table1"]["tasks"],
            CONFIG["selection"]["strategies"],
            "acc",
            CONFIG["seeds"],
        ),
        (
            "table2",
            "model",
            CONFIG["tables"]["table2"]["bases"],
            CONFIG["tables"]["table2"]["strategies"],
            "ppl",
            CONFIG["tables"]["table2"].get("seeds") or CONFIG["seeds"],
        ),
    ],
)
def test_committed_tables_carry_every_strategy(name, group, groups, strategies, metric, seeds):
    table = pd.read_csv(FIGURES / f"{name}.csv")
    for g in groups:
        rows = table[(table[group] == g) & (table["metric"] == metric)]
        assert set(strategies) | {"expert"} <= set(rows["strategy"]), (name, g)
        assert rows["mean"].notna().all() and (rows["n"] == len(seeds)).all()
    md = (FIGURES / f"{name}.md").read_text()
    assert md.count("\n| ") >= len(strategies) + 1  # header, and a row per strategy and expert


def test_committed_results_say_where_they_came_from():
    provenance = (FIGURES / "PROVENANCE.md").read_text()
    for field in ("commit", "date", "CPU", "wall time", "make pipeline"):
        assert field in provenance, field
    assert (FIGURES / "runtime.csv").exists() and (FIGURES / "metrics.json").exists()


def test_readme_tables_are_the_committed_files():
    module = load_script("readme_tables")
    for name in module.DOCUMENTS:
        _, stale = module.render((ROOT / name).read_text())
        assert stale == [], f"{name}: run scripts/readme_tables.py ({stale})"
    readme, results = (ROOT / "README.md").read_text(), (ROOT / "docs" / "results.md").read_text()
    assert "<!-- results/table1_summary.md -->" in readme and "(results/table1.png)" in readme
    assert "<!-- results/PROVENANCE.md -->" in results
    assert (ROOT / "results" / "table1.png").stat().st_size > 0
    assert "<!-- results/table1.md -->" in results
    assert "<!-- results/ablations/scaling.md -->" in results


def test_readme_summary_is_the_committed_table_in_brief():
    """README's brief Table 1 is generated: the block is the file, the file is the tables."""
    from weights2data.report.summary import summary_markdown

    committed = (FIGURES / "table1_summary.md").read_text()
    assert committed == summary_markdown(FIGURES / "table1.csv", FIGURES / "table1_paired.csv")
    assert "<!-- results/table1_summary.md -->" in (ROOT / "README.md").read_text()


def test_the_seed_count_tables_are_generated_from_the_paired_tables():
    """docs/configuration.md chooses the seed count from these: each is a function of its CSV."""
    from weights2data.report.power import power_markdown

    for record in (FIGURES, FIGURES / "paper_tasks"):
        committed = (record / "table1_power.md").read_text()
        assert committed == power_markdown(record / "table1_paired.csv"), record
    assert "<!-- results/table1_power.md -->" in (ROOT / "docs" / "configuration.md").read_text()
