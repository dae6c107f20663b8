"""Closed-form last-layer gradients against torch.func autograd, and the gradient store on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from torch.func import functional_call, grad, vmap
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from weights2data.errors import UserError
from weights2data.formats import encode_classification, encode_lm, label_token_ids, lm_targets
from weights2data.gradients.closed_form import (
    GRADIENT_LOSSES,
    gradient_projector,
    per_example_gradients,
    target_direction,
)
from weights2data.gradients.models_io import interpolated_models
from weights2data.gradients.pseudolabels import pseudolabel
from weights2data.gradients.shards import gather_gradient_stores, shard_bounds
from weights2data.gradients.store import STORE_FILES, build_gradient_store, load_gradient_store
from weights2data.models import LM, output_matrix
from weights2data.projection import make_projector
from weights2data.specs import GradientSpec

VOCAB = 64
HIDDEN = 16
CLASSES = 3
MAX_LEN = 8
LETTERS = ["A", "B", "C", "D", "E"]
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
WORDS = [f"w{i}" for i in range(VOCAB - len(SPECIALS) - len(LETTERS))]


def make_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer where ' A', ' B', … are single tokens (whitespace is dropped)."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + LETTERS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def make_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=2, n_head=2, n_positions=32)
    return GPT2LMHeadModel(config).double().eval()


def make_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).double().eval()


def perturbed(model, seed: int = 1, scale: float = 0.05):
    """A 'finetune': every parameter moved a little (so Δ is non-zero everywhere)."""
    final = type(model)(model.config).double().eval()
    final.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in final.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return final


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 12))) for _ in range(n)]


TOKENIZER = make_tokenizer()
MODELS = {"gpt2": make_gpt2, "llama": make_llama}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


# --------------------------------------------------------------------------- autograd references


def _loss_from_logits(logits, target, loss, label_ids, weights):
    """The training loss of one example from its logits (T×V; T = 1 for classification)."""
    if loss == "label_masked":
        return torch.nn.functional.cross_entropy(logits[:, label_ids], target)
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    return (ce * weights).sum() / weights.sum()


def _examples(model, texts, labels, loss, label_ids, truncate="left"):
    """Per example: input ids, mask, the trained positions (T), targets, weights (all padded)."""
    if loss == "lm":
        batch = encode_lm(TOKENIZER, texts, MAX_LEN)
        targets, valid = lm_targets(batch)
        positions = torch.arange(targets.shape[1]).expand_as(targets)
        return batch.input_ids, batch.attention_mask, positions, targets, valid.double()
    batch = encode_classification(TOKENIZER, texts, MAX_LEN, truncate)
    y = torch.as_tensor(labels)
    targets = y if loss == "label_masked" else torch.as_tensor(label_ids)[y]
    ones = torch.ones(len(texts), 1, dtype=torch.float64)
    return batch.input_ids, batch.attention_mask, batch.label_pos[:, None], targets[:, None], ones


def head_vmap_reference(model, texts, labels, loss, label_ids):
    """vmap(grad) of each example's loss w.r.t. W through the model's own output layer."""
    ids, mask, positions, targets, weights = _examples(model, texts, labels, loss, label_ids)
    with torch.no_grad():
        hidden = LM(model).hidden(ids, mask)
        logits = model(input_ids=ids, attention_mask=mask).logits
    head = model.get_output_embeddings()
    # The head applied to LM.hidden IS the model's forward: the reference is end to end.
    assert torch.allclose(head(hidden), logits, rtol=0, atol=1e-12)
    h = torch.stack([hidden[i, positions[i]] for i in range(len(texts))])
    W = output_matrix(model).detach().clone()

    def example_loss(W, h, target, weight):
        logits = functional_call(head, {"weight": W}, (h,))
        return _loss_from_logits(logits, target, loss, label_ids, weight)

    return vmap(grad(example_loss), in_dims=(None, 0, 0, 0))(W, h, targets, weights)


def full_model_reference(model, texts, labels, loss, label_ids):
    """torch.func.grad through the WHOLE model per example, replacing only the output weight
    (``tie_weights=False``: for GPT-2 the gradient is taken in the output role only)."""
    ids, mask, positions, targets, weights = _examples(model, texts, labels, loss, label_ids)
    W = output_matrix(model).detach().clone()
    name = "lm_head.weight"

    def example_loss(W, i):
        out = functional_call(
            model,
            {name: W},
            (ids[i : i + 1],),
            {"attention_mask": mask[i : i + 1]},
            tie_weights=False,
            strict=False,
        )
        logits = out.logits[0, positions[i]]
        return _loss_from_logits(logits, targets[i], loss, label_ids, weights[i])

    return torch.stack([grad(example_loss)(W, i) for i in range(len(texts))])


def _closed_form(model, texts, labels, loss, projector=None):
    return per_example_gradients(
        model,
        TOKENIZER,
        texts,
        labels,
        loss=loss,
        num_classes=CLASSES,
        projector=projector,
        max_length=MAX_LEN,
    )


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("loss", GRADIENT_LOSSES)
def test_closed_form_matches_autograd(arch, loss):
    model = MODELS[arch]()
    texts = make_texts(6)
    labels = np.array([0, 1, 2, 2, 1, 0])
    label_ids = label_token_ids(TOKENIZER, CLASSES)
    got = _closed_form(model, texts, labels, loss)
    for reference in (head_vmap_reference, full_model_reference):
        ref = reference(model, texts, labels, loss, label_ids)
        if loss == "label_masked":
            ref = ref.detach()
            assert float(ref.abs().sum()) == pytest.approx(float(ref[:, label_ids].abs().sum()))
            ref = ref[:, label_ids]
        ref = ref.reshape(len(texts), -1)
        assert got.shape == ref.shape
        assert rel_err(got, ref) <= 1e-5, reference.__name__


@pytest.mark.parametrize("kind", ["dense", "factored", "tensorsketch"])
@pytest.mark.parametrize("loss", ["full_vocab", "lm"])
def test_sketched_gradient_is_sketch_of_exact_gradient(kind, loss):
    model = make_llama()
    texts = make_texts(5, seed=3)
    labels = np.array([2, 0, 1, 1, 0])
    exact = _closed_form(model, texts, labels, loss).reshape(len(texts), VOCAB, HIDDEN)
    projector = gradient_projector(loss, VOCAB, HIDDEN, projection=kind, k=64, seed=7)
    got = _closed_form(model, texts, labels, loss, projector)
    want = torch.stack([projector.project_matrix(g) for g in exact])
    assert rel_err(got, want) <= 1e-10


def test_label_masked_can_be_projected_on_request():
    model = make_gpt2()
    texts, labels = make_texts(4), np.array([0, 1, 2, 0])
    exact = _closed_form(model, texts, labels, "label_masked").reshape(4, CLASSES, HIDDEN)
    projector = gradient_projector(
        "label_masked", VOCAB, HIDDEN, num_classes=CLASSES, projection="factored", k=16, seed=1
    )
    got = _closed_form(model, texts, labels, "label_masked", projector)
    assert rel_err(got, torch.stack([projector.project_matrix(g) for g in exact])) <= 1e-10


def test_lm_text_without_targets_has_zero_gradient_and_nan_loss():
    model = make_gpt2()
    got = _closed_form(model, ["", "w1 w2"], None, "lm")
    assert float(got[0].abs().sum()) == 0.0 and float(got[1].abs().sum()) > 0
    frame = pseudolabel(model, TOKENIZER, ["", "w1 w2"], task_type="sft", max_length=MAX_LEN)
    assert np.isnan(frame["loss"][0]) and np.isfinite(frame["loss"][1])


# --------------------------------------------------------------------------- pseudolabels


@pytest.mark.parametrize("loss", ["label_masked", "full_vocab"])
def test_pseudolabel_is_argmax_over_label_tokens(loss):
    model = make_gpt2()
    texts = make_texts(7, seed=5)
    frame = pseudolabel(
        model,
        TOKENIZER,
        texts,
        task_type="classification",
        num_classes=CLASSES,
        max_length=MAX_LEN,
        batch_size=3,
        loss=loss,
    )
    label_ids = label_token_ids(TOKENIZER, CLASSES)
    batch = encode_classification(TOKENIZER, texts, MAX_LEN, "left")
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logits = logits[torch.arange(len(texts)), batch.label_pos]
    want = logits[:, label_ids].argmax(1)
    assert frame["pseudolabel"].tolist() == want.tolist()
    scored = logits[:, label_ids] if loss == "label_masked" else logits
    target = want if loss == "label_masked" else torch.as_tensor(label_ids)[want]
    ce = torch.nn.functional.cross_entropy(scored, target, reduction="none")
    np.testing.assert_allclose(frame["loss"].to_numpy(), ce.numpy(), rtol=1e-10)


def test_pseudolabel_sft_is_mean_token_loss():
    model = make_llama()
    texts = make_texts(5, seed=6)
    frame = pseudolabel(model, TOKENIZER, texts, task_type="sft", max_length=MAX_LEN)
    assert frame["pseudolabel"].tolist() == [-1] * 5
    for i, text in enumerate(texts):
        batch = encode_lm(TOKENIZER, [text], MAX_LEN)
        with torch.no_grad():
            out = model(input_ids=batch.input_ids, labels=batch.input_ids)
        # HF computes its loss in float32 even for a float64 model, hence the tolerance.
        assert frame["loss"][i] == pytest.approx(float(out.loss), rel=1e-6)


# --------------------------------------------------------------------------- Δ and checkpoints


def test_target_direction_and_its_errors():
    base = make_gpt2()
    final = perturbed(base)
    label_ids = label_token_ids(TOKENIZER, CLASSES)
    delta = target_direction(base, final, tokenizer=TOKENIZER, num_classes=CLASSES)
    want = (output_matrix(base) - output_matrix(final))[label_ids].detach().reshape(-1)
    np.testing.assert_allclose(delta, want.numpy(), rtol=1e-12)
    with pytest.raises(UserError, match="equals the base"):
        target_direction(base, make_gpt2(), tokenizer=TOKENIZER, num_classes=CLASSES)
    broken = perturbed(base)
    with torch.no_grad():
        output_matrix(broken)[label_ids[0], 0] = float("nan")
    with pytest.raises(UserError, match="NaN"):
        target_direction(base, broken, loss="lm")


def test_interpolated_models_follow_the_line():
    base = make_llama()
    final = perturbed(base)
    assert [c for c, _ in interpolated_models(base, final, 1)] == [0]
    w0, wf = output_matrix(base).detach().clone(), output_matrix(final).detach()
    seen = []
    for c, model in interpolated_models(base, final, 4):
        seen.append(c)
        want = w0 + (c / 4) * (wf - w0)
        assert torch.allclose(model.weight, want, rtol=0, atol=1e-14)
        assert torch.equal(output_matrix(base), w0)  # the base is never modified
    assert seen == [0, 1, 2, 3]
    with pytest.raises(UserError):
        next(interpolated_models(base, final, 0))


# --------------------------------------------------------------------------- the store


def _build(out, base, final, texts, labels, batch_size, **kw):
    """A store with the spec's settings from ``kw`` (projection None: the default)."""
    keys = ("loss", "projection", "k", "checkpoints", "precondition")
    settings = {k: kw.pop(k) for k in keys if k in kw}
    settings["projection"] = settings.get("projection") or "auto"
    spec = GradientSpec(batch_size=batch_size, **settings)
    return build_gradient_store(
        base,
        final,
        texts,
        labels,
        out,
        spec,
        tokenizer=TOKENIZER,
        num_classes=CLASSES,
        max_length=MAX_LEN,
        progress=False,
        **kw,
    )


