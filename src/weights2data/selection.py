"""SELECT and every baseline: pick K distinct pool indices from a gradient store.

The store is ``grads`` (N×C×D, usually a float32 memmap) with one target row ``Δ_c`` per
checkpoint (C×D). Everything streams over row blocks, so a store larger than RAM works.

Greedy SELECT keeps, per example j and checkpoint c, ``a = g·Δ`` and ``n = |g|²`` (one pass at
the start) and ``b = S·g`` (updated by ONE mat-vec ``G g_pick`` per pick), so that

    cos(S + g, Δ) = (S·Δ + a) / (|Δ| sqrt(|S|² + 2b + n)).

The length-N accumulators and S itself are float64, so the picks match a naive recomputation of
every cosine; only the heavy mat-vec runs in the store's dtype (numpy float32 gemv is the
memory-bandwidth-bound part).

Each strategy is one ``pick_*`` function of a :class:`Request`; their names, labels and the
dispatch by name live in :mod:`weights2data.strategies`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import UserError

# Rows per block: ~64 MiB of float32 at D = 1024, C = 1.
BLOCK_BYTES = 1 << 26


# --------------------------------------------------------------------------- store access


def _as_store(grads, target) -> tuple[np.ndarray, np.ndarray]:
    """View grads as N×C×D and the target as C×D (a single checkpoint may drop the C axis)."""
    if grads is None or target is None:
        raise UserError("this strategy needs a gradient store (grads and target).")
    target = np.asarray(target, dtype=np.float64)
    if grads.ndim == 2:
        grads = grads[:, None, :]
    if target.ndim == 1:
        target = target[None, :]
    if grads.ndim != 3 or target.shape != grads.shape[1:]:
        raise UserError(
            f"gradient store shape {grads.shape} does not match target shape {target.shape}; "
            "they must be N×C×D and C×D from the same store."
        )
    if not np.isfinite(target).all():
        raise UserError("the target direction has NaN or inf entries; rebuild the store.")
    norms = np.linalg.norm(target, axis=1)
    if (norms == 0).any():
        raise UserError("a target direction Δ_c is all zero; the final model is not a finetune.")
    return grads, target


def _blocks(grads: np.ndarray, block_rows: int | None) -> Iterator[tuple[int, np.ndarray]]:
    n = grads.shape[0]
    rows = block_rows or max(1, BLOCK_BYTES // max(1, grads[0].nbytes))
    for start in range(0, n, rows):
        yield start, grads[start : start + rows]


def store_statistics(
    grads: np.ndarray, target: np.ndarray, block_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One pass: ``a = g·Δ`` and ``n = |g|²`` per example and checkpoint (N×C, float64)."""
    grads, target = _as_store(grads, target)
    N, C, _ = grads.shape
    a, n = np.empty((N, C)), np.empty((N, C))
    for start, block in _blocks(grads, block_rows):
        block = np.asarray(block, dtype=np.float64)
        stop = start + len(block)
        a[start:stop] = np.einsum("rcd,cd->rc", block, target)
        n[start:stop] = np.einsum("rcd,rcd->rc", block, block)
    if not (np.isfinite(a).all() and np.isfinite(n).all()):
        raise UserError("the gradient store holds NaN or inf values; rebuild it.")
    return a, n


def _safe_cos(dot: np.ndarray, norm_sq: np.ndarray, target_norm: np.ndarray) -> np.ndarray:
    """dot / (|Δ| sqrt(norm_sq)), mean over checkpoints; a zero vector has cosine 0."""
    denom = target_norm * np.sqrt(np.maximum(norm_sq, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), 0.0)
    return cos.mean(axis=1)


def cosines(grads: np.ndarray, target: np.ndarray, block_rows: int | None = None) -> np.ndarray:
    """Mean over checkpoints of cos(g_j^c, Δ_c) for every pool example (N, float64)."""
    grads, target = _as_store(grads, target)
    a, n = store_statistics(grads, target, block_rows)
    return _safe_cos(a, n, np.linalg.norm(target, axis=1))


