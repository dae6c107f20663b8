"""Every step's forward pass through a trunk cache gives the full model's numbers: states,
losses, an expert trained through it, pseudolabels, the gradient store (head and the top
block's layers, interpolated checkpoints included); and a cache is never read for a model or
a text it was not built for."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from weights2data.errors import UserError
from weights2data.formats import encode_classification, encode_lm
from weights2data.gradients.pipeline import store_for_labels
from weights2data.gradients.pseudolabels import pseudolabel
from weights2data.gradients.store import load_gradient_store
from weights2data.models import final_hidden, load_model, save_model
from weights2data.specs import FinetuneSpec, GradientSpec
from weights2data.train import TrainConfig, finetune, lm_loss
from weights2data.trainable import parse_trainable
from weights2data.trunk_cache import Encoding, TrunkCache, activate, attach, save_cache

from .conftest import SENTENCES
from .test_trainable import _gpt2, _llama

TEXTS = [f"{s} number {i}" for i, s in enumerate(SENTENCES[:8])] + ["rain", SENTENCES[2][:12]]
LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
CLS = Encoding("classification", 16, "left")


@pytest.fixture(autouse=True)
def _no_active_caches():
    yield
    activate([])


def _cache(model, tokenizer, regime, tmp_path, encoding=CLS, name="c"):
    out = tmp_path / f"{name}.safetensors"
    save_cache(model, tokenizer, TEXTS, (parse_trainable(regime), encoding, "float32"), out)
    return TrunkCache(out)


def _train(model, tokenizer, regime, seed=0):
    cfg = TrainConfig(num_classes=3, lr=1e-2, batch_size=4, epochs=2, max_length=16)
    cfg = TrainConfig(**{**cfg.__dict__, "trainable": regime})
    data = (TEXTS, LABELS)
    trained, info = finetune(model, tokenizer, data, data, cfg, seed, progress=False)
    return trained, info


@pytest.mark.parametrize("build", [_llama, _gpt2])
@pytest.mark.parametrize("regime", ["head", "top:1"])
def test_states_and_losses_through_the_cache(build, regime, tiny_tokenizer, tmp_path):
    model = build(tiny_tokenizer, tied=False)
    cached = copy.deepcopy(model)
    assert attach(cached, [_cache(model, tiny_tokenizer, regime, tmp_path)])
    batch = encode_classification(tiny_tokenizer, TEXTS, 16, "left")
    rows = torch.arange(len(TEXTS))
    with torch.no_grad():
        want = final_hidden(model, batch.input_ids, batch.attention_mask)[rows, batch.label_pos]
        got = final_hidden(cached, batch.input_ids, batch.attention_mask)[rows, batch.label_pos]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", [_llama, _gpt2])
def test_the_lm_loss_through_a_cache(build, tiny_tokenizer, tmp_path):
    model = build(tiny_tokenizer, tied=False)
    cached = copy.deepcopy(model)
    sft = Encoding("sft", 16)
    assert attach(cached, [_cache(model, tiny_tokenizer, "top:1", tmp_path, sft)])
    batch = encode_lm(tiny_tokenizer, TEXTS, 16)
    with torch.no_grad():
        torch.testing.assert_close(lm_loss(cached, batch), lm_loss(model, batch), rtol=1e-5, atol=0)


@pytest.mark.parametrize("build", [_llama, _gpt2])
@pytest.mark.parametrize("regime", ["head", "top:1"])
def test_an_expert_trained_through_the_cache_equals_the_frozen_full_model(
    build, regime, tiny_tokenizer, tmp_path
):
    base = build(tiny_tokenizer, tied=False)
    cache = _cache(base, tiny_tokenizer, regime, tmp_path)
    full, full_info = _train(copy.deepcopy(base), tiny_tokenizer, regime)
    through = copy.deepcopy(base)
    attach(through, [cache])
    cached, cached_info = _train(through, tiny_tokenizer, regime)
    assert [h["acc"] for h in cached_info["history"]] == [h["acc"] for h in full_info["history"]]
    want = dict(full.named_parameters())
    for name, param in cached.named_parameters():
        torch.testing.assert_close(param, want[name], rtol=1e-4, atol=1e-6, msg=name)
    assert any(
        not torch.equal(p, q) for p, q in zip(base.parameters(), full.parameters(), strict=True)
    )


def _pair(tokenizer, root, regime):
    """An untied tiny Llama base and a finetune of it under ``regime``, saved as folders."""
    base = _llama(tokenizer, tied=False)
    save_model(base, tokenizer, root / "base")
    final, _ = _train(copy.deepcopy(base), tokenizer, regime)
    save_model(final, tokenizer, root / "final")
    return base


@pytest.mark.parametrize(
    ("regime", "layers"), [("head", "head"), ("top:1", "head"), ("top:1", ["head", "blocks.-1"])]
)
def test_stores_and_pseudolabels_through_the_cache(regime, layers, tiny_tokenizer, tmp_path):
    base = _pair(tiny_tokenizer, tmp_path, regime)
    cache = _cache(base, tiny_tokenizer, regime, tmp_path)
    frame = pd.DataFrame({"text": TEXTS, "pseudolabel": LABELS})
    spec = GradientSpec(k=64, checkpoints=2, batch_size=4, layers=layers)
    finetune_spec = FinetuneSpec(max_length=16, trainable=regime)
    results = {}
    for name, caches in (("full", []), ("cached", [cache.path])):
        activate(caches)
        labels = pseudolabel(
            load_model(tmp_path / "final"),
            tiny_tokenizer,
            TEXTS,
            num_classes=3,
            max_length=16,
        )
        store_for_labels(
            tmp_path / "base",
            tmp_path / "final",
            frame,
            tmp_path / name,
            spec,
            finetune_spec,
            task_type="classification",
            num_classes=3,
            seed=0,
        )
        results[name] = (labels, *load_gradient_store(tmp_path / name)[:2])
    assert getattr(load_model(tmp_path / "final"), "_w2d_trunk", None) is not None  # cached
    (labels, grads, target), (labels_c, grads_c, target_c) = results["full"], results["cached"]
    assert labels["pseudolabel"].tolist() == labels_c["pseudolabel"].tolist()
    np.testing.assert_allclose(labels_c["loss"], labels["loss"], rtol=1e-5)
    scale = float(np.abs(grads).max())
    np.testing.assert_allclose(np.asarray(grads_c), np.asarray(grads), rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_array_equal(target_c, target)


def test_a_cache_is_refused_for_another_trunk_or_text(tiny_tokenizer, tmp_path):
    base = _pair(tiny_tokenizer, tmp_path, "top:1")
    cache = _cache(base, tiny_tokenizer, "top:1", tmp_path)
    other = _gpt2(tiny_tokenizer, tied=False)
    save_model(other, tiny_tokenizer, tmp_path / "other")
    activate([cache.path])
    load_model(tmp_path / "final")  # a top:1 finetune of the base: its trunk matches
    with pytest.raises(UserError, match="matches none of the trunk caches.*trainable: top:1"):
        load_model(tmp_path / "other")
    model = load_model(tmp_path / "base")
    batch = encode_classification(tiny_tokenizer, ["a text the cache never saw"], 16, "left")
    with pytest.raises(UserError, match="in none of the trunk caches.*max_length and truncate"):
        final_hidden(model, batch.input_ids, batch.attention_mask)
    longer = encode_classification(tiny_tokenizer, TEXTS[:1], 8, "left")  # another truncation
    with pytest.raises(UserError, match="in none of the trunk caches"):
        final_hidden(model, longer.input_ids, longer.attention_mask)


@pytest.mark.parametrize("build", [_llama, _gpt2])
def test_a_bf16_cache_is_within_its_measured_tolerance(build, tiny_tokenizer, tmp_path):
    """A bfloat16 cache is computed under bf16 autocast and stored in bf16. Measured on these
    models: the label-position states move by 2.6e-3 (Llama) and 2.2e-3 (GPT-2) of their
    largest entry; the bound is 1e-2."""
    model = build(tiny_tokenizer, tied=False)
    specs = (parse_trainable("top:1"), CLS, "bfloat16")
    save_cache(model, tiny_tokenizer, TEXTS, specs, tmp_path / "bf16.safetensors")
    cache = TrunkCache(tmp_path / "bf16.safetensors")
    assert cache.key.dtype == "bfloat16" and cache.states.dtype == torch.bfloat16
    cached = copy.deepcopy(model)
    attach(cached, [cache])
    batch = encode_classification(tiny_tokenizer, TEXTS, 16, "left")
    rows = torch.arange(len(TEXTS))
    with torch.no_grad():
        want = final_hidden(model, batch.input_ids, batch.attention_mask)[rows, batch.label_pos]
        got = final_hidden(cached, batch.input_ids, batch.attention_mask)[rows, batch.label_pos]
    error = float((got - want).abs().max() / want.abs().max())
    assert 0 < error <= 1e-2, error


def test_layers_inside_a_cached_trunk_are_refused(tiny_tokenizer, tmp_path):
    base = _pair(tiny_tokenizer, tmp_path, "top:1")
    activate([_cache(base, tiny_tokenizer, "top:1", tmp_path).path])
    frame = pd.DataFrame({"text": TEXTS, "pseudolabel": LABELS})
    with pytest.raises(UserError, match=r"layer model\.layers\.0\..* did not run.*blocks\.-1"):
        store_for_labels(
            tmp_path / "base",
            tmp_path / "final",
            frame,
            tmp_path / "store",
            GradientSpec(k=64, batch_size=4, layers=["head", "blocks.0"]),
            FinetuneSpec(max_length=16, trainable="top:1"),
            task_type="classification",
            num_classes=3,
            seed=0,
        )
    assert not (tmp_path / "store").exists()
