"""Gradient-store throughput at GPT-2-small size (V=50257, d=768, 12 layers, random init).

1. Store vs forward only: per batch of 32 texts × 32 tokens, the store's work (tokenize, forward
   to the final hidden states, closed-form gradient, sketch, copy to float32 numpy) against a
   plain forward pass of the same model on the same batches. Target: ratio ≤ 1.5.
2. Store vs the naive route of the authors' code: per example, autograd of the loss w.r.t. the
   V×d output matrix (batch of one), then a dense Rademacher JL of vec(G) to the same k. The JL
   is extrapolated from a slice of the matrix's columns; its generation is amortised over a
   batch of 16 examples (generous to the naive route: 16 V×d gradients are already 2.5 GB).
   Target: ≥ 1000× faster. Both the end-to-end ratio (each side with its forward pass) and the
   gradient-only ratio (the forward pass both routes share taken out) are printed.

4. Body-layer store (``layers``: the last block, head + last block, the first block) against a
   forward-only pass and a forward + backward pass (the loss's gradient w.r.t. every
   parameter, as one training step computes it) of the same batches. Target: ≤ 1.5× forward +
   backward.

Run: .venv/bin/python benchmarks/bench_gradients.py
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from weights2data.formats import encode_classification, encode_lm, label_token_ids
from weights2data.gradients.closed_form import (
    Batch,
    gradient_projector,
    head_inputs,
    per_example_gradients,
    sketch_gradients,
)
from weights2data.gradients.hooks import gradient_space, sketch_layers
from weights2data.gradients.store import build_gradient_store
from weights2data.losses import make_loss
from weights2data.models import LM, output_matrix
from weights2data.projection import DEFAULT_PROJECTION, rademacher_signs
from weights2data.specs import GradientSpec

VOCAB, HIDDEN, LAYERS = 50257, 768, 12
SEQ, BATCH, BATCHES, REPEATS, CLASSES, K = 32, 32, 3, 3, 4, 1024
NAIVE_EXAMPLES, JL_SLICE, JL_AMORTISE = 2, 1 << 16, 16


def tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the whole GPT-2 vocabulary size, label letters single tokens."""
    specials, letters = ["<pad>", "<s>"], list("ABCD")
    words = [f"w{i}" for i in range(VOCAB - len(specials) - len(letters))]
    vocab = {tok: i for i, tok in enumerate(specials + letters + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="<s>"
    )


def texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{i}" for i in rng.integers(0, VOCAB - 10, SEQ - 1)) for _ in range(n)]


def gpt2_small() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=12)
    return GPT2LMHeadModel(config).eval()


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


@torch.no_grad()
def forward_only(model, tok, batch: list[str], loss: str) -> None:
    if loss == "lm":
        enc = encode_lm(tok, batch, SEQ)
    else:
        enc = encode_classification(tok, batch, SEQ, "left")
    model(input_ids=enc.input_ids, attention_mask=enc.attention_mask)


def store_batch(model, tok, batch, labels, loss, projector) -> np.ndarray:
    grads = per_example_gradients(
        model,
        tok,
        batch,
        labels,
        loss=loss,
        num_classes=CLASSES,
        projector=projector,
        max_length=SEQ,
    )
    return grads.float().numpy()


def store_vs_forward(model, tok) -> dict[str, float]:
    """Seconds per example of the store's per-batch work, per loss (and PASS/FAIL vs forward).

    Forward and store alternate batch by batch, so both see the same machine load (the 2 cores
    are shared), and the ratio is the median of the per-batch ratios.
    """
    pool = [texts(BATCH, seed) for seed in range(BATCHES)]
    labels = np.arange(BATCH) % CLASSES
    per_example = {}
    print(f"\n[1] store vs forward only: {BATCHES} batches × {REPEATS} repeats of {BATCH}×{SEQ}")
    for loss in ("label_masked", "full_vocab", "lm"):
        projector = loss_projector(loss)
        forward_only(model, tok, pool[0], loss)  # warm up
        store_batch(model, tok, pool[0], labels, loss, projector)
        fwd, sto = [], []
        for _ in range(REPEATS):
            for batch in pool:
                fwd.append(timed(forward_only, model, tok, batch, loss))
                sto.append(timed(store_batch, model, tok, batch, labels, loss, projector))
        ratio = statistics.median(s / f for s, f in zip(sto, fwd, strict=True))
        best_ratio = min(sto) / min(fwd)  # least disturbed by other load on the shared cores
        per_example[loss] = statistics.median(sto) / BATCH
        name = projector.kind if loss != "label_masked" else "exact C×d"
        print(
            f"  {loss:<13}({name:<12}) forward {statistics.median(fwd):5.2f} s/batch  store "
            f"{statistics.median(sto):5.2f} s/batch  {1 / per_example[loss]:5.1f} ex/s  "
            f"ratio {ratio:4.2f} (min/min {best_ratio:4.2f})  "
            f"{'PASS' if ratio <= 1.5 else 'FAIL'} (target ≤ 1.5)"
        )
    return per_example


