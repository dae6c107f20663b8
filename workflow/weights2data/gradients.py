"""Closed-form per-example last-layer gradients, the target direction Δ, and the gradient store.

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

import copy
import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .atomic import atomic_path
from .errors import UserError
from .formats import encode_classification, encode_lm, label_token_ids, lm_targets
from .models import (
    check_same_architecture,
    final_hidden,
    load_model,
    load_tokenizer,
    output_matrix,
    weights_fingerprint,
)
from .progress import tqdm
from .projection import DEFAULT_PROJECTION, Projector, make_projector

LOSSES = ("label_masked", "full_vocab", "lm")
TASK_TYPES = ("classification", "sft")
STORE_FILES = ("grads.f32", "target.f32", "meta.json")
STORE_VERSION = 1
SHARD_KEY = "shard"  # meta of a shard store: its row range within the pool
# Positions whose V-dim probability rows are held at once: bounds memory for big vocabularies.
CHUNK_ELEMENTS = 1 << 24

ModelLike = str | os.PathLike | torch.nn.Module


# --------------------------------------------------------------------------- inputs


def _as_model(model: ModelLike) -> torch.nn.Module:
    """A loaded model in eval mode (dropout would make gradients and labels random)."""
    if isinstance(model, torch.nn.Module):
        return model.eval()
    return load_model(model)


def _as_tokenizer(tokenizer, model_path: ModelLike):
    if tokenizer is None:
        if isinstance(model_path, torch.nn.Module):
            raise UserError("a loaded model was given without its tokenizer; pass tokenizer=...")
        return load_tokenizer(model_path)
    if isinstance(tokenizer, str | os.PathLike):
        return load_tokenizer(tokenizer)
    return tokenizer


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise UserError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}.")


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


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------------------- forward to the head


@dataclass
class HeadInputs:
    """Everything the closed form needs: the trained positions of one batch of texts."""

    hidden: torch.Tensor  # (P, d) final hidden states
    targets: torch.Tensor  # (P,) row of the used output rows that each position should predict
    weights: torch.Tensor  # (P,) loss weight of the position within its example
    example: torch.Tensor  # (P,) which example each position belongs to
    n_examples: int


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
    """One forward pass to the final hidden states; keep only the positions the loss trains."""
    device = _device(model)
    n = len(texts)
    if loss == "lm":
        batch = encode_lm(tokenizer, list(texts), max_length)
        ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
        hidden = final_hidden(model, ids, mask)[:, :-1]
        targets, valid = lm_targets(batch)
        valid = valid.to(device)
        counts = valid.sum(dim=1).clamp(min=1).to(hidden.dtype)
        example = torch.arange(n, device=device)[:, None].expand_as(valid)[valid]
        return HeadInputs(
            hidden[valid], targets.to(device)[valid], 1.0 / counts[example], example, n
        )
    batch = encode_classification(tokenizer, list(texts), max_length, truncate)
    ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
    rows = torch.arange(n, device=device)
    hidden = final_hidden(model, ids, mask)[rows, batch.label_pos.to(device)]
    targets = torch.as_tensor(labels, device=device)
    if loss == "full_vocab":
        targets = torch.as_tensor(label_ids, device=device)[targets]
    return HeadInputs(hidden, targets, torch.ones(n, dtype=hidden.dtype, device=device), rows, n)


def _output_rows(model, loss: str, label_ids: list[int] | None) -> torch.Tensor:
    """The rows of W the loss's softmax runs over: the C label rows or the whole vocabulary."""
    W = output_matrix(model).detach()
    return W[torch.as_tensor(label_ids, device=W.device)] if loss == "label_masked" else W


