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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError
from ..losses import LOSSES, Positions, TaskLoss, make_loss
from ..models.arch import check_same_architecture
from ..models.lm import LM, ModelLike, as_lm
from ..projection import DEFAULT_PROJECTION, Projector, make_projector
from .layers import adapted_hint
from .models_io import as_tokenizer
from .precondition import Visit

GRADIENT_LOSSES = LOSSES


# --------------------------------------------------------------------------- inputs


def _check_loss(loss: str) -> None:
    if loss not in GRADIENT_LOSSES:
        raise UserError(f"unknown loss {loss!r}; choose one of {', '.join(GRADIENT_LOSSES)}.")


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


@dataclass(frozen=True)
class Batch:
    """One forward batch: the texts, their labels, and the loss that encodes and reads them."""

    texts: Sequence[str]
    labels: np.ndarray | None
    loss: TaskLoss


def forward_positions(lm: LM, tokenizer, batch: Batch) -> Positions:
    """One forward pass to the final hidden states; keep only the positions the loss trains.

    Runs under the caller's grad mode: ``head_inputs`` turns it off, the layer gradients
    (``hooks``) keep it on to run the backward pass from the final states.
    """
    encoded = batch.loss.encode(tokenizer, list(batch.texts))
    return batch.loss.positions(lm, encoded, batch.labels)


@torch.no_grad()
def head_inputs(lm: LM, tokenizer, texts: Sequence[str], labels, loss: TaskLoss) -> Positions:
    """``forward_positions`` without autograd: all the closed form and the pseudolabels need."""
    return forward_positions(lm, tokenizer, Batch(texts, labels, loss))


def head_delta(base: LM, final: LM, loss: TaskLoss) -> torch.Tensor:
    """θ0 − θf of the output rows the loss uses (the C label rows, or all V)."""
    return loss.rows(base) - loss.rows(final)


def visit_head(inputs: Positions, loss: TaskLoss, rows: torch.Tensor, visit: Visit) -> None:
    """Hand the head's outer-product factors to ``visit`` (part 0, U, H, example, n), by chunk."""
    for part, u in loss.residuals(inputs, rows):
        h = inputs.hidden[part].detach()
        visit(0, u, h, inputs.example[part], inputs.n_examples)


def sketch_gradients(
    inputs: Positions, loss: TaskLoss, rows: torch.Tensor, projector: Projector
) -> torch.Tensor:
    """Per-example Σ_t w_t (softmax(rows h_t) − e_{y_t}) h_tᵀ, through the projector: (n × k)."""
    out = inputs.hidden.new_zeros((inputs.n_examples, projector.k))

    def add(_part: int, U: torch.Tensor, H: torch.Tensor, example: torch.Tensor, n: int) -> None:
        out.add_(projector.project_outer_sum(U, H, example, n))

    visit_head(inputs, loss, rows, add)
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
    task_loss = make_loss(loss, tokenizer, num_classes, max_length, truncate)
    labels = _check_labels(labels, len(texts), loss, num_classes)
    lm = as_lm(model)
    rows = task_loss.rows(lm)
    if projector is None:
        projector = make_projector("none", rows.shape[0], rows.shape[1], 0, 0)
    if (projector.V, projector.d) != tuple(rows.shape):
        raise UserError(
            f"the projector maps {projector.V}×{projector.d} matrices but the gradient is "
            f"{rows.shape[0]}×{rows.shape[1]}; build it with gradient_projector(...)."
        )
    if len(texts) == 0:
        return rows.new_zeros((0, projector.k))
    inputs = head_inputs(lm, tokenizer, texts, labels, task_loss)
    with torch.no_grad():
        return sketch_gradients(inputs, task_loss, rows, projector)


def head_loss(loss: str, tokenizer, model: ModelLike, num_classes: int | None) -> TaskLoss:
    """The loss object whose output rows Δ is taken over: the label rows for label_masked
    (which needs the tokenizer's label letters), the whole vocabulary otherwise."""
    if loss == "label_masked":
        return make_loss(loss, as_tokenizer(tokenizer, model), num_classes, 2)
    return make_loss("lm", None, None, 2)


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
    base_m, final_m = as_lm(base), as_lm(final, base)
    check_same_architecture(base_m.module, final_m.module)
    delta = head_delta(base_m, final_m, head_loss(loss, tokenizer, base, num_classes))
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
            "finetuned from this base (with these label letters)." + adapted_hint(final_m.updates)
        )
    if projector is None:
        projector = make_projector("none", delta.shape[0], delta.shape[1], 0, 0)
    with torch.no_grad():
        sketch = projector.project_matrix(delta)
    return sketch.double().cpu().numpy()