# --------------------------------------------------------------------------- greedy SELECT


def _matvec(grads: np.ndarray, vector: np.ndarray, out: np.ndarray, block_rows) -> None:
    """out[:, c] += grads[:, c, :] @ vector[c], block by block, in the store's dtype."""
    vector = vector.astype(grads.dtype, copy=False)
    for start, block in _blocks(grads, block_rows):
        stop = start + len(block)
        for c in range(block.shape[1]):
            out[start:stop, c] += block[:, c, :] @ vector[c]


class _Scorer:
    """mean_c (S·Δ + a) / (|Δ| sqrt(|S|² + 2b + n)) for all N, into preallocated buffers (the
    per-pick overhead beside the mat-vec stays a small fraction of one pass over the store)."""

    def __init__(self, a: np.ndarray, n: np.ndarray, target_norm: np.ndarray) -> None:
        self.a, self.n, self.target_norm = a, n, target_norm
        self.num, self.den = np.empty_like(a), np.empty_like(a)

    def __call__(self, s_dot: np.ndarray, s_sq: np.ndarray, b: np.ndarray) -> np.ndarray:
        num, den = self.num, self.den
        np.add(self.a, s_dot, out=num)
        np.multiply(b, 2.0, out=den)
        den += self.n
        den += s_sq
        np.copyto(den, np.inf, where=den <= 0)  # a zero vector: cosine 0
        np.sqrt(den, out=den)
        den *= self.target_norm
        num /= den
        return num[:, 0].copy() if num.shape[1] == 1 else num.mean(axis=1)


