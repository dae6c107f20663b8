"""Trunk caches: the frozen trunk's outputs for every distinct encoded text of a dataset,
computed once and read by every step that runs a model with that trunk.

A cache file (safetensors) carries its ``CacheKey`` in its metadata. Entries are keyed by a
text's token ids as the step encodes it, so one cache serves every pool, task and ablation that
meets the same text, and a text encoded differently is a miss, never a wrong hit. ``CacheSet``
is the caches one step reads; ``lm.open_lm`` checks them against the model and hands them to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path
from ..device import native_bf16
from ..errors import UserError
from ..formats import Encoding, batches
from ..progress import tqdm
from .forward import trunk_states
from .regime import Regime, parse_trainable, trunk_fingerprint


@dataclass(frozen=True)
class CacheKey:
    """What a cache was computed with; reading it under any other key is refused."""

    trunk: str  # fingerprint of the frozen trunk's weights (regime.trunk_fingerprint)
    regime: str
    encoding: str  # classification (text tokens, label appended) or sft (start token + text)
    max_length: int
    truncate: str
    dtype: str
    compute: str  # the trunk's arithmetic: float32, or bfloat16 (autocast)
    # further (max_length, truncate) pairs whose token rows the cache also holds: a pool read by
    # tasks of several lengths is cached once, and a text the encodings cut alike is run once
    also: tuple = ()

    def encoding_specs(self) -> list[Encoding]:
        """Every encoding whose rows this cache holds, its first one first."""
        pairs = [(self.max_length, self.truncate), *(tuple(p) for p in self.also)]
        return [Encoding(self.encoding, n, side) for n, side in pairs]


def token_keys(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[bytes]:
    """Each right-padded row's real token ids as bytes: a cache's lookup key."""
    ids, lengths = input_ids.cpu().numpy(), attention_mask.sum(1).cpu().numpy()
    return [ids[i, : lengths[i]].astype(np.int64).tobytes() for i in range(len(ids))]


def last_only(regime: Regime, encoding: Encoding) -> bool:
    """A classification head reads one position: the cache keeps only that one."""
    return regime.top == 0 and encoding.classification


# how a cache's trunk computes: auto picks by the hardware (``trunk_compute``)
COMPUTES = ("auto", "float32", "bfloat16")


def trunk_compute(compute: str, dtype: str, device: torch.device) -> str:
    """The arithmetic a cache is computed in. A float32 cache is exact (float32 throughout).
    A bfloat16 cache under ``auto`` runs bf16 autocast only where the hardware has bf16
    arithmetic (``device.native_bf16``), else float32 rounded to bf16 when stored. Measured
    (benchmarks/bench_trunk.py, SmolLM2's trunk, 2 threads): bf16 autocast is 2.6x float32 on
    an Intel Xeon with AMX and 6-7x slower than float32 on an AMD EPYC with AVX2 only."""
    if compute not in COMPUTES:
        raise UserError(f"trunk cache compute is one of {', '.join(COMPUTES)}, not {compute!r}.")
    if dtype == "float32":
        if compute == "bfloat16":
            raise UserError(
                "a float32 trunk cache is computed in float32; for bf16 arithmetic store the "
                "cache as bfloat16 (trunk_cache: {dtype: bfloat16})."
            )
        return "float32"
    if compute == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    return compute


def _trunk_precision(device: torch.device, compute: str):
    if compute == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _distinct_rows(
    tokenizer, texts: Sequence[str], encodings: Sequence[Encoding]
) -> list[np.ndarray]:
    """Each distinct token row of ``texts`` under any of ``encodings`` (shared rows once)."""
    rows = [row for e in encodings for row in e.tokenize(tokenizer, texts).rows]
    seen = dict.fromkeys(np.asarray(row, dtype=np.int64).tobytes() for row in rows)
    return [np.frombuffer(k, dtype=np.int64).copy() for k in seen]


def _encodings(encoding: Encoding | Sequence[Encoding]) -> list[Encoding]:
    """One encoding or several of one kind, as a non-empty list."""
    encodings = [encoding] if isinstance(encoding, Encoding) else list(encoding)
    kinds = {e.kind for e in encodings}
    if len(kinds) != 1:
        raise UserError(f"a trunk cache holds texts of one encoding kind, not {sorted(kinds)}.")
    return list(dict.fromkeys(encodings))


@torch.no_grad()
def build_cache(
    model, tokenizer, texts: Sequence[str], specs, *, batch_size: int = 32, compute: str = "auto"
):
    """The trunk's outputs for every distinct encoded text: tensors and their key.

    ``specs`` = (regime, encoding or encodings of one kind, dtype: the states' storage, float32
    or bfloat16);
    ``compute``: the trunk's arithmetic (``trunk_compute``). Texts run longest first in batches
    of similar length, so padding costs little; each distinct token sequence is run once.
    """
    regime, encoding, dtype = specs
    encodings = _encodings(encoding)
    encoding = encodings[0]
    rows = _distinct_rows(tokenizer, texts, encodings)
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    parts: list[torch.Tensor] = [torch.zeros(0)] * len(rows)
    last = last_only(regime, encoding)
    device = next(model.parameters()).device
    compute = trunk_compute(compute, dtype, device)
    steps = batches(len(order), batch_size, np.asarray(order, dtype=np.int64))
    for chunk in tqdm(steps, total=-(-len(order) // batch_size), desc="trunk cache"):
        chunk = chunk.tolist()
        width = len(rows[chunk[0]])
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, i in enumerate(chunk):
            ids[j, : len(rows[i])] = torch.from_numpy(rows[i])
            mask[j, : len(rows[i])] = 1
        with _trunk_precision(device, compute):
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
    fingerprint = trunk_fingerprint(model, regime)
    key = CacheKey(
        fingerprint,
        regime.name,
        encoding.kind,
        encoding.max_length,
        encoding.truncate,
        dtype,
        compute,
        tuple((e.max_length, e.truncate) for e in encodings[1:]),
    )
    return tensors, key


def write_cache(path: str | Path, tensors: dict[str, torch.Tensor], key: CacheKey) -> None:
    """Save the trunk's outputs atomically, with their key in the safetensors metadata."""
    meta = {"key": json.dumps(dataclasses.asdict(key), sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)


def save_cache(model, tokenizer, texts: Sequence[str], specs, out: Path, **kw) -> CacheKey:
    """``build_cache`` and write it (safetensors, atomically)."""
    tensors, key = build_cache(model, tokenizer, texts, specs, **kw)
    write_cache(out, tensors, key)
    return key


def read_cache(
    path: str | Path, expected: CacheKey | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """The cached tensors and their key, once the key matches ``expected`` field by field
    (None: any key)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"trunk cache {str(path)!r} does not exist; build it with its rule first.")
    try:
        with safe_open(str(path), framework="pt") as fh:
            stored = json.loads((fh.metadata() or {}).get("key", "{}"))
        # caches written before the key named its arithmetic ran bf16 autocast for bf16 ones
        if "dtype" in stored:
            stored.setdefault("compute", stored["dtype"])
        tensors = load_file(str(path))
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise UserError(f"trunk cache {str(path)!r} is unreadable ({exc}); delete it.") from exc
    # compared as JSON reads them back (a tuple of pairs is a list of lists there)
    wanted = json.loads(json.dumps(dataclasses.asdict(expected))) if expected else {}
    for name, want in wanted.items():
        if stored.get(name, [] if name == "also" else None) != want:
            raise UserError(
                f"trunk cache {str(path)!r} was built with {name} = {stored.get(name)!r}, "
                f"not {want!r}; rebuild it (delete the file and rerun)."
            )
    return tensors, stored


class TrunkCache:
    """One cache file, indexed by token ids."""

    def __init__(self, path: str | Path) -> None:
        tensors, stored = read_cache(path)
        try:
            also = tuple(tuple(pair) for pair in stored.pop("also", ()))
            self.key = CacheKey(**stored, also=also)
        except TypeError as exc:
            raise UserError(f"trunk cache {str(path)!r} has no valid key; rebuild it.") from exc
        self.path = Path(path)
        self.regime = parse_trainable(self.key.regime)
        tokens, offsets = tensors["tokens"].numpy(), tensors["token_offsets"].numpy()
        self.index = {
            tokens[offsets[i] : offsets[i + 1]].tobytes(): i for i in range(len(offsets) - 1)
        }
        self.state_offsets = tensors["state_offsets"]
        self.states = tensors["states"]

    def rows(self, key: bytes) -> torch.Tensor | None:
        i = self.index.get(key)
        if i is None:
            return None
        return self.states[self.state_offsets[i] : self.state_offsets[i + 1]].float()


class CacheSet:
    """The trunk caches one step reads: all of one trunk, regime and encoding (``check``)."""

    def __init__(self, caches: Sequence[TrunkCache]) -> None:
        if not caches:
            raise UserError("a cache set needs at least one trunk cache.")
        self.caches = list(caches)

    @classmethod
    def open(cls, paths: Sequence[str | Path]) -> CacheSet | None:
        """The caches in ``paths``, read once; None for no paths (models then run whole)."""
        return cls([TrunkCache(p) for p in paths]) if paths else None

    def names(self) -> str:
        return ", ".join(str(c.path) for c in self.caches)

    def check(self, fingerprint: str, regime: Regime, encoding: Encoding | None, where) -> None:
        """Refuse, with one line naming the cache and the mismatch, a cache built under another
        regime, another encoding or from another trunk than the model in ``where``."""
        for cache in self.caches:
            key, name = cache.key, str(cache.path)
            if key.regime != regime.name:
                raise UserError(
                    f"trunk cache {name!r} was built for trainable: {key.regime}, but the model "
                    f"in {str(where)!r} runs as trainable: {regime.name}; rebuild the cache with "
                    f"regime {regime.name}, or finetune with {key.regime}."
                )
            if encoding is not None and encoding not in key.encoding_specs():
                held = " and ".join(
                    f"max_length {e.max_length} cut on the {e.truncate}"
                    for e in key.encoding_specs()
                )
                raise UserError(
                    f"trunk cache {name!r} holds {key.encoding} texts of {held}, but this step "
                    f"encodes {encoding.kind} texts of max_length {encoding.max_length} cut on "
                    f"the {encoding.truncate}; give the step a cache built with its encoding."
                )
            if key.trunk != fingerprint:
                raise UserError(
                    f"trunk cache {name!r} was built from another trunk (fingerprint "
                    f"{key.trunk}) than the model in {str(where)!r} has under trainable: "
                    f"{regime.name} ({fingerprint}); rebuild the cache from this model's base."
                )

    def lookup(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """B×T×d cached states (zeros where a head-only cache holds no state, and at padding:
        finite, so that masked attention weights of 0 stay 0)."""
        keys = token_keys(input_ids, attention_mask)
        lengths = attention_mask.sum(1).tolist()
        d = self.caches[0].states.shape[1]
        out = torch.zeros((len(keys), input_ids.shape[1], d))
        for row, (key, n) in enumerate(zip(keys, lengths, strict=True)):
            found = next((s for c in self.caches if (s := c.rows(key)) is not None), None)
            if found is None:
                raise UserError(
                    f"a text of {n} tokens is in none of the trunk caches ({self.names()}); "
                    "build a cache over the dataset it comes from, with the step's max_length "
                    "and truncate."
                )
            out[row, n - len(found) : n] = found
        return out.to(input_ids.device)
