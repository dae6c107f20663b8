"""The training and scoring losses against a hand-written float64 reference.

The reference runs every text alone (no padding) through the Hugging Face model and computes
cross-entropy from its own logits with ``torch.nn.functional``; the label position is the
text's last token, found by encoding the text on its own. So padding, label positions, label
rows and the loss conventions are all checked, not only the plumbing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from weights2data.formats import encode_classification, encode_lm, label_token_ids
from weights2data.gradients.pseudolabels import pseudolabel
from weights2data.losses import make_loss
from weights2data.models import LM

from .conftest import SENTENCES

# texts of different lengths, so that batches are padded and label positions differ
TEXTS = [SENTENCES[0], "rain", SENTENCES[3] + " and the stocks fell", SENTENCES[6][:20]]
LABELS = torch.tensor([2, 0, 1, 2])
NUM_CLASSES = 3
MAX_LENGTH = 12


def _loss(tokenizer, name: str):
    """The loss object under test (the one training, pseudolabels and the store share)."""
    return make_loss(name, tokenizer, NUM_CLASSES, MAX_LENGTH)


@pytest.fixture()
def model64(tiny_gpt2):
    """The tiny GPT-2 with an untrained-looking but non-trivial head, in float64."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in tiny_gpt2.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return tiny_gpt2.double().eval()


def _last_logits(model, ids: list[int]) -> torch.Tensor:
    """HF logits (V) predicting the token after ``ids``, from the text run alone."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]))
    return out.logits[0, -1].double()


def _reference_label_logits(model, tokenizer, truncate: str) -> torch.Tensor:
    """B×V logits at each text's last kept token (the position that predicts its label)."""
    keep = MAX_LENGTH - 1
    rows = []
    for text in TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        ids = ids[-keep:] if truncate == "left" else ids[:keep]
        rows.append(_last_logits(model, ids))
    return torch.stack(rows)


@pytest.mark.parametrize("truncate", ["left", "right"])
def test_label_logits_match_the_models_own_logits(model64, tiny_tokenizer, truncate):
    label_ids = torch.tensor(label_token_ids(tiny_tokenizer, NUM_CLASSES))
    batch = encode_classification(tiny_tokenizer, TEXTS, MAX_LENGTH, truncate)
    assert batch.attention_mask.sum(1).unique().numel() > 1  # the batch is really padded
    reference = _reference_label_logits(model64, tiny_tokenizer, truncate)
    with torch.no_grad():
        masked = _loss(tiny_tokenizer, "label_masked").logits(LM(model64), batch)
        full = _loss(tiny_tokenizer, "full_vocab").logits(LM(model64), batch)
    torch.testing.assert_close(masked, reference[:, label_ids], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(full, reference, rtol=1e-10, atol=1e-12)


def test_classification_losses_by_hand(model64, tiny_tokenizer):
    label_ids = torch.tensor(label_token_ids(tiny_tokenizer, NUM_CLASSES))
    batch = encode_classification(tiny_tokenizer, TEXTS, MAX_LENGTH, "left")
    reference = _reference_label_logits(model64, tiny_tokenizer, "left")
    # label_masked: softmax over the C label tokens only
    masked = reference[:, label_ids]
    expect = -torch.stack([F.log_softmax(masked[i], -1)[LABELS[i]] for i in range(len(TEXTS))])
    # full_vocab: softmax over the whole vocabulary, target the label letter's token
    expect_full = -torch.stack(
        [F.log_softmax(reference[i], -1)[label_ids[LABELS[i]]] for i in range(len(TEXTS))]
    )
    with torch.no_grad():
        for loss, want in (("label_masked", expect), ("full_vocab", expect_full)):
            objective, lm = _loss(tiny_tokenizer, loss), LM(model64)
            mean, pred = objective.batch_loss(lm, batch, LABELS)
            total, _ = objective.batch_loss(lm, batch, LABELS, "sum")
            each, _ = objective.batch_loss(lm, batch, LABELS, "none")
            torch.testing.assert_close(each, want, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(mean, want.mean(), rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(total, want.sum(), rtol=1e-10, atol=1e-12)
            # the prediction is the best label token, whichever loss trains
            assert pred.tolist() == masked.argmax(-1).tolist()
    assert not torch.allclose(expect, expect_full)  # the two losses really differ here


def _reference_lm(model, tokenizer) -> tuple[list[torch.Tensor], int]:
    """Per-text token cross-entropies: a start token, then the text's first tokens."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    per_text = []
    for text in TEXTS:
        ids = [start] + tokenizer.encode(text, add_special_tokens=False)[: MAX_LENGTH - 1]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].double()
        per_text.append(F.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="none"))
    return per_text, start


def test_lm_loss_by_hand(model64, tiny_tokenizer):
    per_text, _ = _reference_lm(model64, tiny_tokenizer)
    tokens = torch.cat(per_text)
    batch = encode_lm(tiny_tokenizer, TEXTS, MAX_LENGTH)
    with torch.no_grad():
        mean = _loss(tiny_tokenizer, "lm").batch_loss(LM(model64), batch)
        total, count = _loss(tiny_tokenizer, "lm").batch_loss(LM(model64), batch, None, "sum")
    assert int(count) == tokens.numel()  # every text token is scored, no pad token is
    torch.testing.assert_close(total, tokens.sum(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(mean, tokens.mean(), rtol=1e-10, atol=1e-12)


def test_the_two_sft_losses_agree(model64, tiny_tokenizer):
    """P-Min / P-Max rank SFT texts by pseudolabel's mean token loss; training uses lm_loss.
    Both must be the same number for one text."""
    per_text, _ = _reference_lm(model64, tiny_tokenizer)
    scored = pseudolabel(
        model64, tiny_tokenizer, TEXTS, task_type="sft", max_length=MAX_LENGTH, batch_size=3
    )
    expect = np.array([float(t.mean()) for t in per_text])
    np.testing.assert_allclose(scored["loss"].to_numpy(), expect, rtol=1e-9)
    for i, text in enumerate(TEXTS):
        with torch.no_grad():
            batch = encode_lm(tiny_tokenizer, [text], MAX_LENGTH)
            alone = _loss(tiny_tokenizer, "lm").batch_loss(LM(model64), batch)
        assert float(alone) == pytest.approx(scored["loss"][i], rel=1e-9)


@pytest.mark.parametrize("loss", ["label_masked", "full_vocab"])
def test_pseudolabel_losses_match_the_training_loss(model64, tiny_tokenizer, loss):
    """The pseudolabel is the final model's best label; its loss is the training loss on it."""
    label_ids = torch.tensor(label_token_ids(tiny_tokenizer, NUM_CLASSES))
    scored = pseudolabel(
        model64,
        tiny_tokenizer,
        TEXTS,
        num_classes=NUM_CLASSES,
        max_length=MAX_LENGTH,
        batch_size=3,
        loss=loss,
    )
    reference = _reference_label_logits(model64, tiny_tokenizer, "left")
    labels = reference[:, label_ids].argmax(-1)
    assert scored["pseudolabel"].tolist() == labels.tolist()
    batch = encode_classification(tiny_tokenizer, TEXTS, MAX_LENGTH, "left")
    with torch.no_grad():
        each, _ = _loss(tiny_tokenizer, loss).batch_loss(LM(model64), batch, labels, "none")
    np.testing.assert_allclose(scored["loss"].to_numpy(), each.numpy(), rtol=1e-9)
