"""Finetuning: the loss goes down, runs are deterministic, every option trains."""

import numpy as np
import pytest
import torch

from weights2data.errors import UserError
from weights2data.train import TrainConfig, evaluate, finetune

from .conftest import SENTENCES

TEXTS = SENTENCES[:8]
LABELS = np.array([0, 1, 0, 1, 0, 1, 0, 1])


def _cfg(**kw):
    base = dict(
        task_type="classification", num_classes=2, lr=3e-3, batch_size=4, epochs=6, max_length=16
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("loss", ["label_masked", "full_vocab"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_training_lowers_the_loss(tiny_gpt2, tiny_tokenizer, loss, optimizer):
    lr = 0.05 if optimizer == "sgd" else 3e-3
    cfg = _cfg(loss=loss, optimizer=optimizer, lr=lr, weight_decay=0.01)
    before = evaluate(tiny_gpt2, tiny_tokenizer, TEXTS, LABELS, cfg)["loss"]
    model, info = finetune(
        tiny_gpt2, tiny_tokenizer, (TEXTS, LABELS), (TEXTS, LABELS), cfg, 0, progress=False
    )
    after = evaluate(model, tiny_tokenizer, TEXTS, LABELS, cfg)
    assert min(h["loss"] for h in info["history"]) < before
    assert len(info["history"]) == cfg.epochs
    # the model kept is the best one seen on validation
    best = max(info["history"], key=lambda h: (h["acc"], -h["loss"]))
    assert after["acc"] == pytest.approx(best["acc"])


def test_sft_lowers_perplexity(tiny_gpt2, tiny_tokenizer):
    cfg = TrainConfig(task_type="sft", lr=3e-3, batch_size=4, epochs=3, max_length=16)
    before = evaluate(tiny_gpt2, tiny_tokenizer, TEXTS, None, cfg)["ppl"]
    model, _ = finetune(
        tiny_gpt2, tiny_tokenizer, (TEXTS, None), (TEXTS, None), cfg, 0, progress=False
    )
    assert evaluate(model, tiny_tokenizer, TEXTS, None, cfg)["ppl"] < before


def test_same_seed_same_weights(tiny_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    def run(seed):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=len(tiny_tokenizer), n_positions=32, n_embd=16, n_layer=1, n_head=2
            )
        )
        model, _ = finetune(
            model,
            tiny_tokenizer,
            (TEXTS, LABELS),
            (TEXTS, LABELS),
            _cfg(epochs=2),
            seed,
            progress=False,
        )
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_stops_after_patience_epochs(tiny_gpt2, tiny_tokenizer, patience):
    # lr 0: no step moves a weight, so no epoch improves on the first one, and training stops
    # once `patience` epochs in a row have not improved: after epoch 1 + patience exactly
    cfg = _cfg(lr=0.0, epochs=10, patience=patience)
    _, info = finetune(
        tiny_gpt2, tiny_tokenizer, (TEXTS, LABELS), (TEXTS, LABELS), cfg, 0, progress=False
    )
    assert [h["epoch"] for h in info["history"]] == list(range(1, patience + 2))
    assert info["best_epoch"] == 1
    assert len({h["loss"] for h in info["history"]}) == 1  # really no progress


def test_bad_settings_are_named(tiny_gpt2, tiny_tokenizer):
    with pytest.raises(UserError, match="optimizer"):
        finetune(
            tiny_gpt2, tiny_tokenizer, (TEXTS, LABELS), (TEXTS, LABELS), _cfg(optimizer="lion"), 0
        )
    with pytest.raises(UserError, match="empty"):
        finetune(tiny_gpt2, tiny_tokenizer, ([], LABELS[:0]), (TEXTS, LABELS), _cfg(), 0)
