"""Sharded gradient stores: cut a pool into row ranges (one job each) and join the shards.

Shards are cut where the unsharded store's batches end, so the gathered store is byte for byte
the store one job would have written.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError
from .precondition import RMS_GRADS, finish
from .store import SHARD_KEY, load_gradient_store


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
        if "precondition" in meta:  # D from the whole pool, as the unsharded build computes it
            _finish_rms(tmp, meta)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def _finish_rms(folder: Path, meta: dict) -> None:
    """The Adam-aware space of a gathered store (exact parts only: rank-1 ones are refused
    at shard time)."""
    shape = (int(meta["N"]), int(meta["C"]), int(meta["D"]))
    if shape[0] == 0:
        raise UserError("the gathered pool is empty; there is no gradient to take an RMS of.")
    grads = np.memmap(folder / "grads.f32", dtype=np.float32, mode="r", shape=shape)
    pre = np.memmap(folder / RMS_GRADS, dtype=np.float32, mode="w+", shape=shape)
    finish(folder, grads, meta["precondition"], {}, pre)
    pre.flush()
    del grads, pre
