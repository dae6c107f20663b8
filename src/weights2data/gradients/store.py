"""The on-disk gradient store: every pool text's sketched gradient at each checkpoint, and Δ.

Written once per (task, variant) by the gradients step and read by every selection strategy, so
the pool's gradients are computed once. A store can be built in row shards (one job each) and
gathered into a store byte-identical to the unsharded one.

``grads.f32`` is a float32 N×C×D row-major memmap: example i's gradient at checkpoint c. The
pool is streamed in batches, so memory does not grow with N. ``target.f32`` is C×D and holds
the SAME Δ = θ0 − θf (of the chosen layers) in every row: the checkpoints lie on the straight
line θ0 → θf, so each segment θ_c − θ_{c+1} and each remainder θ_c − θf is a positive multiple
of Δ, and cosine ignores the scale.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import UserError
from ..formats import batches
from ..losses import TaskLoss, make_loss
from ..models.arch import check_same_architecture
from ..models.fingerprint import weights_fingerprint
from ..models.lm import LM, ModelLike, ModelRef, as_lm
from ..progress import tqdm
from ..specs import GradientSpec
from . import precondition as rms
from .closed_form import Batch, _check_labels, _check_loss, target_direction
from .hooks import GradientSpace, gradient_space, sketch_batch, space_target, visit_batch
from .models_io import as_tokenizer, interpolated_models
from .store_io import SHARD_KEY, STORE_FILES, load_gradient_store

__all__ = ["SHARD_KEY", "STORE_FILES", "build_gradient_store", "load_gradient_store"]

STORE_VERSION = 1


def _fingerprint(model: ModelLike) -> str:
    """The weights' identity: file hash for a folder, parameter hash for a model built in
    memory."""
    if isinstance(model, ModelRef):
        return weights_fingerprint(model.path)
    if isinstance(model, LM):
        if model.source is not None:
            return weights_fingerprint(model.source)
        model = model.module
    if not isinstance(model, torch.nn.Module):
        return weights_fingerprint(model)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class _StoreJob:
    """What every forward batch of one store build shares: the pool, its labels, the settings."""

    tokenizer: object
    texts: list[str]
    labels: np.ndarray | None
    loss: str
    label_ids: list[int] | None
    space: GradientSpace  # the layers and their projectors
    max_length: int
    truncate: str
    batch_size: int
    span: range  # the pool rows this store (or shard) holds
    objective: TaskLoss  # the loss object: encodes texts, reads positions
    precondition: dict | None = None  # the meta's plan of the RMS space (None: raw only)
    scales: dict | None = None  # rank-1 RMS factors per sketched part (the statistics pass)


def build_gradient_store(
    base: ModelLike,
    final: ModelLike,
    texts: Sequence[str],
    labels: np.ndarray | Sequence[int] | None,
    out_dir: str | os.PathLike,
    spec: GradientSpec,
    *,
    tokenizer=None,
    num_classes: int | None = None,
    seed: int = 0,
    max_length: int = 32,
    truncate: str = "left",
    progress: bool = True,
    rows: tuple[int, int] | None = None,
    optimizer: str = "adam",
) -> dict:
    """Write ``out_dir/{grads.f32, target.f32, meta.json}`` atomically; return the meta dict.

    ``spec`` holds the settings (its ``loss`` resolved: None means label_masked; projection
    ``auto`` is exact C×d for label_masked and the default sketch otherwise).
    ``spec.model="final"`` takes the gradients under θf instead of θ0 (what the authors'
    last code did by accident; the paper and the default use the base). Δ is θ0 − θf either way.
    ``spec.layers`` picks the space: the head alone (the closed form), or body layers from one
    backward pass per batch (``hooks``), each sketched and concatenated; ``final`` may be a PEFT
    adapter folder, merged over ``base``.

    ``labels`` are the pseudolabels (ignored for loss "lm"); the files: the module's docstring.

    ``rows = (start, stop)`` writes one shard: the gradients of ``texts[start:stop]`` only, with
    the range recorded in ``meta["shard"]`` so that ``gather_gradient_stores`` can join shards.

    ``spec.precondition`` (``auto``: rms for an Adam / AdamW ``optimizer``) adds the Adam-aware
    space: ``grads_rms.f32`` (g ⊘ D, same layout) and D itself (``rms.safetensors``); see
    ``precondition``. ``none`` writes today's store, byte for byte.
    """
    loss, checkpoints = spec.loss or "label_masked", spec.checkpoints
    texts = _checked_store_request(texts, loss, spec.batch_size, checkpoints, spec.model)
    tokenizer = as_tokenizer(tokenizer, base)
    base_m, final_m = as_lm(base), as_lm(final, base)
    check_same_architecture(base_m.module, final_m.module)
    objective = make_loss(loss, tokenizer, num_classes, max_length, truncate)
    projection = None if spec.projection == "auto" else spec.projection
    space = gradient_space(
        base_m.module, spec.layers, loss, num_classes=num_classes, projection=projection,
        k=spec.k, seed=seed,
    )  # fmt: skip
    job = _StoreJob(
        tokenizer, texts, _check_labels(labels, len(texts), loss, num_classes), loss,
        None if objective.label_ids is None else list(objective.label_ids), space, max_length,
        truncate, spec.batch_size, range(*_row_range(rows, len(texts), spec.batch_size)),
        objective,
    )  # fmt: skip
    target = _target(base_m, final_m, job, num_classes)
    if rms.resolve_precondition(spec.precondition, optimizer) == "rms":
        _plan_rms(job, (base_m, final_m), spec, rows is not None, progress)
    meta = _store_meta(job, base, final, checkpoints, spec.model, seed, num_classes, rows)
    models = _gradient_models(base_m, final_m, spec.model, checkpoints)
    _write_store(out_dir, job, models, target, meta, checkpoints, progress)
    return meta


def _target(base_m: LM, final_m: LM, job: _StoreJob, num_classes: int | None) -> np.ndarray:
    """Δ in the store's space: the head's closed form, byte for byte, or every chosen layer."""
    if job.space.choice.head_only:
        return target_direction(
            base_m,
            final_m,
            loss=job.loss,
            tokenizer=job.tokenizer,
            num_classes=num_classes,
            projector=job.space.head,
        )
    return space_target(base_m, final_m, job.space, job.objective)


def _plan_rms(job: _StoreJob, models: tuple[LM, LM], spec: GradientSpec, shard: bool, progress):
    """The Adam-aware space's plan, and its rank-1 factors where a part is sketched (a
    statistics pass over the whole pool, so never in shards)."""
    job.precondition = rms.plan(job.space.parts(), [p["layer"] for p in job.space.describe()])
    if rms.rank1_parts(job.precondition):
        if shard:
            raise UserError(
                "precondition rms over a sketched gradient space fits D on the whole pool "
                "before it sketches, so it cannot be built in shards; set selection.shards "
                "to 1, or precondition none."
            )
        job.scales = _rank1_scales(job, *models, spec.model, spec.checkpoints, progress)


def _rank1_scales(
    job: _StoreJob, base_m, final_m, gradient_model: str, checkpoints: int, progress: bool
) -> dict:
    """The statistics pass: row and column sums of the mean squared gradient, fitted rank 1."""
    marginals = rms.Marginals(job.space.parts(), rms.rank1_parts(job.precondition))
    n_batches = math.ceil(len(job.span) / job.batch_size)
    bar = tqdm(total=checkpoints * n_batches, disable=not progress, desc="RMS statistics")
    for _, model in _gradient_models(base_m, final_m, gradient_model, checkpoints):
        model.eval()
        for batch in _batches(job):
            visit_batch(model, job.tokenizer, batch, job.space, marginals)
            marginals.count += len(batch.texts)
            bar.update(1)
    bar.close()
    return marginals.scales()


def _checked_store_request(
    texts: Sequence[str], loss: str, batch_size: int, checkpoints: int, gradient_model: str
) -> list[str]:
    """Refuse a build whose settings cannot work, before any model is loaded; the pool as a list."""
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
    return texts


def _store_meta(
    job: _StoreJob,
    base: ModelLike,
    final: ModelLike,
    checkpoints: int,
    gradient_model: str,
    seed: int,
    num_classes: int | None,
    rows: tuple[int, int] | None,
) -> dict:
    """The store's meta.json: the models' identities, every setting, the layout."""
    D = job.space.k
    first = job.space.parts()[0]
    meta = {
        "version": STORE_VERSION,
        "base_fingerprint": _fingerprint(base),
        "final_fingerprint": _fingerprint(final),
        "loss": job.loss,
        "reduction": "mean over the text's tokens" if job.loss == "lm" else "one label position",
        "projection": first.describe(),
        "k": D,
        "D": D,
        "C": int(checkpoints),
        "gradient_model": gradient_model,
        "N": len(job.span),
        "seed": int(seed),
        "num_classes": num_classes,
        "label_token_ids": job.label_ids,
        "max_length": job.max_length,
        "truncate": job.truncate,
        "dtype": "float32",
        "layout": "grads.f32: N×C×D row-major; target.f32: C×D (the same Δ = θ0 − θf per row)",
    }
    if not job.space.choice.head_only:  # a head-only store's meta is as it always was
        meta["layers"] = job.space.describe()
        meta["cost"] = _layer_cost(job.space)
    if job.precondition is not None:  # absent: the raw space only, as stores always were
        meta["precondition"] = job.precondition
    if rows is not None:
        meta[SHARD_KEY] = {
            "start": job.span.start,
            "stop": job.span.stop,
            "pool_size": len(job.texts),
        }
    return meta


def _layer_cost(space: GradientSpace) -> dict:
    """What one text's gradient costs over these layers (measured times: the step's log)."""
    return {
        "passes": "one forward and one backward per batch (back to the earliest chosen layer); "
        "no per-example backward",
        "backward_from": "the final hidden states" if space.choice.modules else "none (head only)",
        "gradient_numbers_per_text": int(sum(p.V * p.d for p in space.parts())),
        "sketch_numbers_per_text": space.k,
    }


def _gradient_models(
    base_m: LM, final_m: LM, gradient_model: str, checkpoints: int
) -> Iterable[tuple[int, LM]]:
    """``(c, θ_c)`` to take the gradients under: the interpolated checkpoints, or θf alone."""
    if gradient_model == "final":
        return [(0, final_m)]
    return interpolated_models(base_m, final_m, checkpoints)


def _write_store(
    out_dir: str | os.PathLike,
    job: _StoreJob,
    models: Iterable[tuple[int, LM]],
    target: np.ndarray,
    meta: dict,
    checkpoints: int,
    progress: bool,
) -> None:
    """Stream the pool through each checkpoint's model into the memmap; write Δ and meta."""
    N = len(job.span)
    n_batches = math.ceil(N / job.batch_size)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        shape = (N, checkpoints, job.space.k)
        grads = _new_grads_file(tmp / "grads.f32", shape)
        # a shard leaves the RMS space to the gather step: D is a statistic of the whole pool
        whole = job.precondition is not None and SHARD_KEY not in meta
        pre = _new_grads_file(tmp / rms.RMS_GRADS, shape) if whole else None
        bar = tqdm(total=checkpoints * n_batches, disable=not progress, desc="gradient store")
        for c, model in models:
            _fill_checkpoint((grads, pre), c, model, job, bar)
        bar.close()
        if whole:
            rms.finish(tmp, grads, job.precondition, job.scales or {}, pre)
        for array in (grads, pre):
            if isinstance(array, np.memmap):
                array.flush()
        del grads, pre
        np.tile(target.astype(np.float32), (checkpoints, 1)).tofile(tmp / "target.f32")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _batches(job: _StoreJob) -> Iterable[Batch]:
    """The forward batches of the job's rows, in order."""
    first = job.span.start
    for sel in batches(len(job.span), job.batch_size):
        start, stop = first + int(sel[0]), first + int(sel[-1]) + 1
        labels = None if job.labels is None else job.labels[start:stop]
        yield Batch(job.texts[start:stop], labels, job.objective)


def _fill_checkpoint(stores: tuple, c: int, model: LM, job: _StoreJob, bar) -> None:
    """Checkpoint c's sketched gradient of every text in the job's rows, batch by batch (and
    its rank-1 RMS sketch where the store holds that space)."""
    grads, pre = stores
    row = 0
    model.eval()
    for batch in _batches(job):
        block, scaled = sketch_batch(model, job.tokenizer, batch, job.space, job.scales)
        stop = row + len(batch.texts)
        grads[row:stop, c] = block.float().cpu().numpy()
        if pre is not None and scaled is not None:
            pre[row:stop, c] = scaled.float().cpu().numpy()
        row = stop
        bar.update(1)


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
