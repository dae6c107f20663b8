"""Seeded sketches of last-layer gradients without ever forming a V×d matrix per example.

A per-example last-layer gradient is an outer-product sum ``G = Σ_t u_t h_tᵀ`` (``u_t ∈ R^V``,
``h_t ∈ R^d``). Every projector here is a fixed, seeded linear map ``vec(G) -> R^k`` with
``E[<sketch(G), sketch(M)>] = <G, M>``, so cosines between sketched gradients and the sketched
target ``Δ`` estimate the exact ones. Two entry points apply the SAME map:

- ``project_outer_sum(U, H, example_index, n_examples)``: sketches ``Σ_{t in e} u_t h_tᵀ`` for each
  example ``e`` from the per-position factors (the gradient store uses this);
- ``project_matrix(M)``: sketches one explicit V×d matrix (the target ``Δ``).

Kinds:

- ``none``: exact flattening (k = V·d); right for the label-restricted C×d gradient.
- ``dense``: Rademacher JL on ``vec(G)`` (the authors' route); the reference, small V·d only.
- ``factored``: Kronecker sketch ``R_out G R_inᵀ`` (LoGra), computed per position as
  ``(R_out u)(R_in h)ᵀ``; k = k1·k2.
- ``tensorsketch``: Pham & Pagh (2013): CountSketch ``u`` and ``h`` separately and combine them by
  circular convolution (FFT). This is a CountSketch of ``vec(u hᵀ)`` with the bucket
  ``(a(i) + b(j)) mod k`` and the sign ``s(i) t(j)``, so it is unbiased with no rescaling.
  ``repeats`` independent sketches of size k/repeats are concatenated and scaled by
  ``1/sqrt(repeats)``, which averages their inner products.

``DEFAULT_PROJECTION`` was chosen by ``benchmarks/bench_sketch.py`` (V=2048, d=128, k=1024;
median |cosine error| of (g, Δ) and (g_i, g_j) pairs, mean of full-vocab and LM loss): dense JL
0.0202, tensorsketch 0.0216 (1.07× dense), factored 0.0486 (2.4× dense: its Kronecker structure
multiplies the errors of two small JLs, k1 = k2 = 32). Four averaged tensorsketches of k/4
(0.0227) did not help, so ``repeats`` defaults to 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import UserError

PROJECTIONS = ("none", "dense", "factored", "tensorsketch")
DEFAULT_PROJECTION = "tensorsketch"
DEFAULT_TENSORSKETCH_REPEATS = 1

# Largest V·d for which the exact flattening or a dense JL matrix is allowed: beyond it a single
# example's gradient (or one block of 8 dense rows) costs more memory than a pipeline step should.
MAX_DENSE_ELEMENTS = 1 << 22
# The dense matrix is generated in fixed blocks of rows, each from its own seed, so it is the same
# matrix whether it is cached or regenerated block by block.
DENSE_BLOCK_ROWS = 8
# Cache the whole dense matrix when k·V·d stays under this many entries (256 MiB in float32).
DENSE_CACHE_ELEMENTS = 1 << 26

_TAGS = {"dense": 1, "factored": 2, "tensorsketch": 3}


def _rng(seed: int, kind: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _TAGS[kind], *extra]))


def rademacher_signs(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A rows×cols float32 matrix of ±1 from random bits (8× less RNG work than one draw each)."""
    count = rows * cols
    bits = np.unpackbits(np.frombuffer(rng.bytes((count + 7) // 8), dtype=np.uint8), count=count)
    signs = bits.astype(np.float32)
    signs *= 2.0
    signs -= 1.0
    return signs.reshape(rows, cols)


class Projector:
    """A seeded linear map from V×d matrices to R^k (see the module docstring)."""

    kind = "abstract"

    def __init__(self, V: int, d: int, k: int, seed: int) -> None:
        self.V, self.d, self.k, self.seed = V, d, k, seed
        self._cache: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def describe(self) -> dict:
        """What a store's meta.json needs to say which map produced its columns."""
        return {"kind": self.kind, "V": self.V, "d": self.d, "k": self.k, "seed": self.seed}

    def project_outer_sum(
        self,
        U: torch.Tensor,
        H: torch.Tensor,
        example_index: torch.Tensor,
        n_examples: int,
    ) -> torch.Tensor:
        """Sketch ``Σ_{t: example_index[t]=e} U[t] H[t]ᵀ`` for every example: (n_examples × k)."""
        self._check_factors(U, H, example_index)
        return self._outer_sum(U, H, example_index.to(U.device), n_examples)

    def project_matrix(self, M: torch.Tensor) -> torch.Tensor:
        """Sketch one V×d matrix (e.g. the target Δ) with the same map: (k,)."""
        if tuple(M.shape) != (self.V, self.d):
            raise ValueError(f"expected a {self.V}×{self.d} matrix, got {tuple(M.shape)}")
        return self._matrix(M)

    def _check_factors(self, U: torch.Tensor, H: torch.Tensor, index: torch.Tensor) -> None:
        if U.ndim != 2 or U.shape[1] != self.V:
            raise ValueError(f"U must be P×{self.V}, got {tuple(U.shape)}")
        if H.ndim != 2 or H.shape[1] != self.d:
            raise ValueError(f"H must be P×{self.d}, got {tuple(H.shape)}")
        if not (U.shape[0] == H.shape[0] == index.shape[0]):
            raise ValueError("U, H and example_index must have the same number of positions")

    def _constants(self, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Random constants on ``like``'s device and dtype, built once per (device, dtype)."""
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = tuple(
                t.to(device=like.device, dtype=like.dtype if t.is_floating_point() else t.dtype)
                for t in self._make_constants()
            )
        return self._cache[key]

    def _make_constants(self) -> tuple[torch.Tensor, ...]:
        return ()

    def _outer_sum(self, U, H, index, n) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _matrix(self, M) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _per_example_matrices(U, H, index, n) -> torch.Tensor:
    """Exact per-example sums Σ u hᵀ (n×V×d): only for small V·d."""
    out = U.new_zeros((n, U.shape[1], H.shape[1]))
    for e in range(n):
        rows = index == e
        if bool(rows.any()):
            out[e] = U[rows].T @ H[rows]
    return out


class ExactProjector(Projector):
    """No projection: the row-major flattening of G (k = V·d)."""

    kind = "none"

    def _outer_sum(self, U, H, index, n):
        return _per_example_matrices(U, H, index, n).reshape(n, -1)

    def _matrix(self, M):
        return M.reshape(-1).clone()


class DenseProjector(Projector):
    """Rademacher JL, entries ±1/sqrt(k), generated in seeded blocks of rows."""

    kind = "dense"

    def _block(self, b: int) -> np.ndarray:
        rows = min(DENSE_BLOCK_ROWS, self.k - b * DENSE_BLOCK_ROWS)
        rng = _rng(self.seed, "dense", self.V, self.d, self.k, b)
        return rademacher_signs(rng, rows, self.V * self.d)

    def _blocks(self, like: torch.Tensor):
        """Yield (row offset, rows) pairs: the whole cached matrix when it is small, else groups
        of consecutive seeded blocks of about DENSE_CACHE_ELEMENTS entries (few, large
        mat-muls instead of many thin memory-bound ones)."""
        if self.k * self.V * self.d <= DENSE_CACHE_ELEMENTS:
            (full,) = self._constants(like)
            yield 0, full
            return
        n_blocks = math.ceil(self.k / DENSE_BLOCK_ROWS)
        group = max(1, DENSE_CACHE_ELEMENTS // (DENSE_BLOCK_ROWS * self.V * self.d))
        for first in range(0, n_blocks, group):
            blocks = [self._block(b) for b in range(first, min(first + group, n_blocks))]
            rows = torch.from_numpy(np.concatenate(blocks))
            yield first * DENSE_BLOCK_ROWS, rows.to(device=like.device, dtype=like.dtype)

    def _make_constants(self):
        n_blocks = math.ceil(self.k / DENSE_BLOCK_ROWS)
        return (torch.from_numpy(np.concatenate([self._block(b) for b in range(n_blocks)])),)

    def _apply(self, flat: torch.Tensor) -> torch.Tensor:
        out = flat.new_empty((flat.shape[0], self.k))
        for start, block in self._blocks(flat):
            out[:, start : start + block.shape[0]] = flat @ block.T
        return out / math.sqrt(self.k)

    def _outer_sum(self, U, H, index, n):
        return self._apply(_per_example_matrices(U, H, index, n).reshape(n, -1))

    def _matrix(self, M):
        return self._apply(M.reshape(1, -1))[0]


def factor_dims(k: int) -> tuple[int, int]:
    """Split k = k1·k2 with k2 the largest divisor ≤ sqrt(k): balanced factors minimise variance."""
    k2 = max(d for d in range(1, math.isqrt(k) + 1) if k % d == 0)
    return k // k2, k2


class FactoredProjector(Projector):
    """Kronecker JL: vec(R_out G R_inᵀ) with Rademacher R_out (k1×V) and R_in (k2×d)."""

    kind = "factored"

    def __init__(self, V: int, d: int, k: int, seed: int) -> None:
        super().__init__(V, d, k, seed)
        self.k1, self.k2 = factor_dims(k)
        if self.k2 * self.k2 * 16 < k:
            raise UserError(
                f"k={k} only factors as {self.k1}×{self.k2}; the factored sketch needs k1 and k2 "
                "of similar size. Use a power of two or a square for k (e.g. 1024 = 32×32)."
            )

    def describe(self) -> dict:
        return {**super().describe(), "k1": self.k1, "k2": self.k2}

    def _make_constants(self):
        rng = _rng(self.seed, "factored", self.V, self.d, self.k)
        r_out = torch.from_numpy(rademacher_signs(rng, self.k1, self.V)) / math.sqrt(self.k1)
        r_in = torch.from_numpy(rademacher_signs(rng, self.k2, self.d)) / math.sqrt(self.k2)
        return r_out, r_in

    def _outer_sum(self, U, H, index, n):
        r_out, r_in = self._constants(U)
        a, b = U @ r_out.T, H @ r_in.T
        per_position = (a[:, :, None] * b[:, None, :]).reshape(len(a), -1)
        return per_position.new_zeros((n, self.k)).index_add_(0, index, per_position)

    def _matrix(self, M):
        r_out, r_in = self._constants(M)
        return (r_out @ M @ r_in.T).reshape(-1)


class TensorSketchProjector(Projector):
    """Pham–Pagh TensorSketch: CountSketch(u) ⊛ CountSketch(h), summed over positions."""

    kind = "tensorsketch"

    def __init__(self, V: int, d: int, k: int, seed: int, repeats: int = 1) -> None:
        super().__init__(V, d, k, seed)
        if repeats < 1 or k % repeats:
            raise UserError(f"tensorsketch repeats={repeats} must be ≥ 1 and divide k={k}.")
        self.repeats, self.width = repeats, k // repeats

    def describe(self) -> dict:
        return {**super().describe(), "repeats": self.repeats}

    def _make_constants(self):
        rng = _rng(self.seed, "tensorsketch", self.V, self.d, self.k, self.repeats)
        w, m = self.width, self.repeats
        out_bucket = torch.from_numpy(rng.integers(0, w, size=(m, self.V)))
        in_bucket = torch.from_numpy(rng.integers(0, w, size=(m, self.d)))
        out_sign = torch.from_numpy(rademacher_signs(rng, m, self.V))
        in_sign = torch.from_numpy(rademacher_signs(rng, m, self.d))
        return out_bucket, in_bucket, out_sign, in_sign

    def _countsketch(self, X: torch.Tensor, bucket: torch.Tensor, sign: torch.Tensor):
        return X.new_zeros((X.shape[0], self.width)).index_add_(1, bucket, X * sign)

    def _outer_sum(self, U, H, index, n):
        out_bucket, in_bucket, out_sign, in_sign = self._constants(U)
        parts = []
        for r in range(self.repeats):
            fu = torch.fft.rfft(self._countsketch(U, out_bucket[r], out_sign[r]), dim=1)
            fh = torch.fft.rfft(self._countsketch(H, in_bucket[r], in_sign[r]), dim=1)
            spectrum = fu.new_zeros((n, fu.shape[1])).index_add_(0, index, fu * fh)
            parts.append(torch.fft.irfft(spectrum, n=self.width, dim=1))
        return torch.cat(parts, dim=1) / math.sqrt(self.repeats)

    def _matrix(self, M):
        """Bucket rows by the output hash and columns by the input hash (a w×w table A), then
        add up its wrapped diagonals: entry j collects every A[a, b] with (a + b) mod w = j."""
        out_bucket, in_bucket, out_sign, in_sign = self._constants(M)
        w = self.width
        wrap = (torch.arange(w)[:, None] + torch.arange(w)[None, :]) % w
        wrap = wrap.reshape(-1).to(M.device)
        parts = []
        for r in range(self.repeats):
            rows = M.new_zeros((w, self.d)).index_add_(0, out_bucket[r], M * out_sign[r][:, None])
            table = self._countsketch(rows, in_bucket[r], in_sign[r])
            parts.append(M.new_zeros(w).index_add_(0, wrap, table.reshape(-1)))
        return torch.cat(parts) / math.sqrt(self.repeats)


def make_projector(
    kind: str, V: int, d: int, k: int, seed: int, *, repeats: int | None = None
) -> Projector:
    """Build a seeded projector; the same arguments always give the same map."""
    if kind not in PROJECTIONS:
        raise UserError(f"unknown projection {kind!r}; choose one of {', '.join(PROJECTIONS)}.")
    if min(V, d) < 1:
        raise UserError(f"matrix shape {V}×{d} is empty.")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise UserError(f"projection seed must be a non-negative integer, got {seed!r}.")
    if kind in ("none", "dense") and V * d > MAX_DENSE_ELEMENTS:
        raise UserError(
            f"projection {kind!r} needs {V}×{d} = {V * d:,} numbers per example; that is only "
            f"allowed up to {MAX_DENSE_ELEMENTS:,}. Use 'factored' or 'tensorsketch' instead."
        )
    if kind == "none":
        return ExactProjector(V, d, V * d, int(seed))
    if not isinstance(k, int | np.integer) or k < 1:
        raise UserError(f"projection dimension k must be a positive integer, got {k!r}.")
    k, seed = int(k), int(seed)
    if kind == "dense":
        return DenseProjector(V, d, k, seed)
    if kind == "factored":
        return FactoredProjector(V, d, k, seed)
    return TensorSketchProjector(V, d, k, seed, repeats or DEFAULT_TENSORSKETCH_REPEATS)
