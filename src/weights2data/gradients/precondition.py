"""Adam-aware gradient space: per-example gradients divided, coordinate by coordinate, by D.

Adam moves coordinate i by about −η E[g_i] / sqrt(E[g_i²]), so Δ = θ0 − θf lies along D⁻¹ Σ g
rather than Σ g. D is estimated as the root-mean-square of the pool's own per-example gradients
(base model, final-model pseudolabels, every checkpoint): nothing beyond what the store already
computes. The preconditioned store holds g ⊘ D beside g; Δ is unchanged.

- An exact part (a projector of kind ``none``, e.g. label-masked C×d) gets the exact D: the
  per-coordinate RMS of the stored gradients themselves, computed after the pass (so a gathered
  sharded store gets the very same D).
- A sketched part cannot be divided after sketching. D is fitted as rank 1, D_ij = a_i b_j, from
  the row and column sums of the mean squared gradient (``Marginals``), and g ⊘ D =
  (u ⊘ a)(h ⊘ b)ᵀ is sketched in the same map. The fit is exact when the mean square is rank 1;
  it needs its own pass over the pool before the sketching pass. Per text, the sums take each
  position's u_t² h_t²ᵀ: exact for one label position, the per-token estimate for LM losses
  and body layers (products across positions are left out).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from ..errors import UserError
from ..projection import ExactProjector, Projector

PRECONDITIONS = ("auto", "none", "rms")
# auto follows the finetune optimizer, which the threat model assumes known (paper §3.1)
ADAPTIVE_OPTIMIZERS = ("adam", "adamw")
RMS_GRADS = "grads_rms.f32"
RMS_FACTORS = "rms.safetensors"
# Store rows read at once when D is computed and applied after the pass (exact parts)
BLOCK_ROWS = 4096

# (part, U, H, example, n): one chunk of outer-product factors of part ``part``'s gradients
Visit = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, int], None]


def resolve_precondition(value: str, optimizer: str) -> str:
    """``none`` or ``rms``: ``auto`` is rms for an Adam / AdamW finetune and none for SGD."""
    if value not in PRECONDITIONS:
        raise UserError(
            f"unknown precondition {value!r}; choose one of {', '.join(PRECONDITIONS)}."
        )
    if value != "auto":
        return value
    if optimizer not in (*ADAPTIVE_OPTIMIZERS, "sgd"):
        raise UserError(
            f"precondition auto follows the finetune optimizer, but {optimizer!r} is none of "
            "adam, adamw, sgd; name it, or set precondition rms or none."
        )
    return "rms" if optimizer in ADAPTIVE_OPTIMIZERS else "none"


def plan(parts: list[Projector], names: list[str]) -> dict:
    """The store meta's ``precondition`` entry: each part's columns and how its D is formed."""
    entries, start = [], 0
    for name, part in zip(names, parts, strict=True):
        form = "exact" if isinstance(part, ExactProjector) else "rank1"
        columns = [start, start + part.k]
        entries.append({"layer": name, "form": form, "shape": [part.V, part.d], "columns": columns})
        start += part.k
    return {
        "kind": "rms",
        "estimate": "per-coordinate RMS of the pool's per-example gradients, all checkpoints",
        "parts": entries,
        "files": [RMS_GRADS, RMS_FACTORS],
    }


def rank1_parts(meta_plan: dict) -> list[int]:
    """Indices of the parts whose D is the rank-1 fit (they need the statistics pass)."""
    return [i for i, part in enumerate(meta_plan["parts"]) if part["form"] == "rank1"]


# --------------------------------------------------------------------------- rank-1 fit


class Marginals:
    """Row and column sums of Σ_t u_t² h_t²ᵀ over the pool, for the chosen parts (float64)."""

    def __init__(self, parts: list[Projector], chosen: list[int]) -> None:
        self.rows = {i: torch.zeros(parts[i].V, dtype=torch.float64) for i in chosen}
        self.cols = {i: torch.zeros(parts[i].d, dtype=torch.float64) for i in chosen}
        self.count = 0  # texts × checkpoints seen

    def __call__(self, part: int, U, H, example, n: int) -> None:
        if part not in self.rows:
            return
        u2, h2 = U.detach().double().square().cpu(), H.detach().double().square().cpu()
        self.rows[part] += u2.T @ h2.sum(dim=1)
        self.cols[part] += h2.T @ u2.sum(dim=1)

    def scales(self) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Per part (a, b) with a_i b_j = sqrt(r_i c_j / Σr): the rank-1 RMS fit."""
        if self.count == 0:
            raise UserError("the pool is empty; there is no gradient to take an RMS of.")
        return {
            i: rank1_fit(self.rows[i] / self.count, self.cols[i] / self.count) for i in self.rows
        }


