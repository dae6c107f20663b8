"""The Adam-aware gradient space: D against gradients materialised one text at a time (torch.func),
the rank-1 fit, the store's second space, and the strategies that read it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import load_file

from weights2data.errors import UserError
from weights2data.formats import label_token_ids
from weights2data.gradients.closed_form import Batch, per_example_gradients
from weights2data.gradients.hooks import gradient_space, visit_batch
from weights2data.gradients.precondition import (
    Marginals,
    exact_rms,
    rank1_fit,
    resolve_precondition,
)
from weights2data.gradients.store import STORE_FILES, load_gradient_store
from weights2data.losses import make_loss
from weights2data.projection import make_projector
from weights2data.selection import greedy_select
from weights2data.strategies import choose

from . import oracles
from .test_gradients import CLASSES, MAX_LEN, TOKENIZER, _build, make_gpt2, make_texts, perturbed


def test_auto_follows_the_finetune_optimizer():
    assert resolve_precondition("auto", "adam") == "rms"
    assert resolve_precondition("auto", "adamw") == "rms"
    assert resolve_precondition("auto", "sgd") == "none"
    assert resolve_precondition("rms", "sgd") == "rms"
    assert resolve_precondition("none", "adam") == "none"
    with pytest.raises(UserError, match="none of adam, adamw, sgd"):
        resolve_precondition("auto", "lion")
    with pytest.raises(UserError, match="unknown precondition"):
        resolve_precondition("diag", "adam")


def test_exact_d_equals_the_rms_of_gradients_taken_one_text_at_a_time():
    """float64: the closed-form store's D against torch.func gradients of each text alone."""
    base = make_gpt2()
    texts, labels = make_texts(12, seed=3), np.arange(12) % CLASSES
    closed = per_example_gradients(
        base, TOKENIZER, texts, labels, num_classes=CLASSES, max_length=MAX_LEN
    ).numpy()
    D = exact_rms(closed[:, None, :], (0, closed.shape[1]))
    truth = oracles.label_gradients(base, TOKENIZER, texts, labels, CLASSES, max_length=MAX_LEN)
    np.testing.assert_allclose(D, np.sqrt(np.square(truth).mean(axis=0)), rtol=1e-10)


def test_rank1_sums_equal_those_of_the_exact_mean_square():
    """The statistics pass's row and column sums of mean g² (full vocabulary, one label
    position: exact) against the V×d gradients materialised per text, float64."""
    base = make_gpt2()
    texts, labels = make_texts(10, seed=4), np.arange(10) % CLASSES
    space = gradient_space(
        base, "head", "full_vocab", num_classes=CLASSES, projection="dense", k=16, seed=0
    )
    marginals = Marginals(space.parts(), [0])
    ids = label_token_ids(TOKENIZER, CLASSES)
    visit_batch(
        base,
        TOKENIZER,
        Batch(texts, labels, make_loss("full_vocab", TOKENIZER, len(ids), MAX_LEN)),
        space,
        marginals,
    )
    truth = oracles.label_gradients(
        base, TOKENIZER, texts, labels, CLASSES, max_length=MAX_LEN, full_vocab=True
    )
    V, d = space.head.V, space.head.d
    square = np.square(truth).mean(axis=0).reshape(V, d)
    np.testing.assert_allclose(marginals.rows[0].numpy() / len(texts), square.sum(1), rtol=1e-10)
    np.testing.assert_allclose(marginals.cols[0].numpy() / len(texts), square.sum(0), rtol=1e-10)


def test_the_rank1_fit_is_exact_when_the_mean_square_is_rank1():
    rng = np.random.default_rng(0)
    alpha, beta = rng.uniform(0.1, 3, 7), rng.uniform(0.1, 3, 5)
    square = np.outer(alpha, beta)
    a, b = rank1_fit(torch.tensor(square.sum(1)), torch.tensor(square.sum(0)))
    np.testing.assert_allclose(np.outer(a, b), np.sqrt(square), rtol=1e-12)
    # one text: g² = u² h²ᵀ is rank 1, so the fit is |g| itself
    g = np.outer(rng.normal(size=7), rng.normal(size=5))
    a, b = rank1_fit(torch.tensor((g**2).sum(1)), torch.tensor((g**2).sum(0)))
    np.testing.assert_allclose(np.outer(a, b), np.abs(g), rtol=1e-12)
    # a row no text moves gets scale 1 instead of a division by zero
    a, _ = rank1_fit(torch.tensor([0.0, 4.0]), torch.tensor([1.0, 3.0]))
    assert a[0] == 1.0


