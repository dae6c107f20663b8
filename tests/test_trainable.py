"""finetune.trainable: what a head or top:N finetune moves, what it leaves exactly as it was,
and the untied output layer those regimes need."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from weights2data.errors import UserError
from weights2data.formats import label_token_ids
from weights2data.models import load_model, save_model
from weights2data.models.arch import is_tied, untie_output
from weights2data.models.regime import parse_trainable
from weights2data.train import TrainConfig, finetune

from .conftest import SENTENCES

TEXTS = SENTENCES[:8]
LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def _llama(tokenizer, tied: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config).eval()


def _gpt2(tokenizer, tied: bool):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=32,
        n_layer=3,
        n_head=2,
        tie_word_embeddings=tied,
    )
    return GPT2LMHeadModel(config).eval()


def _train(model, tokenizer, trainable: str, **kw):
    cfg = TrainConfig(
        num_classes=3, lr=1e-2, batch_size=4, epochs=2, max_length=16, trainable=trainable, **kw
    )
    trained, _ = finetune(
        copy.deepcopy(model), tokenizer, (TEXTS, LABELS), (TEXTS, LABELS), cfg, 0, progress=False
    )
    return trained


def _moved(before, after) -> set[str]:
    a = dict(after.named_parameters())
    return {name for name, p in before.named_parameters() if not torch.equal(p, a[name])}


def test_parse_trainable_names_the_choices():
    assert parse_trainable("all").top is None and parse_trainable("head").top == 0
    assert parse_trainable("top:2").top == 2
    for bad in ("top:0", "top:x", "middle", "top:-1"):
        with pytest.raises(UserError, match="all, head or top:N"):
            parse_trainable(bad)


@pytest.mark.parametrize("build", [_llama, _gpt2])
def test_untied_output_keeps_the_function_and_survives_a_save(build, tiny_tokenizer, tmp_path):
    tied = build(tiny_tokenizer, tied=True)
    assert is_tied(tied)
    ids = torch.tensor([tiny_tokenizer.encode(SENTENCES[0])])
    with torch.no_grad():
        before = tied(input_ids=ids).logits
    untied = untie_output(copy.deepcopy(tied))
    assert not is_tied(untied)
    with torch.no_grad():
        assert torch.equal(untied(input_ids=ids).logits, before)
    save_model(untied, tiny_tokenizer, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert not is_tied(loaded)
    with torch.no_grad():  # load_model swaps GPT-2's GELU for the fused one: float rounding
        torch.testing.assert_close(loaded(input_ids=ids).logits, before)


@pytest.mark.parametrize("build", [_llama, _gpt2])
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_head_moves_only_the_label_rows(build, tiny_tokenizer, optimizer):
    base = build(tiny_tokenizer, tied=False)
    decay = 0.1 if optimizer == "adamw" else 0.0  # decay would move every row: they go back
    trained = _train(base, tiny_tokenizer, "head", optimizer=optimizer, weight_decay=decay)
    head = [n for n, _ in base.named_parameters() if n.startswith("lm_head")]
    assert _moved(base, trained) == set(head)
    rows = label_token_ids(tiny_tokenizer, 3)
    w0, w1 = base.lm_head.weight, trained.lm_head.weight
    others = torch.ones(w0.shape[0], dtype=torch.bool)
    others[rows] = False
    assert torch.equal(w0[others], w1[others])
    assert all(not torch.equal(w0[r], w1[r]) for r in rows)
    assert all(p.requires_grad for p in trained.parameters())  # nothing left frozen after
    # the mask is removed: a later finetune of the same model trains every parameter again
    again = _train(trained, tiny_tokenizer, "all")
    assert len(_moved(trained, again)) == len(list(trained.parameters()))


def test_head_with_full_vocab_moves_every_row(tiny_tokenizer):
    base = _llama(tiny_tokenizer, tied=False)
    trained = _train(base, tiny_tokenizer, "head", loss="full_vocab")
    w0, w1 = base.lm_head.weight, trained.lm_head.weight
    assert bool((w0 != w1).any(dim=1).all())


@pytest.mark.parametrize(
    ("build", "top", "frozen"),
    [
        (_llama, "model.layers.2.", ("model.embed_tokens", "model.layers.0.", "model.layers.1.")),
        (_gpt2, "transformer.h.2.", ("transformer.wte", "transformer.wpe", "transformer.h.0.")),
    ],
)
def test_top_1_moves_the_last_block_the_norm_and_the_head(build, top, frozen, tiny_tokenizer):
    base = build(tiny_tokenizer, tied=False)
    moved = _moved(base, _train(base, tiny_tokenizer, "top:1"))
    assert any(n.startswith(top) for n in moved)
    assert any(n.startswith(("model.norm", "transformer.ln_f")) for n in moved)
    assert "lm_head.weight" in moved
    assert not [n for n in moved if n.startswith(frozen)]
    assert not [n for n in moved if ".1." in n and not n.startswith(top)]


def test_top_n_trains_like_the_whole_model_when_n_is_every_block(tiny_tokenizer):
    """With dropout off and a label-masked loss, top:L differs from all only in the frozen
    embeddings: the blocks' first steps are the same numbers."""
    base = _llama(tiny_tokenizer, tied=False)
    everything = _train(base, tiny_tokenizer, "all")
    top = _train(base, tiny_tokenizer, "top:3")
    assert _moved(base, top) == _moved(base, everything) - {"model.embed_tokens.weight"}