def loss_projector(loss: str):
    projection = None if loss == "label_masked" else DEFAULT_PROJECTION
    return gradient_projector(
        loss, VOCAB, HIDDEN, num_classes=CLASSES, projection=projection, k=K, seed=0
    )


def gradient_part(model, tok, loss: str) -> float:
    """Seconds per example of the closed form + sketch alone, given the hidden states."""
    labels = np.arange(BATCH) % CLASSES
    objective, lm = make_loss(loss, tok, CLASSES, SEQ), LM(model)
    inputs = head_inputs(lm, tok, texts(BATCH, seed=3), labels, objective)
    rows = objective.rows(lm)
    projector = loss_projector(loss)
    with torch.no_grad():
        sketch_gradients(inputs, objective, rows, projector)
        return median_time(lambda: sketch_gradients(inputs, objective, rows, projector), 5) / BATCH


def naive_autograd(model, tok) -> tuple[float, float]:
    """Median seconds per example: (forward + backward to dL/dW, the forward alone)."""
    W = output_matrix(model)
    label_ids = label_token_ids(tok, CLASSES)
    full, fwd = [], []
    for i, text in enumerate(texts(NAIVE_EXAMPLES, seed=99)):
        enc = encode_classification(tok, [text], SEQ, "left")
        t = time.perf_counter()
        logits = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
        loss = torch.nn.functional.cross_entropy(
            logits[0, enc.label_pos], torch.tensor([label_ids[i % CLASSES]])
        )
        t_fwd = time.perf_counter()
        (grad,) = torch.autograd.grad(loss, W)
        full.append(time.perf_counter() - t)
        fwd.append(t_fwd - t)
        assert grad.shape == (VOCAB, HIDDEN)
    return statistics.median(full), statistics.median(fwd)


def naive_jl() -> tuple[float, float]:
    """Seconds per example of a dense k×(V·d) JL, extrapolated from a slice of columns:
    (generation of the matrix amortised over JL_AMORTISE examples, the mat-vec)."""
    scale = VOCAB * HIDDEN / JL_SLICE
    rng = np.random.default_rng(0)
    g = torch.randn(JL_AMORTISE, JL_SLICE)
    gen_t, mm_t = [], []
    for _ in range(3):
        t = time.perf_counter()
        R = torch.from_numpy(rademacher_signs(rng, K, JL_SLICE))
        t1 = time.perf_counter()
        _ = g @ R.T
        mm_t.append(time.perf_counter() - t1)
        gen_t.append(t1 - t)
    return (
        statistics.median(gen_t) * scale / JL_AMORTISE,
        statistics.median(mm_t) * scale / JL_AMORTISE,
    )


def end_to_end_store(model, tok) -> None:
    """The public build_gradient_store on 2 batches, fixed costs (Δ, fingerprints) included."""
    final = GPT2LMHeadModel(model.config).eval()
    final.load_state_dict(model.state_dict())
    with torch.no_grad():
        output_matrix(final).add_(1e-3 * torch.randn(VOCAB, HIDDEN))
    pool = texts(2 * BATCH, seed=7)
    labels = np.arange(len(pool)) % CLASSES
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        build_gradient_store(
            model,
            final,
            pool,
            labels,
            f"{tmp}/store",
            GradientSpec(loss="full_vocab", k=K, batch_size=BATCH),
            tokenizer=tok,
            num_classes=CLASSES,
            progress=False,
        )
        total = time.perf_counter() - t
    print(
        f"\n[3] build_gradient_store (full_vocab, {DEFAULT_PROJECTION}, N={len(pool)}): "
        f"{total:.1f} s in all, fixed costs (Δ sketch, weight fingerprints) included"
    )


def forward_backward(model, tok, batch: list[str], labels, loss: str) -> None:
    """One training step's passes: forward, then the loss's gradient w.r.t. every parameter."""
    label_ids = label_token_ids(tok, CLASSES)
    if loss == "lm":
        enc = encode_lm(tok, batch, SEQ)
        out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=None)
        logits = out.logits[:, :-1]
        value = torch.nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB), enc.input_ids[:, 1:].reshape(-1)
        )
    else:
        enc = encode_classification(tok, batch, SEQ, "left")
        logits = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
        at_label = logits[torch.arange(len(batch)), enc.label_pos][:, label_ids]
        value = torch.nn.functional.cross_entropy(at_label, torch.as_tensor(labels))
    model.zero_grad(set_to_none=True)
    value.backward()


