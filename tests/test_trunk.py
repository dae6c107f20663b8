"""The frozen trunk's cached outputs and the top run on them: the same states as the full
model, and a cache that refuses to be read under another key."""

from __future__ import annotations

import pytest
import torch

from weights2data.errors import UserError
from weights2data.formats import encode_classification
from weights2data.models import LM
from weights2data.models.arch import untie_output
from weights2data.models.cache import CacheKey, read_cache, write_cache
from weights2data.models.forward import run_top, trunk_states
from weights2data.models.regime import parse_trainable

from .conftest import SENTENCES
from .test_trainable import _gpt2, _llama

# padded batches with label positions at different places
TEXTS = [SENTENCES[0], "rain", SENTENCES[3] + " and the stocks fell", SENTENCES[6][:20]]


def _batch(tokenizer):
    batch = encode_classification(tokenizer, TEXTS, 16, "left")
    assert batch.attention_mask.sum(1).unique().numel() > 1
    return batch


@pytest.mark.parametrize("build", [_llama, _gpt2])
@pytest.mark.parametrize("regime", ["head", "top:1", "top:3"])
def test_top_on_cached_states_equals_the_full_model(build, regime, tiny_tokenizer):
    model = untie_output(build(tiny_tokenizer, tied=False))
    batch = _batch(tiny_tokenizer)
    rows = torch.arange(len(TEXTS))
    full = LM(model).hidden(batch.input_ids, batch.attention_mask)[rows, batch.label_pos]
    states = trunk_states(model, batch.input_ids, batch.attention_mask, parse_trainable(regime))
    with torch.no_grad():
        top = run_top(model, states, parse_trainable(regime))[rows, batch.label_pos]
    torch.testing.assert_close(top, full, rtol=1e-5, atol=1e-6)
    logits = top @ model.lm_head.weight.T
    torch.testing.assert_close(logits, full @ model.lm_head.weight.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build", [_llama, _gpt2])
def test_a_bf16_cache_stays_within_its_measured_tolerance(build, tiny_tokenizer):
    """bf16 keeps 8 bits of mantissa: stored states round at 2^-9 relative, and the top's
    output moves by about that much: measured 2.0e-3 (Llama) and 1.6e-3 (GPT-2) of the largest
    state entry; the bound is 5e-3."""
    model = build(tiny_tokenizer, tied=False)
    batch, regime = _batch(tiny_tokenizer), parse_trainable("top:1")
    states = trunk_states(model, batch.input_ids, batch.attention_mask, regime)
    with torch.no_grad():
        exact = run_top(model, states, regime)
        rounded = run_top(model, states.to(torch.bfloat16).float(), regime)
    rows = torch.arange(len(TEXTS))
    a, b = exact[rows, batch.label_pos], rounded[rows, batch.label_pos]
    assert float((a - b).abs().max() / a.abs().max()) <= 5e-3


def test_the_cache_refuses_another_key(tmp_path):
    key = CacheKey("abc123", "top:1", "classification", 64, "left", "float32", "float32")
    tensors = {"states": torch.randn(3, 5, 4), "label_pos": torch.tensor([4, 2, 1])}
    write_cache(tmp_path / "c.safetensors", tensors, key)
    back, stored = read_cache(tmp_path / "c.safetensors", key)
    assert stored == {**key.__dict__, "also": []}  # JSON gives the pairs back as lists
    assert torch.equal(back["states"], tensors["states"])
    changes = (("trunk", "ffff"), ("max_length", 32), ("encoding", "sft"), ("also", ((8, "left"),)))
    for field, value in changes:
        other = CacheKey(**{**key.__dict__, field: value})
        with pytest.raises(UserError, match=f"built with {field} = .*rebuild it"):
            read_cache(tmp_path / "c.safetensors", other)
    with pytest.raises(UserError, match="does not exist"):
        read_cache(tmp_path / "missing.safetensors", key)
    (tmp_path / "bad.safetensors").write_bytes(b"no")
    with pytest.raises(UserError, match="unreadable"):
        read_cache(tmp_path / "bad.safetensors", key)


@pytest.mark.parametrize("build", [_llama, _gpt2])
@pytest.mark.parametrize("regime", ["top:1", "top:2"])
def test_the_last_block_at_the_label_position_alone(build, regime, tiny_tokenizer):
    """Query, output projection and MLP of the last block at the label position only (keys
    and values at every position): the same label-position states as the whole block."""
    from weights2data.models.arch import blocks_of
    from weights2data.models.block_at import block_at

    model = build(tiny_tokenizer, tied=False)
    batch, parsed = _batch(tiny_tokenizer), parse_trainable(regime)
    states = trunk_states(model, batch.input_ids, batch.attention_mask, parsed)
    rows = torch.arange(len(TEXTS))
    with torch.no_grad():
        whole = run_top(model, states, parsed)[rows, batch.label_pos]
        alone = run_top(model, states, parsed, batch.label_pos)
    torch.testing.assert_close(alone[rows, batch.label_pos], whole, rtol=1e-5, atol=1e-6)
    others = torch.ones(alone.shape[:2], dtype=torch.bool)
    others[rows, batch.label_pos] = False
    assert not alone[others].any()  # nothing else was computed
    # dropout in training, or hooks on the block: the whole block runs instead
    last = blocks_of(model)[-1]
    if build is _gpt2:
        assert block_at(last.train(), states, batch.label_pos) is None
    last.eval()
    handle = last.register_forward_hook(lambda *a: None)
    assert block_at(last, states, batch.label_pos, None) is None
    handle.remove()
