"""Which layers a gradient store covers (``selection.gradients.layers``), and Δ of each.

``head`` is the output layer (its closed form, ``closed_form``); any other entry names linear
layers of the body: a module name (``transformer.h.3.mlp.c_fc``) or ``blocks.N`` for every linear
layer of block N (``blocks.-1``: the last block). A layer's per-example gradient is the matrix
Σ_t δ_t x_tᵀ (out × in); GPT-2's ``Conv1D`` stores its weight as in × out, so every weight and
update is read here in the out × in orientation the gradients use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import UserError
from ..models.arch import block_list

HEAD = "head"
LAST_BLOCK = "blocks.-1"
_BLOCK_ENTRY = re.compile(r"^blocks\.(-?\d+)$")


def normalise_layers(layers: str | Sequence[str]) -> tuple[str, ...]:
    """``layers`` as a tuple of entries without repeats (a single string is one entry)."""
    entries = (layers,) if isinstance(layers, str) else tuple(layers)
    if not entries or not all(isinstance(e, str) and e for e in entries):
        raise UserError(
            f"gradients.layers must be 'head', a module name, 'blocks.N' or a list of them; "
            f"got {layers!r}."
        )
    return tuple(dict.fromkeys(entries))


def _conv1d_type():
    from transformers.pytorch_utils import Conv1D

    return Conv1D


def _base_layer(module: torch.nn.Module) -> torch.nn.Module:
    """The plain layer under a PEFT wrapper (the module itself otherwise)."""
    return getattr(module, "base_layer", module)


def is_linear(module: torch.nn.Module) -> bool:
    """A linear map with a weight matrix: nn.Linear, GPT-2's Conv1D, or a LoRA wrapper of one."""
    return isinstance(_base_layer(module), torch.nn.Linear | _conv1d_type())


def _orient(module: torch.nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """A weight (or an update of it) in the out × in orientation."""
    return weight.T if isinstance(_base_layer(module), _conv1d_type()) else weight


def effective_weight(module: torch.nn.Module) -> torch.Tensor:
    """The out × in matrix the layer applies: for a LoRA wrapper, W + its active updates."""
    layer = _base_layer(module)
    weight = layer.weight.detach()
    if layer is not module:
        for name in getattr(module, "active_adapters", ()):
            weight = weight + module.get_delta_weight(name).detach()
    return _orient(module, weight)


def linear_modules(model: torch.nn.Module) -> list[str]:
    """Names of every linear layer of the body (the output layer excepted), in model order."""
    head = model.get_output_embeddings()
    names = []
    for name, module in model.named_modules():
        inside_adapter = name.endswith(".base_layer") or ".lora_" in name  # a wrapper's parts
        if module is not head and not inside_adapter and is_linear(module):
            names.append(name)
    return names


@dataclass(frozen=True)
class LayerChoice:
    """The resolved ``layers``: whether the head is in, and the body layers (model order)."""

    head: bool
    modules: tuple[str, ...]

    @property
    def head_only(self) -> bool:
        return self.head and not self.modules


def resolve_layers(model: torch.nn.Module, layers: str | Sequence[str]) -> LayerChoice:
    """Turn ``layers`` entries into the head flag and module names of ``model``."""
    entries = normalise_layers(layers)
    known = linear_modules(model)
    head_names = {HEAD} | {
        name for name, m in model.named_modules() if m is model.get_output_embeddings()
    }
    chosen: set[str] = set()
    head = False
    for entry in entries:
        if entry in head_names:
            head = True
            continue
        block = _BLOCK_ENTRY.match(entry)
        if block:
            prefix, blocks = block_list(model)
            index = int(block.group(1))
            if not -len(blocks) <= index < len(blocks):
                raise UserError(
                    f"gradients.layers {entry!r}: the model has {len(blocks)} blocks "
                    f"(blocks.0 … blocks.{len(blocks) - 1}, or blocks.-1 for the last)."
                )
            inside = f"{prefix}.{index % len(blocks)}."
            chosen.update(name for name in known if name.startswith(inside))
        elif entry in known:
            chosen.add(entry)
        else:
            examples = ", ".join(known[:4]) + (", …" if len(known) > 4 else "")
            raise UserError(
                f"gradients.layers {entry!r} is not a linear layer of {type(model).__name__}; "
                f"use 'head', 'blocks.N' or one of its {len(known)} linear layers ({examples})."
            )
    return LayerChoice(head, tuple(name for name in known if name in chosen))


def layer_delta(base: torch.nn.Module, final, name: str) -> torch.Tensor:
    """Δ of one body layer, out × in: θ0 − θf; for a merged adapter (``final.updates``), minus
    its own update. ``final``: an ``LM``."""
    module = base.get_submodule(name)
    updates = final.updates
    if updates is not None and name in updates:
        return -_orient(module, updates[name].to(module_dtype(module)))
    return effective_weight(module) - effective_weight(final.module.get_submodule(name))


def module_dtype(module: torch.nn.Module) -> torch.dtype:
    return _base_layer(module).weight.dtype


def layer_shape(model: torch.nn.Module, name: str) -> tuple[int, int]:
    """(out, in) of a body layer."""
    module = model.get_submodule(name)
    return tuple(_orient(module, _base_layer(module).weight).shape)


def adapted_hint(updates: dict | None) -> str:
    """For errors: the modules a merged adapter changed, as a layers value to use instead."""
    if not updates:
        return ""
    names = sorted(updates)
    shown = ", ".join(names[:4]) + (f", … ({len(names)} in all)" if len(names) > 4 else "")
    return (
        f" The final model is a LoRA adapter: it changed only {shown}. Set "
        f"selection.gradients.layers to '{LAST_BLOCK}' or to adapted modules (e.g. "
        f"[{names[-1]}])."
    )