def _chunks(n_positions: int, n_rows: int) -> Iterator[slice]:
    step = max(1, CHUNK_ELEMENTS // max(n_rows, 1))
    for start in range(0, n_positions, step):
        yield slice(start, min(start + step, n_positions))


def sketch_gradients(inputs: HeadInputs, rows: torch.Tensor, projector: Projector) -> torch.Tensor:
    """Per-example Σ_t w_t (softmax(rows h_t) − e_{y_t}) h_tᵀ, through the projector: (n × k)."""
    out = inputs.hidden.new_zeros((inputs.n_examples, projector.k))
    for part in _chunks(len(inputs.targets), rows.shape[0]):
        h = inputs.hidden[part]
        u = torch.softmax(h @ rows.T, dim=1)
        u[torch.arange(len(h), device=u.device), inputs.targets[part]] -= 1.0
        u *= inputs.weights[part, None]
        out += projector.project_outer_sum(u, h, inputs.example[part], inputs.n_examples)
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


@torch.no_grad()
def pseudolabel(
    final_model: ModelLike,
    tokenizer,
    texts: Sequence[str],
    *,
    task_type: str = "classification",
    num_classes: int | None = None,
    max_length: int = 32,
    truncate: str = "left",
    batch_size: int = 32,
    loss: str = "label_masked",
    progress: bool = False,
) -> pd.DataFrame:
    """Label every text with the final model and score it against its own label.

    Columns: ``pseudolabel`` (argmax over the label tokens; −1 for sft) and ``loss`` (the final
    model's loss against that label under ``loss`` — label_masked or full_vocab — or, for sft,
    the mean next-token cross-entropy of the text; NaN for a text with no scorable token).
    P-Min / P-Max rank by this loss.
    """
    if task_type not in TASK_TYPES:
        raise UserError(f"unknown task_type {task_type!r}; choose one of {', '.join(TASK_TYPES)}.")
    if batch_size < 1:
        raise UserError("batch_size must be at least 1.")
    tokenizer = _as_tokenizer(tokenizer, final_model)
    model = _as_model(final_model)
    if task_type == "sft":
        loss, label_ids = "lm", None
    else:
        if loss not in ("label_masked", "full_vocab"):
            raise UserError(
                f"classification loss must be label_masked or full_vocab, not {loss!r}."
            )
        label_ids = _label_ids(loss, tokenizer, num_classes)
    labels, losses = [], []
    for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="pseudolabel"):
        chunk = list(texts[start : start + batch_size])
        if task_type == "sft":
            lab, los = _lm_losses(model, tokenizer, chunk, max_length)
        else:
            lab, los = _label_losses(model, tokenizer, chunk, loss, label_ids, max_length, truncate)
        labels.append(lab)
        losses.append(los)
    return pd.DataFrame(
        {
            "pseudolabel": np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, int),
            "loss": np.concatenate(losses).astype(np.float64) if losses else np.zeros(0),
        }
    )


def _label_losses(model, tokenizer, texts, loss, label_ids, max_length, truncate):
    dummy = np.zeros(len(texts), dtype=np.int64)
    inputs = head_inputs(
        model,
        tokenizer,
        texts,
        dummy,
        loss="label_masked",
        label_ids=label_ids,
        max_length=max_length,
        truncate=truncate,
    )
    W = output_matrix(model).detach()
    label_rows = torch.as_tensor(label_ids, device=W.device)
    label_logits = inputs.hidden @ W[label_rows].T
    labels = label_logits.argmax(dim=1)
    logits = label_logits if loss == "label_masked" else inputs.hidden @ W.T
    targets = labels if loss == "label_masked" else label_rows[labels]
    losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    return labels.cpu().numpy(), losses.double().cpu().numpy()


def _lm_losses(model, tokenizer, texts, max_length):
    inputs = head_inputs(
        model,
        tokenizer,
        texts,
        None,
        loss="lm",
        label_ids=None,
        max_length=max_length,
        truncate="left",
    )
    W = output_matrix(model).detach()
    total = inputs.hidden.new_zeros(inputs.n_examples)
    count = inputs.hidden.new_zeros(inputs.n_examples)
    for part in _chunks(len(inputs.targets), W.shape[0]):
        ce = torch.nn.functional.cross_entropy(
            inputs.hidden[part] @ W.T, inputs.targets[part], reduction="none"
        )
        total.index_add_(0, inputs.example[part], ce)
        count.index_add_(0, inputs.example[part], torch.ones_like(ce))
    losses = torch.where(count > 0, total / count.clamp(min=1), torch.nan)
    return np.full(len(texts), -1), losses.double().cpu().numpy()


