"""Every step's forward pass through a trunk cache gives the full model's numbers: states,
losses, an expert trained through it, pseudolabels, the gradient store (head and the top
block's layers, interpolated checkpoints included); and a cache is never read for a model or
a text it was not built for: another trunk, regime or encoding is refused when the model is
opened, naming the cache and the mismatch."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from weights2data.errors import UserError
from weights2data.experts import train_expert
from weights2data.formats import Encoding, encode_classification, encode_lm
from weights2data.gradients.pipeline import store_for_labels
from weights2data.gradients.pseudolabels import pseudolabel
from weights2data.gradients.store import load_gradient_store
from weights2data.losses import make_loss
from weights2data.models import LM, ModelRef, open_lm, save_model
from weights2data.models.cache import CacheSet, TrunkCache, save_cache
from weights2data.models.regime import parse_trainable
from weights2data.paths import trunk_name, trunk_spec
from weights2data.specs import FinetuneSpec, GradientSpec, TaskSpec
from weights2data.train import TrainConfig, finetune

from .conftest import SENTENCES
from .test_trainable import _gpt2, _llama

TEXTS = [f"{s} number {i}" for i, s in enumerate(SENTENCES[:8])] + ["rain", SENTENCES[2][:12]]
LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
CLS = Encoding("classification", 16, "left")


def _cache(model, tokenizer, regime, tmp_path, encoding=CLS, name="c", texts=TEXTS):
    out = tmp_path / f"{name}.safetensors"
    save_cache(model, tokenizer, texts, (parse_trainable(regime), encoding, "float32"), out)
    return TrunkCache(out)


def _through(model, regime, *caches):
    """The model reading its trunk from ``caches`` (built in memory: nothing to check)."""
    return LM(model, parse_trainable(regime), CacheSet(list(caches)))


def _ref(path, regime, caches, encoding=CLS, base=None):
    return ModelRef(path, base, regime, encoding, CacheSet.open(caches))


def _label_states(lm, batch):
    rows = torch.arange(len(batch.label_pos))
    return lm.hidden(batch.input_ids, batch.attention_mask, at=batch.label_pos)[
        rows, batch.label_pos
    ]


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
    cached = _through(model, regime, _cache(model, tiny_tokenizer, regime, tmp_path))
    batch = encode_classification(tiny_tokenizer, TEXTS, 16, "left")
    with torch.no_grad():
        want, got = _label_states(LM(model), batch), _label_states(cached, batch)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", [_llama, _gpt2])
def test_the_lm_loss_through_a_cache(build, tiny_tokenizer, tmp_path):
    model = build(tiny_tokenizer, tied=False)
    sft = Encoding("sft", 16)
    cached = _through(model, "top:1", _cache(model, tiny_tokenizer, "top:1", tmp_path, sft))
    batch = encode_lm(tiny_tokenizer, TEXTS, 16)
    loss = make_loss("lm", tiny_tokenizer, None, 16)
    with torch.no_grad():
        want, got = loss.batch_loss(LM(model), batch), loss.batch_loss(cached, batch)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=0)


@pytest.mark.parametrize("build", [_llama, _gpt2])
@pytest.mark.parametrize("regime", ["head", "top:1"])
def test_an_expert_trained_through_the_cache_equals_the_frozen_full_model(
    build, regime, tiny_tokenizer, tmp_path
):
    base = build(tiny_tokenizer, tied=False)
    cache = _cache(base, tiny_tokenizer, regime, tmp_path)
    full, full_info = _train(copy.deepcopy(base), tiny_tokenizer, regime)
    through = _through(copy.deepcopy(base), regime, cache)
    cached, cached_info = _train(through, tiny_tokenizer, regime)
    assert [h["acc"] for h in cached_info["history"]] == [h["acc"] for h in full_info["history"]]
    want = dict(full.named_parameters())
    for name, param in cached.module.named_parameters():
        torch.testing.assert_close(param, want[name], rtol=1e-4, atol=1e-6, msg=name)
    pairs = zip(base.parameters(), full.parameters(), strict=True)
    assert any(not torch.equal(p, q) for p, q in pairs)


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
    for name, caches in (("full", ()), ("cached", (cache.path,))):
        base_ref = _ref(tmp_path / "base", regime, caches)
        final = open_lm(base_ref.sibling(tmp_path / "final"))
        assert (final.cache is None) == (not caches)
        labels = pseudolabel(final, tiny_tokenizer, TEXTS, num_classes=3, max_length=16)
        store_for_labels(
            base_ref,
            final,
            frame,
            tmp_path / name,
            spec,
            finetune_spec,
            task_type="classification",
            num_classes=3,
            seed=0,
        )
        results[name] = (labels, *load_gradient_store(tmp_path / name)[:2])
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
    open_lm(_ref(tmp_path / "final", "top:1", (cache.path,)))  # a top:1 finetune: it matches
    with pytest.raises(UserError, match=r"c\.safetensors' was built from another trunk"):
        open_lm(_ref(tmp_path / "other", "top:1", (cache.path,)))
    sibling = copy.deepcopy(base)  # the same architecture and names, one trunk weight moved
    with torch.no_grad():
        sibling.model.layers[0].mlp.up_proj.weight[0, 0] += 1e-3
    save_model(sibling, tiny_tokenizer, tmp_path / "sibling")
    with pytest.raises(UserError, match="was built from another trunk"):
        open_lm(_ref(tmp_path / "sibling", "top:1", (cache.path,)))
    model = open_lm(_ref(tmp_path / "base", "top:1", (cache.path,)))
    batch = encode_classification(tiny_tokenizer, ["a text the cache never saw"], 16, "left")
    with pytest.raises(UserError, match="in none of the trunk caches.*max_length and truncate"):
        model.hidden(batch.input_ids, batch.attention_mask)
    longer = encode_classification(tiny_tokenizer, TEXTS[:1], 8, "left")  # another truncation
    with pytest.raises(UserError, match="in none of the trunk caches"):
        model.hidden(longer.input_ids, longer.attention_mask)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_head_cache_under_a_top_finetune_is_refused_and_nothing_is_written(
    tiny_tokenizer, tmp_path
):
    """A head cache never runs the top block: a top:1 expert trained through it would be
    head-only while its record says top:1."""
    base = _pair(tiny_tokenizer, tmp_path, "top:1")
    head = _cache(base, tiny_tokenizer, "head", tmp_path, name="head")
    ref = _ref(tmp_path / "base", "top:1", (head.path,))
    with pytest.raises(UserError) as error:
        train_expert(
            ref,
            tmp_path / "data.parquet",  # never read: the refusal comes first
            TaskSpec(dataset="d", type="classification"),
            FinetuneSpec(max_length=16, trainable="top:1"),
            (0, 0),
            tmp_path / "expert",
            tmp_path / "expert.json",
        )
    message = _one_line(error)
    assert "head.safetensors" in message and "trainable: head" in message
    assert "trainable: top:1" in message
    assert not (tmp_path / "expert").exists() and not (tmp_path / "expert.json").exists()
    with pytest.raises(UserError, match="trains trainable: top:1"):  # handed over in memory
        _train(_through(copy.deepcopy(base), "head", head), tiny_tokenizer, "top:1")


def test_an_sft_cache_for_a_classification_step_is_refused(tiny_tokenizer, tmp_path):
    base = _pair(tiny_tokenizer, tmp_path, "top:1")
    sft = _cache(base, tiny_tokenizer, "top:1", tmp_path, Encoding("sft", 16), name="sft")
    with pytest.raises(UserError) as error:
        open_lm(_ref(tmp_path / "final", "top:1", (sft.path,)))
    message = _one_line(error)
    assert "sft.safetensors" in message and "holds sft texts" in message
    assert "encodes classification texts" in message
    mixed = (sft.path, _cache(base, tiny_tokenizer, "top:1", tmp_path).path)
    with pytest.raises(UserError, match="holds sft texts"):
        open_lm(_ref(tmp_path / "final", "top:1", mixed))
    with pytest.raises(UserError, match="trainable: all, which has no frozen trunk"):
        open_lm(_ref(tmp_path / "final", "all", mixed[1:]))


def test_two_models_with_different_trunks_each_read_their_own_cache(tiny_tokenizer, tmp_path):
    llama = _llama(tiny_tokenizer, tied=False)
    gpt2 = _gpt2(tiny_tokenizer, tied=False)
    save_model(llama, tiny_tokenizer, tmp_path / "llama")
    save_model(gpt2, tiny_tokenizer, tmp_path / "gpt2")
    caches = {
        name: _cache(model, tiny_tokenizer, "top:1", tmp_path, name=name).path
        for name, model in (("llama", llama), ("gpt2", gpt2))
    }
    opened = {name: open_lm(_ref(tmp_path / name, "top:1", (caches[name],))) for name in caches}
    batch = encode_classification(tiny_tokenizer, TEXTS, 16, "left")
    with torch.no_grad():
        for name, model in (("llama", llama), ("gpt2", gpt2)):
            assert opened[name].cache.caches[0].path == caches[name]
            want = _label_states(LM(model), batch)
            got = _label_states(opened[name], batch)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_a_step_reads_each_text_from_the_cache_that_holds_it(tiny_tokenizer, tmp_path):
    """A step reads several caches (its task's and its pool's): each text comes from the one
    that holds it, and the states are the full model's."""
    model = _llama(tiny_tokenizer, tied=False)
    task = _cache(model, tiny_tokenizer, "top:1", tmp_path, name="task", texts=TEXTS[:5])
    pool = _cache(model, tiny_tokenizer, "top:1", tmp_path, name="pool", texts=TEXTS[5:])
    batch = encode_classification(tiny_tokenizer, TEXTS, 16, "left")
    with torch.no_grad():
        got = _label_states(_through(model, "top:1", task, pool), batch)
        want = _label_states(LM(model), batch)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", [_llama, _gpt2])
