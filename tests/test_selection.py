"""SELECT and the baselines: exact agreement with naive recomputation, and every edge case."""

from __future__ import annotations

import numpy as np
import pytest

from weights2data.errors import UserError
from weights2data.selection import cosines
from weights2data.strategies import NAMES, run_strategy


def random_store(N: int, C: int, D: int, seed: int = 0):
    """Gradients with a shared component (so cosines spread) plus a target per checkpoint."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(1, C, D))
    grads = rng.normal(size=(N, C, D)) + 0.5 * common * rng.normal(size=(N, 1, 1))
    target = rng.normal(size=(C, D)) + common[0]
    return grads.astype(np.float32), target.astype(np.float32)


def naive_select(grads, target, k, batch_size=None):
    """Recompute every candidate's mean cosine from scratch at every pick (float64)."""
    g = grads.astype(np.float64)
    t = target.astype(np.float64)
    S = np.zeros(g.shape[1:])
    picked: list[int] = []
    for step in range(k):
        if batch_size and step % batch_size == 0:
            S = np.zeros(g.shape[1:])
        cand = S[None] + g
        num = np.einsum("ncd,cd->nc", cand, t)
        den = np.linalg.norm(cand, axis=2) * np.linalg.norm(t, axis=1)
        score = (num / den).mean(axis=1)
        score[picked] = -np.inf
        j = int(np.argmax(score))
        picked.append(j)
        S = S + g[j]
    return np.array(picked)


def naive_cos(grads, target):
    g, t = grads.astype(np.float64), target.astype(np.float64)
    num = np.einsum("ncd,cd->nc", g, t)
    return (num / (np.linalg.norm(g, axis=2) * np.linalg.norm(t, axis=1))).mean(axis=1)


def as_memmap(tmp_path, array):
    mm = np.memmap(tmp_path / "g.f32", dtype=np.float32, mode="w+", shape=array.shape)
    mm[:] = array
    mm.flush()
    return np.memmap(tmp_path / "g.f32", dtype=np.float32, mode="r", shape=array.shape)


@pytest.mark.parametrize("C", [1, 3])
def test_incremental_select_matches_naive(tmp_path, C):
    grads, target = random_store(80, C, 24, seed=C)
    store = as_memmap(tmp_path, grads)
    want = naive_select(grads, target, 30)
    for block_rows in (None, 7):  # whole store at once, and many small blocks
        idx, scores = run_strategy(
            "select", grads=store, target=target, k=30, block_rows=block_rows
        )
        assert idx.tolist() == want.tolist()
    # The score of each pick is the objective of the selected set so far.
    S = np.cumsum(grads[want].astype(np.float64), axis=0)
    objective = naive_cos(S, target)
    # b = S·g comes from float32 mat-vecs, so scores agree to float32 precision.
    np.testing.assert_allclose(scores, objective, rtol=1e-6)


@pytest.mark.parametrize("C", [1, 3])
def test_select_batch_matches_naive(C):
    grads, target = random_store(60, C, 16, seed=10 + C)
    idx, _ = run_strategy("select_batch", grads=grads, target=target, k=25, batch_size=4)
    assert idx.tolist() == naive_select(grads, target, 25, batch_size=4).tolist()
    # batch_size = K behaves like plain SELECT.
    full, _ = run_strategy("select_batch", grads=grads, target=target, k=25, batch_size=25)
    assert full.tolist() == run_strategy("select", grads=grads, target=target, k=25)[0].tolist()


def test_select_accepts_a_single_checkpoint_without_c_axis():
    grads, target = random_store(30, 1, 8)
    a, _ = run_strategy("select", grads=grads[:, 0], target=target[0], k=5)
    b, _ = run_strategy("select", grads=grads, target=target, k=5)
    assert a.tolist() == b.tolist()


def test_topk_and_bottomk_are_the_extremes_and_differ():
    grads, target = random_store(50, 2, 12, seed=4)
    cos = naive_cos(grads, target)
    top, top_scores = run_strategy("topk", grads=grads, target=target, k=10)
    bottom, bottom_scores = run_strategy("bottomk", grads=grads, target=target, k=10)
    assert set(top) == set(np.argsort(-cos)[:10])
    assert set(bottom) == set(np.argsort(cos)[:10])
    assert bottom_scores.max() < top_scores.min()
    # The authors' bug (Top-K reversed) selects the same set as Top-K; Bottom-K must not.
    assert bottom.tolist() != top[::-1].tolist()
    assert not set(bottom) & set(top)
    np.testing.assert_allclose(bottom_scores, np.sort(cos)[:10], rtol=1e-9)


