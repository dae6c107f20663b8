"""The README and docs/ as a reader gets them: short, every link a file of the repository, and
no word of how the project was built (git log keeps that)."""

from __future__ import annotations

import re

import pytest

from .project_copy import ROOT

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