def interpolated_models(base: ModelLike, final: ModelLike, C: int) -> Iterator[tuple[int, object]]:
    """Yield ``(c, θ_c)`` with θ_c = θ0 + (c/C)(θf − θ0), c = 0 … C−1 (C = 1: the base only).

    Every parameter is interpolated (the forward pass runs through all layers, so all of them
    matter). θ_0 is the base model itself; later checkpoints reuse ONE scratch copy, overwritten
    in place, so memory stays at one extra model: use each θ_c before asking for the next.
    """
    if not isinstance(C, int | np.integer) or C < 1:
        raise UserError(f"the number of checkpoints must be a positive integer, got {C!r}.")
    base, final = _as_model(base), _as_model(final)
    check_same_architecture(base, final)
    yield 0, base
    if C == 1:
        return
    scratch = copy.deepcopy(base)
    final_params = dict(final.named_parameters())
    base_params = dict(base.named_parameters())
    for c in range(1, int(C)):
        t = c / C
        with torch.no_grad():
            for name, param in scratch.named_parameters():
                p0 = base_params[name]
                param.copy_(p0 + t * (final_params[name].to(p0.dtype) - p0))
        yield c, scratch


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
    delta = _output_rows(base_m, loss, label_ids) - _output_rows(final_m, loss, label_ids)
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
            "finetuned from this base (with these label letters)."
        )
    if projector is None:
        projector = make_projector("none", delta.shape[0], delta.shape[1], 0, 0)
    with torch.no_grad():
        sketch = projector.project_matrix(delta)
    return sketch.double().cpu().numpy()