def body_store_batch(model, tok, batch, labels, loss, space) -> np.ndarray:
    spec = Batch(batch, None if loss == "lm" else labels, make_loss(loss, tok, CLASSES, SEQ))
    return sketch_layers(model, tok, spec, space).float().numpy()


def body_store_vs_passes(model, tok) -> None:
    """[4] Seconds per batch of the body-layer store against forward and forward + backward."""
    pool = [texts(BATCH, seed) for seed in range(BATCHES)]
    labels = np.arange(BATCH) % CLASSES
    print(f"\n[4] body-layer store vs forward / forward + backward ({BATCH}×{SEQ} batches)")
    for loss in ("label_masked", "lm"):
        for layers in ("blocks.-1", ["head", "blocks.-1"], "blocks.0"):
            space = gradient_space(
                model, layers, loss, num_classes=CLASSES, projection=None, k=K, seed=0
            )
            body_store_batch(model, tok, pool[0], labels, loss, space)  # warm up
            forward_backward(model, tok, pool[0], labels, loss)
            fwd, fb, sto = [], [], []
            for _ in range(REPEATS):
                for batch in pool:
                    fwd.append(timed(forward_only, model, tok, batch, loss))
                    fb.append(timed(forward_backward, model, tok, batch, labels, loss))
                    sto.append(timed(body_store_batch, model, tok, batch, labels, loss, space))
            model.zero_grad(set_to_none=True)
            to_fb = statistics.median(s / f for s, f in zip(sto, fb, strict=True))
            to_fwd = statistics.median(s / f for s, f in zip(sto, fwd, strict=True))
            name = layers if isinstance(layers, str) else "+".join(layers)
            print(
                f"  {loss:<13}{name:<16}D={space.k:<6} forward {statistics.median(fwd):5.2f}  "
                f"fwd+bwd {statistics.median(fb):5.2f}  store {statistics.median(sto):5.2f} "
                f"s/batch  store/forward {to_fwd:4.2f}  store/(fwd+bwd) {to_fb:4.2f}  "
                f"{'PASS' if to_fb <= 1.5 else 'FAIL'} (target ≤ 1.5)"
            )


def main() -> None:
    torch.set_num_threads(2)
    tok = tokenizer()
    model = gpt2_small()
    print(f"GPT-2 small, random init: V={VOCAB}, d={HIDDEN}, {LAYERS} layers; k={K}, threads=2")
    store = store_vs_forward(model, tok)
    print(f"\n[2] naive route (authors): per-example V×d autograd + dense JL to k={K}")
    auto, auto_fwd = naive_autograd(model, tok)
    gen, mm = naive_jl()
    backward = auto - auto_fwd
    print(
        f"  autograd {auto:.3f} s/ex (forward {auto_fwd:.3f} + backward {backward:.3f}); "
        f"dense JL mat-vec {mm:.3f} s/ex; JL matrix generation {gen * JL_AMORTISE:.1f} s per "
        f"batch of examples"
    )
    variants = {
        "matrix generated once per example": auto + mm + gen * JL_AMORTISE,
        f"generation amortised over {JL_AMORTISE}": auto + mm + gen,
        "generation free (lower bound)": auto + mm,
    }
    for loss in ("full_vocab", "label_masked"):
        ours = store[loss]
        print(f"  store[{loss}] end to end {ours:.4f} s/ex; naive route:")
        for name, naive in variants.items():
            ratio = naive / ours
            print(
                f"    {name:<36}{naive:8.2f} s/ex  {ratio:8.0f}×  "
                f"{'PASS' if ratio >= 1000 else 'FAIL'} (target ≥ 1000×)"
            )
    print("  gradient part only (hidden states given; naive = backward + JL, lower bound):")
    for loss in ("label_masked", "full_vocab", "lm"):
        ours = gradient_part(model, tok, loss)
        ratio = (backward + mm) / ours
        print(
            f"    {loss:<13}{ours * 1e3:8.3f} ms/ex vs {backward + mm:.2f} s/ex: {ratio:9.0f}×  "
            f"{'PASS' if ratio >= 1000 else 'FAIL'}"
        )
    end_to_end_store(model, tok)
    body_store_vs_passes(model, tok)


if __name__ == "__main__":
    main()
