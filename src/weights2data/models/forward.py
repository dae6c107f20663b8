"""The forward pieces: the whole body's final states, the frozen trunk's states, and the top
finished from cached trunk states, all under one precision policy.

Under ``finetune.trainable`` = ``head`` or ``top:N`` the trunk (every layer below the top) is the
same in the base, every expert and every retraining, so its output for a text can be computed
once and stored (``cache``). ``trunk_states`` gives that output: the hidden states entering
block L−N for ``top:N``, the final normalised states for ``head``. ``run_top`` finishes the
forward pass from them and gives the states the output matrix reads, equal to the full model's.

Precision: both branches run their blocks under ``device.autocast`` (bf16 on a capable GPU, a
no-op on the CPU) and hand back states in the output matrix's dtype, so the head, the losses and
the closed-form gradients are always computed in full precision.
"""

from __future__ import annotations

import torch

from ..device import autocast
from ..errors import UserError
from .arch import blocks_of, final_norm, output_matrix
from .block_at import block_at
from .regime import Regime


class _Reached(Exception):
    """Raised by the hook at the first top block: the trunk's work is done."""


def body_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The whole body's final states (B×T×d), in the output matrix's dtype."""
    weight = output_matrix(model)
    with autocast(weight.device):
        out = model.base_model(input_ids=input_ids, attention_mask=attention_mask)
    return out.last_hidden_state.to(weight.dtype)


@torch.no_grad()
def trunk_states(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, regime: Regime):
    """B×T×d: what enters the top for every position (right-padded batches)."""
    if not regime.freezes:
        raise UserError("trainable: all has no frozen trunk to cache.")
    if regime.top == 0:
        return body_hidden(model, input_ids, attention_mask)
    blocks = blocks_of(model)
    first = blocks[len(blocks) - regime.top]
    seen: dict[str, torch.Tensor] = {}

    def grab(_module, args, kwargs):
        seen["states"] = args[0] if args else kwargs["hidden_states"]
        raise _Reached

    handle = first.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        model.base_model(input_ids=input_ids, attention_mask=attention_mask)
    except _Reached:
        pass
    finally:
        handle.remove()
    return seen["states"]


def _top_options(model, states: torch.Tensor) -> dict:
    """The keyword arguments every top block takes: the causal mask (right padding needs no
    padding mask for the positions a loss reads) and, Llama-style, the rotary embeddings."""
    width = states.shape[1]
    causal = torch.full((width, width), torch.finfo(states.dtype).min, dtype=states.dtype)
    options: dict = {"attention_mask": causal.triu(1).to(states.device)[None, None]}
    rotary = getattr(model.base_model, "rotary_emb", None)
    if rotary is not None:  # Llama-style: rotary position embeddings per layer
        positions = torch.arange(width, device=states.device)[None]
        options.update(position_ids=positions, position_embeddings=rotary(states, positions))
    return options


def run_top(
    model, states: torch.Tensor, regime: Regime, at: torch.Tensor | None = None
) -> torch.Tensor:
    """The final normalised states (B×T×d) from cached trunk states, through the top blocks.

    ``at`` (B): the only position per text a loss will read (a classification label); the last
    block then runs at that position alone where it can (``block_at``), and the other rows are
    left zero.
    """
    if regime.top == 0:
        return states
    weight = output_matrix(model)
    with autocast(weight.device):
        return _finish(model, states, regime, at).to(weight.dtype)


def _finish(model, states: torch.Tensor, regime: Regime, at: torch.Tensor | None):
    blocks = blocks_of(model)
    options = _top_options(model, states)
    hidden = states
    top = blocks[len(blocks) - regime.top :]
    for block in top[:-1]:
        out = block(hidden, **options)
        hidden = out[0] if isinstance(out, tuple) else out
    if at is not None:
        last = block_at(top[-1], hidden, at, options.get("position_embeddings"))
        if last is not None:
            rows = torch.arange(len(at), device=states.device)
            final = torch.zeros_like(hidden)
            final[rows, at] = final_norm(model)(last)
            return final
    out = top[-1](hidden, **options)
    return final_norm(model)(out[0] if isinstance(out, tuple) else out)
