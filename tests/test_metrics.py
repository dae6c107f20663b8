"""Dataset-similarity metrics against hand-computed values and brute force."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from weights2data.errors import UserError
from weights2data.metrics import (
    EMBED_DIM,
    embed_texts,
    metric_tokenizer,
    ot_distance,
    recovery,
    vocab_containment,
)


class WhitespaceTokenizer:
    """The simplest tokenizer with the interface the metric expects."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


# --------------------------------------------------------------------------- vocabulary


def test_containment_hand_computed_and_truncated():
    a = ["a b c d", "e f"]
    b = ["c d x", "y"]
    # First 3 tokens: A = {a,b,c,e,f}, B = {c,d,x,y}; A∩B = {c}; min size 4.
    assert vocab_containment(a, b, WhitespaceTokenizer(), max_tokens=3) == pytest.approx(25.0)
    # First 4 tokens: A = {a,b,c,d,e,f}; A∩B = {c,d}.
    assert vocab_containment(a, b, WhitespaceTokenizer(), max_tokens=4) == pytest.approx(50.0)
    # A plain callable works too, and the score is symmetric.
    assert vocab_containment(b, a, str.split, max_tokens=4) == pytest.approx(50.0)


def test_containment_with_the_metric_tokenizer():
    tok = metric_tokenizer()
    assert tok.tokenize("The cat sat.") == ["the", "cat", "sat", "."]
    assert tok.tokenize("the dog sat!") == ["the", "dog", "sat", "!"]
    # Uncased WordPiece: {the,cat,sat,.} vs {the,dog,sat,!} share {the, sat}: 2 / 4.
    assert vocab_containment(["The cat sat."], ["the dog sat!"], tok) == pytest.approx(50.0)
    # The default tokenizer is the metric tokenizer; one token each keeps only "the".
    assert vocab_containment(["The cat sat."], ["the dog sat!"], max_tokens=1) == 100.0


def test_metric_tokenizer_gives_the_pieces_of_transformers_fast_tokenizer():
    """The Vocab metric reads tokenizer.json with `tokenizers` (fast start-up); its pieces must
    be those of transformers' tokenizer for the same folder, on real packaged texts too."""
    from transformers import AutoTokenizer

    from weights2data.data.build import build_dataset
    from weights2data.metrics import minilm_dir

    reference = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    texts = build_dataset("bbc_news", split_seed=0)["text"].tolist()[:200]
    texts += ["Ünïcödé café — naïve 東京 😀\ttabs", "", "   ", "[CLS] hi [MASK] [UNK]", "x " * 600]
    tok = metric_tokenizer()
    for text in texts:
        assert tok.tokenize(text) == reference.tokenize(text), text[:60]


def test_ot_distance_does_not_import_torch_or_leave_pot_settings():
    code = (
        "import os, sys, numpy as np\n"
        "from weights2data.metrics import ot_distance\n"
        "a = np.eye(3); b = np.eye(3)[::-1].copy()\n"
        "assert ot_distance(a, b) == 0.0\n"
        "assert 'torch' not in sys.modules\n"
        "assert 'POT_BACKEND_DISABLE_PYTORCH' not in os.environ\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("POT_BACKEND")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("a", "b", "kwargs"),
    [
        ([], ["x"], {}),
        (["  "], ["x"], {}),
        (["x"], ["x"], {"max_tokens": 0}),
        ("just one string", ["x"], {}),
        ([None], ["x"], {}),
    ],
)
def test_containment_rejects_bad_input(a, b, kwargs):
    with pytest.raises(UserError):
        vocab_containment(a, b, WhitespaceTokenizer(), **kwargs)


# --------------------------------------------------------------------------- optimal transport


