#!/usr/bin/env python3
"""Draw the committed subsets of AG News, DBpedia-14 and IMDB from their public copies.

    python scripts/vendor_datasets.py RAW_FOLDER [--rows 2400] [--seed 0]

RAW_FOLDER holds each source as its repository has it (the paths in SOURCES below, fetched at
the commits named there): ``ag_news/test.csv``, ``dbpedia/test.csv`` and the aclImdb test
folder ``imdb/aclImdb/test/{pos,neg}/*.txt``. Each source file is checked against its sha256
first. The subset is ``--rows`` rows drawn without replacement by numpy's
``default_rng(seed)``, kept in source order; CSV rows are copied line for line (byte-identical
to the source's), IMDB reviews go to a JSON Lines file with their path in the source. The
subsets and ``MANIFEST.json`` (sources, seed, sha256 of every written file) go to
``src/weights2data/data/vendor/``; the README beside them is written by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "weights2data" / "data" / "vendor"
# name -> (repository, commit, path in it, sha256 of the file there)
SOURCES = {
    "ag_news": (
        "mhjabreel/CharCnn_Keras",
        "555590db4219b1243abb1918effd6a7425a2d75f",
        "data/ag_news_csv/test.csv",
        "521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699",
    ),
    "dbpedia": (
        "J-zin/DHIM",
        "477e226cdc5a2c83a6114e46187da1091bd6a345",
        "data/dbpedia/test.csv",
        "fb256b4ed9038a5ad8eb98ad4d847748fe8179a34ee426937a3c79e4898ef608",
    ),
    "imdb": (
        "iamsorenl/Feature-Engineering-and-Sentiment-Analysis",
        "55144e2ea1de74c60ce9190a47b605b4b071e0ee",
        "aclImdb/test/{pos,neg}/*.txt",
        "",  # 25,000 files: their sorted (path, sha256) list is hashed instead (_imdb_reviews)
    ),
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _draw(n: int, rows: int, seed: int) -> list[int]:
    """``rows`` of ``n`` indices, drawn once by ``seed``, in source order."""
    return sorted(np.random.default_rng(seed).choice(n, size=rows, replace=False).tolist())


def _csv_subset(name: str, source: Path, rows: int, seed: int) -> dict[str, bytes]:
    data = source.read_bytes()
    if _sha256(data) != SOURCES[name][3]:
        raise SystemExit(f"{source} is not the file of {SOURCES[name][0]}; check the commit.")
    lines = data.decode("utf-8").split("\n")
    lines = lines[:-1] if lines[-1] == "" else lines  # one row per line (no quoted newlines)
    chosen = [lines[i] for i in _draw(len(lines), rows, seed)]
    return {f"{name}/test_subset.csv": ("\n".join(chosen) + "\n").encode("utf-8")}


def _imdb_reviews(folder: Path) -> tuple[list[tuple[str, bytes]], str]:
    """Every test review as (path below aclImdb/, bytes), sorted, and the hash of the list."""
    reviews = sorted(
        (str(path.relative_to(folder)), path.read_bytes())
        for label in ("neg", "pos")
        for path in (folder / "test" / label).glob("*.txt")
    )
    listing = "".join(f"{_sha256(text)}  {path}\n" for path, text in reviews)
    return reviews, _sha256(listing.encode())


def _imdb_subset(folder: Path, rows: int, seed: int) -> tuple[dict[str, bytes], str]:
    reviews, digest = _imdb_reviews(folder)
    if len(reviews) != 25_000:
        raise SystemExit(f"{folder} holds {len(reviews)} test reviews, not 25,000.")
    chosen = [reviews[i] for i in _draw(len(reviews), rows, seed)]
    out = "".join(
        json.dumps({"path": path, "text": text.decode("utf-8")}, ensure_ascii=False) + "\n"
        for path, text in chosen
    )
    return {"imdb/test_subset.jsonl": out.encode("utf-8")}, digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--rows", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    draw = (options.rows, options.seed)
    files = _csv_subset("ag_news", options.raw / "ag_news" / "test.csv", *draw)
    files |= _csv_subset("dbpedia", options.raw / "dbpedia" / "test.csv", *draw)
    imdb, imdb_digest = _imdb_subset(options.raw / "imdb" / "aclImdb", *draw)
    files |= imdb
    for relative, data in files.items():
        (OUT / relative).parent.mkdir(parents=True, exist_ok=True)
        (OUT / relative).write_bytes(data)
    sources = {
        name: {"repository": repo, "commit": commit, "path": path, "sha256": digest or imdb_digest}
        for name, (repo, commit, path, digest) in SOURCES.items()
    }
    manifest = {
        "rows": options.rows,
        "seed": options.seed,
        "sources": sources,
        "files": {relative: _sha256(data) for relative, data in sorted(files.items())},
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for relative, digest in manifest["files"].items():
        print(f"{digest}  {relative}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
