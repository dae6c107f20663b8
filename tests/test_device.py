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


def test_freed_memory_is_kept_on_glibc_and_the_numbers_do_not_change():
    """``keep_freed_memory`` takes (a setting of the process's allocator, no numbers): it must
    succeed on glibc Linux, where the pipeline runs, and leave a computation's bytes as they
    were. Run in a child process, so this test process keeps its allocator as it was."""
    import subprocess
    import sys

    child = (
        "import torch, sys\n"
        "from weights2data.device import keep_freed_memory\n"
        "kept = keep_freed_memory() if sys.argv[1] == '1' else None\n"
        "x = torch.randn(2048, 4096, generator=torch.Generator().manual_seed(0))\n"
        "y = torch.softmax(x, 1).double().square().sum(0)\n"
        "print(kept, y.numpy().tobytes().hex()[:4096])\n"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", child, flag], capture_output=True, text=True, check=True
        ).stdout.split()
        for flag in ("0", "1")
    ]
    glibc = sys.platform.startswith("linux") and platform_libc() == "glibc"
    assert outs[1][0] == str(glibc)
    assert outs[0][1] == outs[1][1]


def platform_libc() -> str:
    import platform

    return platform.libc_ver()[0]
