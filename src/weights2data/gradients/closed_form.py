"""Closed-form per-example last-layer gradients, and the target direction Δ in the same space.

For cross-entropy through the output matrix W (V×d), the gradient of one position's loss with
respect to W, in its output role only, is ``(p − e_y) hᵀ``: ``h`` is the final hidden state (after
the final norm), ``p`` the softmax of ``W h``. So one forward pass to the final hidden states is all
a per-example gradient costs; no backward pass and no V×d matrix per example are ever needed.

Loss conventions and the reduction each per-example gradient uses:

- ``label_masked``: one position (the one predicting the label), softmax over the C label
  tokens only, so only the C label rows of W get gradient: exact C×d, flattened to C·d.
- ``full_vocab``: the same position, softmax over the whole vocabulary: V×d, sketched.
- ``lm``: every real next-token target of the text; the per-example loss is the MEAN token
  cross-entropy of that text, so ``g = (1/n) Σ_t (p_t − e_{y_t}) h_tᵀ``; sketched. (Any per-text
  weight rescales g and leaves its cosine with Δ unchanged; the mean keeps long texts from
  dominating the greedy sum S.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..device import device_of
from ..errors import UserError
from ..formats import encode_classification, encode_lm, label_token_ids, lm_targets
from ..models import check_same_architecture, final_hidden, output_matrix
from ..projection import DEFAULT_PROJECTION, Projector, make_projector
from .layers import adapted_hint
from .models_io import ModelLike, _as_model, _as_tokenizer
from .precondition import Visit

GRADIENT_LOSSES = ("label_masked", "full_vocab", "lm")
# Positions whose V-dim probability rows are held at once: bounds memory for big vocabularies.
CHUNK_ELEMENTS = 1 << 24


# --------------------------------------------------------------------------- inputs


def _check_loss(loss: str) -> None:
    if loss not in GRADIENT_LOSSES:
        raise UserError(f"unknown loss {loss!r}; choose one of {', '.join(GRADIENT_LOSSES)}.")


def _label_ids(loss: str, tokenizer, num_classes: int | None) -> list[int] | None:
    if loss == "lm":
        return None
    if num_classes is None or num_classes < 2:
        raise UserError(f"loss {loss!r} needs num_classes ≥ 2 (the number of label letters).")
    return label_token_ids(tokenizer, num_classes)


def _check_labels(labels, n: int, loss: str, num_classes: int | None) -> np.ndarray | None:
    if loss == "lm":
        return None
    if labels is None:
        raise UserError(f"loss {loss!r} needs a label (the final model's pseudolabel) per text.")
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise UserError(f"got {labels.shape[0] if labels.ndim else 0} labels for {n} texts.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise UserError("labels must be integer class indices 0 … num_classes-1.")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(
            f"labels must lie in 0 … {num_classes - 1}; found {labels.min()} … {labels.max()}. "
            "Pseudolabel the pool with the final model first."
        )
    return labels.astype(np.int64)


# --------------------------------------------------------------------------- forward to the head


@dataclass
class HeadInputs:
    """Everything the closed form needs: the trained positions of one batch of texts."""

    hidden: torch.Tensor  # (P, d) final hidden states
    targets: torch.Tensor  # (P,) row of the used output rows that each position should predict
    weights: torch.Tensor  # (P,) loss weight of the position within its example
    example: torch.Tensor  # (P,) which example each position belongs to
    n_examples: int
    # the whole batch, for a backward pass into the body (layers beyond the head)
    full: torch.Tensor | None = None  # (B, T, d) final hidden states of every position
    time: torch.Tensor | None = None  # (P,) the position's index within its text
    mask: torch.Tensor | None = None  # (B, T) the attention mask: real tokens


@dataclass(frozen=True)
class Batch:
    """One forward batch: the texts, their labels, and how they are encoded."""

    texts: Sequence[str]
    labels: np.ndarray | None
    loss: str
    label_ids: list[int] | None
    max_length: int
    truncate: str


def forward_positions(model, tokenizer, batch: Batch) -> HeadInputs:
    """One forward pass to the final hidden states; keep only the positions the loss trains.

    Runs under the caller's grad mode: ``head_inputs`` turns it off, the layer gradients
    (``hooks``) keep it on to run the backward pass from the final states.
    """
    device = device_of(model)
    texts, loss = list(batch.texts), batch.loss
    n = len(texts)
    if loss == "lm":
        enc = encode_lm(tokenizer, texts, batch.max_length)
        ids, mask = enc.input_ids.to(device), enc.attention_mask.to(device)
        full = final_hidden(model, ids, mask)
        hidden = full[:, :-1]
        targets, valid = lm_targets(enc)
        valid = valid.to(device)
        counts = valid.sum(dim=1).clamp(min=1).to(hidden.dtype)
        example = torch.arange(n, device=device)[:, None].expand_as(valid)[valid]
        time = torch.arange(valid.shape[1], device=device)[None, :].expand_as(valid)[valid]
        return HeadInputs(
            hidden[valid],
            targets.to(device)[valid],
            1.0 / counts[example],
            example,
            n,
            full,
            time,
            mask,
        )
    enc = encode_classification(tokenizer, texts, batch.max_length, batch.truncate)
    ids, mask = enc.input_ids.to(device), enc.attention_mask.to(device)
    rows = torch.arange(n, device=device)
    full = final_hidden(model, ids, mask)
    time = enc.label_pos.to(device)
    hidden = full[rows, time]
    targets = torch.as_tensor(batch.labels, device=device)
    if loss == "full_vocab":
        targets = torch.as_tensor(batch.label_ids, device=device)[targets]
    weights = torch.ones(n, dtype=hidden.dtype, device=device)
    return HeadInputs(hidden, targets, weights, rows, n, full, time, mask)


@torch.no_grad()
def head_inputs(
    model,
    tokenizer,
    texts: Sequence[str],
    labels: np.ndarray | None,
    *,
    loss: str,
    label_ids: list[int] | None,
    max_length: int,
    truncate: str,
) -> HeadInputs:
    """``forward_positions`` without autograd: all the closed form and the pseudolabels need."""
    batch = Batch(texts, labels, loss, label_ids, max_length, truncate)
    return forward_positions(model, tokenizer, batch)


def _output_rows(model, loss: str, label_ids: list[int] | None) -> torch.Tensor:
    """The rows of W the loss's softmax runs over: the C label rows or the whole vocabulary."""
    W = output_matrix(model).detach()
    return W[torch.as_tensor(label_ids, device=W.device)] if loss == "label_masked" else W


