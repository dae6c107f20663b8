"""The models the gradient code runs on: loaded from a folder, or interpolated between two.

Every public function of the gradient package takes either a path or a loaded model (tests and
benchmarks pass models built in memory); this is the one place that tells them apart. The store
also takes gradients at checkpoints on the straight line θ0 → θf, made here from the two models.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import numpy as np
import torch

from ..errors import UserError
from ..models import check_same_architecture, load_model, load_tokenizer

ModelLike = str | os.PathLike | torch.nn.Module


def _as_model(model: ModelLike) -> torch.nn.Module:
    """A loaded model in eval mode (dropout would make gradients and labels random)."""
    if isinstance(model, torch.nn.Module):
        return model.eval()
    return load_model(model)


def _as_final(final: ModelLike, base: ModelLike | None) -> torch.nn.Module:
    """The final model; an adapter folder is merged over ``base`` when that is a folder."""
    if isinstance(final, torch.nn.Module):
        return final.eval()
    return load_model(final, base=None if isinstance(base, torch.nn.Module | None) else base)


def _as_tokenizer(tokenizer, model_path: ModelLike):
    if tokenizer is None:
        if isinstance(model_path, torch.nn.Module):
            raise UserError("a loaded model was given without its tokenizer; pass tokenizer=...")
        return load_tokenizer(model_path)
    if isinstance(tokenizer, str | os.PathLike):
        return load_tokenizer(tokenizer)
    return tokenizer


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