def greedy_select(
    grads: np.ndarray,
    target: np.ndarray,
    k: int,
    *,
    batch_size: int | None = None,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy SELECT: K picks, each maximising mean_c cos(S_c + g_j^c, Δ_c) over unpicked j.

    With ``batch_size`` S is reset to 0 after every ``batch_size`` picks (SELECT (Batch));
    picked items stay excluded. Scores are the objective right after each pick.
    """
    grads, target = _as_store(grads, target)
    N, C, D = grads.shape
    a, n = store_statistics(grads, target, block_rows)
    score_all = _Scorer(a, n, np.linalg.norm(target, axis=1))
    indices, scores = np.empty(k, dtype=np.int64), np.empty(k)
    for step in range(k):
        if step == 0 or (batch_size and step % batch_size == 0):
            S, b = np.zeros((C, D)), np.zeros((N, C))
        score = score_all(np.einsum("cd,cd->c", S, target), np.einsum("cd,cd->c", S, S), b)
        score[indices[:step]] = -np.inf
        j = int(np.argmax(score))
        indices[step], scores[step] = j, score[j]
        g = np.asarray(grads[j])
        S += g
        if step + 1 < k and not (batch_size and (step + 1) % batch_size == 0):
            _matvec(grads, g, b, block_rows)
    return indices, scores


# --------------------------------------------------------------------------- baselines


def _top(values: np.ndarray, k: int, descending: bool) -> np.ndarray:
    """Indices of the k largest/smallest values; ties by index; NaN always last."""
    key = -values if descending else values
    return np.argsort(key, kind="stable")[:k].astype(np.int64)


def topk_balanced(cos: np.ndarray, pseudolabels: np.ndarray, k: int) -> np.ndarray:
    """Top-K with a quota of ceil(K / #classes) per pseudolabel, filled round-robin by rank.

    An item ranked r within its class is taken in round r; items beyond the quota wait in one
    last round ordered by cosine, which fills the places of classes that run short. One sort,
    so it always terminates.
    """
    labels = np.asarray(pseudolabels)
    if labels.shape != cos.shape:
        raise UserError(f"got {labels.shape[0]} pseudolabels for a pool of {cos.shape[0]}.")
    classes = np.unique(labels)
    quota = math.ceil(k / len(classes))
    by_score = np.argsort(-cos, kind="stable")
    rank = np.empty(len(cos), dtype=np.int64)
    for cls in classes:
        members = by_score[labels[by_score] == cls]
        rank[members] = np.arange(len(members))
    round_ = np.minimum(rank, quota)
    order = np.lexsort((np.arange(len(cos)), -cos, round_))
    return order[:k].astype(np.int64)


# --------------------------------------------------------------------------- one rule per strategy


@dataclass(frozen=True)
class Request:
    """What a strategy picks from: the pool's inputs (any may be None), its size N and K.

    ``weights2data.strategies.run_strategy`` checks the request and builds it; each ``pick_*``
    below is one strategy's rule (the registry names them).
    """

    n: int
    k: int
    grads: np.ndarray | None = None
    target: np.ndarray | None = None
    losses: np.ndarray | None = None
    pseudolabels: np.ndarray | None = None
    seed: int = 0
    batch_size: int | None = None
    block_rows: int | None = None


Picked = tuple[np.ndarray, np.ndarray]


def pick_select(r: Request) -> Picked:
    """Greedy SELECT; scores are the objective right after each pick."""
    return greedy_select(r.grads, r.target, r.k, block_rows=r.block_rows)


def pick_select_batch(r: Request) -> Picked:
    """SELECT (Batch): greedy SELECT with S reset every ``batch_size`` picks."""
    if not r.batch_size or r.batch_size < 1:
        raise UserError("select_batch needs batch_size ≥ 1 (picks between resets of S).")
    return greedy_select(
        r.grads, r.target, r.k, batch_size=int(r.batch_size), block_rows=r.block_rows
    )


def pick_random(r: Request) -> Picked:
    """K distinct texts drawn by the seed; scored by cos(g, Δ) when a store is given."""
    cos = cosines(r.grads, r.target, r.block_rows) if r.grads is not None else None
    idx = np.random.default_rng(r.seed).choice(r.n, size=r.k, replace=False).astype(np.int64)
    return idx, (cos[idx] if cos is not None else np.full(r.k, np.nan))


def _by_cosine(r: Request, descending: bool) -> Picked:
    cos = cosines(r.grads, r.target, r.block_rows)
    idx = _top(cos, r.k, descending=descending)
    return idx, cos[idx]


def pick_topk(r: Request) -> Picked:
    """The K texts of largest cos(g, Δ)."""
    return _by_cosine(r, descending=True)


def pick_bottomk(r: Request) -> Picked:
    """The K texts of smallest cos(g, Δ)."""
    return _by_cosine(r, descending=False)


def pick_topk_balanced(r: Request) -> Picked:
    """Top-K by cos(g, Δ) with a quota per pseudolabel (:func:`topk_balanced`)."""
    cos = cosines(r.grads, r.target, r.block_rows)
    if r.pseudolabels is None:
        raise UserError("topk_balanced needs the pseudolabels of the pool.")
    idx = topk_balanced(cos, r.pseudolabels, r.k)
    return idx, cos[idx]


def _by_loss(r: Request, name: str, descending: bool) -> Picked:
    if r.losses is None:
        raise UserError(f"strategy {name!r} needs the final model's loss on every pool text.")
    losses = np.asarray(r.losses, dtype=np.float64)
    if losses.shape != (r.n,):
        raise UserError(f"got {losses.shape[0]} losses for a pool of {r.n}.")
    idx = _top(losses, r.k, descending=descending)
    return idx, losses[idx]


def pick_pmin(r: Request) -> Picked:
    """P-Min: the K texts the final model finds easiest (lowest loss)."""
    return _by_loss(r, "pmin", descending=False)


def pick_pmax(r: Request) -> Picked:
    """P-Max: the K texts the final model finds hardest (highest loss)."""
    return _by_loss(r, "pmax", descending=True)