@pytest.mark.parametrize(
    "loss,projection", [("label_masked", None), ("lm", "tensorsketch"), ("full_vocab", "factored")]
)
def test_store_round_trip_independent_of_batch_size(tmp_path, loss, projection):
    base = make_gpt2()
    final = perturbed(base)
    texts = make_texts(17, seed=9)
    labels = np.arange(17) % CLASSES
    kw = {"loss": loss, "projection": projection, "k": 64, "seed": 3, "checkpoints": 2}
    meta3 = _build(tmp_path / "a", base, final, texts, labels, 3, **kw)
    meta7 = _build(tmp_path / "b", base, final, texts, labels, 7, **kw)
    assert meta3 == meta7
    ga, ta, ma = load_gradient_store(tmp_path / "a")
    gb, tb, mb = load_gradient_store(tmp_path / "b")
    assert np.array_equal(ga, gb) and np.array_equal(ta, tb) and ma == mb == meta3
    D = CLASSES * HIDDEN if loss == "label_masked" else 64
    assert ga.shape == (17, 2, D) and ta.shape == (2, D) and ga.dtype == np.float32
    assert (ma["N"], ma["C"], ma["D"], ma["loss"], ma["seed"]) == (17, 2, D, loss, 3)
    projector = gradient_projector(
        loss, VOCAB, HIDDEN, num_classes=CLASSES, projection=projection, k=64, seed=3
    )
    for c, model in interpolated_models(base, final, 2):
        want = _closed_form(model, texts, labels, loss, projector)
        np.testing.assert_allclose(ga[:, c], want.numpy(), rtol=1e-5, atol=1e-6)
    delta = target_direction(
        base, final, loss=loss, tokenizer=TOKENIZER, num_classes=CLASSES, projector=projector
    )
    np.testing.assert_allclose(ta, np.tile(delta, (2, 1)), rtol=1e-6)


