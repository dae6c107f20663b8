"""Shared fixtures: a tiny real BPE tokenizer and GPT-2 built in-process (no hub)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("W2D_WARM_IDLE", "120")  # warm servers the tests start end soon after
torch.set_num_threads(2)

SENTENCES = [
    "the cat sat on the mat and looked at the door",
    "stocks fell sharply as markets reacted to the news",
    "the team won the final match after extra time",
    "a new phone was launched with a faster chip",
    "the minister announced a plan for new schools",
    "rain is expected across the north this weekend",
    "the film was a moving story about two brothers",
    "scientists found water on a distant moon",
] * 4


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from weights2data.pretrain import train_tokenizer

    return train_tokenizer(SENTENCES, vocab_size=400)


@pytest.fixture()
def tiny_gpt2(tiny_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tiny_tokenizer),
        n_positions=32,
        n_embd=32,
        n_layer=1,
        n_head=2,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(cfg).eval()


def save_finetuned_pair(root, tokenizer, labels, *, n_layer: int = 1, extra: dict | None = None):
    """A tiny GPT-2 base and a real 3-class finetune of it, saved as root/base and root/final."""
    import copy

    from transformers import GPT2Config, GPT2LMHeadModel

    from weights2data.models import save_model
    from weights2data.train import TrainConfig, finetune

    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tokenizer), n_positions=32, n_embd=32, n_layer=n_layer, n_head=2
    )
    base = GPT2LMHeadModel(cfg)
    save_model(base, tokenizer, root / "base")
    train_cfg = TrainConfig(num_classes=3, lr=3e-3, batch_size=8, epochs=2, max_length=16)
    data = (SENTENCES, labels)
    final, _ = finetune(copy.deepcopy(base), tokenizer, data, data, train_cfg, 0, progress=False)
    save_model(final, tokenizer, root / "final", extra=extra)
    return root
