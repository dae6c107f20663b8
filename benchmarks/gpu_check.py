"""GPU check: the SELECT pipeline at paper scale on one GPU, with figures to quote.

AG-News-sized inputs, synthetic so that nothing is downloaded: a GPT-2-small-shaped base
(V = 50257, d = 768, 12 layers, random init), a "final" model that differs from it in every
weight, a pool of N texts of SEQ tokens, 4 classes. It times

1. pseudolabelling the pool with the final model,
2. the gradient store for the label_masked loss (exact C×d) and for full_vocab (tensorsketch,
   k = 4096, the paper's dimension), as texts per second,
3. greedy SELECT and SELECT (Batch) of K = 1000 over each store.

Run on the GPU machine: bash benchmarks/gpu_check.sh (prints device, precision and figures).
Here (CPU): PYTHONPATH=workflow python benchmarks/gpu_check.py --n 64 --k 8 (a quick dry run).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gradients import gpt2_small, texts, tokenizer  # noqa: E402

from weights2data.device import bf16_enabled, compute_device  # noqa: E402
from weights2data.gradients.pseudolabels import pseudolabel  # noqa: E402
from weights2data.gradients.store import build_gradient_store, load_gradient_store  # noqa: E402
from weights2data.selection import greedy_select  # noqa: E402
from weights2data.specs import GradientSpec  # noqa: E402

CLASSES = 4


def perturbed(model: torch.nn.Module, scale: float = 1e-3) -> torch.nn.Module:
    """A stand-in finetune: every weight moved a little (Δ is non-zero on every row)."""
    final = type(model)(model.config).to(next(model.parameters()).device).eval()
    final.load_state_dict(model.state_dict())
    gen = torch.Generator(device="cpu").manual_seed(1)
    with torch.no_grad():
        for param in final.parameters():
            noise = torch.randn(param.shape, generator=gen) * scale
            param.add_(noise.to(param.device))
    return final


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn, *args, **kwargs):
    """(fn's result, seconds), the GPU's queued work included."""
    synchronise(device)
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    synchronise(device)
    return out, time.perf_counter() - start


def store_and_select(device, base, final, tok, pool, pseudo, out: Path, args, **store) -> None:
    """Build one store, print its throughput, then time SELECT and SELECT (Batch) over it."""
    _, seconds = timed(
        device,
        build_gradient_store,
        base,
        final,
        pool,
        pseudo,
        out,
        GradientSpec(k=args.sketch, batch_size=args.batch, **store),
        tokenizer=tok,
        num_classes=CLASSES,
        max_length=64,
        progress=False,
    )
    grads, target, meta = load_gradient_store(out)
    size = os.path.getsize(out / "grads.f32") / 2**20
    print(
        f"store {store['loss']:12s} D={meta['D']:5d}: {seconds:6.1f} s "
        f"({len(pool) / seconds:,.0f} texts/s, {size:,.0f} MiB)"
    )
    for label, batch in (("SELECT", None), ("SELECT (Batch)", 100)):
        (picks, _), seconds = timed(device, greedy_select, grads, target, args.k, batch_size=batch)
        assert len(set(picks.tolist())) == args.k
        print(f"  {label:15s} K={args.k}: {seconds:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="pool texts (AG-News-sized: 10K)")
    parser.add_argument("--k", type=int, default=1000, help="texts selected (K)")
    parser.add_argument("--sketch", type=int, default=4096, help="sketch dimension (paper: 4096)")
    parser.add_argument("--batch", type=int, default=256, help="texts per forward batch")
    args = parser.parse_args()

    device = compute_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {device} ({name}); bf16 autocast: {bf16_enabled(device)}")
    print(f"torch {torch.__version__}")
    tok = tokenizer()
    base = gpt2_small().to(device)
    final = perturbed(base)
    pool = texts(args.n, seed=7)
    print(f"pool: {args.n} texts × {len(pool[0].split()) + 1} tokens; K = {args.k}")

    labels, seconds = timed(
        device,
        pseudolabel,
        final,
        tok,
        pool,
        num_classes=CLASSES,
        max_length=64,
        batch_size=args.batch,
    )
    print(f"pseudolabel: {seconds:.1f} s ({args.n / seconds:,.0f} texts/s)")
    pseudo = labels["pseudolabel"].to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        for loss, projection in (("label_masked", "auto"), ("full_vocab", "tensorsketch")):
            store_and_select(
                device,
                base,
                final,
                tok,
                pool,
                pseudo,
                Path(tmp) / loss,
                args,
                loss=loss,
                projection=projection,
            )
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    print(f"peak GPU memory: {peak:.1f} GiB" if device.type == "cuda" else "peak GPU memory: n/a")


if __name__ == "__main__":
    main()