def test_store_errors(tmp_path):
    base = make_gpt2()
    final = perturbed(base)
    texts = make_texts(4)
    with pytest.raises(UserError, match="empty"):
        _build(tmp_path / "s", base, final, [], [], 2)
    with pytest.raises(UserError, match="labels must lie"):
        _build(tmp_path / "s", base, final, texts, [0, 1, 2, 5], 2)
    with pytest.raises(UserError, match="unknown loss"):
        _build(tmp_path / "s", base, final, texts, [0, 1, 2, 0], 2, loss="hinge")
    assert not (tmp_path / "s").exists()  # nothing half-written
    _build(tmp_path / "s", base, final, texts, [0, 1, 2, 0], 2)
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["base_fingerprint"] != meta["final_fingerprint"]
    (tmp_path / "s" / "target.f32").unlink()
    with pytest.raises(UserError, match="incomplete"):
        load_gradient_store(tmp_path / "s")
    _build(tmp_path / "t", base, final, texts, [0, 1, 2, 0], 2)
    with open(tmp_path / "t" / "grads.f32", "ab") as fh:
        fh.write(b"\0\0\0\0")
    with pytest.raises(UserError, match="bytes"):
        load_gradient_store(tmp_path / "t")


def test_dense_projection_rejected_for_big_vocabularies():
    with pytest.raises(UserError, match="factored"):
        make_projector("dense", 50257, 768, 1024, 0)