def test_frozen_regimes_refuse_a_tied_output_layer(tiny_tokenizer):
    tied = _gpt2(tiny_tokenizer, tied=True)
    for regime in ("head", "top:1"):
        with pytest.raises(UserError, match="tied to the input embedding.*untie_output"):
            _train(tied, tiny_tokenizer, regime)
    with pytest.raises(UserError, match="has 3 blocks; use top:1 … top:3"):
        _train(_gpt2(tiny_tokenizer, tied=False), tiny_tokenizer, "top:4")
    with pytest.raises(UserError, match="all, head or top:N"):
        TrainConfig(num_classes=3, trainable="top").validate()


def test_the_frozen_trunk_runs_without_dropout_in_every_epoch(tiny_tokenizer):
    """GPT-2 has dropout: the trunk must run in eval mode (the same outputs a cache would
    hold), the top in train mode, in every epoch, also after each validation pass."""
    base = _gpt2(tiny_tokenizer, tied=False)
    seen: dict[str, set[bool]] = {"trunk": set(), "top": set()}
    trunk, top = base.transformer.h[0], base.transformer.h[2]
    trunk.register_forward_hook(lambda m, i, o: seen["trunk"].add(m.training))
    top.register_forward_hook(lambda m, i, o: seen["top"].add(m.training))
    cfg = TrainConfig(num_classes=3, lr=1e-2, batch_size=4, epochs=3, trainable="top:1")
    finetune(base, tiny_tokenizer, (TEXTS, LABELS), (TEXTS, LABELS), cfg, 0, progress=False)
    assert seen == {"trunk": {False}, "top": {True, False}}  # top: trained, then evaluated


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_label_rows_trained_apart_equal_the_whole_matrix_trained(tiny_tokenizer, optimizer):
    """The split is a speed-up only: the same steps over the whole output matrix (the other
    rows then get zero gradient, and decay on them is undone) give the same weights, bit for
    bit."""
    from weights2data.models.lm import LM
    from weights2data.models.regime import prepare
    from weights2data.train import make_optimizer, task_loss

    decay = 0.1 if optimizer == "adamw" else 0.0
    cfg = TrainConfig(num_classes=3, lr=1e-2, max_length=16, trainable="top:1")
    cfg = dataclasses.replace(cfg, optimizer=optimizer, weight_decay=decay)
    loss = task_loss(tiny_tokenizer, cfg)
    rows = list(loss.label_ids)
    batch = loss.encode(tiny_tokenizer, TEXTS)
    finals = []
    for split in (True, False):
        lm = LM(_llama(tiny_tokenizer, tied=False))
        start = lm.weight.detach().clone()
        trainable = prepare(lm.module, "top:1", rows if split else None)
        lm.head_rows = trainable.head_rows
        opt = make_optimizer(trainable.parameters, cfg, fused=optimizer != "sgd")
        trainable.train_mode()
        for _ in range(3):
            value, _ = loss.batch_loss(lm, batch, torch.as_tensor(LABELS))
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
        lm.head_rows = None
        trainable.close()
        others = torch.ones(len(start), dtype=torch.bool)
        others[rows] = False
        if not split:  # what the split never needs: rows no loss reads, put back after decay
            with torch.no_grad():
                lm.weight[others] = start[others]
        assert torch.equal(lm.weight[others], start[others])
        finals.append(lm.module.state_dict())
    assert finals[0].keys() == finals[1].keys()
    for name, tensor in finals[0].items():
        assert torch.equal(tensor, finals[1][name]), name
