"""Per-example gradients of body layers (hooks, one backward per batch) against torch.func
vmap(grad), on tiny GPT-2 and Llama models, plain and LoRA-adapted, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call, grad, vmap

from weights2data.errors import UserError
from weights2data.formats import label_token_ids
from weights2data.gradients.closed_form import Batch
from weights2data.gradients.hooks import gradient_space, sketch_layers, space_target
from weights2data.gradients.layers import linear_modules, resolve_layers
from weights2data.gradients.store import build_gradient_store, load_gradient_store
from weights2data.losses import make_loss
from weights2data.specs import GradientSpec

from .test_gradients import (
    CLASSES,
    GRADIENT_LOSSES,
    MAX_LEN,
    MODELS,
    TOKENIZER,
    WORDS,
    _examples,
    _loss_from_logits,
    make_gpt2,
    make_llama,
    make_texts,
    perturbed,
    rel_err,
)

# an MLP projection and an attention projection of each architecture
LAYERS = {
    "gpt2": ["transformer.h.1.mlp.c_fc", "transformer.h.0.attn.c_attn"],
    "llama": ["model.layers.1.mlp.down_proj", "model.layers.0.self_attn.q_proj"],
}
CONV1D = ("c_fc", "c_attn", "c_proj")  # GPT-2 layers that store their weight as in × out
LABELS = np.array([0, 1, 2, 2, 1, 0])


def equal_length_texts(n: int, words: int = 5, seed: int = 0) -> list[str]:
    """Texts of one token length: vmap needs one shape, so the batch has no padding."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=words)) for _ in range(n)]


def exact_layer_gradients(model, texts, labels, loss, name):
    """The hook path with no projection: each text's exact out × in gradient, flattened."""
    space = gradient_space(model, [name], loss, num_classes=CLASSES, projection="none", k=0, seed=0)
    batch = Batch(texts, labels, make_loss(loss, TOKENIZER, CLASSES, MAX_LEN))
    return sketch_layers(model, TOKENIZER, batch, space)


def oriented(name: str, g: torch.Tensor) -> torch.Tensor:
    """A weight gradient (n × weight shape) as n × (out·in)."""
    if name.rsplit(".", 1)[-1] in CONV1D or ".c_" in name and "base_layer" in name:
        g = g.transpose(1, 2)
    return g.reshape(len(g), -1)


def vmap_reference(model, texts, labels, loss, param):
    """vmap over the texts of torch.func.grad of each one's own loss w.r.t. one weight."""
    label_ids = label_token_ids(TOKENIZER, CLASSES)
    ids, mask, positions, targets, weights = _examples(model, texts, labels, loss, label_ids)
    assert bool(mask.all()), "the vmap reference needs texts without padding"
    params = {k: v.detach() for k, v in model.named_parameters()}
    chosen = params.pop(param)

    def text_loss(w, ids, positions, target, weight):
        out = functional_call(model, {**params, param: w}, (ids[None],))
        logits = out.logits[0, positions]
        return _loss_from_logits(logits, target, loss, label_ids, weight)

    return vmap(grad(text_loss), in_dims=(None, 0, 0, 0, 0))(
        chosen, ids, positions, targets, weights
    )