def test_a_bf16_cache_is_within_its_measured_tolerance(build, tiny_tokenizer, tmp_path):
    """A bfloat16 cache is computed under bf16 autocast and stored in bf16. Measured on these
    models: the label-position states move by 2.6e-3 (Llama) and 2.2e-3 (GPT-2) of their
    largest entry; the bound is 1e-2."""
    model = build(tiny_tokenizer, tied=False)
    specs = (parse_trainable("top:1"), CLS, "bfloat16")
    save_cache(
        model, tiny_tokenizer, TEXTS, specs, tmp_path / "bf16.safetensors", compute="bfloat16"
    )
    cache = TrunkCache(tmp_path / "bf16.safetensors")
    assert cache.key.dtype == "bfloat16" and cache.states.dtype == torch.bfloat16
    assert cache.key.compute == "bfloat16"
    cached = _through(model, "top:1", cache)
    batch = encode_classification(tiny_tokenizer, TEXTS, 16, "left")
    with torch.no_grad():
        want, got = _label_states(LM(model), batch), _label_states(cached, batch)
    error = float((got - want).abs().max() / want.abs().max())
    assert 0 < error <= 1e-2, error


def test_layers_inside_a_cached_trunk_are_refused(tiny_tokenizer, tmp_path):
    base = _pair(tiny_tokenizer, tmp_path, "top:1")
    ref = _ref(tmp_path / "base", "top:1", (_cache(base, tiny_tokenizer, "top:1", tmp_path).path,))
    frame = pd.DataFrame({"text": TEXTS, "pseudolabel": LABELS})
    with pytest.raises(UserError, match=r"layer model\.layers\.0\..* did not run.*blocks\.-1"):
        store_for_labels(
            ref,
            ref.sibling(tmp_path / "final"),
            frame,
            tmp_path / "store",
            GradientSpec(k=64, batch_size=4, layers=["head", "blocks.0"]),
            FinetuneSpec(max_length=16, trainable="top:1"),
            task_type="classification",
            num_classes=3,
            seed=0,
        )
    assert not (tmp_path / "store").exists()


