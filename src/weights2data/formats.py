"""How texts become model inputs: label letters for classification, plain text for LM/SFT.

Classification input is ``"{text} {letter}"``; the label letter is one token and only its
position is trained. Because attention is causal, the logits that predict the label sit at the
last text token, so the label token itself never needs to be fed to the model: a batch holds the
(truncated) text tokens and the index of their last position.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .errors import UserError

LABEL_LETTERS = tuple(f" {c}" for c in string.ascii_uppercase)


def label_token_ids(tokenizer, num_classes: int) -> list[int]:
    """Token ids of " A", " B", ... for ``num_classes`` classes; each must be a single token."""
    if num_classes > len(LABEL_LETTERS):
        raise UserError(
            f"{num_classes} classes but only {len(LABEL_LETTERS)} label letters exist; "
            "merge classes or use fewer."
        )
    ids = []
    for letter in LABEL_LETTERS[:num_classes]:
        pieces = tokenizer.encode(letter, add_special_tokens=False)
        if len(pieces) != 1:
            raise UserError(
                f"label {letter!r} is {len(pieces)} tokens under this tokenizer, it must be one; "
                "use a tokenizer whose vocabulary has ' A' ... as single tokens "
                "(the pipeline's own BPE adds them as special pieces)."
            )
        ids.append(pieces[0])
    if len(set(ids)) != len(ids):
        raise UserError("two label letters map to the same token; the tokenizer is unusable.")
    return ids


def pad_token_id(tokenizer) -> int:
    """The pad id, falling back to EOS (padding is always masked out, so EOS is safe)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    raise UserError(
        "the tokenizer has neither a pad nor an EOS token; set `pad_token` in its "
        "tokenizer_config.json (any token works, padded positions are masked)."
    )


@dataclass
class ClassificationBatch:
    """Right-padded text tokens; ``label_pos[i]`` is the position whose logits predict the label."""

    input_ids: torch.Tensor  # (B, T) long
    attention_mask: torch.Tensor  # (B, T) long
    label_pos: torch.Tensor  # (B,) long


@dataclass
class LMBatch:
    """Right-padded token ids; every real token after the first is a training target."""

    input_ids: torch.Tensor  # (B, T) long
    attention_mask: torch.Tensor  # (B, T) long


def _pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def _fallback_start(tokenizer) -> int:
    tok = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if tok is None:
        raise UserError("the tokenizer has no BOS or EOS token to stand for an empty text.")
    return int(tok)


def _token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Every text's token ids in one batched call: the fast tokenizers' Rust loop, far cheaper
    than one ``encode`` per text."""
    if not texts:
        return []
    return list(tokenizer(texts, add_special_tokens=False)["input_ids"])


def classification_rows(tokenizer, texts: list[str], max_length: int, truncate: str = "left"):
    """Each text's ids as a classification input: at most ``max_length - 1`` tokens, so that the
    label token (appended later) always survives truncation.

    ``truncate='left'`` keeps the end of the text (the authors' code); ``'right'`` keeps the
    beginning (a headline).
    """
    if truncate not in ("left", "right"):
        raise UserError(f"truncate must be 'left' or 'right', got {truncate!r}.")
    if max_length < 2:
        raise UserError("max_length must be at least 2 (one text token plus the label).")
    keep = max_length - 1
    rows = []
    for ids in _token_ids(tokenizer, texts):
        ids = ids[-keep:] if truncate == "left" else ids[:keep]
        rows.append(ids or [_fallback_start(tokenizer)])
    return rows


def lm_rows(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Each text's ids for next-token loss: a start token, then up to ``max_length - 1`` text
    tokens. The start token lets every text token be scored, so perplexity is over all tokens.
    """
    if max_length < 2:
        raise UserError("max_length must be at least 2.")
    start = _fallback_start(tokenizer)
    return [[start] + ids[: max_length - 1] for ids in _token_ids(tokenizer, texts)]


def classification_batch(rows: list[list[int]], pad_id: int) -> ClassificationBatch:
    input_ids, mask = _pad(rows, pad_id)
    return ClassificationBatch(input_ids, mask, mask.sum(dim=1) - 1)


def encode_classification(
    tokenizer, texts: list[str], max_length: int, truncate: str = "left"
) -> ClassificationBatch:
    """The classification batch of ``texts`` (``classification_rows``, right-padded)."""
    rows = classification_rows(tokenizer, texts, max_length, truncate)
    return classification_batch(rows, pad_token_id(tokenizer))


def encode_lm(tokenizer, texts: list[str], max_length: int) -> LMBatch:
    """The next-token batch of ``texts`` (``lm_rows``, right-padded)."""
    return LMBatch(*_pad(lm_rows(tokenizer, texts, max_length), pad_token_id(tokenizer)))


def lm_targets(batch: LMBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token targets and their mask: position t predicts token t+1."""
    targets = batch.input_ids[:, 1:]
    valid = batch.attention_mask[:, 1:].bool()
    return targets, valid


ENCODINGS = ("classification", "sft")


@dataclass(frozen=True)
class Encoding:
    """How a step turns texts into token ids: what its loss reads, and what a trunk cache it
    uses must have been built with (``kind``: classification or sft)."""

    kind: str
    max_length: int
    truncate: str = "left"

    def __post_init__(self) -> None:
        if self.kind not in ENCODINGS:
            raise UserError(f"encoding must be one of {ENCODINGS}, got {self.kind!r}.")

    @property
    def classification(self) -> bool:
        return self.kind == "classification"

    def encode(self, tokenizer, texts) -> ClassificationBatch | LMBatch:
        """The batch of ``texts``: label position for classification, next-token for sft."""
        return self.tokenize(tokenizer, texts).batch()

    def tokenize(self, tokenizer, texts) -> Tokenized:
        """``texts`` tokenized once, for a loop that batches them many times (epochs)."""
        texts = list(texts)
        if self.classification:
            rows = classification_rows(tokenizer, texts, self.max_length, self.truncate)
        else:
            rows = lm_rows(tokenizer, texts, self.max_length)
        return Tokenized(rows, self.classification, pad_token_id(tokenizer))


@dataclass(frozen=True)
class Tokenized:
    """Texts as token ids, truncated as their encoding says; ``batch`` pads any subset. A
    training run tokenizes its splits once instead of once per epoch (a BBC News article
    costs ~1.5 ms to tokenize, its 64-token batch row microseconds)."""

    rows: list[list[int]]
    classification: bool
    pad_id: int

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, sel=None) -> ClassificationBatch | LMBatch:
        """The right-padded batch of rows ``sel`` (None: all)."""
        rows = self.rows if sel is None else [self.rows[i] for i in sel]
        if self.classification:
            return classification_batch(rows, self.pad_id)
        return LMBatch(*_pad(rows, self.pad_id))


def batches(n: int, size: int, order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Indices of ``n`` items (in ``order``, default 0 … n−1) in consecutive runs of ``size``:
    the one batching loop of every pass over texts."""
    idx = np.arange(n) if order is None else order
    for start in range(0, n, size):
        yield idx[start : start + size]
