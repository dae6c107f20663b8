#!/usr/bin/env python3
"""Check that every result number quoted in the prose of README.md and docs/ is found, as
written, in a file the text names, so a quoted number cannot go stale unnoticed.

Prose that quotes numbers names its sources in a marker line:

    <!-- numbers: results/paper_tasks/table1_paired.md results/paper_tasks/experts.md -->

The marker covers the text after it (on its line and below) up to the next heading or the next
marker. A number is
checked when it has a decimal point, a sign (+, −) or a percent sign; it is found when some
number of a source, printed with the quoted number's decimals (or, for a fraction, as a
percentage), reads the same. Plain integers (sizes, seeds, K) are not checked. Generated blocks
(`scripts/readme_tables.py`), code, inline code, link targets and comments are skipped.

`python scripts/doc_numbers.py` lists every number that is unmarked or not found (exit 1).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- numbers: (?P<paths>[^>]*?) -->")
# a generated block of scripts/readme_tables.py, which fills them
BLOCK = re.compile(r"(<!-- (?P<path>[\w./-]+) -->\n)(?P<body>.*?)(<!-- /(?P=path) -->)", re.S)
SKIP = re.compile(r"```.*?```|`[^`\n]*`|\]\([^)]*\)|<!--(?! numbers:).*?-->", re.S)
QUOTED = re.compile(
    r"(?<![\w.\-−])(?P<sign>[+−±]|(?<=[\s(\[])-)?(?P<int>\d{1,3}(?:,\d{3})+|\d+)"
    r"(?P<frac>\.\d+)?(?![\d]|\.\d)(?P<pct>\s?%)?"
)
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
SOURCE = re.compile(r"[+−-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


class Unfound(NamedTuple):
    """One quoted number that no named source holds."""

    document: str
    line: int
    number: str
    sources: tuple[str, ...]

    def __str__(self) -> str:
        where = " ".join(self.sources) or "no <!-- numbers: FILE --> marker"
        return f"{self.document}:{self.line}: {self.number} not found in {where}"


def _blank(match: re.Match) -> str:
    """Keep line numbers: replace skipped text by as many newlines as it had."""
    return "\n" * match.group(0).count("\n")


def _source_values(path: Path) -> list[float]:
    text = path.read_text().replace("−", "-")
    if path.suffix != ".csv":  # 10,000 in prose; a comma between CSV fields stays
        text = THOUSANDS.sub("", text)
    return [float(token) for token in SOURCE.findall(text)]


def _printed(value: float, decimals: int) -> set[str]:
    """How a source value can read when quoted with `decimals` decimals."""
    return {f"{value:.{decimals}f}", f"{100 * value:.{decimals}f}"}


def _found(match: re.Match, values: list[float]) -> bool:
    decimals = len(match["frac"] or ".") - 1
    number = match["int"].replace(",", "") + (match["frac"] or "")
    negative = (match["sign"] or "") in {"−", "-"}
    wanted = {("-" if negative else "") + number}
    if not match["sign"] or match["sign"] == "±":
        wanted.add("-" + number)
    return any(wanted & _printed(value, decimals) for value in values)


def _checked(match: re.Match) -> bool:
    return bool(match["frac"] or match["sign"] or match["pct"])


def check(document: Path, root: Path = ROOT) -> list[Unfound]:
    """Every quoted number of one document that is unmarked or not in its sources."""
    text = BLOCK.sub(_blank, document.read_text())
    text = SKIP.sub(_blank, text)
    name = str(document.relative_to(root))
    unfound: list[Unfound] = []
    sources: tuple[str, ...] = ()
    values: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            sources, values = (), []
        marker = MARKER.search(line)
        if marker:
            sources = tuple(marker["paths"].split())
            missing = [path for path in sources if not (root / path).is_file()]
            pages = [path for path in sources if path == "README.md" or path.startswith("docs/")]
            if missing or pages:
                raise SystemExit(
                    f"{name}:{number}: a numbers marker must name existing files outside the "
                    f"docs; {missing + pages} are not"
                )
            values = [v for path in sources for v in _source_values(root / path)]
            line = line[marker.end() :]
        for match in QUOTED.finditer(line):
            if _checked(match) and not _found(match, values):
                unfound.append(Unfound(name, number, match.group(0).strip(), sources))
    return unfound


def documents(root: Path = ROOT) -> list[Path]:
    """README.md and every page of docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def unfound_numbers(root: Path = ROOT) -> list[Unfound]:
    """Every quoted number of README.md and docs/ that is unmarked or not in its sources."""
    return [item for document in documents(root) for item in check(document, root)]


def main() -> int:
    unfound = unfound_numbers()
    for item in unfound:
        print(item)
    return 1 if unfound else 0


if __name__ == "__main__":
    sys.exit(main())
