"""Greedy SELECT at N=100,000, k=1024, K=1,000: incremental vs naive, and the memory floor.

- incremental: ``greedy_select`` (one float32 mat-vec of the store per pick);
- naive: recompute cos(S + g_j, Δ) for every j at every pick (extrapolated from a few picks,
  which must equal the incremental picks);
- floor: K plain passes over the store (one whole-store numpy float32 mat-vec each), measured
  in the same run, half before and half after the SELECT run.

Targets: naive / incremental ≥ 10; incremental / floor ≤ 1.5.
Run: PYTHONPATH=workflow .venv/bin/python benchmarks/bench_select.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from weights2data.selection import greedy_select

N, D, K = 100_000, 1024, 1_000
NAIVE_PICKS = 3
BLOCK = 16_384


def store(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random gradients with a shared direction (so cosines spread), float32 like a store."""
    rng = np.random.default_rng(seed)
    grads = rng.standard_normal((N, D), dtype=np.float32)
    common = rng.standard_normal(D, dtype=np.float32)
    grads += rng.standard_normal((N, 1), dtype=np.float32) * common
    target = (common + rng.standard_normal(D, dtype=np.float32)).astype(np.float32)
    return grads, target


def naive_picks(grads: np.ndarray, target: np.ndarray, picks: int) -> tuple[list[int], float]:
    """Recompute every candidate's cosine from scratch (block by block, float32 like the store,
    so the comparison is fair); median seconds per pick."""
    S = np.zeros(D, dtype=np.float32)
    chosen: list[int] = []
    times = []
    for _ in range(picks):
        t = time.perf_counter()
        score = np.empty(N)
        for start in range(0, N, BLOCK):
            cand = grads[start : start + BLOCK] + S
            score[start : start + BLOCK] = (cand @ target) / np.linalg.norm(cand, axis=1)
        score /= np.linalg.norm(target)
        score[chosen] = -np.inf
        j = int(np.argmax(score))
        chosen.append(j)
        S += grads[j]
        times.append(time.perf_counter() - t)
    return chosen, statistics.median(times)


def plain_passes(grads: np.ndarray, v: np.ndarray, passes: int) -> list[float]:
    """Seconds of each of ``passes`` whole-store numpy float32 mat-vecs."""
    times = []
    for _ in range(passes):
        t = time.perf_counter()
        grads @ v
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    torch.set_num_threads(2)
    grads, target = store()
    print(f"store {N}×{D} float32 ({grads.nbytes / 2**20:.0f} MiB), K={K}")
    v = grads[0].copy()
    plain_passes(grads, v, 2)  # warm up
    # The floor is K real passes, half before and half after the SELECT run, so both see the
    # same (shared, fluctuating) machine load.
    before = plain_passes(grads, v, K // 2)
    t = time.perf_counter()
    idx, _ = greedy_select(grads, target, K)
    incremental = time.perf_counter() - t
    after = plain_passes(grads, v, K - K // 2)
    floor = sum(before) + sum(after)
    floor_median = statistics.median(before + after) * K
    chosen, per_pick = naive_picks(grads, target, NAIVE_PICKS)
    assert chosen == idx[:NAIVE_PICKS].tolist(), (chosen, idx[:NAIVE_PICKS])
    naive = per_pick * K
    speedup, over_floor = naive / incremental, incremental / floor
    gbps = grads.nbytes * K / incremental / 1e9
    print(
        f"incremental SELECT: {incremental:7.1f} s ({incremental / K * 1e3:.1f} ms/pick, "
        f"{gbps:.1f} GB/s through the store)"
    )
    print(
        f"naive recompute:    {naive:7.1f} s (extrapolated from {NAIVE_PICKS} picks, "
        f"{per_pick:.3f} s/pick; its picks equal the incremental ones)"
    )
    print(
        f"memory floor:       {floor:7.1f} s ({K} plain whole-store mat-vecs; median pass × K "
        f"= {floor_median:.1f} s)"
    )
    print(
        f"{'PASS' if speedup >= 10 else 'FAIL'}: naive / incremental = {speedup:.1f}× (target ≥ 10)"
    )
    print(
        f"{'PASS' if over_floor <= 1.5 else 'FAIL'}: incremental / floor = {over_floor:.2f} "
        "(target ≤ 1.5)"
    )
    over_median = incremental / floor_median
    print(
        f"{'PASS' if over_median <= 1.5 else 'FAIL'}: incremental / (median pass × K) = "
        f"{over_median:.2f} (target ≤ 1.5)"
    )


if __name__ == "__main__":
    main()
