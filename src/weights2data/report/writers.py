"""How a table reaches disk: a tidy CSV, a GitHub-Markdown table, a booktabs LaTeX body, all
written atomically next to one output stem, with fixed formats so that reruns diff cleanly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from .cells import MISSING, PLUS_MINUS


def _md_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """A GitHub-Markdown table; ``align`` has one letter per column: l, r or c."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    if len(align) != len(header) or any(len(r) != len(header) for r in rows):
        raise ValueError("every row and the alignment must have one entry per header column")
    lines = [
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "| " + " | ".join(marks[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX specials; "±" and "—" become $\\pm$ and ---."""
    out = "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))
    return out.replace(PLUS_MINUS, r" $\pm$ ").replace(MISSING, "---")


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """A table as CSV, atomically, with numbers short enough to diff."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
    return path


def suffixed(stem: str | os.PathLike, suffix: str) -> Path:
    """``stem`` + ``suffix`` (``figures/table1`` + ``.csv``), keeping dots inside the stem."""
    stem = Path(stem)
    return stem.with_name(stem.name + suffix)