def _brute_force_ot(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Best and identity matching cost: with equal sizes and uniform weights, EMD is a matching."""
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    idx = np.arange(len(a))
    best = min(cost[idx, list(p)].mean() for p in itertools.permutations(idx))
    return float(best), float(cost[idx, idx].mean())


def test_emd_equals_brute_force_matching():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 3))
    b = rng.normal(size=(5, 3)) + 0.5
    best, identity = _brute_force_ot(a, b)
    assert best < identity - 1e-3  # the optimum is not the trivial pairing
    assert ot_distance(a, b, "emd") == pytest.approx(best, abs=1e-9)
    assert ot_distance(a, a, "emd") == pytest.approx(0.0, abs=1e-12)


@pytest.mark.filterwarnings("error")  # a Sinkhorn that did not converge fails the test
def test_sinkhorn_approaches_emd_as_reg_shrinks():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 3))
    b = rng.normal(size=(6, 3))
    a /= np.linalg.norm(a, axis=1, keepdims=True)  # unit vectors, like sentence embeddings
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    emd = ot_distance(a, b, "emd")
    gaps = [ot_distance(a, b, "sinkhorn", reg=r) - emd for r in (1.0, 0.3, 0.1)]
    assert all(g > -1e-6 for g in gaps)  # a blurred plan never beats the exact optimum
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 0.02 * emd  # the pipeline's reg = 0.1 is within 2 % here
    assert gaps[0] > 10 * gaps[-1]


def test_ot_rejects_bad_input():
    a = np.zeros((3, 4))
    with pytest.raises(UserError, match="widths"):
        ot_distance(a, np.zeros((3, 5)))
    with pytest.raises(UserError, match="unknown OT method"):
        ot_distance(a, a, method="wasserstein")
    with pytest.raises(UserError, match="non-empty"):
        ot_distance(np.zeros((0, 4)), a)
    with pytest.raises(UserError, match="NaN"):
        ot_distance(np.full((2, 4), np.nan), a)
    with pytest.raises(UserError, match="reg"):
        ot_distance(a, a, method="sinkhorn", reg=0)


# --------------------------------------------------------------------------- embeddings

SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The central bank raised interest rates by half a point.",
]


def test_embeddings_unit_norm_deterministic_and_sane():
    emb = embed_texts(SENTENCES)
    assert emb.shape == (3, EMBED_DIM) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(emb, embed_texts(SENTENCES))
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.3  # the paraphrase is far closer than the unrelated text
    # Padding must not leak into the mean: one text per batch equals mixed-length batches,
    # and results come back in input order.
    single = embed_texts(SENTENCES[::-1], batch_size=1)[::-1]
    np.testing.assert_allclose(single, emb, atol=1e-5)


def test_embed_rejects_bad_input():
    with pytest.raises(UserError):
        embed_texts([])
    with pytest.raises(UserError):
        embed_texts(["ok", 3])
    with pytest.raises(UserError):
        embed_texts(["ok"], max_length=4096)


def test_a_pool_embedded_from_the_union_copies_known_rows_and_embeds_the_rest(tmp_path):
    """Every seed's pool is embedded once as the union of their distinct texts; a seed's pool
    then copies its rows from there, embeds a text the union lacks, and refuses embeddings of
    another version of the union table."""
    import pandas as pd

    from weights2data.comparison import embed_to_file, embed_union

    pools = [tmp_path / "0.parquet", tmp_path / "1.parquet"]
    pd.DataFrame({"text": SENTENCES[:2]}).to_parquet(pools[0])
    pd.DataFrame({"text": [SENTENCES[1], "a third text of the pools"]}).to_parquet(pools[1])
    union, known = tmp_path / "union.parquet", tmp_path / "union.npy"
    table = embed_union(tuple(pools), union, known)
    assert pd.read_parquet(union)["text"].tolist() == SENTENCES[:2] + ["a third text of the pools"]
    assert np.array_equal(np.load(known), table) and len(table) == 3
    pool = tmp_path / "pool.parquet"
    texts = [SENTENCES[1], "a text only this pool has", SENTENCES[0], SENTENCES[1]]
    pd.DataFrame({"text": texts}).to_parquet(pool)
    got = embed_to_file(pool, tmp_path / "pool.npy", known=((union, known),))
    assert np.array_equal(got[[0, 2, 3]], table[[1, 0, 1]])  # copied, byte for byte
    np.testing.assert_allclose(got[1], embed_texts([texts[1]])[0], atol=1e-5)
    assert np.array_equal(np.load(tmp_path / "pool.npy"), got)
    np.save(known, table[:2])
    with pytest.raises(UserError, match="different versions"):
        embed_to_file(pool, tmp_path / "again.npy", known=((union, known),))
    assert not (tmp_path / "again.npy").exists()


def test_every_seeds_truth_embedded_once_and_each_seed_copies_its_rows(tmp_path):
    """The seeds' true training sets overlap (one train split, several draws): their union is
    embedded once, and each seed's truth embeddings are its rows of it, in its order."""
    import pandas as pd

    from weights2data.comparison import embed_to_file, embed_truth_union, true_training_texts
    from weights2data.data.files import write_dataset

    n = 30
    table = pd.DataFrame(
        {
            "text": [f"{SENTENCES[i % len(SENTENCES)]} ({i})" for i in range(n + 8)],
            "label": [i % 2 for i in range(n + 8)],
            "label_name": [f"c{i % 2}" for i in range(n + 8)],
            "split": ["train"] * n + ["val"] * 4 + ["test"] * 4,
            "group": [str(i) for i in range(n + 8)],
        }
    )
    dataset = tmp_path / "task.parquet"
    write_dataset(table, dataset)
    task = {"type": "classification", "train_size": 12, "val_size": 2, "test_size": 2}
    union, known = tmp_path / "union.parquet", tmp_path / "union.npy"
    draws = {"seeds": (0, 1), "split_seed": 0}
    emb = embed_truth_union(dataset, task, draws, union, known)
    truths = [true_training_texts(dataset, task, seed, 0) for seed in (0, 1)]
    distinct = list(dict.fromkeys(truths[0] + truths[1]))
    assert truths[0] != truths[1] and pd.read_parquet(union)["text"].tolist() == distinct
    assert len(emb) == len(distinct) < 24
    for seed, truth in enumerate(truths):
        spec = {"task": task, "seed": seed, "split_seed": 0}
        got = embed_to_file(
            dataset, tmp_path / f"{seed}.npy", dataset=spec, known=((union, known),)
        )
        assert np.array_equal(got, emb[[distinct.index(t) for t in truth]])


# --------------------------------------------------------------------------- recovery


def test_recovery_hand_values():
    got = recovery([1, 2, 3, 4], [3, 4, 5, 6, 7, 8])
    assert got == {"precision": pytest.approx(0.5), "recall": pytest.approx(2 / 6)}
    assert recovery(np.array([7, 9]), ["a", 7, 9]) == {"precision": 1.0, "recall": 2 / 3}
    assert recovery(["x"], ["y"]) == {"precision": 0.0, "recall": 0.0}


def test_recovery_rejects_empty_and_duplicates():
    with pytest.raises(UserError, match="empty"):
        recovery([], [1])
    with pytest.raises(UserError, match="duplicate"):
        recovery([1, 1], [1])
