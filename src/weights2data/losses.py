"""One loss object per task type: which positions it reads, their logits, the cross-entropy and
the residual p − e_y. Training, evaluation, pseudolabels, the closed-form gradient store and the
diagnostics all go through these, so the five can never disagree on what "the loss" is.

- ``label_masked``: the position before the label, softmax over the C label tokens' rows;
- ``full_vocab``: the same position, softmax over the whole vocabulary;
- ``lm``: every real next-token target; a text's loss is the MEAN over its tokens (the closed
  form's per-example weight 1/n), a training batch's the mean over all its tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .device import to_device
from .errors import UserError
from .formats import ClassificationBatch, Encoding, LMBatch, label_token_ids, lm_targets
from .models.lm import LM

LOSSES = ("label_masked", "full_vocab", "lm")
# Positions whose V-dim probability rows are held at once: bounds memory for big vocabularies.
CHUNK_ELEMENTS = 1 << 24


@dataclass
class Positions:
    """The trained positions of one batch of texts: all the closed form needs."""

    hidden: torch.Tensor  # (P, d) final hidden states
    targets: torch.Tensor  # (P,) row of the used output rows that each position should predict
    weights: torch.Tensor  # (P,) loss weight of the position within its example
    example: torch.Tensor  # (P,) which example each position belongs to
    n_examples: int
    # the whole batch, for a backward pass into the body (layers beyond the head)
    full: torch.Tensor | None = None  # (B, T, d) final hidden states of every position
    time: torch.Tensor | None = None  # (P,) the position's index within its text
    mask: torch.Tensor | None = None  # (B, T) the attention mask: real tokens


def chunks(n_positions: int, n_rows: int) -> Iterator[slice]:
    """Runs of positions whose n_rows-wide probability rows fit ``CHUNK_ELEMENTS``."""
    step = max(1, CHUNK_ELEMENTS // max(n_rows, 1))
    for start in range(0, n_positions, step):
        yield slice(start, min(start + step, n_positions))


@dataclass(frozen=True)
class TaskLoss:
    """What every loss shares: its name, how texts are encoded, the label tokens."""

    name: str
    encoding: Encoding
    label_ids: tuple[int, ...] | None = None

    def encode(self, tokenizer, texts: Sequence[str]) -> ClassificationBatch | LMBatch:
        return self.encoding.encode(tokenizer, texts)

    def row_ids(self) -> torch.Tensor | None:
        """The output rows the softmax runs over (None: the whole vocabulary)."""
        return None

    def rows(self, lm: LM) -> torch.Tensor:
        """Those rows of W, detached (the closed form's constant)."""
        weight = lm.weight.detach()
        ids = self.row_ids()
        return weight if ids is None else weight[ids.to(weight.device)]

    def residuals(self, positions: Positions, rows: torch.Tensor):
        """``(part, u)`` over chunks of positions: u_t = w_t (softmax(rows h_t) − e_{y_t}), the
        loss gradient at the logits (u hᵀ is the head's gradient, u rows the final state's)."""
        for part in chunks(len(positions.targets), rows.shape[0]):
            h = positions.hidden[part].detach()
            u = torch.softmax(h @ rows.T, dim=1)
            u[torch.arange(len(h), device=u.device), positions.targets[part]] -= 1.0
            u *= positions.weights[part, None]
            yield part, u


@dataclass(frozen=True)
class LabelMasked(TaskLoss):
    """Cross-entropy at the label position over the C label rows only."""

    def row_ids(self) -> torch.Tensor:
        return torch.as_tensor(self.label_ids)

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """A class index as a row of ``rows``."""
        return labels

    def classes(self, logits: torch.Tensor) -> torch.Tensor:
        """The predicted class from logits over ``rows``."""
        return logits.argmax(-1)

    def positions(self, lm: LM, batch, labels=None) -> Positions:
        """One forward pass to the label-position states (under the caller's grad mode)."""
        batch = to_device(batch, lm.device)
        n, device = len(batch.label_pos), lm.device
        rows = torch.arange(n, device=device)
        full = lm.hidden(batch.input_ids, batch.attention_mask, at=batch.label_pos)
        hidden = full[rows, batch.label_pos]
        labels = np.zeros(n, dtype=np.int64) if labels is None else labels
        targets = self.targets(torch.as_tensor(labels, device=device))
        weights = torch.ones(n, dtype=hidden.dtype, device=device)
        return Positions(
            hidden, targets, weights, rows, n, full, batch.label_pos, batch.attention_mask
        )

    def logits(self, lm: LM, batch) -> torch.Tensor:
        """Logits at the label position only (B×C or B×V): no B×T×V tensor is ever built."""
        return lm.logits(self.positions(lm, batch).hidden, self.row_ids())

    def batch_loss(self, lm: LM, batch, labels: torch.Tensor, reduction: str = "mean"):
        """(cross-entropy, predicted class) of a batch: what training and evaluation read."""
        logits = self.logits(lm, batch)
        targets = self.targets(labels.to(logits.device))
        return F.cross_entropy(logits, targets, reduction=reduction), self.classes(logits)

    def pseudolabel(self, lm: LM, positions: Positions) -> tuple[np.ndarray, np.ndarray]:
        """The final model's own class per text and its loss against it."""
        label_logits = lm.logits(positions.hidden, torch.as_tensor(self.label_ids))
        labels = label_logits.argmax(dim=1)
        logits = label_logits if self.row_ids() is not None else lm.logits(positions.hidden)
        losses = F.cross_entropy(logits, self.targets(labels), reduction="none")
        return labels.cpu().numpy(), losses.double().cpu().numpy()


@dataclass(frozen=True)
class FullVocab(LabelMasked):
    """Cross-entropy at the label position over the whole vocabulary."""

    def row_ids(self) -> None:
        return None

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.label_ids, device=labels.device)[labels]

    def classes(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, list(self.label_ids)].argmax(-1)