def padded_reference(model, texts, labels, loss, param):
    """torch.func.grad per text of the padded batch (its own row and mask), in a loop."""
    label_ids = label_token_ids(TOKENIZER, CLASSES)
    ids, mask, positions, targets, weights = _examples(model, texts, labels, loss, label_ids)
    params = {k: v.detach() for k, v in model.named_parameters()}
    chosen = params.pop(param)

    def text_loss(w, i):
        out = functional_call(
            model, {**params, param: w}, (ids[i : i + 1],), {"attention_mask": mask[i : i + 1]}
        )
        return _loss_from_logits(
            out.logits[0, positions[i]], targets[i], loss, label_ids, weights[i]
        )

    return torch.stack([grad(text_loss)(chosen, i) for i in range(len(texts))])


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("loss", GRADIENT_LOSSES)
@pytest.mark.parametrize("which", [0, 1], ids=["mlp", "attention"])
def test_layer_gradients_match_vmap_of_grad(arch, loss, which):
    model = MODELS[arch]()
    name = LAYERS[arch][which]
    texts = equal_length_texts(6)
    got = exact_layer_gradients(model, texts, LABELS, loss, name)
    ref = oriented(name, vmap_reference(model, texts, LABELS, loss, f"{name}.weight"))
    assert got.shape == ref.shape
    assert float(ref.norm()) > 0
    assert rel_err(got, ref) <= 1e-5


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("loss", ["label_masked", "lm"])
def test_layer_gradients_of_a_padded_batch_are_each_texts_own(arch, loss):
    model = MODELS[arch]()
    name = LAYERS[arch][1]
    texts = make_texts(6, seed=3)  # lengths 1 … 11 words: padded and truncated
    got = exact_layer_gradients(model, texts, LABELS, loss, name)
    ref = oriented(name, padded_reference(model, texts, LABELS, loss, f"{name}.weight"))
    assert rel_err(got, ref) <= 1e-5


