"""The frozen trunk, run once per text, and the trainable top run on what it left.

Under ``finetune.trainable`` = ``head`` or ``top:N`` the trunk (every layer below the top) is the
same in the base, every expert and every retraining, so its output for a text can be computed
once and stored. ``trunk_states`` gives that output: the hidden states entering block L−N for
``top:N``, the final normalised states for ``head``. ``run_top`` finishes the forward pass from
them and gives the states the output matrix reads, equal to the full model's.

A cache file (safetensors) carries its ``CacheKey`` in its metadata: a cache built under another
base, regime, length or truncation is refused with the field that differs, never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_path
from .errors import UserError
from .models import body_hidden
from .top_block import block_at
from .trainable import Regime, blocks_of, final_norm, top_modules


class _Reached(Exception):
    """Raised by the hook at the first top block: the trunk's work is done."""


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


def run_top(
    model, states: torch.Tensor, regime: Regime, at: torch.Tensor | None = None
) -> torch.Tensor:
    """The final normalised states (B×T×d) from cached trunk states, through the top blocks.

    Right padding means a real position attends only to real positions under the causal mask
    alone, so no padding mask is needed for the positions a loss reads. ``at`` (B): the only
    position per text a loss will read (a classification label); the last block then runs at
    that position alone where it can (``top_block``), and the other rows are left zero.
    """
    if regime.top == 0:
        return states
    blocks = blocks_of(model)
    width = states.shape[1]
    causal = torch.full((width, width), torch.finfo(states.dtype).min, dtype=states.dtype)
    options: dict = {"attention_mask": causal.triu(1).to(states.device)[None, None]}
    rotary = getattr(model.base_model, "rotary_emb", None)
    if rotary is not None:  # Llama-style: rotary position embeddings per layer
        positions = torch.arange(width, device=states.device)[None]
        options.update(position_ids=positions, position_embeddings=rotary(states, positions))
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


@dataclass(frozen=True)
class CacheKey:
    """What a cache was computed with; reading it under any other key is refused."""

    trunk: str  # fingerprint of the frozen trunk's weights (trunk_fingerprint)
    regime: str
    encoding: str  # classification (text tokens, label appended) or sft (start token + text)
    max_length: int
    truncate: str
    dtype: str


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


def write_cache(path: str | Path, tensors: dict[str, torch.Tensor], key: CacheKey) -> None:
    """Save the trunk's outputs atomically, with their key in the safetensors metadata."""
    meta = {"key": json.dumps(dataclasses.asdict(key), sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)


def read_cache(
    path: str | Path, expected: CacheKey | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """The cached tensors and their key, once the key matches ``expected`` field by field
    (None: any key)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"trunk cache {str(path)!r} does not exist; build it with its rule first.")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            stored = json.loads((fh.metadata() or {}).get("key", "{}"))
        tensors = load_file(str(path))
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise UserError(f"trunk cache {str(path)!r} is unreadable ({exc}); delete it.") from exc
    for name, want in dataclasses.asdict(expected).items() if expected else ():
        if stored.get(name) != want:
            raise UserError(
                f"trunk cache {str(path)!r} was built with {name} = {stored.get(name)!r}, "
                f"not {want!r}; rebuild it (delete the file and rerun)."
            )
    return tensors, stored