# --------------------------------------------------------------------------- sharded stores


def test_shard_bounds_tile_the_pool_on_batch_boundaries():
    assert shard_bounds(10, 3, 2) == [(0, 2), (2, 6), (6, 10)]
    assert shard_bounds(3, 4, 2) == [(0, 0), (0, 2), (2, 2), (2, 3)]  # empty shards
    for n, shards, batch in [(1, 1, 5), (17, 4, 3), (300, 3, 64), (64, 2, 64)]:
        bounds = shard_bounds(n, shards, batch)
        assert bounds[0][0] == 0 and bounds[-1][1] == n and len(bounds) == shards
        assert all(a == b for (_, a), (b, _) in zip(bounds, bounds[1:], strict=False))
        assert all(start % batch == 0 for start, _ in bounds)
    with pytest.raises(UserError, match="shards"):
        shard_bounds(5, 0, 2)


@pytest.mark.parametrize(
    "loss,shards,precondition",
    [("label_masked", 3, "rms"), ("lm", 2, "none"), ("label_masked", 8, "rms")],
)
def test_gathered_shards_equal_the_unsharded_store_byte_for_byte(
    tmp_path, loss, shards, precondition
):
    base = make_gpt2()
    final = perturbed(base)
    texts = make_texts(17, seed=5)
    labels = np.arange(17) % CLASSES
    kw = {"loss": loss, "projection": "tensorsketch" if loss == "lm" else None, "k": 32}
    kw.update(seed=2, checkpoints=2, precondition=precondition)
    _build(tmp_path / "whole", base, final, texts, labels, 3, **kw)
    parts = []
    for i, rows in enumerate(shard_bounds(len(texts), shards, 3)):  # 8 shards: some empty
        parts.append(tmp_path / f"shard{i}")
        meta = _build(parts[-1], base, final, texts, labels, 3, rows=rows, **kw)
        assert meta["N"] == rows[1] - rows[0] and meta["shard"]["pool_size"] == 17
    gather_gradient_stores(parts, tmp_path / "gathered")
    # the exact Adam-aware space is finished after the gather, from the whole pool's D
    extra = ("grads_rms.f32", "rms.safetensors") if precondition == "rms" else ()
    assert all((tmp_path / "whole" / name).exists() == bool(extra) for name in extra)
    for name in STORE_FILES + extra:
        assert (tmp_path / "whole" / name).read_bytes() == (
            tmp_path / "gathered" / name
        ).read_bytes()


