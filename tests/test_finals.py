"""Finals stored by what changed: a head / top:1 finetune saved as a top folder over its base
loads back as the full model, exports as a full folder, and refuses a base it was not made
from."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from weights2data.cli import main
from weights2data.errors import UserError
from weights2data.formats import label_token_ids
from weights2data.models import load_model, save_model
from weights2data.models.regime import parse_trainable, trained_state
from weights2data.models.tops import TOP_WEIGHTS, save_top
from weights2data.train import TrainConfig, finetune

from .conftest import SENTENCES
from .test_trainable import _llama

TEXTS = SENTENCES[:8]
LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def _saved(tokenizer, root, regime):
    base = _llama(tokenizer, tied=False)
    save_model(base, tokenizer, root / "base")
    cfg = TrainConfig(num_classes=3, lr=1e-2, batch_size=4, epochs=2, max_length=16)
    cfg = TrainConfig(**{**cfg.__dict__, "trainable": regime})
    final, _ = finetune(
        copy.deepcopy(base), tokenizer, (TEXTS, LABELS), (TEXTS, LABELS), cfg, 0, progress=False
    )
    before = trained_state(base, parse_trainable(regime))
    save_top(final, before, tokenizer, root / "final", root / "base", {"metrics": {"acc": 1.0}})
    return final


def _same(a, b) -> None:
    other = dict(b.named_parameters())
    for name, param in a.named_parameters():
        assert torch.equal(param, other[name]), name


@pytest.mark.parametrize("regime", ["head", "top:1"])
def test_a_top_folder_loads_back_as_the_full_final(regime, tiny_tokenizer, tmp_path):
    final = _saved(tiny_tokenizer, tmp_path, regime)
    stored = load_file(str(tmp_path / "final" / TOP_WEIGHTS))
    rows = stored["lm_head.weight::rows"].tolist()
    assert rows == sorted(label_token_ids(tiny_tokenizer, 3))  # only the label rows moved
    blocks = {k for k in stored if k.startswith("model.layers.")}
    assert bool(blocks) == (regime == "top:1")
    assert all(k.startswith("model.layers.2.") for k in blocks)  # the last block only
    _same(load_model(tmp_path / "final"), final)
    assert json.loads((tmp_path / "final" / "w2d.json").read_text())["metrics"] == {"acc": 1.0}
    full = sum(f.stat().st_size for f in (tmp_path / "base").glob("*.safetensors"))
    assert (tmp_path / "final" / TOP_WEIGHTS).stat().st_size < full / 2


def test_export_writes_a_full_folder(tiny_tokenizer, tmp_path):
    final = _saved(tiny_tokenizer, tmp_path, "top:1")
    out = tmp_path / "exported"
    assert main(["export", "--final", str(tmp_path / "final"), "--out", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and not (out / "w2d_top.json").exists()
    _same(load_model(out), final)


def test_a_top_folder_refuses_another_base(tiny_tokenizer, tmp_path, capsys):
    _saved(tiny_tokenizer, tmp_path, "head")
    other = _llama(tiny_tokenizer, tied=False)
    with torch.no_grad():
        other.lm_head.weight.mul_(2.0)
    save_model(other, tiny_tokenizer, tmp_path / "other")
    with pytest.raises(UserError, match="is not the one the final .* was trained from"):
        load_model(tmp_path / "final", base=tmp_path / "other")
    moved = tmp_path / "elsewhere" / "final"
    shutil.copytree(tmp_path / "final", moved)
    with pytest.raises(UserError, match="not a model folder; pass the base folder"):
        load_model(moved)
    load_model(moved, base=tmp_path / "base")  # --base completes it
    argv = ["export", "--final", str(moved), "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "pass the base folder (--base)" in capsys.readouterr().err
