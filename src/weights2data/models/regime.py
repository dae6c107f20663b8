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

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from .arch import blocks_of, final_norm, is_tied, output_matrix
from .fingerprint import tensor_hash

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


def trunk_fingerprint(model, regime: Regime, hashes: dict[str, str] | None = None) -> str:
    """SHA-256 over the trunk's parameter names and their values' hashes: equal in a base and
    every finetune of it under ``regime``, different for any other base. ``hashes``: the
    parameters' hashes as the folder recorded them (``fingerprint.record_fingerprints``); a
    parameter without one is hashed here."""
    digest = hashlib.sha256(regime.name.encode())
    for name, param in trunk_parameters(model, regime):
        known = hashes.get(name) if hashes else None
        digest.update(name.encode())
        digest.update((known or tensor_hash(param)).encode())
    return digest.hexdigest()[:16]


def trained_state(model, regime: Regime) -> dict[str, torch.Tensor]:
    """Copies of the tensors a finetune under ``regime`` may change (every one under ``all``):
    what a top folder compares its final against, without opening the base a second time."""
    if not regime.freezes:
        return {name: t.detach().clone() for name, t in model.state_dict().items()}
    top = {id(p) for module in top_modules(model, regime) for p in module.parameters()}
    return {name: p.detach().clone() for name, p in model.named_parameters() if id(p) in top}


@dataclass
class HeadRows:
    """The output rows a label-masked finetune trains, split off as a parameter of their own.

    Every other row gets exactly zero gradient, so an optimizer over the whole matrix
    (SmolLM2's is 49,152 × 576) spends nearly all its time on zeros, and weight decay would
    move rows no loss touches. ``LM.logits`` reads ``weight`` while the split lasts;
    ``write_back`` puts it into the matrix. The numbers are those of training the whole matrix.
    """

    rows: torch.Tensor  # (C,) row indices into the matrix
    weight: nn.Parameter  # C × d
    matrix: torch.Tensor

    @classmethod
    def split(cls, matrix: torch.Tensor, rows: Sequence[int]) -> HeadRows:
        index = torch.as_tensor(list(rows), dtype=torch.long, device=matrix.device)
        return cls(index, nn.Parameter(matrix.detach()[index].clone()), matrix)

    def reads(self, rows: torch.Tensor | None) -> bool:
        """Whether logits over ``rows`` are logits over exactly the split rows."""
        return (
            rows is not None
            and rows.shape == self.rows.shape
            and torch.equal(rows.to(self.rows.device), self.rows)
        )

    def write_back(self) -> None:
        with torch.no_grad():
            self.matrix[self.rows] = self.weight.detach()


@dataclass
class Trainable:
    """The parameters an optimizer gets; ``head_rows``: the label rows when they train apart
    from the rest of the output matrix; ``close`` writes them back and gives every parameter
    its requires_grad back."""

    parameters: list[nn.Parameter]
    train_mode: Callable[[], None]  # dropout on where training happens, off in the trunk
    close: Callable[[], None] = lambda: None
    head_rows: HeadRows | None = None


def prepare(model, value: str, rows: Sequence[int] | None = None) -> Trainable:
    """Freeze the trunk for ``value`` and say what trains. ``rows``: the only output rows the
    loss touches (the label rows; None: all), which then train as a ``HeadRows`` of their own.
    ``all`` changes nothing."""
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
    head = None
    if rows is not None:
        head = HeadRows.split(output_matrix(model), rows)
        output_matrix(model).requires_grad_(False)
    params = [p for module in tops for p in module.parameters() if p.requires_grad]
    params += [head.weight] if head is not None else []

    def train_mode() -> None:
        model.eval()  # the trunk: no dropout, so its outputs are the same in every model
        for module in tops:
            module.train()

    def close() -> None:
        if head is not None:
            head.write_back()
        for p, flag in flags:
            p.requires_grad_(flag)

    return Trainable(params, train_mode, close=close, head_rows=head)
