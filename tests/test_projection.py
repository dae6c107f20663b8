"""Sketches: one linear map per seed, unbiased inner products, error falling with k."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weights2data import projection as P
from weights2data.errors import UserError
from weights2data.projection import PROJECTIONS, make_projector

V, D_IN = 12, 6
SKETCHES = ("dense", "factored", "tensorsketch")


def factors(seed: int = 0, positions: int = 7):
    gen = torch.Generator().manual_seed(seed)
    U = torch.randn(positions, V, generator=gen, dtype=torch.float64)
    H = torch.randn(positions, D_IN, generator=gen, dtype=torch.float64)
    index = torch.tensor([0, 0, 1, 1, 1, 2, 2])[:positions]
    return U, H, index


def exact_sums(U, H, index, n):
    return torch.stack([U[index == e].T @ H[index == e] for e in range(n)])


@pytest.mark.parametrize("kind", PROJECTIONS)
def test_outer_sum_and_matrix_apply_the_same_map(kind):
    U, H, index = factors()
    proj = make_projector(kind, V, D_IN, 16, seed=5)
    got = proj.project_outer_sum(U, H, index, 3)
    want = torch.stack([proj.project_matrix(G) for G in exact_sums(U, H, index, 3)])
    assert got.shape == (3, proj.k) and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_none_is_the_exact_flattening():
    U, H, index = factors()
    proj = make_projector("none", V, D_IN, 999, seed=0)
    assert proj.k == V * D_IN
    torch.testing.assert_close(
        proj.project_outer_sum(U, H, index, 3), exact_sums(U, H, index, 3).reshape(3, -1)
    )


@pytest.mark.parametrize("kind", SKETCHES)
def test_seeded_and_deterministic(kind):
    U, H, index = factors()
    a = make_projector(kind, V, D_IN, 16, seed=3).project_outer_sum(U, H, index, 3)
    b = make_projector(kind, V, D_IN, 16, seed=3).project_outer_sum(U, H, index, 3)
    c = make_projector(kind, V, D_IN, 16, seed=4).project_outer_sum(U, H, index, 3)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("kind", SKETCHES)
def test_float32_and_float64_agree(kind):
    U, H, index = factors()
    proj = make_projector(kind, V, D_IN, 16, seed=1)
    lo = proj.project_outer_sum(U.float(), H.float(), index, 3)
    hi = proj.project_outer_sum(U, H, index, 3)
    torch.testing.assert_close(lo.double(), hi, rtol=1e-5, atol=1e-5)


def _inner_products(kind: str, k: int, seeds: int, G, M) -> np.ndarray:
    U, H, index = factors()
    out = []
    for seed in range(seeds):
        proj = make_projector(kind, V, D_IN, k, seed)
        out.append(float(proj.project_outer_sum(U, H, index, 3)[0] @ proj.project_matrix(M)))
    return np.array(out)


@pytest.mark.parametrize("kind", SKETCHES)
def test_unbiased_and_error_falls_with_k(kind):
    U, H, index = factors()
    G = exact_sums(U, H, index, 3)[0]
    M = torch.randn(V, D_IN, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    exact = float((G * M).sum())
    seeds = 400
    small = _inner_products(kind, 16, seeds, G, M)
    large = _inner_products(kind, 256, seeds, G, M)
    for est in (small, large):
        stderr = est.std(ddof=1) / np.sqrt(seeds)
        assert abs(est.mean() - exact) < 4.5 * stderr, (est.mean(), exact, stderr)
    # Spread falls like 1/sqrt(k): 16× more dimensions → ~4× smaller error.
    assert large.std() < 0.45 * small.std()


def test_tensorsketch_repeats_are_unbiased_and_consistent():
    U, H, index = factors()
    proj = P.TensorSketchProjector(V, D_IN, 16, seed=2, repeats=4)
    got = proj.project_outer_sum(U, H, index, 3)
    want = torch.stack([proj.project_matrix(G) for G in exact_sums(U, H, index, 3)])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(UserError, match="divide"):
        P.TensorSketchProjector(V, D_IN, 16, seed=2, repeats=3)


def test_dense_blockwise_equals_cached(monkeypatch):
    U, H, index = factors()
    cached = make_projector("dense", V, D_IN, 20, seed=8).project_outer_sum(U, H, index, 3)
    monkeypatch.setattr(P, "DENSE_CACHE_ELEMENTS", 0)
    blockwise = make_projector("dense", V, D_IN, 20, seed=8).project_outer_sum(U, H, index, 3)
    torch.testing.assert_close(cached, blockwise, rtol=1e-12, atol=1e-12)


def test_factored_shapes_and_bad_requests():
    assert P.factor_dims(1024) == (32, 32)
    assert P.factor_dims(4096) == (64, 64)
    assert P.factor_dims(512) == (32, 16)
    with pytest.raises(UserError, match="factors"):
        make_projector("factored", V, D_IN, 1021, seed=0)  # prime: 1021 × 1
    with pytest.raises(UserError, match="unknown projection"):
        make_projector("gaussian", V, D_IN, 16, seed=0)
    with pytest.raises(UserError, match="seed"):
        make_projector("dense", V, D_IN, 16, seed=-1)
    with pytest.raises(UserError, match="positive integer"):
        make_projector("tensorsketch", V, D_IN, 0, seed=0)
    assert P.DEFAULT_PROJECTION in ("factored", "tensorsketch")
