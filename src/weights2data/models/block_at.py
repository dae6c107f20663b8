"""The last block at one position per text: what a classification loss reads.

A classification loss reads the final state at the label position only. The last block needs
keys and values at every position there, but its query, output projection and MLP at that one
position: about 1/T of the block's work. ``block_at`` computes exactly that for Llama-style and
GPT-2 blocks, or returns None where it does not apply (another architecture, dropout in
training, layer hooks that must see every position, GPT-2's non-default attention scalings), and
the caller runs the whole block. The Llama path calls every linear layer as a module, so a hook
that takes whatever rows its layer runs on (``ROWS_ANYWHERE``: the per-layer gradient store's)
sees the query, output and MLP layers at the label position only, keys and values at all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# a forward hook with this attribute set keeps whatever rows its layer runs on (the per-layer
# gradient store's capture does): the Llama-style block may then run at the label position
ROWS_ANYWHERE = "w2d_rows_anywhere"


def _has_hooks(block: nn.Module, rows_anywhere_ok: bool) -> bool:
    """Hooks that must see every position (any hook, unless marked ``ROWS_ANYWHERE`` and the
    block calls each of its linear layers as a module)."""
    for module in block.modules():
        hooks = [*module._forward_hooks.values(), *module._forward_pre_hooks.values()]
        if any(not (rows_anywhere_ok and getattr(h, ROWS_ANYWHERE, False)) for h in hooks):
            return True
    return False


def _drops(block: nn.Module) -> bool:
    """Dropout that would act now: the whole block keeps its random draws then."""
    if not block.training:
        return False
    dropouts = [m.p for m in block.modules() if isinstance(m, nn.Dropout)]
    attention = getattr(getattr(block, "self_attn", None), "attention_dropout", 0.0)
    return any(p > 0 for p in dropouts) or attention > 0


def _attend(q, k, v, at: torch.Tensor, scale: float) -> torch.Tensor:
    """q B×H×1×hd against k, v B×H×T×hd, keys up to each text's position ``at``: B×(H·hd)."""
    allowed = torch.arange(k.shape[2], device=k.device)[None] <= at[:, None]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None, None], scale=scale)
    return out.reshape(q.shape[0], -1)


def _llama_at(block, x, at, rotary) -> torch.Tensor:
    from transformers.models.llama.modeling_llama import repeat_kv, rotate_half

    attn, rows = block.self_attn, torch.arange(len(at), device=x.device)
    B, T, _ = x.shape
    hd = attn.head_dim
    h = block.input_layernorm(x)
    q = attn.q_proj(h[rows, at]).view(B, -1, 1, hd)
    k = attn.k_proj(h).view(B, T, -1, hd).transpose(1, 2)
    v = attn.v_proj(h).view(B, T, -1, hd).transpose(1, 2)
    cos, sin = (t.expand(B, -1, -1) for t in rotary)  # positions 0 … T−1, shared by the batch
    q_cos, q_sin = cos[rows, at][:, None, None], sin[rows, at][:, None, None]
    q = q * q_cos + rotate_half(q) * q_sin
    k = k * cos[:, None] + rotate_half(k) * sin[:, None]
    groups = attn.num_key_value_groups
    out = _attend(q, repeat_kv(k, groups), repeat_kv(v, groups), at, attn.scaling)
    y = x[rows, at] + attn.o_proj(out)
    return y + block.mlp(block.post_attention_layernorm(y))


def _gpt2_at(block, x, at) -> torch.Tensor:
    attn, rows = block.attn, torch.arange(len(at), device=x.device)
    B, T, d = x.shape
    hd = d // attn.num_heads
    h = block.ln_1(x)
    weight, bias = attn.c_attn.weight, attn.c_attn.bias  # Conv1D: in × 3·out
    q = (h[rows, at] @ weight[:, :d] + bias[:d]).view(B, -1, 1, hd)
    kv = h @ weight[:, d:] + bias[d:]
    k = kv[..., :d].view(B, T, -1, hd).transpose(1, 2)
    v = kv[..., d:].view(B, T, -1, hd).transpose(1, 2)
    scale = 1 / math.sqrt(hd) if attn.scale_attn_weights else 1.0
    y = x[rows, at] + attn.c_proj(_attend(q, k, v, at, scale))
    return y + block.mlp(block.ln_2(y))


def block_at(block: nn.Module, x: torch.Tensor, at: torch.Tensor, rotary=None):
    """The block's output (B×d) at position ``at[b]`` of each text, or None to run it whole."""
    llama = hasattr(block, "self_attn") and rotary is not None and hasattr(block, "mlp")
    if _has_hooks(block, rows_anywhere_ok=llama) or _drops(block):
        return None
    if llama:
        return _llama_at(block, x, at, rotary)
    attn = getattr(block, "attn", None)
    if attn is not None and hasattr(attn, "c_attn") and not getattr(attn, "is_cross_attention", 0):
        if attn.scale_attn_by_inverse_layer_idx or attn.reorder_and_upcast_attn:
            return None
        return _gpt2_at(block, x, at)
    return None