def _store(tmp_path, name, precondition, **kw):
    base = make_gpt2()
    texts, labels = make_texts(14, seed=6), np.arange(14) % CLASSES
    out = tmp_path / name
    _build(out, base, perturbed(base), texts, labels, 4, precondition=precondition, **kw)
    return out, labels


def test_none_is_todays_store_and_rms_adds_the_second_space(tmp_path):
    raw, _ = _store(tmp_path, "none", "none", checkpoints=2)
    pre, _ = _store(tmp_path, "rms", "rms", checkpoints=2)
    assert sorted(p.name for p in raw.iterdir()) == sorted(STORE_FILES)
    for name in ("grads.f32", "target.f32"):  # the raw space is untouched
        assert (raw / name).read_bytes() == (pre / name).read_bytes()
    meta_raw, meta_pre = (json.loads((p / "meta.json").read_text()) for p in (raw, pre))
    assert "precondition" not in meta_raw
    assert {k: v for k, v in meta_pre.items() if k != "precondition"} == meta_raw
    assert [p["form"] for p in meta_pre["precondition"]["parts"]] == ["exact"]
    grads, target, _ = load_gradient_store(pre)
    scaled, target2, _ = load_gradient_store(pre, preconditioned=True)
    D = load_file(str(pre / "rms.safetensors"))["D.0"].reshape(-1)
    g64 = np.asarray(grads, dtype=np.float64)
    np.testing.assert_allclose(D, np.sqrt(np.square(g64).mean(axis=(0, 1))), rtol=1e-6)
    np.testing.assert_allclose(scaled, g64 / D, rtol=1e-6)
    np.testing.assert_array_equal(target, target2)  # Δ is the same in both spaces
    # without a second space the Adam-aware view is the raw one (D = 1)
    plain, _, _ = load_gradient_store(raw, preconditioned=True)
    np.testing.assert_array_equal(plain, grads)
    (pre / "grads_rms.f32").unlink()
    with pytest.raises(UserError, match="incomplete.*grads_rms.f32"):
        load_gradient_store(pre)


@pytest.mark.parametrize("loss", ["full_vocab", "lm"])
def test_a_sketched_store_divides_by_the_rank1_d_before_sketching(tmp_path, loss):
    """Sketch is linear: the RMS columns must be the dense map of each exact gradient
    divided by a bᵀ, with a and b as the store wrote them."""
    kw = {"loss": loss, "k": 48, "seed": 3}
    exact, _ = _store(tmp_path, "exact", "none", projection="none", **kw)
    sketched, _ = _store(tmp_path, "sketched", "rms", projection="dense", **kw)
    plain, _ = _store(tmp_path, "plain", "none", projection="dense", **kw)
    assert (plain / "grads.f32").read_bytes() == (sketched / "grads.f32").read_bytes()
    G, _, meta = load_gradient_store(exact)
    factors = load_file(str(sketched / "rms.safetensors"))
    a, b = factors["row.0"].astype(np.float64), factors["col.0"].astype(np.float64)
    V, d = len(a), len(b)
    projector = make_projector("dense", V, d, 48, 3)
    expect = [
        projector.project_matrix(torch.tensor(g.reshape(V, d) / np.outer(a, b))).numpy()
        for g in np.asarray(G[:, 0], dtype=np.float64)
    ]
    scaled, _, meta = load_gradient_store(sketched, preconditioned=True)
    assert meta["precondition"]["parts"][0]["form"] == "rank1"
    np.testing.assert_allclose(scaled[:, 0], np.stack(expect), rtol=2e-4, atol=1e-6)


def test_the_adam_aware_strategies_select_in_the_preconditioned_space(tmp_path):
    store, labels = _store(tmp_path, "rms", "rms")
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(14)], "pseudolabel": labels})
    frame["loss"] = 0.0
    grads, target, _ = load_gradient_store(store)
    scaled, _, _ = load_gradient_store(store, preconditioned=True)
    for strategy, space, batch in [
        ("select", grads, None),
        ("select_pre", scaled, None),
        ("select_batch_pre", scaled, 3),
    ]:
        picked = choose(frame, store, strategy, 6, 0, 3)
        expect, scores = greedy_select(space, target, 6, batch_size=batch)
        np.testing.assert_array_equal(picked["index"], expect)
        np.testing.assert_allclose(picked["score"], scores)  # the batch's resets show here
    # the two spaces score the same picks differently
    assert not np.allclose(
        choose(frame, store, "select", 6, 0, 3)["score"],
        choose(frame, store, "select_pre", 6, 0, 3)["score"],
    )
