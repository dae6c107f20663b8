"""One model object: the module, its regime and its trunk caches (or none), opened once.

Every forward pass of the project asks an ``LM`` for "the final states at these positions"
(``hidden``); the cache is per-call state handed to the model when it is opened, never a global.
``open_lm`` is the one way in: it loads a folder (plain, adapter or top) and refuses caches that
were built from another trunk, under another regime, or with another encoding than the step's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..formats import Encoding
from .arch import output_matrix
from .cache import CacheSet
from .folders import load_weights
from .forward import body_hidden, run_top
from .regime import HeadRows, Regime, parse_trainable, trunk_fingerprint

ALL = parse_trainable("all")


@dataclass
class LM:
    """A causal LM as this project runs it.

    ``regime``: what a finetune of it trains (``all`` | ``head`` | ``top:N``); ``cache``: where
    its frozen trunk's states are read from (None: it runs whole); ``updates``: a merged LoRA
    adapter's own update per module; ``source``: the folder it was opened from.
    """

    module: nn.Module
    regime: Regime = ALL
    cache: CacheSet | None = None
    updates: dict[str, torch.Tensor] | None = None
    source: Path | None = None
    head_rows: HeadRows | None = None  # while a finetune trains the label rows apart

    @property
    def weight(self) -> torch.Tensor:
        """The V×d output matrix."""
        return output_matrix(self.module)

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def hidden(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Final normalised states (B×T×d, the output matrix's dtype). ``at`` (B): the one
        position per text the caller reads; with a cache, the others may be left zero."""
        if self.cache is None:
            return body_hidden(self.module, input_ids, attention_mask)
        states = self.cache.lookup(input_ids, attention_mask)
        return run_top(self.module, states, self.regime, at)

    def logits(self, hidden: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``hidden @ Wᵀ`` over the output rows ``rows`` (None: the whole vocabulary)."""
        if self.head_rows is not None:
            if self.head_rows.reads(rows):
                return hidden @ self.head_rows.weight.T
            self.head_rows.write_back()  # other rows asked for: the matrix as it stands now
        weight = self.weight
        return hidden @ (weight.T if rows is None else weight[rows.to(weight.device)].T)

    def with_module(self, module: nn.Module) -> LM:
        """The same regime and cache over another module with this one's trunk (an
        interpolated checkpoint)."""
        return replace(self, module=module, updates=None, source=None)

    def eval(self) -> LM:
        self.module.eval()
        return self


@dataclass(frozen=True)
class ModelRef:
    """What a step hands a library function instead of opening the model itself: the folder,
    the base an adapter or top folder completes, the regime and encoding it runs under, and the
    trunk caches (read once per step, shared by every model of it)."""

    path: Path
    base: Path | None = None
    regime: str = "all"
    encoding: Encoding | None = None
    caches: CacheSet | None = field(default=None, compare=False)

    def sibling(self, path: Path, base: Path | None = None) -> ModelRef:
        """Another model of the same step (its final, its base): same regime and caches."""
        return replace(self, path=Path(path), base=base)


ModelLike = str | os.PathLike | nn.Module | LM | ModelRef


def open_lm(ref: ModelRef | str | os.PathLike) -> LM:
    """Open a folder as an ``LM``, with its caches checked against its trunk and regime."""
    if not isinstance(ref, ModelRef):
        ref = ModelRef(Path(ref))
    regime = parse_trainable(ref.regime)
    if ref.caches is not None and not regime.freezes:
        raise UserError(
            f"the model in {str(ref.path)!r} runs as trainable: all, which has no frozen trunk, "
            f"but trunk caches were given ({ref.caches.names()}); drop them or freeze a trunk."
        )
    loaded = load_weights(ref.path, base=ref.base)
    if ref.caches is not None:
        fingerprint = trunk_fingerprint(loaded.module, regime, loaded.hashes)
        ref.caches.check(fingerprint, regime, ref.encoding, ref.path)
    return LM(loaded.module, regime, ref.caches, loaded.updates, Path(ref.path))


def as_lm(model: ModelLike, base: ModelLike | None = None) -> LM:
    """An ``LM`` in eval mode from whatever a library function was given: an LM, a bare module
    (runs whole), a ``ModelRef`` or a folder (``base``: what an adapter or top folder completes,
    when it is a folder)."""
    if isinstance(model, LM):
        return model.eval()
    if isinstance(model, nn.Module):
        return LM(model.eval())
    if isinstance(model, ModelRef):
        return open_lm(model)
    base_dir = base.path if isinstance(base, ModelRef) else base
    if not isinstance(base_dir, str | os.PathLike):
        base_dir = None
    return open_lm(ModelRef(Path(model), base=None if base_dir is None else Path(base_dir)))
