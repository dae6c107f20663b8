"""Where the torch work runs: CUDA when present (or asked for), else the CPU.

``W2D_DEVICE`` overrides the choice (``cpu``, ``cuda``, ``cuda:1``); ``W2D_BF16=0`` turns off
bf16 autocast, which is otherwise on for training and forward passes on a bf16-capable GPU.
Heads, losses and gradient sketches stay in float32 (autocast keeps softmax and
cross-entropy in float32; the closed-form gradient upcasts the hidden states).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import sys
from typing import Any

import torch

from .errors import UserError


def compute_device() -> torch.device:
    """The device for models and batches: ``W2D_DEVICE`` if set, else CUDA if available."""
    asked = os.environ.get("W2D_DEVICE", "").strip()
    if not asked:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(asked)
    except RuntimeError as exc:
        raise UserError(f"W2D_DEVICE={asked!r} is not a device; use cpu, cuda or cuda:N.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(
            f"W2D_DEVICE={asked!r} but this torch sees no CUDA device; unset W2D_DEVICE to run "
            "on the CPU, or install a CUDA build of torch."
        )
    return device


def bf16_enabled(device: torch.device) -> bool:
    """bf16 autocast only on a CUDA device that supports it, unless ``W2D_BF16=0``."""
    if device.type != "cuda" or os.environ.get("W2D_BF16", "1") == "0":
        return False
    return torch.cuda.is_bf16_supported()


def native_bf16(device: torch.device) -> bool:
    """Whether the hardware multiplies in bf16 itself: a bf16-capable GPU, or a CPU with
    AVX512-BF16 or AMX. Elsewhere torch emulates bf16 matmuls, far slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast where it is safe and on; a no-op elsewhere (so CPU runs stay exact)."""
    if bf16_enabled(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def to_device(batch: Any, device: torch.device) -> Any:
    """A copy of a batch dataclass with every tensor field on ``device``."""
    moved = {
        f.name: getattr(batch, f.name).to(device)
        for f in dataclasses.fields(batch)
        if isinstance(getattr(batch, f.name), torch.Tensor)
    }
    return dataclasses.replace(batch, **moved)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = (1 << 31) - 1


def keep_freed_memory() -> bool:
    """Let glibc keep freed buffers of up to 2 GiB for reuse instead of unmapping them.

    By default glibc maps every allocation above 32 MB afresh and unmaps it when freed, so a
    step that builds a 64 MB tensor per batch (the full-vocabulary residuals of a store) pays the
    kernel's page faults on every batch: 45 of the 101 s of the SFT store of the default were
    system time (benchmarks/bench_allocator.py). Results are the same bytes either way. A no-op
    (False) off glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
            and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
        )
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        return False


def use_threads(threads: int) -> None:
    """A step's thread budget, for all it runs: torch's threads and, at one thread (the
    pipeline's jobs, two at a time on two cores), no thread pool of the Rust tokenizers beside
    them, whose threads would spin beside the other job (`make smoke` on the Intel Xeon: 2 min
    42 s with the pool; 2 min 12 s with TOKENIZERS_PARALLELISM=false for the whole run, single
    runs). Tokens are the same either way."""
    torch.set_num_threads(max(1, threads))
    if threads <= 1:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
