"""Opening a gradient store: the files a store holds and the checks that refuse a broken one."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from .precondition import RMS_FACTORS, RMS_GRADS

STORE_FILES = ("grads.f32", "target.f32", "meta.json")
SHARD_KEY = "shard"  # meta of a shard store: its row range within the pool


def load_gradient_store(
    out_dir: str | os.PathLike, *, preconditioned: bool = False
) -> tuple[np.memmap, np.ndarray, dict]:
    """Open a store read-only: (grads memmap N×C×D, target C×D, meta).

    ``preconditioned`` gives the Adam-aware space g ⊘ D instead; a store built without one
    (``precondition: none``, or ``auto`` for an SGD expert) has D = 1, so its raw gradients.
    """
    folder = Path(out_dir)
    rebuild = "rebuild it with the gradients step"
    meta = _read_meta(folder, rebuild)
    plan = meta.get("precondition")
    use_rms = preconditioned and plan is not None
    if use_rms and SHARD_KEY in meta:
        raise UserError(
            f"{str(folder)!r} is one shard of a store; its Adam-aware space is written when the "
            "shards are gathered (weights2data gather-gradients)."
        )
    name = RMS_GRADS if use_rms else "grads.f32"
    whole_rms = plan is not None and SHARD_KEY not in meta
    required = STORE_FILES + ((RMS_GRADS, RMS_FACTORS) if whole_rms else ())
    missing = [item for item in required if not (folder / item).is_file()]
    if missing:
        raise UserError(
            f"gradient store {str(folder)!r} is incomplete (missing "
            f"{', '.join(missing)}); {rebuild}."
        )
    N, C, D = int(meta["N"]), int(meta["C"]), int(meta["D"])
    for item, shape in ((name, (N, C, D)), ("target.f32", (C, D))):
        size = (folder / item).stat().st_size
        if size != 4 * math.prod(shape):
            raise UserError(
                f"{item} in {str(folder)!r} holds {size} bytes but meta.json says "
                f"{'×'.join(map(str, shape))} float32; {rebuild}."
            )
    if N == 0:  # an empty shard: numpy cannot map an empty file
        grads = np.zeros((0, C, D), dtype=np.float32)
    else:
        grads = np.memmap(folder / name, dtype=np.float32, mode="r", shape=(N, C, D))
    target = np.fromfile(folder / "target.f32", dtype=np.float32).reshape(C, D)
    return grads, target, meta


def _read_meta(folder: Path, rebuild: str) -> dict:
    """meta.json with its N, C and D checked to be integers."""
    if not (folder / "meta.json").is_file():
        raise UserError(
            f"gradient store {str(folder)!r} is incomplete (missing meta.json); {rebuild}."
        )
    try:
        meta = json.loads((folder / "meta.json").read_text())
        [int(meta[key]) for key in ("N", "C", "D")]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"gradient store {str(folder)!r} has an unreadable meta.json ({exc}); {rebuild}."
        ) from exc
    return meta