def test_a_sketched_rms_store_is_refused_in_shards(tmp_path):
    base = make_gpt2()
    texts, kw = make_texts(6, seed=5), {"loss": "lm", "projection": "tensorsketch", "k": 32}
    with pytest.raises(UserError, match="cannot be built in shards"):
        _build(tmp_path / "s", base, perturbed(base), texts, None, 3, rows=(0, 3), **kw)
    assert not (tmp_path / "s").exists()


def test_gather_refuses_gaps_and_mismatched_shards(tmp_path):
    base = make_gpt2()
    final = perturbed(base)
    texts, labels = make_texts(8, seed=1), np.arange(8) % CLASSES
    bounds = shard_bounds(8, 2, 2)
    for i, rows in enumerate(bounds):
        _build(tmp_path / f"s{i}", base, final, texts, labels, 2, rows=rows)
    with pytest.raises(UserError, match="missing"):
        gather_gradient_stores([tmp_path / "s0"], tmp_path / "out")
    with pytest.raises(UserError, match="continue"):
        gather_gradient_stores([tmp_path / "s1", tmp_path / "s0"], tmp_path / "out")
    _build(tmp_path / "other", base, perturbed(base, seed=7), texts, labels, 2, rows=bounds[1])
    with pytest.raises(UserError, match="other settings or models"):
        gather_gradient_stores([tmp_path / "s0", tmp_path / "other"], tmp_path / "out")
    _build(tmp_path / "whole", base, final, texts, labels, 2)
    with pytest.raises(UserError, match="not a shard store"):
        gather_gradient_stores([tmp_path / "whole"], tmp_path / "out")
    with pytest.raises(UserError, match="batch boundary"):
        _build(tmp_path / "bad", base, final, texts, labels, 2, rows=(1, 4))
    assert not (tmp_path / "out").exists() and not (tmp_path / "bad").exists()