def test_topk_balanced_meets_quotas_and_terminates_when_a_class_is_tiny():
    grads, target = random_store(40, 1, 8, seed=5)
    labels = np.array([0] * 30 + [1] * 8 + [2] * 2)  # class 2 cannot meet a quota of 5
    idx, _ = run_strategy("topk_balanced", grads=grads, target=target, pseudolabels=labels, k=15)
    assert len(set(idx)) == 15
    cos = naive_cos(grads, target)
    quota_phase = []
    for cls, quota in ((0, 5), (1, 5), (2, 2)):
        members = np.flatnonzero(labels == cls)
        quota_phase += members[np.argsort(-cos[members])][:quota].tolist()
    rest = np.setdiff1d(np.arange(40), quota_phase)
    fill = rest[np.argsort(-cos[rest])][:3].tolist()  # the short class's places, by cosine
    assert set(idx.tolist()) == set(quota_phase + fill)
    assert np.bincount(labels[idx], minlength=3)[2] == 2
    # Feasible quotas are met exactly, and K = N takes everything.
    even = np.arange(40) % 4
    idx, _ = run_strategy("topk_balanced", grads=grads, target=target, pseudolabels=even, k=20)
    assert np.bincount(even[idx]).tolist() == [5, 5, 5, 5]
    idx, _ = run_strategy("topk_balanced", grads=grads, target=target, pseudolabels=labels, k=40)
    assert sorted(idx) == list(range(40))


def test_pmin_pmax_rank_by_loss():
    losses = np.array([0.5, 2.0, np.nan, 0.1, 3.0, 1.0])
    lo, lo_scores = run_strategy("pmin", losses=losses, k=3)
    hi, hi_scores = run_strategy("pmax", losses=losses, k=3)
    assert lo.tolist() == [3, 0, 5] and hi.tolist() == [4, 1, 5]
    assert lo_scores.tolist() == [0.1, 0.5, 1.0]


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_returns_k_distinct_and_is_deterministic(name):
    grads, target = random_store(50, 2, 10, seed=6)
    kw = {
        "grads": grads,
        "target": target,
        "losses": np.random.default_rng(1).random(50),
        "pseudolabels": np.arange(50) % 3,
        "k": 12,
        "batch_size": 5,
    }
    idx, scores = run_strategy(name, seed=3, **kw)
    assert idx.dtype == np.int64 and len(idx) == 12 and len(set(idx.tolist())) == 12
    assert idx.min() >= 0 and idx.max() < 50 and scores.shape == (12,)
    again, again_scores = run_strategy(name, seed=3, **kw)
    assert np.array_equal(idx, again) and np.array_equal(scores, again_scores)
    if name == "random":
        other, _ = run_strategy(name, seed=4, **kw)
        assert not np.array_equal(idx, other)


def test_request_errors():
    grads, target = random_store(5, 1, 4)
    with pytest.raises(UserError, match="unknown strategy"):
        run_strategy("magic", grads=grads, target=target, k=2)
    with pytest.raises(UserError, match="larger than the pool"):
        run_strategy("select", grads=grads, target=target, k=6)
    with pytest.raises(UserError, match="empty"):
        run_strategy("random", losses=np.zeros(0), k=1)
    with pytest.raises(UserError, match="positive"):
        run_strategy("random", losses=np.zeros(3), k=0)
    with pytest.raises(UserError, match="batch_size"):
        run_strategy("select_batch", grads=grads, target=target, k=2)
    with pytest.raises(UserError, match="all zero"):
        run_strategy("topk", grads=grads, target=np.zeros_like(target), k=2)
    with pytest.raises(UserError, match="needs the final model's loss"):
        run_strategy("pmin", grads=grads, target=target, k=2)
    bad = grads.copy()
    bad[2, 0, 1] = np.nan
    with pytest.raises(UserError, match="NaN"):
        run_strategy("select", grads=bad, target=target, k=2)


def test_zero_gradient_rows_are_handled():
    grads, target = random_store(10, 1, 4)
    grads[3] = 0.0
    assert cosines(grads, target)[3] == 0.0
    idx, _ = run_strategy("select", grads=grads, target=target, k=10)
    assert sorted(idx.tolist()) == list(range(10))