def lora_wrapped(model, targets, seed=0):
    """``model`` with random LoRA adapters on ``targets`` (the peft wrapper's inner model)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=2, lora_alpha=4, target_modules=targets, init_lora_weights=False)
    return get_peft_model(model, config).double().eval().base_model.model


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("loss", ["label_masked", "lm"])
def test_lora_adapted_layer_gradients_match_vmap_of_grad(arch, loss):
    """The gradient w.r.t. the adapted layer's effective weight W + s·BA, from hooks on the
    LoRA wrapper, equals vmap(grad) w.r.t. its base weight (they differ by a constant)."""
    name = LAYERS[arch][1]
    model = lora_wrapped(MODELS[arch](), [name.rsplit(".", 1)[-1]])
    assert name in linear_modules(model)
    texts = equal_length_texts(5, seed=1)
    got = exact_layer_gradients(model, texts, LABELS[:5], loss, name)
    ref = vmap_reference(model, texts, LABELS[:5], loss, f"{name}.base_layer.weight")
    assert rel_err(got, oriented(name, ref)) <= 1e-5


def test_layers_resolve_to_the_blocks_linear_layers():
    gpt2, llama = make_gpt2(), make_llama()
    last = resolve_layers(gpt2, "blocks.-1")
    assert not last.head and last.modules == tuple(
        f"transformer.h.1.{m}" for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    )
    both = resolve_layers(llama, ["head", "blocks.-1", "model.layers.0.mlp.up_proj"])
    assert both.head and len(both.modules) == 8 and both.modules[0] == "model.layers.0.mlp.up_proj"
    assert resolve_layers(gpt2, ["lm_head"]).head_only
    with pytest.raises(UserError, match="not a linear layer.*transformer.h.0.attn.c_attn"):
        resolve_layers(gpt2, "transformer.h.0.ln_1")
    with pytest.raises(UserError, match="has 2 blocks"):
        resolve_layers(gpt2, "blocks.2")
    with pytest.raises(UserError, match="gradients.layers"):
        resolve_layers(gpt2, [])


def _store(tmp_path, name, base, final, texts, labels, loss, **spec):
    out = tmp_path / name
    build_gradient_store(
        base,
        final,
        texts,
        labels,
        out,
        GradientSpec(loss=loss, batch_size=4, **spec),
        tokenizer=TOKENIZER,
        num_classes=CLASSES,
        max_length=MAX_LEN,
        progress=False,
    )
    return out


@pytest.mark.parametrize("loss", ["label_masked", "lm"])
def test_head_store_is_the_same_whatever_the_head_is_called(tmp_path, loss):
    base, texts = make_gpt2(), make_texts(10)
    final, labels = perturbed(base), np.arange(10) % CLASSES
    files = []
    for i, layers in enumerate(("head", ["head"], ["lm_head", "head"])):
        out = _store(tmp_path, f"s{i}", base, final, texts, labels, loss, layers=layers)
        files.append([(out / f).read_bytes() for f in ("grads.f32", "target.f32", "meta.json")])
        assert "layers" not in load_gradient_store(out)[2]
    assert files[0] == files[1] == files[2]


def test_store_over_head_and_a_body_layer_concatenates_exact_gradients(tmp_path):
    base, texts = make_gpt2(), equal_length_texts(7)
    final, labels = perturbed(base), np.arange(7) % CLASSES
    name = LAYERS["gpt2"][0]
    out = _store(
        tmp_path,
        "s",
        base,
        final,
        texts,
        labels,
        "label_masked",
        layers=["head", name],
        projection="none",
    )
    grads, target, meta = load_gradient_store(out)
    assert [part["layer"] for part in meta["layers"]] == ["head", name]
    assert meta["cost"]["sketch_numbers_per_text"] == meta["D"] == CLASSES * 16 + 64 * 16
    body = exact_layer_gradients(base, texts, labels, "label_masked", name).float().numpy()
    np.testing.assert_allclose(grads[:, 0, CLASSES * 16 :], body, rtol=1e-5, atol=1e-7)
    delta = (base.get_submodule(name).weight - final.get_submodule(name).weight).T
    np.testing.assert_allclose(
        target[0, CLASSES * 16 :], delta.detach().reshape(-1).numpy(), rtol=1e-5, atol=1e-7
    )


def test_sketched_body_store_follows_the_exact_cosines(tmp_path):
    """With the default sketch, cos(g_i, Δ) of the last block tracks the exact cosine."""
    base, texts = make_gpt2(), make_texts(24, seed=5)
    final = perturbed(base)
    space = gradient_space(
        base, "blocks.-1", "lm", num_classes=None, projection=None, k=2048, seed=0
    )
    exact = gradient_space(
        base, "blocks.-1", "lm", num_classes=None, projection="none", k=0, seed=0
    )
    lm_loss = make_loss("lm", TOKENIZER, None, MAX_LEN)
    batch = Batch(texts, None, lm_loss)
    cos = []
    for s in (space, exact):
        g = sketch_layers(base, TOKENIZER, batch, s).double().numpy()
        t = space_target(base, final, s, lm_loss)
        cos.append(g @ t / (np.linalg.norm(g, axis=1) * np.linalg.norm(t)))
    assert np.corrcoef(cos[0], cos[1])[0, 1] > 0.9


def test_last_block_gradients_from_a_trunk_cache_run_at_the_label_and_stay_exact(tmp_path):
    """On a top:1 trunk cache the last Llama block runs at the label position (queries, output
    projection and MLP there only; keys and values everywhere) also while the store's hooks
    capture its layers: each text's exact gradient of every linear layer of the block must equal
    the one of the whole model run at every position."""
    from weights2data.formats import Encoding
    from weights2data.models.block_at import ROWS_ANYWHERE
    from weights2data.models.cache import CacheSet, TrunkCache, save_cache
    from weights2data.models.lm import LM
    from weights2data.models.regime import parse_trainable

    model = make_llama().float()  # a float32 cache runs a float32 top
    texts, labels = make_texts(6, seed=3), LABELS
    regime = parse_trainable("top:1")
    out = tmp_path / "top1.safetensors"
    specs = (regime, Encoding("classification", MAX_LEN, "left"), "float32")
    save_cache(model, TOKENIZER, texts, specs, out)
    cached = LM(model, regime, CacheSet([TrunkCache(out)]))
    layers = resolve_layers(model, "blocks.-1").modules
    space = gradient_space(
        model, "blocks.-1", "label_masked", num_classes=CLASSES, projection="none", k=0, seed=0
    )
    batch = Batch(texts, labels, make_loss("label_masked", TOKENIZER, CLASSES, MAX_LEN))
    shapes = {}

    def seen(module, args, output):
        shapes[module] = args[0].ndim

    setattr(seen, ROWS_ANYWHERE, True)
    q_proj = model.get_submodule(next(n for n in layers if n.endswith("q_proj")))
    handle = q_proj.register_forward_hook(seen)
    try:
        got = sketch_layers(cached, TOKENIZER, batch, space)
    finally:
        handle.remove()
    want = sketch_layers(model, TOKENIZER, batch, space)
    assert shapes[q_proj] == 2  # one row per text: the block ran at the label position
    assert len(layers) == 7 and rel_err(got, want) < 1e-5
