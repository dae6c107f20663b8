"""A trunk cache in use: built once over a dataset's texts, then attached to every model a step
loads, so that ``models.final_hidden`` reads the frozen trunk's states instead of running it.

Entries are keyed by a text's token ids as the step encodes it, so one cache serves every pool,
task and ablation that meets the same text, and a text encoded differently (another length or
truncation) is a miss, never a wrong hit. A model gets a cache only when its own trunk has the
cache's fingerprint: a base and every finetune of it under the cache's regime.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import UserError
from .formats import encode_classification, encode_lm
from .progress import tqdm
from .trainable import Regime, parse_trainable
from .trunk import CacheKey, read_cache, run_top, trunk_fingerprint, trunk_states, write_cache

ENCODINGS = ("classification", "sft")


@dataclass(frozen=True)
class Encoding:
    """How a step turns texts into token ids (the cache must encode them the same way)."""

    kind: str  # classification | sft
    max_length: int
    truncate: str = "left"

    def encode(self, tokenizer, texts: Sequence[str]):
        if self.kind == "classification":
            batch = encode_classification(tokenizer, list(texts), self.max_length, self.truncate)
        elif self.kind == "sft":
            batch = encode_lm(tokenizer, list(texts), self.max_length)
        else:
            raise UserError(f"encoding must be one of {ENCODINGS}, got {self.kind!r}.")
        return batch.input_ids, batch.attention_mask


def _keys(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[bytes]:
    ids, lengths = input_ids.cpu().numpy(), attention_mask.sum(1).cpu().numpy()
    return [ids[i, : lengths[i]].astype(np.int64).tobytes() for i in range(len(ids))]


def last_only(regime: Regime, encoding: Encoding) -> bool:
    """A classification head reads one position: the cache keeps only that one."""
    return regime.top == 0 and encoding.kind == "classification"


def _trunk_precision(device: torch.device, dtype: str):
    """A bfloat16 cache is also computed under bf16 autocast (2.6x the float32 tokens/s of
    SmolLM2's trunk on a 2-core Xeon with AMX, benchmarks/bench_trunk.py); float32 is exact."""
    if dtype == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def build_cache(model, tokenizer, texts: Sequence[str], specs, *, batch_size: int = 32):
    """The trunk's outputs for every distinct encoded text: tensors and their key.

    ``specs`` = (regime, encoding, dtype: float32, or bfloat16 computed under bf16 autocast
    and stored so). Texts are run longest first in batches of
    similar length, so padding costs little; each distinct token sequence is run once.
    """
    regime, encoding, dtype = specs
    seen: dict[bytes, None] = {}
    for start in range(0, len(texts), 256):
        ids, mask = encoding.encode(tokenizer, texts[start : start + 256])
        seen.update(dict.fromkeys(_keys(ids, mask)))
    rows = [np.frombuffer(k, dtype=np.int64).copy() for k in seen]
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    parts: list[torch.Tensor] = [torch.zeros(0)] * len(rows)
    last = last_only(regime, encoding)
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(order), batch_size), desc="trunk cache"):
        chunk = order[start : start + batch_size]
        width = len(rows[chunk[0]])
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, i in enumerate(chunk):
            ids[j, : len(rows[i])] = torch.from_numpy(rows[i])
            mask[j, : len(rows[i])] = 1
        with _trunk_precision(device, dtype):
            states = trunk_states(model, ids.to(device), mask.to(device), regime)
        states = states.float().cpu()
        for j, i in enumerate(chunk):
            n = len(rows[i])
            parts[i] = states[j, n - 1 : n] if last else states[j, :n]
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    counts = torch.ones_like(lengths) if last else lengths
    tensors = {
        "tokens": torch.from_numpy(np.concatenate(rows))
        if rows
        else torch.zeros(0, dtype=torch.long),
        "token_offsets": torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
        "state_offsets": torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]),
        "states": torch.cat(parts).to(getattr(torch, dtype)) if parts else torch.zeros(0),
    }
    key = CacheKey(
        trunk_fingerprint(model, regime),
        regime.name,
        encoding.kind,
        encoding.max_length,
        encoding.truncate,
        dtype,
    )
    return tensors, key


