"""The regime: which parameters a finetune trains: ``all``, ``head`` or ``top:N`` (the config's
``finetune.trainable``).

``head`` trains the output layer's rows that the loss touches (the label rows for the
label-masked loss, every row otherwise); ``top:N`` also trains the last N blocks and the final
norm. Everything below, the "trunk", stays frozen and runs in eval mode (no dropout), so its
output for a text is the same in the base, every expert and every retraining. That needs an
output layer of its own: one tied to the input embedding would move the trunk's first layer
with it (``arch.untie_output`` gives a model one, with the same function). The trunk's fingerprint
says whether two models share it: a base and every finetune of it under the regime.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from .arch import blocks_of, final_norm, is_tied, output_matrix

TRAINABLE_HELP = "all, head or top:N (the last N blocks, the final norm and the head)"


@dataclass(frozen=True)
class Regime:
    """A parsed ``trainable`` setting: ``top`` blocks above the frozen trunk (None: all)."""

    name: str
    top: int | None  # None: everything trains; 0: the head alone; N: the last N blocks too

    @property
    def freezes(self) -> bool:
        return self.top is not None


def parse_trainable(value: str) -> Regime:
    """``all`` | ``head`` | ``top:N`` (N ≥ 1) as a Regime; anything else is named."""
    if value == "all":
        return Regime(value, None)
    if value == "head":
        return Regime(value, 0)
    match = re.fullmatch(r"top:([1-9][0-9]*)", str(value))
    if match is None:
        raise UserError(f"finetune.trainable is {value!r}; use {TRAINABLE_HELP}.")
    return Regime(value, int(match.group(1)))


def top_modules(model, regime: Regime) -> list[nn.Module]:
    """The modules a frozen-trunk regime trains: the last N blocks, the final norm, the head."""
    if regime.top == 0:
        return [model.get_output_embeddings()]
    blocks = blocks_of(model)
    if regime.top > len(blocks):
        raise UserError(
            f"finetune.trainable is {regime.name} but the model has {len(blocks)} blocks; "
            f"use top:1 … top:{len(blocks)}, or all."
        )
    return [*blocks[len(blocks) - regime.top :], final_norm(model), model.get_output_embeddings()]


def trunk_parameters(model, regime: Regime) -> list[tuple[str, torch.Tensor]]:
    """The named parameters below the top: what a frozen-regime finetune never changes."""
    top = {id(p) for module in top_modules(model, regime) for p in module.parameters()}
    return [(name, p) for name, p in model.named_parameters() if id(p) not in top]


def trunk_fingerprint(model, regime: Regime) -> str:
    """SHA-256 over the trunk's parameter names and bytes: equal in a base and every finetune of
    it under ``regime``, different for any other base."""
    digest = hashlib.sha256(regime.name.encode())
    for name, param in trunk_parameters(model, regime):
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def trained_state(model, regime: Regime) -> dict[str, torch.Tensor]:
    """Copies of the tensors a finetune under ``regime`` may change (every one under ``all``):
    what a top folder compares its final against, without opening the base a second time."""
    if not regime.freezes:
        return {name: t.detach().clone() for name, t in model.state_dict().items()}
    top = {id(p) for module in top_modules(model, regime) for p in module.parameters()}
    return {name: p.detach().clone() for name, p in model.named_parameters() if id(p) in top}


@dataclass
class Trainable:
    """The parameters an optimizer gets; ``after_step`` puts untouched head rows back (weight
    decay would move them), ``close`` gives every parameter its requires_grad back."""

    parameters: list[nn.Parameter]
    train_mode: Callable[[], None]  # dropout on where training happens, off in the trunk
    after_step: Callable[[], None] = lambda: None
    close: Callable[[], None] = lambda: None


def prepare(
    model, value: str, rows: Sequence[int] | None = None, *, decays: bool = False
) -> Trainable:
    """Freeze the trunk for ``value`` and say what trains. ``rows``: the only head rows the
    loss touches (the label rows; None: all); ``decays``: the optimizer has weight decay, which
    moves rows without gradient. ``all`` changes nothing."""
    regime = parse_trainable(value)
    if not regime.freezes:
        return Trainable([p for p in model.parameters() if p.requires_grad], model.train)
    if is_tied(model):
        raise UserError(
            f"finetune.trainable is {regime.name} but the output layer is tied to the input "
            "embedding, which belongs to the frozen trunk; build the base with an untied output "
            "layer (weights2data.models.arch.untie_output, as the smollm2 base is imported) or "
            "use trainable: all."
        )
    tops = top_modules(model, regime)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.requires_grad_(False)
    for module in tops:
        module.requires_grad_(True)
    params = [p for module in tops for p in module.parameters()]

    def train_mode() -> None:
        model.eval()  # the trunk: no dropout, so its outputs are the same in every model
        for module in tops:
            module.train()

    def unfreeze() -> None:
        for p, flag in flags:
            p.requires_grad_(flag)

    trainable = Trainable(params, train_mode, close=unfreeze)
    if rows is None or not decays:
        return trainable
    return _keep_other_rows(trainable, output_matrix(model), rows)


def _keep_other_rows(trainable: Trainable, weight: nn.Parameter, rows) -> Trainable:
    """Put the head rows outside ``rows`` back after each step. Their gradient is exactly 0
    under the label-masked loss, so Adam and SGD leave them alone; weight decay would not."""
    others = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
    others[torch.as_tensor(list(rows), device=weight.device)] = False
    kept = weight.detach()[others].clone()

    def restore() -> None:
        with torch.no_grad():
            weight[others] = kept

    return dataclasses.replace(trainable, after_step=restore)
