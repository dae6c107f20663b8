"""Device choice: CPU here, CUDA when present or asked for; bf16 autocast only on a GPU."""

from __future__ import annotations

import contextlib

import pytest
import torch

from weights2data.device import autocast, bf16_enabled, compute_device, to_device
from weights2data.errors import UserError
from weights2data.formats import ClassificationBatch


def test_default_follows_cuda_availability(monkeypatch):
    monkeypatch.delenv("W2D_DEVICE", raising=False)
    assert compute_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("W2D_DEVICE", "cpu")
    assert compute_device() == torch.device("cpu")


def test_bad_device_requests_are_named(monkeypatch):
    monkeypatch.setenv("W2D_DEVICE", "tpu-please")
    with pytest.raises(UserError, match="W2D_DEVICE"):
        compute_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("W2D_DEVICE", "cuda")
        with pytest.raises(UserError, match="no CUDA device"):
            compute_device()


def test_cpu_runs_without_autocast(monkeypatch):
    cpu = torch.device("cpu")
    assert not bf16_enabled(cpu)
    assert isinstance(autocast(cpu), contextlib.nullcontext)
    monkeypatch.setenv("W2D_BF16", "0")
    assert not bf16_enabled(torch.device("cuda"))


def test_to_device_moves_every_tensor_field():
    batch = ClassificationBatch(
        torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3), torch.zeros(2)
    )
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved, ClassificationBatch) and torch.equal(moved.input_ids, batch.input_ids)
