"""The README and docs/ as a reader gets them: short, every link a file of the repository, and
no word of how the project was built (git log keeps that)."""

from __future__ import annotations

import re

import pytest

from .project_copy import ROOT, load_script

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HISTORY = re.compile(r"\b(sessions?|issues?|audits?)\b", re.I)
LINK = re.compile(r"\]\((?!https?://|#|mailto:)(?P<target>[^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_speaks_of_the_tool_not_of_its_making(page):
    found = [m.group(0) for m in HISTORY.finditer(page.read_text())]
    assert not found, f"{page.name}: {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_names_a_file_of_the_repository(page):
    missing = [
        m["target"]
        for m in LINK.finditer(page.read_text())
        if not (page.parent / m["target"]).exists()
    ]
    assert not missing, f"{page.name} links to {missing}"


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_every_number_quoted_in_prose_is_found_in_a_source_it_names():
    numbers = load_script("doc_numbers")
    unfound = numbers.unfound_numbers(ROOT)
    assert not unfound, "\n".join(map(str, unfound))


def test_a_quoted_number_its_source_does_not_hold_is_reported(tmp_path):
    numbers = load_script("doc_numbers")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "gap.csv").write_text("task,mean,gap_closed\nimdb,-19.84,0.6712\n")
    page = tmp_path / "README.md"
    page.write_text(
        "Unmarked: 12.5 points.\n"
        "<!-- numbers: results/gap.csv -->\n"
        "Quoted right: −19.8 [a gap of 67%], 0.671; quoted wrong: +19.8 and 66%.\n"
        "```\n3.14 in code is not quoted\n```\n"
        "## A heading ends the marker\n"
        "−19.8 again.\n"
    )
    found = [(item.line, item.number) for item in numbers.check(page, root=tmp_path)]
    assert found == [(1, "12.5"), (3, "+19.8"), (3, "66%"), (8, "−19.8")]
    page.write_text("<!-- numbers: docs/x.md -->\n")
    with pytest.raises(SystemExit, match="outside the docs"):
        numbers.check(page, root=tmp_path)