def save_cache(model, tokenizer, texts: Sequence[str], specs, out: Path, **kw) -> CacheKey:
    """``build_cache`` and write it (safetensors, atomically)."""
    tensors, key = build_cache(model, tokenizer, texts, specs, **kw)
    write_cache(out, tensors, key)
    return key


class TrunkCache:
    """One cache file, indexed by token ids."""

    def __init__(self, path: str | Path) -> None:
        tensors, stored = read_cache(path)
        self.path, self.key = Path(path), CacheKey(**stored)
        self.regime = parse_trainable(self.key.regime)
        tokens, offsets = tensors["tokens"].numpy(), tensors["token_offsets"].numpy()
        self.index = {
            tokens[offsets[i] : offsets[i + 1]].tobytes(): i for i in range(len(offsets) - 1)
        }
        self.state_offsets = tensors["state_offsets"]
        self.states = tensors["states"]
        self.last = len(self.states) == len(self.index) and self.regime.top == 0

    def rows(self, key: bytes) -> torch.Tensor | None:
        i = self.index.get(key)
        if i is None:
            return None
        return self.states[self.state_offsets[i] : self.state_offsets[i + 1]].float()


class Attached:
    """The caches a model reads its trunk from; shared, not copied, by ``copy.deepcopy`` (the
    interpolated checkpoints of a store are copies of the base, with the same trunk)."""

    def __init__(self, caches: list[TrunkCache]) -> None:
        self.caches, self.regime = caches, caches[0].regime
        self.classification = caches[0].key.encoding == "classification"

    def __deepcopy__(self, memo) -> Attached:
        return self

    def lookup(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """B×T×d cached states (zeros where a head-only cache holds no state, and at padding:
        finite, so that masked attention weights of 0 stay 0)."""
        keys = _keys(input_ids, attention_mask)
        lengths = attention_mask.sum(1).tolist()
        d = self.caches[0].states.shape[1]
        out = torch.zeros((len(keys), input_ids.shape[1], d))
        for row, (key, n) in enumerate(zip(keys, lengths, strict=True)):
            found = next((s for c in self.caches if (s := c.rows(key)) is not None), None)
            if found is None:
                raise UserError(
                    f"a text of {n} tokens is in none of the trunk caches "
                    f"({', '.join(str(c.path) for c in self.caches)}); build a cache over the "
                    "dataset it comes from, with the step's max_length and truncate."
                )
            out[row, n - len(found) : n] = found
        return out.to(input_ids.device)

    def final_states(self, model, input_ids, attention_mask) -> torch.Tensor:
        """Classification reads the last real position (the label's) only: the top's last
        block then runs there alone; an SFT loss reads every position."""
        states = self.lookup(input_ids, attention_mask)
        at = attention_mask.sum(1) - 1 if self.classification else None
        return run_top(model, states, self.regime, at)


def attach(model, caches: Sequence[TrunkCache]) -> bool:
    """Attach the caches whose trunk is this model's; False when none is (it then runs whole)."""
    by_regime: dict[str, list[TrunkCache]] = {}
    for cache in caches:
        by_regime.setdefault(cache.key.regime, []).append(cache)
    for regime, group in by_regime.items():
        if trunk_fingerprint(model, parse_trainable(regime)) == group[0].key.trunk:
            model._w2d_trunk = Attached(group)
            return True
    return False


_ACTIVE: list[TrunkCache] = []


def activate(paths: Sequence[str | Path]) -> None:
    """Use these caches for every model this process loads (``models.load_model``)."""
    _ACTIVE[:] = [TrunkCache(p) for p in paths]


def attach_active(model, where: str | Path) -> None:
    """Called by ``load_model``: attach the active caches. A step given caches runs only
    models with their trunk, so a model with another trunk is an error, not a slow path."""
    if _ACTIVE and not attach(model, _ACTIVE):
        regimes = sorted({c.key.regime for c in _ACTIVE})
        raise UserError(
            f"the model in {str(where)!r} has a trunk that matches none of the trunk caches "
            f"({', '.join(str(c.path) for c in _ACTIVE)}): it is not the caches' base or a "
            f"finetune of it with trainable: {' / '.join(regimes)}. Rebuild the caches from "
            "this base, or finetune with the caches' regime."
        )
