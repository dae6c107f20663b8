"""A folder's recorded fingerprints stand for its weights: they equal what hashing the weights
gives, for a plain folder and a top folder, and a rewritten weights file (replaced, or written
over in place) is hashed again instead of trusted."""

from __future__ import annotations

import os
import time

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from weights2data.models import save_model
from weights2data.models.fingerprint import (
    _hash_files,
    stored_fingerprints,
    tensor_hash,
    weights_fingerprint,
)
from weights2data.models.folders import load_weights
from weights2data.models.regime import parse_trainable, trained_state, trunk_fingerprint
from weights2data.models.tops import save_top

from .test_trainable import _llama

TOP = parse_trainable("top:1")


def _computed(module) -> dict[str, str]:
    return {name: tensor_hash(p) for name, p in module.named_parameters()}


def test_recorded_fingerprints_equal_the_hashed_ones(tiny_tokenizer, tmp_path):
    base = _llama(tiny_tokenizer, tied=False)
    save_model(base, tiny_tokenizer, tmp_path / "base")
    assert stored_fingerprints(tmp_path / "base") is not None
    assert weights_fingerprint(tmp_path / "base") == _hash_files(tmp_path / "base")
    loaded = load_weights(tmp_path / "base")
    assert loaded.hashes == _computed(loaded.module)
    final = load_weights(tmp_path / "base").module
    with torch.no_grad():
        final.model.layers[-1].mlp.up_proj.weight[0, 0] += 1.0
        final.lm_head.weight[3] += 1.0
    save_top(final, trained_state(base, TOP), tiny_tokenizer, tmp_path / "top", tmp_path / "base")
    top = load_weights(tmp_path / "top")
    assert top.hashes == _computed(top.module) and top.hashes != loaded.hashes
    assert weights_fingerprint(tmp_path / "top") == _hash_files(tmp_path / "top")
    recorded = trunk_fingerprint(top.module, TOP, top.hashes)
    assert recorded == trunk_fingerprint(top.module, TOP) == trunk_fingerprint(base, TOP)


def _moved_file(folder, replace: bool) -> None:
    """One trunk weight moved, the file the same size: replaced, or written over in place."""
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
    tensors["model.layers.0.mlp.up_proj.weight"][0, 0] += 1.0
    if replace:
        save_file(tensors, str(folder / "new.tmp"), metadata=metadata)
        os.replace(folder / "new.tmp", path)
    else:
        time.sleep(0.05)  # file times tick coarsely (a few ms): a later write must show as later
        save_file(tensors, str(path), metadata=metadata)


def test_a_rewritten_weights_file_changes_the_fingerprints(tiny_tokenizer, tmp_path):
    base = _llama(tiny_tokenizer, tied=False)
    before_trunk = trunk_fingerprint(base, TOP)
    for replace in (True, False):
        folder = tmp_path / f"replace_{replace}"
        save_model(base, tiny_tokenizer, folder)
        before = weights_fingerprint(folder)
        size = (folder / "model.safetensors").stat().st_size
        _moved_file(folder, replace)
        assert (folder / "model.safetensors").stat().st_size == size
        assert stored_fingerprints(folder) is None
        assert weights_fingerprint(folder) == _hash_files(folder) != before
        loaded = load_weights(folder)
        assert loaded.hashes is None
        assert trunk_fingerprint(loaded.module, TOP, loaded.hashes) != before_trunk