def _fingerprint(model: ModelLike) -> str:
    """The weights' identity: file hash for a folder, parameter hash for a loaded model."""
    if not isinstance(model, torch.nn.Module):
        return weights_fingerprint(model)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def build_gradient_store(
    base: ModelLike,
    final: ModelLike,
    texts: Sequence[str],
    labels: np.ndarray | Sequence[int] | None,
    out_dir: str | os.PathLike,
    *,
    tokenizer=None,
    loss: str = "label_masked",
    num_classes: int | None = None,
    checkpoints: int = 1,
    projection: str | None = None,
    k: int = 1024,
    seed: int = 0,
    max_length: int = 32,
    truncate: str = "left",
    batch_size: int = 32,
    progress: bool = True,
    gradient_model: str = "base",
    rows: tuple[int, int] | None = None,
) -> dict:
    """Write ``out_dir/{grads.f32, target.f32, meta.json}`` atomically; return the meta dict.

    ``gradient_model="final"`` takes the gradients under θf instead of θ0 (what the authors'
    last code did by accident; the paper and the default use the base). Δ is θ0 − θf either way.

    ``grads.f32`` is a float32 N×C×D row-major memmap: example i's gradient at checkpoint c.
    The pool is streamed in batches, so memory does not grow with N. ``target.f32`` is C×D and
    holds the SAME Δ = θ0 − θf (last layer) in every row: the checkpoints lie on the straight line
    θ0 → θf, so each segment θ_c − θ_{c+1} and each remainder θ_c − θf is a positive multiple of
    Δ, and cosine ignores the scale. ``labels`` are the pseudolabels (ignored for loss "lm").

    ``rows = (start, stop)`` writes one shard: the gradients of ``texts[start:stop]`` only, with
    the range recorded in ``meta["shard"]`` so that ``gather_gradient_stores`` can join shards.
    """
    _check_loss(loss)
    if batch_size < 1:
        raise UserError("batch_size must be at least 1.")
    texts = list(texts)
    if len(texts) == 0:
        raise UserError("the pool is empty; a gradient store needs at least one text.")
    if not isinstance(checkpoints, int | np.integer) or checkpoints < 1:
        raise UserError(f"checkpoints must be a positive integer, got {checkpoints!r}.")
    if gradient_model not in ("base", "final"):
        raise UserError(f"gradient_model must be 'base' or 'final', got {gradient_model!r}.")
    if gradient_model == "final" and checkpoints != 1:
        raise UserError(
            "gradients under the final model take no interpolated checkpoints; "
            "set checkpoints: 1 or gradient model: base."
        )
    tokenizer = _as_tokenizer(tokenizer, base)
    base_m, final_m = _as_model(base), _as_model(final)
    check_same_architecture(base_m, final_m)
    label_ids = _label_ids(loss, tokenizer, num_classes)
    labels = _check_labels(labels, len(texts), loss, num_classes)
    V, d = output_matrix(base_m).shape
    projector = gradient_projector(
        loss, V, d, num_classes=num_classes, projection=projection, k=k, seed=seed
    )
    target = target_direction(
        base_m,
        final_m,
        loss=loss,
        tokenizer=tokenizer,
        num_classes=num_classes,
        projector=projector,
    )
    D = projector.k
    first, last = _row_range(rows, len(texts), batch_size)
    N = last - first
    meta = {
        "version": STORE_VERSION,
        "base_fingerprint": _fingerprint(base),
        "final_fingerprint": _fingerprint(final),
        "loss": loss,
        "reduction": "mean over the text's tokens" if loss == "lm" else "one label position",
        "projection": projector.describe(),
        "k": D,
        "D": D,
        "C": int(checkpoints),
        "gradient_model": gradient_model,
        "N": N,
        "seed": int(seed),
        "num_classes": num_classes,
        "label_token_ids": label_ids,
        "max_length": max_length,
        "truncate": truncate,
        "dtype": "float32",
        "layout": "grads.f32: N×C×D row-major; target.f32: C×D (the same Δ = θ0 − θf per row)",
    }
    if rows is not None:
        meta[SHARD_KEY] = {"start": first, "stop": last, "pool_size": len(texts)}
    n_batches = math.ceil(N / batch_size)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        grads = _new_grads_file(tmp / "grads.f32", (N, checkpoints, D))
        bar = tqdm(total=checkpoints * n_batches, disable=not progress, desc="gradient store")
        models = (
            [(0, final_m)]
            if gradient_model == "final"
            else interpolated_models(base_m, final_m, checkpoints)
        )
        for c, model in models:
            rows = _output_rows(model, loss, label_ids)
            for start in range(first, last, batch_size):
                stop = min(start + batch_size, last)
                inputs = head_inputs(
                    model,
                    tokenizer,
                    texts[start:stop],
                    None if labels is None else labels[start:stop],
                    loss=loss,
                    label_ids=label_ids,
                    max_length=max_length,
                    truncate=truncate,
                )
                with torch.no_grad():
                    block = sketch_gradients(inputs, rows, projector)
                grads[start - first : stop - first, c] = block.float().cpu().numpy()
                bar.update(1)
        bar.close()
        if isinstance(grads, np.memmap):
            grads.flush()
        del grads
        np.tile(target.astype(np.float32), (checkpoints, 1)).tofile(tmp / "target.f32")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def _row_range(rows: tuple[int, int] | None, n: int, batch_size: int) -> tuple[int, int]:
    """Validate a shard's row range; None means the whole pool."""
    if rows is None:
        return 0, n
    start, stop = (int(value) for value in rows)
    if not 0 <= start <= stop <= n:
        raise UserError(f"shard rows {start} … {stop} lie outside the {n}-text pool.")
    if start % batch_size:
        raise UserError(
            f"a shard must start on a batch boundary (a multiple of {batch_size}); use "
            "shard_bounds(...) to cut the pool."
        )
    return start, stop


def _new_grads_file(path: Path, shape: tuple[int, int, int]):
    """A writable float32 memmap of ``shape`` (an empty file and array for zero rows)."""
    if shape[0] == 0:
        path.touch()
        return np.zeros(shape, dtype=np.float32)
    return np.memmap(path, dtype=np.float32, mode="w+", shape=shape)


