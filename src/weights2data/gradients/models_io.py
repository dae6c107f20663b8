"""The models the gradient code runs on: the tokenizer a caller means, and the checkpoints
interpolated between a base and its final.

Every public function of the gradient package takes a folder, a ``ModelRef``, an ``LM`` or a
bare module (tests and benchmarks pass models built in memory); ``models.lm.as_lm`` tells
them apart. The store also takes gradients at checkpoints on the straight line θ0 → θf.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import numpy as np
import torch

from ..errors import UserError
from ..models.arch import check_same_architecture
from ..models.folders import load_tokenizer
from ..models.lm import LM, ModelLike, ModelRef, as_lm


def as_tokenizer(tokenizer, model: ModelLike):
    """``tokenizer`` as given, or loaded from a folder (the model's own when None)."""
    if tokenizer is None:
        if isinstance(model, ModelRef):
            return load_tokenizer(model.path, base=model.base)
        if isinstance(model, LM) and model.source is not None:
            return load_tokenizer(model.source)
        if isinstance(model, torch.nn.Module | LM):
            raise UserError("a loaded model was given without its tokenizer; pass tokenizer=...")
        return load_tokenizer(model)
    if isinstance(tokenizer, str | os.PathLike):
        return load_tokenizer(tokenizer)
    return tokenizer


def interpolated_models(base: ModelLike, final: ModelLike, C: int) -> Iterator[tuple[int, LM]]:
    """Yield ``(c, θ_c)`` with θ_c = θ0 + (c/C)(θf − θ0), c = 0 … C−1 (C = 1: the base only).

    Every parameter is interpolated (the forward pass runs through all layers, so all of them
    matter). θ_0 is the base model itself; later checkpoints reuse ONE scratch copy, overwritten
    in place, so memory stays at one extra model: use each θ_c before asking for the next. A
    checkpoint reads the base's trunk cache: base and final share the frozen trunk, so every
    point between them does.
    """
    if not isinstance(C, int | np.integer) or C < 1:
        raise UserError(f"the number of checkpoints must be a positive integer, got {C!r}.")
    base, final = as_lm(base), as_lm(final, base)
    check_same_architecture(base.module, final.module)
    yield 0, base
    if C == 1:
        return
    scratch = copy.deepcopy(base.module)
    final_params = dict(final.module.named_parameters())
    base_params = dict(base.module.named_parameters())
    between = base.with_module(scratch)
    for c in range(1, int(C)):
        t = c / C
        with torch.no_grad():
            for name, param in scratch.named_parameters():
                p0 = base_params[name]
                param.copy_(p0 + t * (final_params[name].to(p0.dtype) - p0))
        yield c, between