def head_delta(base, final, loss: str, label_ids: list[int] | None) -> torch.Tensor:
    """θ0 − θf of the output rows the loss uses (the C label rows, or all V)."""
    return _output_rows(base, loss, label_ids) - _output_rows(final, loss, label_ids)


def _chunks(n_positions: int, n_rows: int) -> Iterator[slice]:
    step = max(1, CHUNK_ELEMENTS // max(n_rows, 1))
    for start in range(0, n_positions, step):
        yield slice(start, min(start + step, n_positions))


def residuals(inputs: HeadInputs, rows: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
    """``(part, u)`` over chunks of positions: u_t = w_t (softmax(rows h_t) − e_{y_t}), the loss
    gradient at the logits (so u hᵀ is the head's gradient and u rows the final state's)."""
    for part in _chunks(len(inputs.targets), rows.shape[0]):
        h = inputs.hidden[part].detach()
        u = torch.softmax(h @ rows.T, dim=1)
        u[torch.arange(len(h), device=u.device), inputs.targets[part]] -= 1.0
        u *= inputs.weights[part, None]
        yield part, u


def visit_head(inputs: HeadInputs, rows: torch.Tensor, visit: Visit) -> None:
    """Hand the head's outer-product factors to ``visit`` (part 0, U, H, example, n), by chunk."""
    for part, u in residuals(inputs, rows):
        h = inputs.hidden[part].detach()
        visit(0, u, h, inputs.example[part], inputs.n_examples)


def sketch_gradients(inputs: HeadInputs, rows: torch.Tensor, projector: Projector) -> torch.Tensor:
    """Per-example Σ_t w_t (softmax(rows h_t) − e_{y_t}) h_tᵀ, through the projector: (n × k)."""
    out = inputs.hidden.new_zeros((inputs.n_examples, projector.k))

    def add(_part: int, U: torch.Tensor, H: torch.Tensor, example: torch.Tensor, n: int) -> None:
        out.add_(projector.project_outer_sum(U, H, example, n))

    visit_head(inputs, rows, add)
    return out


# --------------------------------------------------------------------------- public API


def gradient_projector(
    loss: str,
    vocab_size: int,
    hidden_size: int,
    *,
    num_classes: int | None = None,
    projection: str | None = None,
    k: int = 1024,
    seed: int = 0,
) -> Projector:
    """The projector a store uses: exact C×d for label_masked unless a projection is asked for,
    otherwise ``projection`` (default ``DEFAULT_PROJECTION``) over the V×d gradient."""
    _check_loss(loss)
    if loss == "label_masked":
        if num_classes is None:
            raise UserError("label_masked loss needs num_classes.")
        return make_projector(projection or "none", num_classes, hidden_size, k, seed)
    return make_projector(projection or DEFAULT_PROJECTION, vocab_size, hidden_size, k, seed)


def per_example_gradients(
    model,
    tokenizer,
    texts: Sequence[str],
    labels: np.ndarray | Sequence[int] | None = None,
    *,
    loss: str = "label_masked",
    num_classes: int | None = None,
    projector: Projector | None = None,
    max_length: int = 32,
    truncate: str = "left",
) -> torch.Tensor:
    """Closed-form last-layer gradient of each text's loss (n × D, in the model's dtype).

    Without a projector the result is exact: C·d values for label_masked, V·d otherwise (small
    vocabularies only). Rows of the flattened matrix are the label tokens / the vocabulary.
    """
    _check_loss(loss)
    label_ids = _label_ids(loss, tokenizer, num_classes)
    labels = _check_labels(labels, len(texts), loss, num_classes)
    rows = _output_rows(model, loss, label_ids)
    if projector is None:
        projector = make_projector("none", rows.shape[0], rows.shape[1], 0, 0)
    if (projector.V, projector.d) != tuple(rows.shape):
        raise UserError(
            f"the projector maps {projector.V}×{projector.d} matrices but the gradient is "
            f"{rows.shape[0]}×{rows.shape[1]}; build it with gradient_projector(...)."
        )
    if len(texts) == 0:
        return rows.new_zeros((0, projector.k))
    inputs = head_inputs(
        model,
        tokenizer,
        texts,
        labels,
        loss=loss,
        label_ids=label_ids,
        max_length=max_length,
        truncate=truncate,
    )
    with torch.no_grad():
        return sketch_gradients(inputs, rows, projector)


def target_direction(
    base: ModelLike,
    final: ModelLike,
    *,
    loss: str = "label_masked",
    tokenizer=None,
    num_classes: int | None = None,
    projector: Projector | None = None,
) -> np.ndarray:
    """Δ = θ0_last − θf_last (a step −ηΣg moves θ0 toward θf), as the store sketches it: (D,).

    label_masked keeps only the C label rows (exact C·d unless a projector is given); other
    losses sketch the whole V×d difference with ``projector`` (required when V·d is large).
    """
    _check_loss(loss)
    base_m, final_m = _as_model(base), _as_model(final)
    check_same_architecture(base_m, final_m)
    label_ids = None
    if loss == "label_masked":
        label_ids = _label_ids(loss, _as_tokenizer(tokenizer, base), num_classes)
    delta = head_delta(base_m, final_m, loss, label_ids)
    if not torch.isfinite(delta).all():
        raise UserError(
            "Δ = base − final of the output layer has NaN or inf entries; "
            "check both checkpoints load correctly."
        )
    if not bool((delta != 0).any()):
        raise UserError(
            "the final model's output layer equals the base model's"
            + (" on the label rows" if loss == "label_masked" else "")
            + ", so there is no direction to select toward. Give a final model that was "
            "finetuned from this base (with these label letters)." + adapted_hint(final_m)
        )
    if projector is None:
        projector = make_projector("none", delta.shape[0], delta.shape[1], 0, 0)
    with torch.no_grad():
        sketch = projector.project_matrix(delta)
    return sketch.double().cpu().numpy()
