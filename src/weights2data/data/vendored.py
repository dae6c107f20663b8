"""The paper's own classification tasks, read from the subsets this repository commits.

No package on the registries ships AG News, DBpedia-14 or IMDB, so ``data/vendor/`` holds a
2,400-row subset of each (its README names the source repository, commit, path, license and
sha256; ``scripts/vendor_datasets.py`` drew them). Their class names are the original
datasets'; codes follow the sorted names, as for every packaged dataset.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from ..errors import UserError
from .info import DatasetInfo
from .normalise import labeled_frame

VENDOR = Path(__file__).resolve().parent / "vendor"
AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
DBPEDIA_CLASSES = (
    "Company",
    "EducationalInstitution",
    "Artist",
    "Athlete",
    "OfficeHolder",
    "MeanOfTransportation",
    "Building",
    "NaturalPlace",
    "Village",
    "Animal",
    "Plant",
    "Album",
    "Film",
    "WrittenWork",
)
# read-only: a review's folder in aclImdb/test/ to its class
IMDB_FOLDERS = MappingProxyType({"neg": "negative", "pos": "positive"})


def vendor_file(relative: str) -> Path:
    """A committed file below ``data/vendor/``; a clear error where a checkout lacks it."""
    path = VENDOR / relative
    if not path.is_file():
        raise UserError(
            f"{path} is missing: the vendored datasets ship inside the weights2data source tree; "
            "restore it with `git checkout -- src/weights2data/data/vendor`."
        )
    return path


def _frame(texts: list[str], names: list[str], prefix: str) -> pd.DataFrame:
    return labeled_frame(texts, names, [f"{prefix}-{i}" for i in range(len(texts))])


def _csv_rows(relative: str, columns: int) -> list[list[str]]:
    text = vendor_file(relative).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    if any(len(row) != columns for row in rows):
        raise UserError(f"{relative} has rows without {columns} columns; restore it from git.")
    return rows


def load_ag_news(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    """Text = title and description joined by a space (as the Hugging Face copy has it)."""
    rows = _csv_rows(info.path, 3)
    texts = [f"{title} {description}" for _, title, description in rows]
    return _frame(texts, [AG_NEWS_CLASSES[int(r[0]) - 1] for r in rows], "ag_news")


def load_dbpedia(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    """Text = the article's abstract (this copy has no title); the source numbers the classes
    in its own order, which its meta.txt names."""
    names = _dbpedia_source_names()
    rows = _csv_rows(info.path, 2)
    labels = [names[int(label)] for label, _ in rows]
    return _frame([content for _, content in rows], labels, "dbpedia")


def _dbpedia_source_names() -> dict[int, str]:
    """The source's label numbers (``meta.txt``: ``3: OfficeHolder``) to class names."""
    names = {}
    for line in vendor_file("dbpedia/meta.txt").read_text().splitlines():
        number, sep, name = line.partition(":")
        if sep and number.strip().isdigit():
            names[int(number)] = name.strip()
    if sorted(names.values()) != sorted(DBPEDIA_CLASSES):
        raise UserError("dbpedia/meta.txt does not name DBpedia-14's classes; restore it.")
    return names


def load_imdb(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    """Label = the review's folder (neg: rated 1-4, pos: 7-10); the HTML line breaks
    (``<br />``) become spaces."""
    texts, labels, groups = [], [], []
    for line in vendor_file(info.path).read_text(encoding="utf-8").split("\n")[:-1]:
        review = json.loads(line)  # split on newlines only: reviews hold U+2028 and the like
        texts.append(" ".join(review["text"].replace("<br />", " ").split()))
        folder = review["path"].split("/")[1]
        if folder not in IMDB_FOLDERS:
            raise UserError(
                f"{info.path}: {review['path']!r} is in neither neg/ nor pos/; restore it."
            )
        labels.append(IMDB_FOLDERS[folder])
        groups.append(review["path"])
    return labeled_frame(texts, labels, groups)
