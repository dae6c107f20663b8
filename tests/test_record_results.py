"""scripts/record_results.py replaces the default run's record and keeps the other profiles'."""

from __future__ import annotations

from .project_copy import load_script


def test_a_new_record_keeps_the_other_profiles(tmp_path):
    results, figures = tmp_path / "results", tmp_path / "figures"
    for folder in (
        results / "ablations",
        results / "toy",
        results / "smollm2",
        figures / "ablations",
    ):
        folder.mkdir(parents=True)
    for path in (
        results / "table1.md",
        results / "ablations" / "scaling.md",
        results / "toy" / "table1.md",
    ):
        path.write_text("old")
    (results / "smollm2" / "PROVENANCE.md").write_text("kept")
    load_script("record_results")._clear_run(results, figures)
    assert sorted(p.name for p in results.iterdir()) == ["smollm2", "toy"]
    assert (results / "toy" / "table1.md").read_text() == "old"
    assert (results / "smollm2" / "PROVENANCE.md").read_text() == "kept"
