"""A trunk cache's arithmetic: ``auto`` runs bf16 autocast only on hardware with bf16
arithmetic, float32 elsewhere (bf16 is emulated there, several times slower than float32); the
key records which ran, and a float32 cache is float32 throughout."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from weights2data.device import native_bf16
from weights2data.errors import UserError
from weights2data.models.cache import TrunkCache, save_cache, trunk_compute
from weights2data.models.regime import parse_trainable

from .test_trainable import _llama
from .test_trunk_cache import CLS, TEXTS

CPU = torch.device("cpu")


@pytest.mark.parametrize("has_bf16", [True, False])
def test_auto_follows_the_hardware_for_a_bf16_cache_and_float32_stays_exact(monkeypatch, has_bf16):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: has_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert native_bf16(CPU) is has_bf16
    assert trunk_compute("auto", "bfloat16", CPU) == ("bfloat16" if has_bf16 else "float32")
    assert trunk_compute("auto", "float32", CPU) == "float32"
    assert trunk_compute("bfloat16", "bfloat16", CPU) == "bfloat16"
    assert trunk_compute("float32", "bfloat16", CPU) == "float32"


def test_a_compute_that_cannot_run_is_refused_by_name():
    with pytest.raises(UserError, match="one of auto, float32, bfloat16, not 'int8'"):
        trunk_compute("int8", "bfloat16", CPU)
    with pytest.raises(UserError, match="float32 trunk cache is computed in float32"):
        trunk_compute("bfloat16", "float32", CPU)


def test_a_bf16_cache_computed_in_float32_is_the_float32_cache_rounded(tiny_tokenizer, tmp_path):
    """Same rows, same states: the bf16 cache from float32 arithmetic differs from the float32
    cache only by the rounding of its storage; the key names the arithmetic."""
    model = _llama(tiny_tokenizer, tied=False)
    regime = parse_trainable("top:1")
    caches = {}
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / f"{dtype}.safetensors"
        save_cache(model, tiny_tokenizer, TEXTS, (regime, CLS, dtype), out, compute="float32")
        caches[dtype] = TrunkCache(out)
    exact, rounded = caches["float32"], caches["bfloat16"]
    assert (exact.key.compute, rounded.key.compute) == ("float32", "float32")
    assert exact.index == rounded.index
    assert torch.equal(exact.states.to(torch.bfloat16), rounded.states)


def test_a_cache_whose_key_predates_compute_reads_as_its_dtype(tiny_tokenizer, tmp_path):
    """Caches written before the key named its arithmetic ran bf16 autocast when stored in bf16."""
    model = _llama(tiny_tokenizer, tied=False)
    path = tmp_path / "c.safetensors"
    specs = (parse_trainable("top:1"), CLS, "bfloat16")
    save_cache(model, tiny_tokenizer, TEXTS, specs, path, compute="bfloat16")
    with safe_open(str(path), framework="pt") as fh:
        tensors = {name: fh.get_tensor(name) for name in fh.keys()}
        key = json.loads(fh.metadata()["key"])
    del key["compute"]
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"key": json.dumps(key)})
    assert TrunkCache(old).key.compute == "bfloat16"
    assert torch.equal(TrunkCache(old).states, TrunkCache(path).states)