def rank1_fit(rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) with a bᵀ = sqrt(r cᵀ / Σr), r and c the row and column sums of a mean square M.

    Equal to sqrt(M) whenever M is rank 1 (M = α βᵀ gives r cᵀ / Σr = α βᵀ). A zero row or
    column (a coordinate no text moves) gets scale 1: its gradient is zero anyway.
    """
    total = float(rows.sum())
    if not math.isfinite(total) or total <= 0:
        raise UserError("every gradient of the pool is zero; there is no RMS to divide by.")
    root = total**0.25
    return _nonzero(rows.sqrt() / root), _nonzero(cols.sqrt() / root)


def _nonzero(scale: torch.Tensor) -> torch.Tensor:
    return torch.where(scale > 0, scale, torch.ones_like(scale))


# --------------------------------------------------------------------------- one batch


class BatchSink:
    """Sketches one batch's factors into the raw space and, for rank-1 parts, the RMS space.

    The head's chunks add up from zero and each body layer is written once, exactly as the
    store always summed them, so the raw columns stay byte-identical.
    """

    def __init__(self, parts: list[Projector], has_head: bool, scales: dict | None) -> None:
        self.parts, self.has_head, self.scales = parts, has_head, scales or {}
        self.starts = np.cumsum([0] + [p.k for p in parts]).tolist()
        self.raw: torch.Tensor | None = None
        self.rms: torch.Tensor | None = None

    def __call__(self, part: int, U, H, example, n: int) -> None:
        projector = self.parts[part]
        cols = slice(self.starts[part], self.starts[part + 1])
        if self.raw is None:
            self.raw = H.new_zeros((n, self.starts[-1]))
            self.rms = H.new_zeros((n, self.starts[-1])) if self.scales else None
        sketch = projector.project_outer_sum(U, H, example, n)
        if self.has_head and part == 0:
            self.raw[:, cols] += sketch
        else:
            self.raw[:, cols] = sketch
        if part in self.scales:
            a, b = (s.to(device=U.device, dtype=U.dtype) for s in self.scales[part])
            self.rms[:, cols] += projector.project_outer_sum(U / a, H / b, example, n)


# --------------------------------------------------------------------------- exact parts, after


def exact_rms(
    grads: np.ndarray, columns: tuple[int, int], block_rows: int = BLOCK_ROWS
) -> np.ndarray:
    """Per-coordinate RMS of the stored gradients' columns over texts and checkpoints (float64)."""
    start, stop = columns
    total = np.zeros(stop - start)
    for first in range(0, grads.shape[0], block_rows):
        block = np.asarray(grads[first : first + block_rows, :, start:stop], dtype=np.float64)
        total += np.square(block).sum(axis=(0, 1))
    count = grads.shape[0] * grads.shape[1]
    if count == 0:
        raise UserError("the pool is empty; there is no gradient to take an RMS of.")
    rms = np.sqrt(total / count)
    return np.where(rms > 0, rms, 1.0)


def finish(folder: Path, grads: np.ndarray, meta_plan: dict, scales: dict, rms_grads) -> None:
    """Fill the exact parts' columns of the RMS store and write D (``rms.safetensors``).

    ``rms_grads`` is the writable N×C×D RMS memmap, its rank-1 columns already sketched.
    """
    factors: dict[str, np.ndarray] = {}
    for i, part in enumerate(meta_plan["parts"]):
        start, stop = part["columns"]
        if part["form"] == "exact":
            D = exact_rms(grads, (start, stop))
            for first in range(0, grads.shape[0], BLOCK_ROWS):
                rows = slice(first, first + BLOCK_ROWS)
                block = np.asarray(grads[rows, :, start:stop], dtype=np.float64)
                rms_grads[rows, :, start:stop] = (block / D).astype(np.float32)
            factors[f"D.{i}"] = D.reshape(part["shape"]).astype(np.float32)
        else:
            a, b = scales[i]
            factors[f"row.{i}"] = a.float().numpy()
            factors[f"col.{i}"] = b.float().numpy()
    save_file(factors, str(folder / RMS_FACTORS))