def test_one_cache_serves_every_encoding_it_was_built_with(tiny_tokenizer, tmp_path):
    """A pool read by tasks of two lengths and cut ends: one cache holds the rows of both (a
    row they cut alike once), each step reads exact states from it, and a third encoding is
    refused by name."""
    base = _pair(tiny_tokenizer, tmp_path, "top:1")
    both = (Encoding("classification", 6, "right"), Encoding("classification", 16, "left"))
    shared = _cache(base, tiny_tokenizer, "top:1", tmp_path, both, name="shared")
    rows = {
        np.asarray(r, dtype=np.int64).tobytes()
        for e in both
        for r in e.tokenize(tiny_tokenizer, TEXTS).rows
    }
    assert len(shared.index) == len(rows) < 2 * len(TEXTS)  # the short texts' rows once
    for encoding in both:
        model = open_lm(_ref(tmp_path / "base", "top:1", (shared.path,), encoding=encoding))
        batch = encode_classification(tiny_tokenizer, TEXTS, encoding.max_length, encoding.truncate)
        with torch.no_grad():
            got = _label_states(model, batch)
            want = _label_states(LM(base), batch)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    third = Encoding("classification", 8, "left")
    with pytest.raises(UserError) as error:
        open_lm(_ref(tmp_path / "base", "top:1", (shared.path,), encoding=third))
    message = _one_line(error)
    assert "max_length 6 cut on the right and max_length 16 cut on the left" in message
    assert "max_length 8 cut on the left" in message


def test_a_shared_cache_name_round_trips_to_its_encodings():
    single = trunk_name("top:1", "classification", 64, "right", "bfloat16")
    assert single == "top1.classification.64.right.bfloat16"
    assert trunk_spec(single)["max_length"] == 64 and "encodings" not in trunk_spec(single)
    shared = trunk_name("top:1", "classification", (64, 128), ("right", "left"), "bfloat16")
    assert shared == "top1.classification.64+128.right+left.bfloat16"
    spec = trunk_spec(shared)
    assert spec["encodings"] == [[64, "right"], [128, "left"]] and spec["regime"] == "top:1"
    with pytest.raises(ValueError, match="2 lengths for 1"):
        trunk_spec("top1.classification.64+128.right.bfloat16")
