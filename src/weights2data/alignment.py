"""Cosines between gradient sums and Δ: the quantities SELECT's premise is about (numpy only).

SELECT's objective is the mean over checkpoints c of cos(S_c, Δ_c), so every alignment here is
reported the same way. Pure numpy, so it runs on memmapped stores of any size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .readers import read_array


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two arrays (flattened, float64); NaN when either is zero."""
    a, b = np.ravel(np.asarray(a, dtype=np.float64)), np.ravel(np.asarray(b, dtype=np.float64))
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else math.nan


def checkpoint_cosines(S: np.ndarray, target: np.ndarray) -> list[float]:
    """cos(S_c, Δ_c) for each checkpoint row of a C×D sum and its C×D target."""
    S, target = np.atleast_2d(S), np.atleast_2d(target)
    if S.shape != target.shape:
        raise ValueError(f"sum {S.shape} and target {target.shape} differ in shape")
    return [cosine(s, t) for s, t in zip(S, target, strict=True)]


def mean_finite(values: Sequence[float]) -> float:
    """Mean of the finite values; NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def selection_sum(grads: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Σ_j g_j over the selected rows of an N×C×D store (C×D, float64), row by row."""
    total = np.zeros(grads.shape[1:], dtype=np.float64)
    for j in np.sort(np.asarray(indices, dtype=np.int64)):
        total += grads[j]
    return total


def selection_alignment(
    grads: np.ndarray, target: np.ndarray, truth_sum: np.ndarray, selection: pd.DataFrame
) -> dict[str, float]:
    """cos(S_sel, S_true) and cos(S_sel, Δ) of one selection (means over checkpoints)."""
    if len(selection) and int(selection["index"].max()) >= grads.shape[0]:
        raise ValueError("the selection indexes past the gradient store")
    S = selection_sum(grads, selection["index"].to_numpy())
    return {
        "cos_sel_truth": mean_finite(checkpoint_cosines(S, truth_sum)),
        "cos_sel_delta": mean_finite(checkpoint_cosines(S, target)),
    }


def class_counts(selection: pd.DataFrame, num_classes: int) -> list[int]:
    """How many selected texts carry each pseudolabel (0 … C−1)."""
    labels = selection["pseudolabel"].to_numpy(dtype=np.int64)
    return np.bincount(labels[labels >= 0], minlength=num_classes).astype(int).tolist()


def load_sum(path: str | Path) -> np.ndarray:
    """A saved S_true (C×D float64 .npy; never a pickle)."""
    return read_array(path, "S_true", ndim=None)