@dataclass(frozen=True)
class TokenLM(TaskLoss):
    """Next-token cross-entropy over every real token of an SFT text."""

    def positions(self, lm: LM, batch, labels=None) -> Positions:
        """Every next-token position (under the caller's grad mode); weights 1/n per text."""
        device = lm.device
        ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
        full = lm.hidden(ids, mask)
        hidden = full[:, :-1]
        targets, valid = lm_targets(batch)
        valid = valid.to(device)
        counts = valid.sum(dim=1).clamp(min=1).to(hidden.dtype)
        n = len(ids)
        example = torch.arange(n, device=device)[:, None].expand_as(valid)[valid]
        time = torch.arange(valid.shape[1], device=device)[None, :].expand_as(valid)[valid]
        weights = 1.0 / counts[example]
        return Positions(
            hidden[valid], targets.to(device)[valid], weights, example, n, full, time, mask
        )

    def batch_loss(self, lm: LM, batch, labels=None, reduction: str = "mean"):
        """Token-mean cross-entropy of a batch; ``reduction='sum'``: (total, token count)."""
        batch = to_device(batch, lm.device)
        logits = lm.logits(lm.hidden(batch.input_ids, batch.attention_mask))
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # f64 kept
        targets, valid = lm_targets(batch)
        per_token = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
        ).view(targets.shape)
        per_token = per_token * valid
        if reduction == "sum":
            return per_token.sum(), valid.sum()
        return per_token.sum() / valid.sum().clamp(min=1)

    def pseudolabel(self, lm: LM, positions: Positions) -> tuple[np.ndarray, np.ndarray]:
        """No class (−1) and each text's mean token loss (NaN with no scorable token)."""
        weight = lm.weight.detach()
        total = positions.hidden.new_zeros(positions.n_examples)
        count = positions.hidden.new_zeros(positions.n_examples)
        for part in chunks(len(positions.targets), weight.shape[0]):
            ce = F.cross_entropy(
                positions.hidden[part] @ weight.T, positions.targets[part], reduction="none"
            )
            total.index_add_(0, positions.example[part], ce)
            count.index_add_(0, positions.example[part], torch.ones_like(ce))
        losses = torch.where(count > 0, total / count.clamp(min=1), torch.nan)
        return np.full(positions.n_examples, -1), losses.double().cpu().numpy()


LOSS_TYPES: dict[str, type[TaskLoss]] = {
    "label_masked": LabelMasked,
    "full_vocab": FullVocab,
    "lm": TokenLM,
}


def make_loss(
    name: str, tokenizer, num_classes: int | None, max_length: int, truncate: str = "left"
) -> TaskLoss:
    """The loss object of a task: ``label_masked`` / ``full_vocab`` (classification, with
    ``num_classes`` label letters) or ``lm`` (SFT)."""
    if name not in LOSS_TYPES:
        raise UserError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}.")
    if name == "lm":
        return TokenLM(name, Encoding("sft", max_length, truncate))
    if num_classes is None or num_classes < 2:
        raise UserError(f"loss {name!r} needs num_classes ≥ 2 (the number of label letters).")
    ids = tuple(label_token_ids(tokenizer, num_classes))
    return LOSS_TYPES[name](name, Encoding("classification", max_length, truncate), ids)
