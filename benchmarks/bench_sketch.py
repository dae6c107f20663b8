"""How well each sketch preserves gradient cosines, and what it costs per example.

At V=2048, d=128 (dense JL is still feasible) and k ∈ {256, 1024, 4096}: the median and p95
|cos(sketch a, sketch b) − cos(a, b)| for (gradient, Δ) pairs and (gradient, gradient) pairs,
for full-vocab and LM loss, pooled over 3 seeds; and the time per example of the store's call
(project_outer_sum, batches of 32; for dense this includes regenerating the matrix when it is
too big to cache, as the store would). The synthetic head has peaked softmaxes and anisotropic
hidden states, like a trained LM; Δ is minus the sum of 64 held-out gradients, like a finetune.

Target: the default projection's median error at k=1024 is within 1.5× of dense JL's.
Run: PYTHONPATH=workflow .venv/bin/python benchmarks/bench_sketch.py
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import torch

from weights2data.projection import DEFAULT_PROJECTION, make_projector

V, D = 2048, 128
KS = (256, 1024, 4096)
N_EXAMPLES, N_HELD_OUT = 150, 64
LM_TOKENS = 24
LABEL_TOKENS = (11, 12, 13, 14)
SEEDS = (0, 1, 2)
METHODS = (("dense", 1), ("factored", 1), ("tensorsketch", 1), ("tensorsketch", 4))


def synthetic_head(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An output matrix with peaked softmaxes and a shared hidden-state direction."""
    W = torch.randn(V, D, generator=gen) * (3.0 / math.sqrt(D))
    direction = torch.randn(D, generator=gen)
    return W, direction / direction.norm()


def hidden(n: int, direction: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    h = 0.6 * direction * math.sqrt(D) + 0.8 * torch.randn(n, D, generator=gen)
    return h / h.norm(dim=1, keepdim=True) * math.sqrt(D)


def factors(loss: str, n: int, W, direction, gen):
    """Per-position (p − e_y) rows, hidden states and example ids, like closed_form.py builds."""
    positions = 1 if loss == "full_vocab" else LM_TOKENS
    H = hidden(n * positions, direction, gen)
    p = torch.softmax(H @ W.T, dim=1)
    if loss == "full_vocab":
        y = torch.tensor(LABEL_TOKENS)[torch.randint(len(LABEL_TOKENS), (n,), generator=gen)]
    else:
        y = torch.multinomial(p, 1, generator=gen)[:, 0]
    U = p.clone()
    U[torch.arange(len(U)), y] -= 1.0
    U /= positions  # mean over the text's tokens, as the store does
    return U, H, torch.arange(n).repeat_interleave(positions)


def exact(U, H, index, n) -> torch.Tensor:
    return make_projector("none", V, D, 0, 0).project_outer_sum(U, H, index, n)


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def errors(grads: torch.Tensor, delta: torch.Tensor, sk_grads, sk_delta) -> np.ndarray:
    """|cosine error| for every (g_i, Δ) and (g_i, g_{i+1}) pair."""
    g, s = grads.numpy(), sk_grads.numpy()
    d_exact = np.broadcast_to(delta.numpy(), g.shape)
    d_sketch = np.broadcast_to(sk_delta.numpy(), s.shape)
    vs_delta = cos_rows(s, d_sketch) - cos_rows(g, d_exact)
    pairs = cos_rows(s[:-1], s[1:]) - cos_rows(g[:-1], g[1:])
    return np.abs(np.concatenate([vs_delta, pairs]))


def time_per_example(proj, U, H, index, repeats: int, batch: int = 32) -> tuple[float, float]:
    """Seconds per example of project_outer_sum over batches of ``batch`` examples: (median,
    min). The min is the cost without interference from other load on the shared cores."""
    batches = []
    for start in range(0, 2 * batch, batch):
        rows = (index >= start) & (index < start + batch)
        batches.append((U[rows], H[rows], index[rows] - start))
    times = []
    for _ in range(repeats):
        for u, h, i in batches:
            t = time.perf_counter()
            proj.project_outer_sum(u, h, i, batch)
            times.append((time.perf_counter() - t) / batch)
    return statistics.median(times), min(times)


def sketch_with_delta(proj, U, H, index, held):
    """Sketch the gradients and Δ = −Σ held-out gradients in ONE call: by linearity Δ's sketch
    is the sketch of the held-out factors (negated) summed into one extra example."""
    hu, hh, _ = held
    both = proj.project_outer_sum(
        torch.cat([U, -hu]),
        torch.cat([H, hh]),
        torch.cat([index, torch.full((len(hu),), N_EXAMPLES)]),
        N_EXAMPLES + 1,
    )
    return both[:N_EXAMPLES], both[N_EXAMPLES]


def main() -> None:
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    W, direction = synthetic_head(gen)
    results = {}
    print(
        f"V={V} d={D}, {N_EXAMPLES} examples, seeds {SEEDS}; |cos error| over "
        f"(g, Δ) and (g_i, g_i+1) pairs"
    )
    print(
        f"{'loss':<11}{'method':<16}{'k':>6}{'median':>10}{'p95':>10}"
        f"{'ms/ex med':>12}{'ms/ex min':>10}"
    )
    for loss in ("full_vocab", "lm"):
        U, H, index = factors(loss, N_EXAMPLES, W, direction, gen)
        grads = exact(U, H, index, N_EXAMPLES)
        held = factors(loss, N_HELD_OUT, W, direction, gen)
        delta = -exact(*held, N_HELD_OUT).sum(0)
        for kind, repeats in METHODS:
            name = kind if repeats == 1 else f"{kind}×{repeats}"
            for k in KS:
                errs = []
                for seed in SEEDS:
                    proj = make_projector(kind, V, D, k, seed, repeats=repeats)
                    sk, sk_delta = sketch_with_delta(proj, U, H, index, held)
                    if seed == 0 and k <= 1024:  # the two routes to Δ's sketch agree
                        direct = proj.project_matrix(delta.reshape(V, D))
                        assert (direct - sk_delta).norm() <= 1e-4 * direct.norm()
                    errs.append(errors(grads, delta, sk, sk_delta))
                err = np.concatenate(errs)
                proj = make_projector(kind, V, D, k, 0, repeats=repeats)
                med_t, min_t = time_per_example(proj, U, H, index, 1 if kind == "dense" else 10)
                med, p95 = float(np.median(err)), float(np.quantile(err, 0.95))
                results[(loss, name, k)] = med
                print(
                    f"{loss:<11}{name:<16}{k:>6}{med:>10.4f}{p95:>10.4f}"
                    f"{med_t * 1e3:>12.3f}{min_t * 1e3:>10.3f}"
                )
    pooled = {
        name: statistics.mean(results[(loss, name, 1024)] for loss in ("full_vocab", "lm"))
        for name in ("dense", "factored", "tensorsketch", "tensorsketch×4")
    }
    print("\nmean over the two losses of the median |cos error| at k=1024:")
    for name, value in pooled.items():
        print(f"  {name:<16}{value:.4f}")
    best = min(("factored", "tensorsketch"), key=pooled.get)
    print(f"lower of factored / tensorsketch: {best}; DEFAULT_PROJECTION = {DEFAULT_PROJECTION}")
    ratio = pooled[DEFAULT_PROJECTION] / pooled["dense"]
    verdict = "PASS" if ratio <= 1.5 and best == DEFAULT_PROJECTION else "FAIL"
    print(f"{verdict}: default's error / dense's = {ratio:.2f} (target ≤ 1.5, default = best)")


if __name__ == "__main__":
    main()