def load_gradient_store(out_dir: str | os.PathLike) -> tuple[np.memmap, np.ndarray, dict]:
    """Open a store read-only: (grads memmap N×C×D, target C×D, meta)."""
    folder = Path(out_dir)
    rebuild = "rebuild it with the gradients step"
    missing = [name for name in STORE_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"gradient store {str(folder)!r} is incomplete (missing "
            f"{', '.join(missing)}); {rebuild}."
        )
    try:
        meta = json.loads((folder / "meta.json").read_text())
        N, C, D = int(meta["N"]), int(meta["C"]), int(meta["D"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"gradient store {str(folder)!r} has an unreadable meta.json ({exc}); {rebuild}."
        ) from exc
    for name, shape in (("grads.f32", (N, C, D)), ("target.f32", (C, D))):
        size = (folder / name).stat().st_size
        if size != 4 * math.prod(shape):
            raise UserError(
                f"{name} in {str(folder)!r} holds {size} bytes but meta.json says "
                f"{'×'.join(map(str, shape))} float32; {rebuild}."
            )
    if N == 0:  # an empty shard: numpy cannot map an empty file
        grads = np.zeros((0, C, D), dtype=np.float32)
    else:
        grads = np.memmap(folder / "grads.f32", dtype=np.float32, mode="r", shape=(N, C, D))
    target = np.fromfile(folder / "target.f32", dtype=np.float32).reshape(C, D)
    return grads, target, meta


# --------------------------------------------------------------------------- sharded stores


def shard_bounds(n: int, shards: int, batch_size: int) -> list[tuple[int, int]]:
    """Row ranges of ``shards`` near-equal shards of an n-text pool, cut at batch boundaries.

    Cutting where the unsharded store's batches end makes every shard run the very same forward
    batches, so the gathered store is byte-identical to the unsharded one. Trailing shards may
    be empty when the pool has fewer batches than shards.
    """
    if shards < 1:
        raise UserError(f"shards must be a positive integer, got {shards!r}.")
    if batch_size < 1:
        raise UserError("batch_size must be at least 1.")
    n_batches = math.ceil(n / batch_size)
    cuts = [min(n, (i * n_batches // shards) * batch_size) for i in range(shards + 1)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def gather_gradient_stores(
    shard_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike
) -> dict:
    """Join shard stores (in order) into one store, streaming; atomically written.

    Each shard's meta names its row range; the ranges must tile 0 … N without gaps, and every
    shard must hold the same Δ and settings. The result is exactly the unsharded store.
    """
    if not shard_dirs:
        raise UserError("no shard stores to gather.")
    opened = [load_gradient_store(folder) for folder in shard_dirs]
    metas = [meta for _, _, meta in opened]
    first = metas[0]
    if SHARD_KEY not in first:
        raise UserError(f"{str(shard_dirs[0])!r} is not a shard store (its meta has no 'shard').")
    total = first[SHARD_KEY]["pool_size"]
    expected_start = 0
    settings = {key: value for key, value in first.items() if key not in (SHARD_KEY, "N")}
    for folder, (_, target, meta) in zip(shard_dirs, opened, strict=True):
        info = meta.get(SHARD_KEY)
        if info is None or info["pool_size"] != total or info["start"] != expected_start:
            raise UserError(
                f"shard {str(folder)!r} does not continue the previous shards at row "
                f"{expected_start} of {total}; rebuild the shards of this store together."
            )
        if {k: v for k, v in meta.items() if k not in (SHARD_KEY, "N")} != settings or not (
            np.array_equal(target, opened[0][1])
        ):
            raise UserError(
                f"shard {str(folder)!r} was built with other settings or models than "
                f"{str(shard_dirs[0])!r}; rebuild the shards of this store together."
            )
        expected_start = info["stop"]
    if expected_start != total:
        raise UserError(
            f"the shards cover rows 0 … {expected_start} of a {total}-text pool; "
            "some shards are missing."
        )
    meta = dict(settings, N=total)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        with open(tmp / "grads.f32", "wb") as sink:
            for folder in shard_dirs:
                with open(Path(folder) / "grads.f32", "rb") as source:
                    shutil.copyfileobj(source, sink, 1 << 24)
        shutil.copyfile(Path(shard_dirs[0]) / "target.f32", tmp / "target.f32")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta
