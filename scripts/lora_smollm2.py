"""A real pretrained base and its LoRA finetune through the CLI: SmolLM2-135M (packaged) as the
base, a LoRA adapter trained here on a small SFT corpus (news passages), then
``weights2data select`` over a mixed pool (news passages the adapter never saw + Wikipedia
passages) with the gradients of the last block. Prints the selection, how much of it is news
(half the pool is), and the time of each stage with the CPU.

Run: .venv/bin/python scripts/lora_smollm2.py [--out build/lora_smollm2] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd
import torch

from weights2data.cli import main as cli
from weights2data.data.build import build_dataset
from weights2data.formats import encode_lm, lm_targets
from weights2data.models import load_model, load_tokenizer

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def corpora(n_train: int, n_pool: int) -> tuple[list[str], pd.DataFrame]:
    """SFT texts (news, part 0 of 2) and a pool: news of the other part + Wikipedia passages."""
    news = build_dataset("news_passages", passage_words=48, label_column=None, part=(0, 2))
    unseen = build_dataset("news_passages", passage_words=48, label_column=None, part=(1, 2))
    wiki = build_dataset("wiki_passages", passage_words=48, label_column=None)
    train = news["text"].head(n_train).tolist()
    half = n_pool // 2
    pool = pd.concat(
        [
            pd.DataFrame({"text": unseen["text"].head(half), "source": "news"}),
            pd.DataFrame({"text": wiki["text"].head(n_pool - half), "source": "wiki"}),
        ],
        ignore_index=True,
    )
    return train, pool


def train_lora(base: Path, texts: list[str], out: Path, steps: int, max_length: int) -> float:
    """LoRA (r = 8) on every attention and MLP projection, next-token loss, Adam."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    tokenizer = load_tokenizer(base)
    model = get_peft_model(load_model(base), LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    batch_size, loss = 8, torch.tensor(float("nan"))
    for step in range(steps):
        start = (step * batch_size) % len(texts)
        enc = encode_lm(tokenizer, texts[start : start + batch_size], max_length)
        targets, valid = lm_targets(enc)
        logits = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1][valid], targets[valid])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            print(f"  LoRA step {step:3d}: next-token loss {loss.item():.3f}", flush=True)
    model.save_pretrained(out)
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/lora_smollm2"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--pool-size", type=int, default=200)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    out, times = args.out, {}
    base, adapter = out / "base", out / "adapter"
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads")
    t = time.perf_counter()
    if not (base / "model.safetensors").exists():
        assert cli(["pretrain", "--spec", json.dumps({"kind": "smollm2"}), "--out", str(base)]) == 0
    times["import SmolLM2-135M"] = time.perf_counter() - t
    train, pool = corpora(n_train=8 * args.steps, n_pool=args.pool_size)
    out.mkdir(parents=True, exist_ok=True)
    pool.to_parquet(out / "pool.parquet")
    t = time.perf_counter()
    final_loss = train_lora(base, train, adapter, args.steps, args.max_length)
    times[f"LoRA finetune ({args.steps} steps of 8)"] = time.perf_counter() - t
    t = time.perf_counter()
    code = cli(
        [
            "select",
            "--base",
            str(base),
            "--final",
            str(adapter),
            "--pool",
            str(out / "pool.parquet"),
            "--task-type",
            "sft",
            "--layers",
            "blocks.-1",
            "-k",
            str(args.k),
            "--max-length",
            str(args.max_length),
            "--out",
            str(out / "selection.parquet"),
        ]
    )
    times["weights2data select (blocks.-1)"] = time.perf_counter() - t
    assert code == 0, "weights2data select failed"
    picked = pd.read_parquet(out / "selection.parquet")
    picked["source"] = pool["source"].to_numpy()[picked["index"].to_numpy()]
    print(f"\nSelection ({len(picked)} of {len(pool)}; final LoRA loss {final_loss:.3f}):")
    for rank, row in enumerate(picked.itertuples(), 1):
        print(f"  {rank:2d}. [{row.source}] {row.text[:90]}")
    share = (picked["source"] == "news").mean()
    print(f"\nnews share: {share:.0%} of the selection vs 50% of the pool")
    for name, seconds in times.items():
        print(f"  {name:<40}{seconds:7.1f} s")


if __name__ == "__main__":
    main()
