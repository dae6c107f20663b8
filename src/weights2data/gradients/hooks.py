"""Per-example gradients of any linear layers, from one forward and one backward pass per batch.

A linear layer's per-example weight gradient is Σ_t δ_t x_tᵀ: x_t its input at position t and
δ_t the loss gradient at its output. Forward hooks keep every chosen layer's x; one backward
pass from the final hidden states (seeded with the closed-form gradient u_t·W of each trained
position) gives every δ at once, since a text's loss depends on its own positions only. The
factors are sketched per layer with the outer-product projectors (``projection``) and
concatenated after the head's closed form, so no per-example backward and no out × in matrix
per example are ever formed. Δ of the same layers is sketched with the same maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError
from ..losses import TaskLoss
from ..models.arch import output_matrix
from ..models.block_at import ROWS_ANYWHERE
from ..models.lm import LM, ModelLike, as_lm
from ..projection import DEFAULT_PROJECTION, Projector, make_projector
from .closed_form import Batch, forward_positions, gradient_projector, head_delta, visit_head
from .layers import LayerChoice, adapted_hint, layer_delta, layer_shape, resolve_layers
from .precondition import BatchSink, Visit


class _Capture:
    """Hooks that keep each chosen layer's input and, in the backward pass, the gradient at its
    output. The parameters are frozen meanwhile: autograd then computes no weight gradient and
    runs back only as far as the earliest chosen layer."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str]) -> None:
        self.model, self.names = model, tuple(names)
        self.inputs: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}

    def __enter__(self) -> _Capture:
        self._frozen = [(p, p.requires_grad) for p in self.model.parameters()]
        for param, _ in self._frozen:
            param.requires_grad_(False)
        self._handles = [
            self.model.get_submodule(name).register_forward_hook(self._hook(name))
            for name in self.names
        ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        for param, flag in self._frozen:
            param.requires_grad_(flag)

    def _hook(self, name: str):
        def keep(module, args, output):
            if name in self.inputs:
                raise UserError(
                    f"layer {name} runs more than once per forward pass; per-example gradients "
                    "of a shared layer are not supported. Choose another layer."
                )
            self.inputs[name] = args[0].detach()
            out = output if output.requires_grad else output.detach().requires_grad_()
            out.register_hook(lambda grad: self.grads.__setitem__(name, grad.detach()))
            return out

        setattr(keep, ROWS_ANYWHERE, True)  # B×T×in, or B×in where a block runs at the label
        return keep


@dataclass(frozen=True)
class GradientSpace:
    """The store's columns: the head's projector (if chosen), then one per body layer."""

    choice: LayerChoice
    head: Projector | None
    body: tuple[Projector, ...]

    @property
    def k(self) -> int:
        return sum(p.k for p in self.parts())

    def parts(self) -> list[Projector]:
        return ([self.head] if self.head is not None else []) + list(self.body)

    def describe(self) -> list[dict]:
        """Each part's layer, matrix shape and map, in column order (for the store's meta)."""
        names = (["head"] if self.head is not None else []) + list(self.choice.modules)
        return [
            {"layer": name, "shape": [p.V, p.d], "projection": p.describe()}
            for name, p in zip(names, self.parts(), strict=True)
        ]


def gradient_space(
    model: torch.nn.Module,
    layers: str | Sequence[str],
    loss: str,
    *,
    num_classes: int | None,
    projection: str | None,
    k: int,
    seed: int,
) -> GradientSpace:
    """The projectors of a store over ``layers``: the head's as today (seed ``seed``), each
    body layer's ``projection`` (default sketch when None) of out × in, seed ``seed + i``."""
    choice = resolve_layers(model, layers)
    head = None
    if choice.head:
        V, d = output_matrix(model).shape
        head = gradient_projector(
            loss, V, d, num_classes=num_classes, projection=projection, k=k, seed=seed
        )
    body = tuple(
        make_projector(projection or DEFAULT_PROJECTION, *layer_shape(model, name), k, seed + i)
        for i, name in enumerate(choice.modules, start=1)
    )
    return GradientSpace(choice, head, body)


def space_target(
    base: ModelLike, final: ModelLike, space: GradientSpace, loss: TaskLoss
) -> np.ndarray:
    """Δ = θ0 − θf of every chosen layer, sketched with the space's maps and concatenated."""
    base, final = as_lm(base), as_lm(final)
    deltas = ([head_delta(base, final, loss)] if space.head is not None else []) + [
        layer_delta(base.module, final, name) for name in space.choice.modules
    ]
    if not all(bool(torch.isfinite(d).all()) for d in deltas):
        raise UserError("Δ = base − final has NaN or inf entries; check both checkpoints load.")
    if not any(bool((d != 0).any()) for d in deltas):
        raise UserError(
            "the final model equals the base on every chosen layer, so there is no direction "
            "to select toward." + adapted_hint(final.updates)
        )
    with torch.no_grad():
        parts = [p.project_matrix(d) for p, d in zip(space.parts(), deltas, strict=True)]
    return torch.cat(parts).double().cpu().numpy()


def visit_layers(
    lm: ModelLike, tokenizer, batch: Batch, space: GradientSpace, visit: Visit
) -> None:
    """Hand every chosen layer's outer-product factors of one batch to ``visit`` (part index,
    U, H, example, n): the head's residual chunks first, then each body layer once."""
    lm = _opened(lm)
    rows = batch.loss.rows(lm)
    with _Capture(lm.module, space.choice.modules) as capture, torch.enable_grad():
        inputs = forward_positions(lm, tokenizer, batch)
        n = inputs.n_examples
        at_state = torch.zeros_like(inputs.hidden, requires_grad=False)
        for part, u in batch.loss.residuals(inputs, rows):
            if space.head is not None:
                h = inputs.hidden[part].detach()
                visit(0, u, h, inputs.example[part], n)
            at_state[part] = u @ rows
        if inputs.full.requires_grad:
            seed = torch.zeros_like(inputs.full)
            seed[inputs.example, inputs.time] = at_state
            inputs.full.backward(seed)
    unrun = [name for name in space.choice.modules if name not in capture.inputs]
    if unrun:
        raise UserError(
            f"layer {unrun[0]} did not run: it lies in the frozen trunk, whose states come from "
            "a trunk cache (finetune.trainable head / top:N), and a frozen layer has no "
            "direction to select toward. Choose the head or layers within the trained top "
            "(blocks.-1 for top:1)."
        )
    rows = _LayerRows(inputs.mask.bool(), n)
    dtype = inputs.hidden.dtype
    first = 0 if space.head is None else 1
    with torch.no_grad():
        for i, (name, projector) in enumerate(zip(space.choice.modules, space.body, strict=True)):
            x, example = rows.of(capture.inputs[name])
            x = x.to(dtype)
            grad = capture.grads.get(name)
            delta = x.new_zeros((len(x), projector.V)) if grad is None else rows.of(grad)[0]
            visit(first + i, delta.to(dtype), x, example, n)


@dataclass(frozen=True)
class _LayerRows:
    """Which text each captured row belongs to: a layer that ran on every position gives
    B×T×· (padding dropped), one that ran at the label position alone (``block_at``) B×·."""

    real: torch.Tensor  # B×T: the real tokens
    n: int

    def of(self, captured: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows × ·, the text of each row)."""
        if captured.ndim == 2:
            return captured, torch.arange(self.n, device=captured.device)
        example = torch.arange(self.n, device=self.real.device)[:, None].expand_as(self.real)
        return captured[self.real], example[self.real]


def _opened(lm: ModelLike) -> LM:
    """An ``LM`` as given (a pass over many batches puts it in eval mode once: ``eval`` walks
    every submodule, milliseconds per batch), anything else opened by ``as_lm``."""
    return lm if isinstance(lm, LM) else as_lm(lm)


def visit_batch(lm: ModelLike, tokenizer, batch: Batch, space: GradientSpace, visit: Visit) -> None:
    """One batch's factors of every part: the closed form alone (no autograd) for a head-only
    space, otherwise one forward and one backward pass (``visit_layers``)."""
    lm = _opened(lm)
    if space.choice.head_only:
        rows = batch.loss.rows(lm)
        with torch.no_grad():
            visit_head(forward_positions(lm, tokenizer, batch), batch.loss, rows, visit)
    else:
        visit_layers(lm, tokenizer, batch, space, visit)


def sketch_batch(
    model, tokenizer, batch: Batch, space: GradientSpace, scales: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every text's sketched gradient over the space (n × space.k) and, given rank-1 RMS
    ``scales`` per part, the sketch of the same gradients divided by them (else None)."""
    sink = BatchSink(space.parts(), space.head is not None, scales)
    visit_batch(model, tokenizer, batch, space, sink)
    if sink.raw is None:  # no trained position in the whole batch: every gradient is zero
        zeros = torch.zeros((len(batch.texts), space.k))
        return zeros, (zeros.clone() if scales else None)
    return sink.raw, sink.rms


def sketch_layers(model, tokenizer, batch: Batch, space: GradientSpace) -> torch.Tensor:
    """Every text's sketched gradient over the space's layers: (n × space.k)."""
    return sketch_batch(model, tokenizer, batch, space)[0]
